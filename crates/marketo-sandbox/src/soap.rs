//! The sandbox's SOAP endpoint: checks what Marketo checks, runs, journals.
//!
//! Operations: `requestCampaign` and `scheduleCampaign`. After
//! authentication every call passes the SOAP rate limit (fault 20023) and
//! concurrency limit (fault 20024).

use std::net::SocketAddr;

use crate::http::Head;
use crate::journal::{JournalEntry, JournalToken};
use crate::limits::Refused;
use crate::State;
use marketo_campaign::soap::{
    read_envelope, Fault, Operation, ReceivedToken, RequestCampaign, ScheduleCampaign,
    SUCCESS_REQUEST_CAMPAIGN, SUCCESS_SCHEDULE_CAMPAIGN,
};
use marketo_campaign::SoapCode;

/// An HTTP answer: status and XML body.
pub(crate) type Answer = (u16, String);

/// The content type of every SOAP answer.
pub(crate) const XML: &str = marketo_campaign::soap::CONTENT_TYPE;

/// A SOAP fault as Marketo sends it (HTTP 500).
pub(crate) fn fault(code: SoapCode, text: &str) -> Answer {
    (Fault::HTTP_STATUS, Fault::new(code, text).to_xml())
}

/// The success answer of `operation` (`successRequestCampaign` or
/// `successScheduleCampaign`).
pub(crate) fn success(operation: &str) -> Answer {
    let body = if operation == "successScheduleCampaign" {
        SUCCESS_SCHEDULE_CAMPAIGN
    } else {
        SUCCESS_REQUEST_CAMPAIGN
    };
    (200, body.to_owned())
}

/// Whether `head` asks for the WSDL: `GET` (or `HEAD`) of the SOAP
/// endpoint with the query `?WSDL`, in any case (also `?wsdl=…`,
/// `?wsdl&…`), as Marketo's Java sample and WSDL-driven clients ask.
pub(crate) fn asks_for_wsdl(head: &Head) -> bool {
    let Some((path, query)) = head.target.split_once('?') else {
        return false;
    };
    matches!(head.method.as_str(), "GET" | "HEAD")
        && path == super::SOAP_PATH
        && query
            .split(['&', '='])
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case("wsdl"))
}

/// The WSDL, its `soap:address` naming this endpoint: at the `Host` the
/// client used when it is a plain host (and port), else at `bound` (the
/// SOAP port's address).
pub(crate) fn wsdl(host: Option<&str>, bound: Option<SocketAddr>) -> String {
    let plain = |host: &&str| {
        !host.is_empty()
            && host.len() <= 255
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
    };
    let authority = match (host.filter(plain), bound) {
        (Some(host), _) => host.to_owned(),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => "127.0.0.1".to_owned(),
    };
    marketo_campaign::soap::wsdl(&format!("http://{authority}{}", super::SOAP_PATH))
}

/// Handles one POST to the SOAP endpoint.
pub(crate) fn handle(state: &State, soap_action: Option<&str>, body: &[u8]) -> Answer {
    match process(state, soap_action, body) {
        Ok(answer) => answer,
        Err(fault) => {
            log::debug!("sandbox SOAP fault {fault}");
            (Fault::HTTP_STATUS, fault.to_xml())
        }
    }
}

/// Reads the envelope (any problem with the XML or the envelope: 20012),
/// names the operation, checks the `SOAPAction`, authenticates (20014,
/// 20016), admits the call (20023, 20024), and only then looks at the
/// parameters.
fn process(state: &State, soap_action: Option<&str>, body: &[u8]) -> Result<Answer, Fault> {
    let envelope = read_envelope(body)?;
    match envelope.operation_name() {
        "requestCampaign" | "scheduleCampaign" => {}
        other => return Err(Fault::unsupported_operation(other)),
    }
    envelope.check_soap_action(soap_action)?;
    state.soap_auth.verify(envelope.auth())?;
    let _in_flight = state.soap_limits.admit().map_err(|refused| match refused {
        Refused::Rate => Fault::new(SoapCode::RateLimited, "Rate limit exceeded"),
        Refused::Concurrency => Fault::new(
            SoapCode::ConcurrencyLimited,
            "Concurrent request limit exceeded",
        ),
    })?;
    state.pause();
    match envelope.into_operation()? {
        Operation::RequestCampaign(call) => request_campaign(state, &call),
        Operation::ScheduleCampaign(call) => schedule_campaign(state, &call),
        _ => Err(Fault::unsupported_operation("this")),
    }
}

fn campaign_not_found() -> Fault {
    Fault::new(SoapCode::CampaignNotFound, "Campaign not found")
}

fn request_campaign(state: &State, call: &RequestCampaign<'_>) -> Result<Answer, Fault> {
    let campaign = match (
        call.campaign_id(),
        call.program_name(),
        call.campaign_name(),
    ) {
        (Some(id), _, _) => state.data.campaigns.iter().find(|c| c.id == id),
        (None, Some(program), Some(name)) => state
            .data
            .campaigns
            .iter()
            .find(|c| c.program == program && c.name == name),
        _ => None,
    };
    let campaign = campaign
        .filter(|c| c.requestable)
        .ok_or_else(campaign_not_found)?;
    let keys = call.lead_keys();
    if keys.is_empty() {
        return Err(Fault::new(SoapCode::LeadKeyRequired, "Lead key required"));
    }
    // Marketo reads the first 100 keys and silently ignores the rest (the
    // reader has counted them).
    let mut lead_ids = Vec::with_capacity(keys.len());
    for key in keys {
        let lead_id = state
            .find_lead(key.key_type(), key.value())
            .ok_or_else(|| {
                Fault::new(
                    SoapCode::LeadNotFound,
                    format!("Lead not found: {}:{}", key.key_type(), key.value()),
                )
            })?;
        if !lead_ids.contains(&lead_id) {
            lead_ids.push(lead_id);
        }
    }
    state.record_run(JournalEntry {
        api: "soap".into(),
        campaign_id: campaign.id,
        lead_ids,
        tokens: journal_tokens(call.tokens()),
        ignored_keys: call.ignored_keys(),
        run_at: None,
        ajo: None,
    });
    Ok(success("successRequestCampaign"))
}

fn journal_tokens(tokens: &[ReceivedToken<'_>]) -> Vec<JournalToken> {
    tokens
        .iter()
        .map(|t| JournalToken {
            name: t.name().to_owned(),
            value: t.value().to_owned(),
        })
        .collect()
}

fn schedule_campaign(state: &State, call: &ScheduleCampaign<'_>) -> Result<Answer, Fault> {
    let campaign = state
        .data
        .campaigns
        .iter()
        .find(|c| c.program == call.program_name() && c.name == call.campaign_name())
        .ok_or_else(campaign_not_found)?;
    if campaign.requestable {
        return Err(Fault::new(
            SoapCode::CampaignNotFound,
            format!("Campaign '{}' is not a batch campaign", campaign.name),
        ));
    }
    state.journal.record(JournalEntry {
        api: "soap".into(),
        campaign_id: campaign.id,
        lead_ids: Vec::new(),
        tokens: journal_tokens(call.tokens()),
        ignored_keys: 0,
        run_at: Some(call.run_at().unwrap_or_default().to_owned()),
        ajo: None,
    });
    Ok(success("successScheduleCampaign"))
}

/// Property tests: every field of a request either crosses the envelope
/// writer and the codec's reader unchanged (and reads back into an equal
/// request) or is refused before sending; the reader and the SOAP endpoint
/// behind it survive arbitrary bodies.
#[cfg(test)]
mod proptests {
    use std::time::{Duration, Instant};

    use chrono::{DateTime, Utc};
    use proptest::collection::vec;
    use proptest::prelude::*;

    use crate::{soap, SandboxConfig, State};
    use marketo_campaign::soap::SOAP_ACTION_REQUEST_CAMPAIGN;
    use marketo_campaign::soap::{read_envelope, Operation, RequestCampaign};
    use marketo_campaign::FixedClock;
    use marketo_campaign::{CampaignRequest, CampaignTarget, LeadKey, LeadKeyType, ProgramToken};
    use marketo_campaign::{Delivery, Error};
    use test_support::{
        edits, entity_bomb, hostile, mutate, name_ok, token_name, token_shape_ok, xml_text,
        XML_SPLICES,
    };

    /// The model: what a lead key value must be to be sent.
    fn lead_ok(key_type: LeadKeyType, value: &str) -> bool {
        // Canonical ids only: digits, no sign, no leading zero.
        let id_ok = || {
            !value.is_empty()
                && !value.starts_with('0')
                && value.bytes().all(|b| b.is_ascii_digit())
                && value
                    .parse::<u64>()
                    .is_ok_and(|n| n >= 1 && n <= i32::MAX as u64)
        };
        // Marketo's field limits (see `LeadKeyType::max_value_chars`).
        let max = match key_type {
            LeadKeyType::Idnum => 10,
            LeadKeyType::Email | LeadKeyType::LeadOwnerEmail => 255,
            LeadKeyType::Cookie => 4096,
            _ => 18,
        };
        name_ok(value)
            && value.chars().count() <= max
            && (key_type != LeadKeyType::Idnum || id_ok())
    }

    fn key_type() -> impl Strategy<Value = LeadKeyType> {
        prop::sample::select(LeadKeyType::ALL.to_vec())
    }

    fn lead_value(key_type: LeadKeyType) -> BoxedStrategy<String> {
        if key_type == LeadKeyType::Idnum {
            prop_oneof![
                3 => (1u32..=i32::MAX as u32).prop_map(|n| n.to_string()),
                1 => "[+0-9]{1,12}",
                1 => hostile(),
            ]
            .boxed()
        } else {
            hostile().boxed()
        }
    }

    #[derive(Debug, Clone)]
    struct Case {
        campaign_id: Option<u32>,
        campaign: String,
        program: String,
        tokens: Vec<(String, String)>,
        leads: Vec<(LeadKeyType, String)>,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::option::weighted(0.3, 1u32..=i32::MAX as u32),
            hostile(),
            hostile(),
            vec((token_name(), hostile()), 0..4),
            vec(key_type().prop_flat_map(|t| (Just(t), lead_value(t))), 1..6),
        )
            .prop_map(|(campaign_id, campaign, program, tokens, leads)| Case {
                campaign_id,
                campaign,
                program,
                tokens,
                leads,
            })
    }

    /// What the reader found in a `paramsRequestCampaign`.
    #[derive(Debug, PartialEq, Eq, Default)]
    struct Decoded {
        campaign_id: Option<String>,
        leads: Vec<(String, String)>,
        program: Option<String>,
        campaign: Option<String>,
        tokens: Vec<(String, String)>,
    }

    /// What the codec read from a `paramsRequestCampaign`.
    fn decode(call: &RequestCampaign<'_>) -> Decoded {
        Decoded {
            campaign_id: call.campaign_id().map(|id| id.to_string()),
            leads: call
                .lead_keys()
                .iter()
                .map(|k| (k.key_type().as_str().to_owned(), k.value().to_owned()))
                .collect(),
            program: call.program_name().map(str::to_owned),
            campaign: call.campaign_name().map(str::to_owned),
            tokens: call
                .tokens()
                .iter()
                .map(|t| (t.name().to_owned(), t.value().to_owned()))
                .collect(),
        }
    }

    /// Reads `envelope` as the codec does, into a `requestCampaign`.
    fn read(envelope: &[u8]) -> Result<RequestCampaign<'_>, String> {
        match read_envelope(envelope).map(|e| e.into_operation()) {
            Ok(Ok(Operation::RequestCampaign(call))) => Ok(call),
            Ok(Ok(other)) => Err(format!("not a requestCampaign: {other:?}")),
            Ok(Err(fault)) | Err(fault) => Err(fault.to_string()),
        }
    }

    /// `inner` inside a SOAP Header.
    fn in_envelope(inner: &str) -> String {
        format!(
            r#"<e:Envelope xmlns:e="{}"><e:Header>{inner}</e:Header></e:Envelope>"#,
            marketo_campaign::soap::SOAP_ENV_NS
        )
    }

    fn parse_error(body: &[u8]) -> String {
        read_envelope(body).expect_err("refused").to_string()
    }

    /// The exact envelope a [`SoapClient`](marketo_campaign::SoapClient) of
    /// `user_id` and `key` posts for `request` at `time`.
    fn envelope_at(
        request: &CampaignRequest,
        user_id: &str,
        key: &str,
        time: FixedClock,
    ) -> Vec<u8> {
        marketo_campaign::SoapClient::builder(
            "https://123-ABC-456.mktoapi.com/soap/mktows/2_9",
            user_id,
            key,
        )
        .clock(time)
        .build()
        .and_then(|client| client.envelope(request, request.leads()))
        .expect("the client writes the envelope")
    }

    /// The envelope of `request`, signed with Marketo's published vector
    /// (signature `ffbff4d4bef354807481e66dc7540f7890523a87`).
    fn envelope(request: &CampaignRequest) -> Vec<u8> {
        let time = FixedClock::parse("2010-04-09T14:04:54-07:00").expect("a W3C time");
        envelope_at(
            request,
            "bigcorp1_461839624B16E06BA2D663",
            "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66",
            time,
        )
    }

    fn assert_refusal(err: &Error, what: &str) -> Result<(), TestCaseError> {
        prop_assert!(
            matches!(err, Error::InvalidInput { .. }),
            "{what}: not InvalidInput: {err:?}"
        );
        prop_assert_eq!(err.delivery(), Delivery::NotSent);
        prop_assert!(err.to_string().contains("nothing was sent"), "{}", err);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Any value in any field either comes out of the sandbox's reader
        /// exactly as given, or is refused with `InvalidInput` first.
        #[test]
        fn fields_round_trip_through_the_envelope_or_are_refused(case in case()) {
            let mut leads = Vec::new();
            for (key_type, value) in &case.leads {
                match LeadKey::new(*key_type, value.as_str()) {
                    Ok(key) => {
                        prop_assert!(lead_ok(*key_type, value), "accepted {key_type}:{value:?}");
                        leads.push(key);
                    }
                    Err(err) => {
                        prop_assert!(!lead_ok(*key_type, value), "refused {key_type}:{value:?}: {err}");
                        assert_refusal(&err, "lead key")?;
                    }
                }
            }
            let mut tokens = Vec::new();
            let mut names_outside_xml = false;
            for (name, value) in &case.tokens {
                let expected = token_shape_ok(name) && xml_text(value);
                match ProgramToken::new(name.as_str(), value.as_str()) {
                    Ok(token) => {
                        // KNOWN BUG (see `token_names_must_be_xml_text`): a
                        // name holding U+FFFE or U+FFFF is accepted.
                        prop_assert!(expected, "accepted token {name:?}={value:?}");
                        names_outside_xml |= !xml_text(name);
                        tokens.push(token);
                    }
                    Err(err) => {
                        prop_assert!(
                            !(expected && xml_text(name)),
                            "refused token {name:?}={value:?}: {err}"
                        );
                        assert_refusal(&err, "token")?;
                    }
                }
            }
            let target = match case.campaign_id {
                Some(id) => CampaignTarget::id(id),
                None => CampaignTarget::named(case.campaign.as_str(), case.program.as_str(), tokens.clone()),
            };
            let duplicate = tokens
                .iter()
                .enumerate()
                .any(|(i, t)| tokens[..i].iter().any(|u| u.name() == t.name()));
            let expected = !leads.is_empty()
                && (case.campaign_id.is_some()
                    || (name_ok(&case.campaign) && name_ok(&case.program) && !duplicate));
            let request = match CampaignRequest::new(target, leads.clone()) {
                Ok(request) => {
                    prop_assert!(expected, "accepted {case:?}");
                    request
                }
                Err(err) => {
                    prop_assert!(!expected, "refused {case:?}: {err}");
                    return assert_refusal(&err, "request");
                }
            };
            let out = envelope(&request);
            let text = String::from_utf8(out).expect("the envelope is UTF-8");
            if !names_outside_xml {
                prop_assert!(xml_text(&text), "the envelope holds a character XML 1.0 cannot carry");
            }
            prop_assert!(!text.contains("<!DOCTYPE") && !text.contains("<![CDATA["));
            let call = read(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
            let decoded = decode(&call);
            let expected = Decoded {
                campaign_id: case.campaign_id.map(|id| id.to_string()),
                leads: leads
                    .iter()
                    .map(|k| (k.key_type().as_str().to_owned(), k.value().to_owned()))
                    .collect(),
                program: case.campaign_id.is_none().then(|| case.program.clone()),
                campaign: case.campaign_id.is_none().then(|| case.campaign.clone()),
                tokens: if case.campaign_id.is_none() {
                    tokens.iter().map(|t| (t.name().to_owned(), t.value().to_owned())).collect()
                } else {
                    Vec::new()
                },
            };
            prop_assert_eq!(decoded, expected);
            // And it reads back into the very request that was written.
            prop_assert_eq!(call.to_request().map_err(|f| TestCaseError::fail(f.to_string()))?, request);
        }
    }

    /// Was a bug: `ProgramToken::new` checks a token's value with
    /// `check_xml_text` but not its name, so U+FFFE and U+FFFF (not control
    /// characters, not XML 1.0 `Char`s) pass and are written into the
    /// envelope, which is then not well-formed XML. Fix in request.rs: also
    /// run `check_xml_text(&name)`.
    #[test]
    fn token_names_must_be_xml_text() {
        for name in ["{{my.a\u{FFFE}}}", "{{my.\u{FFFF}}}"] {
            let err = ProgramToken::new(name, "v").expect_err(name);
            assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
        }
    }

    #[test]
    fn injection_attempts_stay_text() {
        let value = "x</keyValue></leadKey><leadKey><keyType>IDNUM</keyType><keyValue>1";
        let request = CampaignRequest::new(
            CampaignTarget::named(
                "C]]><!DOCTYPE x [<!ENTITY e \"boom\">]>&e;",
                "P</programName><campaignName>Other",
                [ProgramToken::new(
                    "{{my.T}}",
                    "</value></attrib><attrib><name>{{my.X}}</name><value>&amp;",
                )
                .unwrap()],
            ),
            [LeadKey::new(LeadKeyType::Cookie, value).unwrap()],
        )
        .unwrap();
        let out = envelope(&request);
        let decoded = decode(&read(&out).unwrap());
        assert_eq!(decoded.leads, [("COOKIE".to_owned(), value.to_owned())]);
        assert_eq!(
            decoded.tokens,
            [(
                "{{my.T}}".to_owned(),
                "</value></attrib><attrib><name>{{my.X}}</name><value>&amp;".to_owned()
            )]
        );
        assert_eq!(
            decoded.campaign.as_deref(),
            Some("C]]><!DOCTYPE x [<!ENTITY e \"boom\">]>&e;")
        );
        assert_eq!(
            decoded.program.as_deref(),
            Some("P</programName><campaignName>Other")
        );
    }

    #[test]
    fn doctype_and_entity_bombs_are_refused_quickly() {
        // A billion-laughs document of about 1 MB.
        let bomb = entity_bomb(1 << 20, "<Envelope>&lol9;</Envelope>").into_bytes();
        assert!(bomb.len() > 1 << 20);
        let started = Instant::now();
        let err = parse_error(&bomb);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(err.contains("DOCTYPE"), "{err}");
        assert!(err.starts_with("20012 - "), "{err}");
        // An undeclared entity without a DOCTYPE is an error, not expanded.
        let err = parse_error(in_envelope("<a>&lol9;</a>").as_bytes());
        assert!(err.contains("undeclared entity &lol9;"), "{err}");
    }

    #[test]
    fn deep_and_wide_documents_are_refused_without_overflow() {
        let depth = 100_000;
        let deep = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let started = Instant::now();
        assert!(parse_error(in_envelope(&deep).as_bytes()).contains("too deep"));
        let unclosed = "<a>".repeat(depth);
        assert!(parse_error(in_envelope(&unclosed).as_bytes()).contains("too deep"));
        let empties = format!("<a>{}</a>", "<b/>".repeat(100_000));
        assert!(parse_error(in_envelope(&empties).as_bytes()).contains("too large"));
        let huge = format!("<a>{}</a>", "x".repeat(5 << 20));
        assert!(parse_error(in_envelope(&huge).as_bytes()).contains("larger than"));
        // Not even an Envelope: refused at its first tag.
        assert!(parse_error(deep.as_bytes()).contains("not a SOAP 1.1 Envelope"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // The SOAP endpoint answers a fault.
        let state = state();
        let (status, body) =
            soap::handle(&state, Some(SOAP_ACTION_REQUEST_CAMPAIGN), deep.as_bytes());
        assert_eq!(status, 500);
        assert!(body.contains("20012"), "{body}");
    }

    // --- At scale: arbitrary and mutated bodies through the reader and the
    // SOAP endpoint's rules.

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn state() -> State {
        State::new(
            SandboxConfig::new()
                .clock(FixedClock(now()))
                .rate_limit(u32::MAX, Duration::from_millis(1)),
        )
    }

    /// Valid, signed envelopes of the default sandbox data.
    fn valid_envelopes() -> Vec<Vec<u8>> {
        let data = crate::SandboxData::default();
        let lead = &data.leads[0];
        let requests = [
            CampaignRequest::new(
                CampaignTarget::id(4496),
                [
                    LeadKey::email("lead@company.com").unwrap(),
                    LeadKey::id(1002201).unwrap(),
                ],
            )
            .unwrap(),
            CampaignRequest::new(
                CampaignTarget::named(
                    "Send Webinar Reminder",
                    "Webinars",
                    [ProgramToken::new("{{my.WebinarTitle}}", "Rust & <SOAP>\r\n").unwrap()],
                ),
                [LeadKey::new(LeadKeyType::Cookie, lead.cookie.clone().unwrap()).unwrap()],
            )
            .unwrap(),
        ];
        requests
            .iter()
            .map(|request| {
                envelope_at(
                    request,
                    &data.soap_user_id,
                    &data.soap_encryption_key,
                    FixedClock(now()),
                )
            })
            .collect()
    }

    #[test]
    fn valid_envelopes_run_in_the_sandbox() {
        let state = state();
        for envelope in valid_envelopes() {
            let (status, body) =
                soap::handle(&state, Some(SOAP_ACTION_REQUEST_CAMPAIGN), &envelope);
            assert_eq!(status, 200, "{body}");
        }
        assert_eq!(state.journal.entries().len(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bodies_get_a_fault_not_a_panic(body in vec(any::<u8>(), 0..512)) {
            let _ = read_envelope(&body);
            let state = state();
            let (status, _) = soap::handle(&state, Some(SOAP_ACTION_REQUEST_CAMPAIGN), &body);
            prop_assert_eq!(status, 500);
        }

        #[test]
        fn mutated_envelopes_run_or_get_a_fault(which in 0usize..2, edits in edits()) {
            let mut doc = valid_envelopes().swap_remove(which);
            mutate(&mut doc, &edits, XML_SPLICES, 64);
            let _ = read_envelope(&doc);
            let state = state();
            let (status, body) = soap::handle(&state, Some(SOAP_ACTION_REQUEST_CAMPAIGN), &doc);
            prop_assert!(status == 200 || status == 500, "{status}");
            // A run is journaled exactly when the answer says so.
            prop_assert_eq!(state.journal.entries().len(), usize::from(status == 200), "{}", body);
        }
    }
}
