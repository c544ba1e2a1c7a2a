//! Wire formats without a network: writing and reading SOAP and REST
//! messages, each next to a naive baseline in the same criterion group.
//!
//! Budgets (DESIGN.md, "Budgets"): signing + writing a 100-lead envelope in a
//! few microseconds (the issue's target: under 10 µs); parsing an answer in
//! less.
//!
//! Run with `cargo bench --bench wire`.

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
    CampaignRequest, CampaignTarget, Clock, FixedClock, LeadKey, ProgramToken, RetryPolicy,
    SoapClient,
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

criterion_group!(
    benches,
    soap_envelope_100,
    soap_response,
    rest_trigger_body_100,
    rest_response
);
criterion_main!(benches);
