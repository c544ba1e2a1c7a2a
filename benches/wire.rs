//! Wire formats without a network: writing and reading SOAP and REST
//! messages, each next to a baseline in the same criterion group.
//!
//! Budgets (DESIGN.md, "Budgets"): signing + writing a 100-lead envelope in a
//! few microseconds (the issue's target: under 10 µs); parsing an answer in
//! less. From raw `TYPE:VALUE` strings to signed envelope bytes for 100 leads
//! in at most 7 µs, ten times faster than PHP's `SoapClient` (~70 µs; issue 9,
//! part 5), shown against today's path (`v0`, the code before that work, kept
//! here verbatim) in the same run: `soap_envelope_from_raw_100`, and its
//! parts `lead_keys_from_raw_100`, `soap_envelope_writer_100`, `soap_signing`.
//!
//! Run with `cargo bench --bench wire -- --warm-up-time 1 --measurement-time 3`
//! (`rest_lead_lookup` needs `--features bench-baseline`).

use std::hint::black_box;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use marketo_campaign::rest::{read_response, trigger_body};
use marketo_campaign::soap::{
    read_request_campaign_response, request_signature, w3c_timestamp, DEFAULT_TIMEZONE, MKTOWS_NS,
    SOAP_ENV_NS,
};
use marketo_campaign::{
    CampaignRequest, CampaignTarget, Clock, FixedClock, LeadKey, LeadKeyType, ProgramToken,
    RetryPolicy, SoapClient,
};

/// Marketo's published signature example.
const USER_ID: &str = "bigcorp1_461839624B16E06BA2D663";
const ENCRYPTION_KEY: &str = "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66";
const TIMESTAMP: &str = "2010-04-09T14:04:54-07:00";
const ENDPOINT: &str = "https://123-ABC-456.mktoapi.com/soap/mktows/2_9";
const CAMPAIGN_ID: u32 = 4496;
const LEADS: usize = 100;

// ---------------------------------------------------------------------------
// SOAP envelope
// ---------------------------------------------------------------------------

/// 100 EMAIL keys; every 25th holds an `&`, so both writers really escape.
fn email_request() -> CampaignRequest {
    let leads = (0..LEADS).map(|i| {
        let address = if i % 25 == 0 {
            format!("r&d.team{i}@company.com")
        } else {
            format!("first.last{i}@company.com")
        };
        LeadKey::email(address).expect("valid bench lead key")
    });
    CampaignRequest::new(CampaignTarget::id(CAMPAIGN_ID), leads).expect("valid bench request")
}

/// The baseline's escaping: one `replace` per special character.
fn naive_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\r', "&#13;")
}

/// A naive `format!` / `push_str` writer of the same `requestCampaign`
/// envelope (campaign by id), signed the same way.
fn naive_envelope(
    key: &str,
    user_id: &str,
    now: DateTime<Utc>,
    zone: Tz,
    request: &CampaignRequest,
) -> Vec<u8> {
    let timestamp = w3c_timestamp(now, zone);
    let signature = request_signature(key, &timestamp, user_id);
    let Some(campaign_id) = request.target().campaign_id() else {
        unreachable!("the bench request names its campaign by id")
    };
    let mut xml = String::new();
    xml.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    xml.push_str(&format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV_NS}" xmlns:ns1="{MKTOWS_NS}">"#
    ));
    xml.push_str("<SOAP-ENV:Header><ns1:AuthenticationHeader>");
    xml.push_str(&format!(
        "<mktowsUserId>{}</mktowsUserId>",
        naive_escape(user_id)
    ));
    xml.push_str(&format!("<requestSignature>{signature}</requestSignature>"));
    xml.push_str(&format!("<requestTimestamp>{timestamp}</requestTimestamp>"));
    xml.push_str("</ns1:AuthenticationHeader></SOAP-ENV:Header>");
    xml.push_str("<SOAP-ENV:Body><ns1:paramsRequestCampaign>");
    xml.push_str(&format!(
        "<source>{}</source><campaignId>{campaign_id}</campaignId>",
        request.source().as_str()
    ));
    xml.push_str("<leadList>");
    for lead in request.leads() {
        xml.push_str(&format!(
            "<leadKey><keyType>{}</keyType><keyValue>{}</keyValue></leadKey>",
            lead.key_type().as_str(),
            naive_escape(lead.value())
        ));
    }
    xml.push_str("</leadList>");
    xml.push_str("</ns1:paramsRequestCampaign></SOAP-ENV:Body></SOAP-ENV:Envelope>");
    xml.into_bytes()
}

fn soap_envelope_100(c: &mut Criterion) {
    let clock = FixedClock::parse(TIMESTAMP).expect("valid bench timestamp");
    let client = SoapClient::builder(ENDPOINT, USER_ID, ENCRYPTION_KEY)
        .clock(clock)
        .retry(RetryPolicy::never())
        .rate_limit(None)
        .build()
        .expect("valid bench client");
    let request = email_request();

    // Same bytes, checked once, outside timing.
    let ours = client
        .envelope(&request, request.leads())
        .expect("the client writes the bench envelope");
    let baseline = naive_envelope(
        ENCRYPTION_KEY,
        USER_ID,
        clock.now(),
        DEFAULT_TIMEZONE,
        &request,
    );
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&baseline),
        "the baseline must write exactly the client's bytes"
    );
    assert!(
        String::from_utf8_lossy(&ours).contains("ffbff4d4bef354807481e66dc7540f7890523a87"),
        "the envelope carries the published signature"
    );

    let mut group = c.benchmark_group("soap_envelope_100");
    group.throughput(Throughput::Elements(LEADS as u64));
    group.bench_function("ours/client.envelope", |b| {
        b.iter(|| {
            client
                .envelope(black_box(&request), black_box(request.leads()))
                .expect("the client writes the bench envelope")
        })
    });
    group.bench_function("baseline/naive_format", |b| {
        b.iter(|| {
            naive_envelope(
                black_box(ENCRYPTION_KEY),
                black_box(USER_ID),
                black_box(clock.now()),
                DEFAULT_TIMEZONE,
                black_box(&request),
            )
        })
    });
    // Components of both: one signature (and its timestamp) per envelope.
    group.throughput(Throughput::Elements(1));
    group.bench_function("component/request_signature", |b| {
        b.iter(|| {
            request_signature(
                black_box(ENCRYPTION_KEY),
                black_box(TIMESTAMP),
                black_box(USER_ID),
            )
        })
    });
    group.bench_function("component/w3c_timestamp", |b| {
        b.iter(|| w3c_timestamp(black_box(clock.now()), black_box(DEFAULT_TIMEZONE)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// SOAP envelope from raw input: today's path (v0) against ours
// ---------------------------------------------------------------------------

// The crate's direct envelope writer, this same source file, to time the
// writer alone (it takes these public types from here).
#[path = "../src/soap/envelope/write.rs"]
#[allow(dead_code)]
mod write;

/// A key's value as the writer copies it. The crate gives the bytes it
/// holds; the public API has only `value()`, which checks them as a
/// `str` (about 2 ns a key more than the crate's writer).
fn key_value_bytes(key: &LeadKey) -> &[u8] {
    key.value().as_bytes()
}

/// The path from raw strings to signed envelope bytes as it was before the
/// direct writer and the one-allocation lead keys (issue 9, part 5),
/// verbatim: `LeadKey::from_str` / `LeadKey::new` (two allocations per key,
/// a case-insensitive scan of the type list), the request, the signature
/// and timestamp, and quick-xml's per-event `Writer` (the crate's own test
/// reference, in `benches/baseline/`). The bench checks that it writes
/// exactly the client's bytes before timing either.
// (On an inline module, `path` names the directory its own `#[path]`
// modules are found in.)
#[allow(dead_code)]
#[path = "baseline"]
mod v0 {
    use std::fmt;
    use std::str::FromStr;

    use chrono::{DateTime, Utc};
    use chrono_tz::Tz;
    use hmac::{Hmac, KeyInit, Mac};
    use sha1::Sha1;

    pub use crate::write::{AuthHeader, ScheduleParams};
    pub use marketo_campaign::{CampaignTarget, Error, LeadKeyType, ProgramToken, Source};

    #[path = "quick_xml_writer.rs"]
    pub mod writer;

    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// `LeadKeyType::from_str`.
    pub fn parse_type(s: &str) -> Result<LeadKeyType, Error> {
        LeadKeyType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                invalid(
                    "lead key type",
                    format!(
                        "{s:?} is not one of {}",
                        LeadKeyType::ALL.map(|t| t.as_str()).join(", ")
                    ),
                )
            })
    }

    fn limit_source(key_type: LeadKeyType) -> &'static str {
        match key_type {
            LeadKeyType::Idnum => "Marketo lead ids are 32-bit integers",
            LeadKeyType::Email | LeadKeyType::LeadOwnerEmail => {
                "Marketo's email fields hold at most 255 characters"
            }
            LeadKeyType::Cookie => "a browser cookie holds at most 4096 bytes (RFC 6265)",
            _ => "Salesforce ids have 15 or 18 characters",
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub struct LeadKey {
        key_type: LeadKeyType,
        value: std::sync::Arc<str>,
    }

    impl LeadKey {
        pub fn new(key_type: LeadKeyType, value: impl Into<String>) -> Result<Self, Error> {
            let value = value.into();
            let field = || format!("lead key {key_type}:{}", shown(&value));
            if value.trim().is_empty() {
                return Err(invalid(field(), "the value is empty"));
            }
            check_length(&value, key_type.max_value_chars(), limit_source(key_type))
                .map_err(|reason| invalid(field(), reason))?;
            check_xml_text(&value).map_err(|reason| invalid(field(), reason))?;
            if key_type == LeadKeyType::Idnum && parse_positive_id(&value).is_none() {
                return Err(invalid(
                    field(),
                    "an IDNUM must be a positive integer written with digits only, e.g. 1002200",
                ));
            }
            Ok(LeadKey {
                key_type,
                value: value.into(),
            })
        }

        pub fn id(id: u32) -> Result<Self, Error> {
            LeadKey::new(LeadKeyType::Idnum, id.to_string())
        }

        pub fn key_type(&self) -> LeadKeyType {
            self.key_type
        }

        pub fn value(&self) -> &str {
            &self.value
        }
    }

    impl fmt::Display for LeadKey {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}:{}", self.key_type, self.value)
        }
    }

    impl FromStr for LeadKey {
        type Err = Error;

        fn from_str(s: &str) -> Result<Self, Error> {
            let (kind, value) = s.split_once(':').ok_or_else(|| {
                invalid(
                    format!("lead {}", shown(s)),
                    "expected TYPE:VALUE, e.g. EMAIL:lead@company.com",
                )
            })?;
            LeadKey::new(parse_type(kind.trim())?, value)
        }
    }

    fn parse_positive_id(s: &str) -> Option<u32> {
        if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id: u32 = s.parse().ok()?;
        (id <= i32::MAX as u32).then_some(id)
    }

    const SHOWN_CHARS: usize = 64;

    fn shown(value: &str) -> String {
        match value.char_indices().nth(SHOWN_CHARS) {
            None => format!("{value:?}"),
            Some((cut, _)) => format!(
                "{:?}… ({} characters)",
                &value[..cut],
                value.chars().count()
            ),
        }
    }

    fn check_length(value: &str, max: usize, why: &str) -> Result<(), String> {
        if value.len() <= max {
            return Ok(());
        }
        match value.chars().count() {
            chars if chars <= max => Ok(()),
            chars => Err(format!(
                "it has {chars} characters, more than {max} ({why})"
            )),
        }
    }

    fn check_xml_text(s: &str) -> Result<(), String> {
        match s.chars().find(|&c| !is_xml_char(c)) {
            None => Ok(()),
            Some(c) => Err(format!(
                "it holds U+{:04X}, which XML 1.0 cannot carry",
                c as u32
            )),
        }
    }

    fn is_xml_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    }

    /// `CampaignRequest`, for a target by id (the bench's).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CampaignRequest {
        target: CampaignTarget,
        leads: Vec<LeadKey>,
        source: Source,
    }

    impl CampaignRequest {
        pub fn new(
            target: CampaignTarget,
            leads: impl IntoIterator<Item = LeadKey>,
        ) -> Result<Self, Error> {
            // `CampaignTarget::validate`, its by-id branch.
            if let CampaignTarget::Id { id, .. } = target {
                if id == 0 || id > i32::MAX as u32 {
                    return Err(invalid(
                        "campaign id",
                        format!("{id} is not a positive 32-bit integer"),
                    ));
                }
            } else {
                unreachable!("the bench names its campaign by id");
            }
            let tokens = target.tokens();
            for (i, token) in tokens.iter().enumerate() {
                if tokens[..i].iter().any(|t| t.name() == token.name()) {
                    return Err(invalid(
                        format!("token {:?}", token.name()),
                        "it is given twice",
                    ));
                }
            }
            let leads: Vec<LeadKey> = leads.into_iter().collect();
            if leads.is_empty() {
                return Err(invalid("lead list", "it is empty"));
            }
            Ok(CampaignRequest {
                target,
                leads,
                source: Source::default(),
            })
        }

        pub fn target(&self) -> &CampaignTarget {
            &self.target
        }

        pub fn leads(&self) -> &[LeadKey] {
            &self.leads
        }

        pub fn source(&self) -> Source {
            self.source
        }
    }

    pub fn w3c_timestamp(time: DateTime<Utc>, zone: Tz) -> String {
        time.with_timezone(&zone)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    pub fn request_signature(encryption_key: &str, timestamp: &str, user_id: &str) -> String {
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(encryption_key.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(timestamp.as_bytes());
        mac.update(user_id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// `SoapClient::envelope`: the checks, the signature (`signed`), the
    /// buffer and the writer.
    pub fn envelope(
        encryption_key: &str,
        user_id: &str,
        now: DateTime<Utc>,
        zone: Tz,
        request: &CampaignRequest,
        leads: &[LeadKey],
    ) -> Result<Vec<u8>, Error> {
        if let CampaignTarget::Id { tokens, .. } = request.target() {
            if !tokens.is_empty() {
                return Err(invalid("program tokens", "SOAP takes a campaign id alone"));
            }
        }
        if leads.len() > marketo_campaign::MAX_LEADS_PER_CALL {
            return Err(invalid("lead list", "too many leads"));
        }
        let timestamp = w3c_timestamp(now, zone);
        let signature = request_signature(encryption_key, &timestamp, user_id);
        let auth = AuthHeader {
            user_id,
            signature: &signature,
            timestamp: &timestamp,
        };
        let mut body = Vec::with_capacity(1024 + 96 * leads.len());
        writer::write_request_campaign(&mut body, &auth, request, leads)
            .map_err(|e| Error::Config(format!("writing the envelope failed: {e}")))?;
        Ok(body)
    }

    /// Raw strings to signed envelope bytes, today.
    pub fn from_raw(
        encryption_key: &str,
        user_id: &str,
        now: DateTime<Utc>,
        zone: Tz,
        campaign_id: u32,
        raw: &[String],
    ) -> Result<Vec<u8>, Error> {
        let leads = raw
            .iter()
            .map(|s| s.parse::<LeadKey>())
            .collect::<Result<Vec<_>, _>>()?;
        let request = CampaignRequest::new(CampaignTarget::id(campaign_id), leads)?;
        envelope(
            encryption_key,
            user_id,
            now,
            zone,
            &request,
            request.leads(),
        )
    }
}

/// What a caller starts from: 100 `TYPE:VALUE` strings, alternately
/// `EMAIL:` (every 25th with an `&`, so the writers really escape) and
/// `IDNUM:`.
fn raw_leads() -> Vec<String> {
    (0..LEADS)
        .map(|i| match i % 2 {
            0 if i % 25 == 0 => format!("EMAIL:r&d.team{i}@company.com"),
            0 => format!("EMAIL:first.last{i}@company.com"),
            _ => format!("IDNUM:{}", 1_002_200 + i),
        })
        .collect()
}

/// Raw strings to signed envelope bytes, through the crate's public API.
fn ours_from_raw(client: &SoapClient, raw: &[String]) -> Result<Vec<u8>, marketo_campaign::Error> {
    let leads = raw
        .iter()
        .map(|s| s.parse::<LeadKey>())
        .collect::<Result<Vec<_>, _>>()?;
    let request = CampaignRequest::new(CampaignTarget::id(CAMPAIGN_ID), leads)?;
    client.envelope(&request, request.leads())
}

fn soap_envelope_from_raw_100(c: &mut Criterion) {
    let clock = FixedClock::parse(TIMESTAMP).expect("valid bench timestamp");
    let client = SoapClient::builder(ENDPOINT, USER_ID, ENCRYPTION_KEY)
        .clock(clock)
        .retry(RetryPolicy::never())
        .rate_limit(None)
        .build()
        .expect("valid bench client");
    let raw = raw_leads();
    let now = clock.now();
    let v0_from_raw = |raw: &[String]| {
        v0::from_raw(
            ENCRYPTION_KEY,
            USER_ID,
            now,
            DEFAULT_TIMEZONE,
            CAMPAIGN_ID,
            raw,
        )
    };

    // Same bytes, checked once, outside timing.
    let ours = ours_from_raw(&client, &raw).expect("the client writes the bench envelope");
    let theirs = v0_from_raw(&raw).expect("v0 writes the bench envelope");
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "today's path must write exactly the client's bytes"
    );
    assert!(String::from_utf8_lossy(&ours).contains("ffbff4d4bef354807481e66dc7540f7890523a87"));
    assert!(String::from_utf8_lossy(&ours).contains("r&amp;d.team"));

    let mut group = c.benchmark_group("soap_envelope_from_raw_100");
    group.throughput(Throughput::Elements(LEADS as u64));
    group.bench_function("ours/parse+request+envelope", |b| {
        b.iter(|| ours_from_raw(&client, black_box(&raw)).expect("bench envelope"))
    });
    group.bench_function("v0/parse+request+envelope", |b| {
        b.iter(|| v0_from_raw(black_box(&raw)).expect("bench envelope"))
    });
    group.finish();

    // The lead keys alone: 100 strings to keys.
    let mut group = c.benchmark_group("lead_keys_from_raw_100");
    group.throughput(Throughput::Elements(LEADS as u64));
    group.bench_function("ours/LeadKey::from_str", |b| {
        b.iter(|| {
            black_box(&raw)
                .iter()
                .map(|s| s.parse::<LeadKey>())
                .collect::<Result<Vec<_>, _>>()
                .expect("bench keys")
        })
    });
    group.bench_function("v0/LeadKey::from_str", |b| {
        b.iter(|| {
            black_box(&raw)
                .iter()
                .map(|s| s.parse::<v0::LeadKey>())
                .collect::<Result<Vec<_>, _>>()
                .expect("bench keys")
        })
    });
    let ids: Vec<u32> = (1_002_200..).take(LEADS).collect();
    group.bench_function("ours/LeadKey::id", |b| {
        b.iter(|| {
            black_box(&ids)
                .iter()
                .map(|&id| LeadKey::id(id))
                .collect::<Result<Vec<_>, _>>()
                .expect("bench keys")
        })
    });
    group.bench_function("v0/LeadKey::id", |b| {
        b.iter(|| {
            black_box(&ids)
                .iter()
                .map(|&id| v0::LeadKey::id(id))
                .collect::<Result<Vec<_>, _>>()
                .expect("bench keys")
        })
    });
    group.finish();

    // The writers alone, on the same request and header.
    let request = {
        let leads = raw.iter().map(|s| s.parse::<LeadKey>().expect("bench key"));
        CampaignRequest::new(CampaignTarget::id(CAMPAIGN_ID), leads).expect("bench request")
    };
    let v0_request = {
        let leads = raw
            .iter()
            .map(|s| s.parse::<v0::LeadKey>().expect("bench key"));
        v0::CampaignRequest::new(CampaignTarget::id(CAMPAIGN_ID), leads).expect("bench request")
    };
    let signature = request_signature(ENCRYPTION_KEY, TIMESTAMP, USER_ID);
    let auth = write::AuthHeader {
        user_id: USER_ID,
        signature: &signature,
        timestamp: TIMESTAMP,
    };
    let capacity = 1024 + 96 * LEADS;
    let direct = |request: &CampaignRequest| {
        let mut out = Vec::with_capacity(capacity);
        write::write_request_campaign(&mut out, &auth, request, request.leads())
            .expect("writing into memory");
        out
    };
    let quick_xml = |request: &v0::CampaignRequest| {
        let mut out = Vec::with_capacity(capacity);
        v0::writer::write_request_campaign(&mut out, &auth, request, request.leads())
            .expect("writing into memory");
        out
    };
    assert_eq!(
        direct(&request),
        ours,
        "the writer alone writes the same bytes"
    );
    assert_eq!(quick_xml(&v0_request), ours);

    let mut group = c.benchmark_group("soap_envelope_writer_100");
    group.throughput(Throughput::Elements(LEADS as u64));
    group.bench_function("ours/direct", |b| b.iter(|| direct(black_box(&request))));
    group.bench_function("v0/quick_xml_writer", |b| {
        b.iter(|| quick_xml(black_box(&v0_request)))
    });
    group.finish();

    // Signing: timestamp and HMAC, ours and v0.
    let mut group = c.benchmark_group("soap_signing");
    group.bench_function("ours/w3c_timestamp", |b| {
        b.iter(|| w3c_timestamp(black_box(now), black_box(DEFAULT_TIMEZONE)))
    });
    group.bench_function("v0/w3c_timestamp", |b| {
        b.iter(|| v0::w3c_timestamp(black_box(now), black_box(DEFAULT_TIMEZONE)))
    });
    group.bench_function("ours/request_signature", |b| {
        b.iter(|| {
            request_signature(
                black_box(ENCRYPTION_KEY),
                black_box(TIMESTAMP),
                black_box(USER_ID),
            )
        })
    });
    group.bench_function("v0/request_signature", |b| {
        b.iter(|| {
            v0::request_signature(
                black_box(ENCRYPTION_KEY),
                black_box(TIMESTAMP),
                black_box(USER_ID),
            )
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// SOAP response
// ---------------------------------------------------------------------------

/// What Marketo (and the sandbox) answers on success.
const SOAP_SUCCESS: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Body>"#,
    "<ns1:successRequestCampaign><result><success>true</success></result></ns1:successRequestCampaign>",
    "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
);

/// A fault with its detail, as Marketo's docs show it (HTTP 500).
const SOAP_FAULT: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Body><SOAP-ENV:Fault>"#,
    "<faultcode>SOAP-ENV:Client</faultcode><faultstring>20014 - Authentication failed</faultstring>",
    "<detail><ns1:serviceException><name>mktServiceException</name>",
    "<message>Authentication failed (20014)</message><code>20014</code>",
    "</ns1:serviceException></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
);

/// The baseline: substring search, no validation at all (not the envelope,
/// not the element's place, not well-formedness). `Ok` when the body holds
/// `<success>true</success>`, else the first `<code>` as a number (0 if none).
fn naive_soap_read(body: &[u8]) -> Result<(), u32> {
    let text = std::str::from_utf8(body).map_err(|_| 0u32)?;
    if text.contains("<success>true</success>") {
        return Ok(());
    }
    let code = text
        .split_once("<code>")
        .and_then(|(_, rest)| rest.split_once("</code>"))
        .and_then(|(code, _)| code.trim().parse().ok())
        .unwrap_or(0);
    Err(code)
}

fn soap_response(c: &mut Criterion) {
    let success = SOAP_SUCCESS.as_bytes();
    let fault = SOAP_FAULT.as_bytes();
    read_request_campaign_response(200, success).expect("the success answer reads as success");
    let err = read_request_campaign_response(500, fault).expect_err("the fault reads as a fault");
    assert_eq!(err.soap_code().map(|c| c.code()), Some(20014));
    assert_eq!(naive_soap_read(success), Ok(()));
    assert_eq!(naive_soap_read(fault), Err(20014));

    let mut group = c.benchmark_group("soap_response");
    group.throughput(Throughput::Bytes(success.len() as u64));
    group.bench_function("success/ours", |b| {
        b.iter(|| read_request_campaign_response(black_box(200), black_box(success)))
    });
    group.bench_function("success/baseline_contains", |b| {
        b.iter(|| naive_soap_read(black_box(success)))
    });
    group.throughput(Throughput::Bytes(fault.len() as u64));
    group.bench_function("fault/ours", |b| {
        b.iter(|| read_request_campaign_response(black_box(500), black_box(fault)))
    });
    group.bench_function("fault/baseline_contains", |b| {
        b.iter(|| naive_soap_read(black_box(fault)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// REST trigger body
// ---------------------------------------------------------------------------

fn bench_tokens() -> Vec<ProgramToken> {
    [
        ("{{my.WebinarTitle}}", r#"Migrating off "SOAP""#),
        ("{{my.JoinLink}}", "https://example.com/join?id=42&src=mkto"),
        ("{{my.WebinarImage}}", "https://example.com/img/webinar.png"),
    ]
    .into_iter()
    .map(|(name, value)| ProgramToken::new(name, value).expect("valid bench token"))
    .collect()
}

/// The baseline's JSON string escaping: enough for the bench tokens
/// (backslash and quote; no control characters).
fn naive_json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A naive `format!` writer of the same trigger body.
fn naive_trigger_body(ids: &[u32], tokens: &[ProgramToken]) -> String {
    let leads: Vec<String> = ids.iter().map(|id| format!("{{\"id\":{id}}}")).collect();
    let tokens: Vec<String> = tokens
        .iter()
        .map(|t| {
            format!(
                "{{\"name\":\"{}\",\"value\":\"{}\"}}",
                naive_json_escape(t.name()),
                naive_json_escape(t.value())
            )
        })
        .collect();
    if tokens.is_empty() {
        format!("{{\"input\":{{\"leads\":[{}]}}}}", leads.join(","))
    } else {
        format!(
            "{{\"input\":{{\"leads\":[{}],\"tokens\":[{}]}}}}",
            leads.join(","),
            tokens.join(",")
        )
    }
}

fn rest_trigger_body_100(c: &mut Criterion) {
    let ids: Vec<u32> = (1_002_200..).take(LEADS).collect();
    let tokens = bench_tokens();
    let ours = trigger_body(&ids, &tokens).expect("the bench trigger body is valid");
    assert_eq!(
        ours,
        naive_trigger_body(&ids, &tokens),
        "the baseline must write exactly the client's bytes"
    );

    let mut group = c.benchmark_group("rest_trigger_body_100");
    group.throughput(Throughput::Elements(LEADS as u64));
    group.bench_function("ours/trigger_body", |b| {
        b.iter(|| {
            trigger_body(black_box(&ids), black_box(&tokens))
                .expect("the bench trigger body is valid")
        })
    });
    group.bench_function("baseline/naive_format", |b| {
        b.iter(|| naive_trigger_body(black_box(&ids), black_box(&tokens)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// REST response
// ---------------------------------------------------------------------------

/// A trigger's success answer.
const REST_SUCCESS: &str =
    r#"{"requestId":"e42b#14272d07d78","success":true,"result":[{"id":4496}]}"#;
/// A rate-limit refusal (HTTP 200, `success:false`).
const REST_ERROR: &str = r#"{"requestId":"e42b#14272d07d79","success":false,"errors":[{"code":"606","message":"Max rate limit '100' exceeded with in '20' secs"}]}"#;

fn rest_response(c: &mut Criterion) {
    let success = REST_SUCCESS.as_bytes();
    let error = REST_ERROR.as_bytes();
    let records = read_response(200, success).expect("the success answer reads as success");
    assert_eq!(records.len(), 1);
    let err = read_response(200, error).expect_err("the error answer reads as an error");
    assert_eq!(err.rest_code().map(|c| c.code()), Some(606));

    let mut group = c.benchmark_group("rest_response");
    group.throughput(Throughput::Bytes(success.len() as u64));
    group.bench_function("success/ours", |b| {
        b.iter(|| read_response(black_box(200), black_box(success)))
    });
    group.bench_function("success/baseline_serde_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(success)))
    });
    group.throughput(Throughput::Bytes(error.len() as u64));
    group.bench_function("error/ours", |b| {
        b.iter(|| read_response(black_box(200), black_box(error)))
    });
    group.bench_function("error/baseline_serde_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(error)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// REST lead look-up
// ---------------------------------------------------------------------------

/// A `leads.json` answer as Marketo (and the sandbox) writes it for
/// `fields=id[,email]`: the leads found, in id order.
#[cfg(feature = "bench-baseline")]
fn leads_answer(records: impl Iterator<Item = (u32, Option<String>)>) -> String {
    let records: Vec<String> = records
        .map(|(id, email)| match email {
            Some(email) => format!(r#"{{"id":{id},"email":"{email}"}}"#),
            None => format!(r#"{{"id":{id}}}"#),
        })
        .collect();
    format!(
        r#"{{"requestId":"e42b#14272d07d78","result":[{}],"success":true}}"#,
        records.join(",")
    )
}

/// What `RestClient` does around its `leads.json` calls for a request's
/// keys: plan the look-ups and write their URLs, read each answer, resolve
/// every key to its lead. Today's look-up against the one before it was
/// made fast (`serde_json::Value` records, `String` keys in SipHash maps),
/// kept behind feature `bench-baseline`; both must resolve alike.
fn rest_lead_lookup(c: &mut Criterion) {
    #[cfg(not(feature = "bench-baseline"))]
    {
        let _ = c;
        eprintln!("rest_lead_lookup needs --features bench-baseline");
    }
    #[cfg(feature = "bench-baseline")]
    {
        use marketo_campaign::rest::bench_lead_lookup;

        let endpoint_len = "https://123-ABC-456.mktorest.com".len();
        let mut cases: Vec<(String, Vec<LeadKey>, Vec<String>)> = Vec::new();
        for n in [100u32, 300] {
            let ids = 1_002_201..=1_002_200 + n;
            let leads = ids
                .clone()
                .map(|id| LeadKey::id(id).expect("valid bench id"))
                .collect();
            cases.push((
                format!("idnum_{n}"),
                leads,
                vec![leads_answer(ids.map(|id| (id, None)))],
            ));
        }
        // 100 emails, written with capitals as callers do; Marketo answers
        // in lower case.
        let emails: Vec<String> = (0..100)
            .map(|i| format!("First.Last{i}@Company.com"))
            .collect();
        cases.push((
            "email_100".into(),
            emails
                .iter()
                .map(|e| LeadKey::email(e.as_str()).expect("valid bench email"))
                .collect(),
            vec![leads_answer(emails.iter().enumerate().map(|(i, e)| {
                (1_002_201 + i as u32, Some(e.to_lowercase()))
            }))],
        ));

        let mut group = c.benchmark_group("rest_lead_lookup");
        for (name, leads, answers) in &cases {
            let answers: Vec<&[u8]> = answers.iter().map(|a| a.as_bytes()).collect();
            let ours = bench_lead_lookup(endpoint_len, leads, &answers, false).expect("reads");
            let old = bench_lead_lookup(endpoint_len, leads, &answers, true).expect("reads");
            assert_eq!(ours, old, "{name}: both look-ups resolve alike");
            group.throughput(Throughput::Elements(leads.len() as u64));
            group.bench_function(format!("{name}/ours"), |b| {
                b.iter(|| bench_lead_lookup(endpoint_len, black_box(leads), &answers, false))
            });
            group.bench_function(format!("{name}/baseline_value_and_strings"), |b| {
                b.iter(|| bench_lead_lookup(endpoint_len, black_box(leads), &answers, true))
            });
        }
        group.finish();
    }
}

criterion_group!(
    benches,
    soap_envelope_from_raw_100,
    soap_envelope_100,
    soap_response,
    rest_trigger_body_100,
    rest_response,
    rest_lead_lookup
);
criterion_main!(benches);
