//! The real SoapClient against the sandbox over loopback: journal entries,
//! faults, chunking, hostile values, and the exact bytes on the wire.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Clock, Delivery, Error, FixedClock,
    LeadKey, LeadKeyType, ProgramToken, SoapClient, SoapCode, SystemClock,
};
use marketo_sandbox::{JournalToken, Sandbox, SandboxConfig, SandboxData, SandboxLead};

fn by_id(id: u32, leads: &[&str]) -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::id(id),
        leads.iter().map(|l| l.parse::<LeadKey>().unwrap()),
    )
    .unwrap()
}

#[test]
fn request_by_id_runs_once_and_is_journaled() {
    let (sandbox, client) = crate::started(Sandbox::soap_client);
    let outcome = client
        .request_campaign(&by_id(4496, &["EMAIL:lead@company.com", "IDNUM:1002201"]))
        .unwrap();
    assert!(outcome.is_complete());
    assert_eq!(outcome.chunks().len(), 1);
    assert_eq!(outcome.chunks()[0].backend(), "soap");
    let run = crate::one_run(&sandbox, "soap", 4496, &[1002200, 1002201]);
    assert!(run.tokens.is_empty());
}

#[test]
fn request_by_name_with_tokens_and_every_key_type() {
    let (sandbox, client) = crate::started(Sandbox::soap_client);
    let lead = &SandboxData::default().leads[0];
    let keys = [
        (LeadKeyType::Idnum, lead.id.to_string()),
        (LeadKeyType::Cookie, lead.cookie.clone().unwrap()),
        (LeadKeyType::Email, "LEAD@company.com".to_owned()),
        (
            LeadKeyType::SfdcAccountId,
            lead.sfdc_account_id.clone().unwrap(),
        ),
        (
            LeadKeyType::SfdcContactId,
            lead.sfdc_contact_id.clone().unwrap(),
        ),
        (LeadKeyType::SfdcLeadId, lead.sfdc_lead_id.clone().unwrap()),
        (
            LeadKeyType::SfdcOpptyId,
            lead.sfdc_oppty_id.clone().unwrap(),
        ),
    ];
    let tokens = [
        ProgramToken::new("{{my.WebinarTitle}}", "Rust & SOAP <live>").unwrap(),
        ProgramToken::new("{{my.JoinLink}}", "https://x.example/?a=1&b=2").unwrap(),
    ];
    let request = CampaignRequest::new(
        CampaignTarget::named("Send Webinar Reminder", "Webinars", tokens),
        keys.iter()
            .map(|(t, v)| LeadKey::new(*t, v.as_str()).unwrap()),
    )
    .unwrap();
    client.request_campaign(&request).unwrap();
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].campaign_id, 1234);
    // Every key named the same lead: it runs once.
    assert_eq!(journal[0].lead_ids, [1002200]);
    assert_eq!(
        journal[0].tokens,
        [
            JournalToken {
                name: "{{my.WebinarTitle}}".into(),
                value: "Rust & SOAP <live>".into()
            },
            JournalToken {
                name: "{{my.JoinLink}}".into(),
                value: "https://x.example/?a=1&b=2".into()
            },
        ]
    );
}

/// Requests campaign 4496 for lead@company.com with `client`: refused
/// with `code`, nothing ran. The error.
fn refused(sandbox: &Sandbox, client: &SoapClient, code: SoapCode) -> Error {
    let err = client
        .request_campaign(&by_id(4496, &["EMAIL:lead@company.com"]))
        .unwrap_err();
    assert_eq!(err.soap_code(), Some(code));
    assert_eq!(err.delivery(), Delivery::Refused);
    assert!(sandbox.journal().is_empty());
    err
}

#[test]
fn wrong_key_is_fault_20014_and_nothing_runs() {
    let sandbox = Sandbox::start().unwrap();
    let client = SoapClient::builder(sandbox.soap_endpoint(), sandbox.soap_user_id(), "wrong-key")
        .build()
        .unwrap();
    let err = refused(&sandbox, &client, SoapCode::AuthenticationFailed);
    assert!(!err.to_string().contains("wrong-key"));
}

#[test]
fn stale_timestamp_is_fault_20016_and_nothing_runs() {
    let sandbox = Sandbox::start().unwrap();
    let client = sandbox
        .soap_client_builder()
        .clock(FixedClock(
            Utc.with_ymd_and_hms(2010, 4, 9, 21, 4, 54).unwrap(),
        ))
        .build()
        .unwrap();
    refused(&sandbox, &client, SoapCode::RequestExpired);
}

#[test]
fn sandbox_clock_decides_staleness() {
    // A sandbox living in 2010 accepts the published vector's timestamp.
    let then = Utc.with_ymd_and_hms(2010, 4, 9, 21, 4, 54).unwrap();
    let sandbox = Sandbox::start_with(SandboxConfig::new().clock(FixedClock(then))).unwrap();
    let client = sandbox
        .soap_client_builder()
        .clock(FixedClock(then))
        .build()
        .unwrap();
    client
        .request_campaign(&by_id(4496, &["EMAIL:lead@company.com"]))
        .unwrap();
    assert_eq!(sandbox.journal().len(), 1);
}

#[test]
fn unknown_and_batch_campaigns_are_fault_20113() {
    let (sandbox, client) = crate::started(Sandbox::soap_client);
    for request in [
        by_id(999_999, &["EMAIL:lead@company.com"]),
        by_id(5000, &["EMAIL:lead@company.com"]),
        CampaignRequest::new(
            CampaignTarget::named("Request Campaign Demo", "Webinars", []),
            [LeadKey::id(1002200).unwrap()],
        )
        .unwrap(),
    ] {
        let err = client.request_campaign(&request).unwrap_err();
        assert_eq!(err.soap_code(), Some(SoapCode::CampaignNotFound), "{err}");
        assert_eq!(err.delivery(), Delivery::Refused);
    }
    assert!(sandbox.journal().is_empty());
}

#[test]
fn unknown_lead_is_fault_20103_not_a_silent_drop() {
    let (sandbox, client) = crate::started(Sandbox::soap_client);
    let err = client
        .request_campaign(&by_id(
            4496,
            &["EMAIL:lead@company.com", "EMAIL:nobody@company.com"],
        ))
        .unwrap_err();
    assert_eq!(err.soap_code(), Some(SoapCode::LeadNotFound));
    assert!(err.to_string().contains("nobody@company.com"));
    assert!(sandbox.journal().is_empty());
}

/// Posts a hand-written envelope, signed now, to the sandbox.
fn post_raw(sandbox: &Sandbox, params: &str) -> (u16, String) {
    let timestamp =
        marketo_campaign::soap::w3c_timestamp(SystemClock.now(), chrono_tz::America::Los_Angeles);
    let signature = marketo_campaign::soap::request_signature(
        sandbox.soap_encryption_key(),
        &timestamp,
        sandbox.soap_user_id(),
    );
    let envelope = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Header><ns1:AuthenticationHeader><mktowsUserId>{}</mktowsUserId><requestSignature>{signature}</requestSignature><requestTimestamp>{timestamp}</requestTimestamp></ns1:AuthenticationHeader></SOAP-ENV:Header><SOAP-ENV:Body><ns1:paramsRequestCampaign>{params}</ns1:paramsRequestCampaign></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
        sandbox.soap_user_id()
    );
    crate::post_request_campaign(&sandbox.soap_endpoint(), envelope)
}

const ONE_LEAD: &str =
    "<leadList><leadKey><keyType>IDNUM</keyType><keyValue>1002200</keyValue></leadKey></leadList>";

#[test]
fn both_target_kinds_at_once_is_fault_20110() {
    // The crate cannot build this request (CampaignTarget is one or the
    // other), so it is written by hand to show the sandbox enforces the rule.
    let sandbox = Sandbox::start().unwrap();
    let mixes = [
        format!("<source>MKTOWS</source><campaignId>4496</campaignId>{ONE_LEAD}<programName>Demo Program</programName><campaignName>Request Campaign Demo</campaignName><programTokenList/>"),
        format!("<source>MKTOWS</source><campaignId>4496</campaignId>{ONE_LEAD}<programTokenList/>"),
        format!("<source>MKTOWS</source>{ONE_LEAD}<programName>Demo Program</programName><campaignName>Request Campaign Demo</campaignName>"),
        format!("<source>MKTOWS</source>{ONE_LEAD}"),
    ];
    for params in mixes {
        let (status, body) = post_raw(&sandbox, &params);
        assert_eq!(status, 500, "{body}");
        assert!(body.contains("<code>20110</code>"), "{body}");
    }
    // The legal sets pass.
    let (status, body) = post_raw(
        &sandbox,
        &format!("<source>MKTOWS</source><campaignId>4496</campaignId>{ONE_LEAD}"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(sandbox.journal().len(), 1);
}

#[test]
fn sandbox_ignores_keys_past_100_like_marketo() {
    let sandbox = Sandbox::start_with(
        SandboxConfig::new().data(SandboxData::default().with_generated_leads(1, 101)),
    )
    .unwrap();
    let keys: String = (1..=101)
        .map(|id| format!("<leadKey><keyType>IDNUM</keyType><keyValue>{id}</keyValue></leadKey>"))
        .collect();
    let (status, body) = post_raw(
        &sandbox,
        &format!("<source>MKTOWS</source><campaignId>4496</campaignId><leadList>{keys}</leadList>"),
    );
    assert_eq!(status, 200, "{body}");
    let journal = sandbox.journal();
    assert_eq!(journal[0].lead_ids.len(), 100);
    assert_eq!(journal[0].ignored_keys, 1);
    assert!(!journal[0].lead_ids.contains(&101));
}

// Chunking at 100 (no lead ignored past Marketo's limit) and part-way
// failures (accepted, failed, not attempted, consistent with the journal)
// are checked for SoapClient, RestClient and Fallback alike by the
// conformance suite: tests/conformance.rs.

#[test]
fn hostile_values_round_trip_through_the_wire() {
    let nasty =
        "</keyValue><keyValue>x</keyValue> ]]> <!ENTITY e \"x\"> &amp; <&>\"' é中文😀\r\n\ttab";
    let mut data = SandboxData::default();
    data.leads.push(SandboxLead {
        id: 77,
        cookie: Some(nasty.to_owned()),
        sfdc_lead_id: Some("a&b<c>d\"e'f".to_owned()),
        ..SandboxLead::default()
    });
    let sandbox = Sandbox::start_with(SandboxConfig::new().data(data)).unwrap();
    let client = sandbox.soap_client().unwrap();
    let request = CampaignRequest::new(
        CampaignTarget::named(
            "Send Webinar Reminder",
            "Webinars",
            [ProgramToken::new("{{my.WebinarTitle}}", nasty).unwrap()],
        ),
        [
            LeadKey::new(LeadKeyType::Cookie, nasty).unwrap(),
            LeadKey::new(LeadKeyType::SfdcLeadId, "a&b<c>d\"e'f").unwrap(),
        ],
    )
    .unwrap();
    client.request_campaign(&request).unwrap();
    let journal = sandbox.journal();
    assert_eq!(journal[0].lead_ids, [77]);
    assert_eq!(journal[0].tokens[0].value, nasty);
}

#[test]
fn values_xml_cannot_carry_are_refused_before_sending() {
    for bad in ["a\u{0}b", "bell\u{7}", "\u{FFFF}"] {
        let err = LeadKey::email(bad).unwrap_err();
        assert_eq!(err.delivery(), Delivery::NotSent);
        assert!(matches!(err, Error::InvalidInput { .. }));
        assert!(ProgramToken::new("{{my.X}}", bad).is_err());
    }
}

#[test]
fn journal_is_served_as_json() {
    let sandbox = Sandbox::start().unwrap();
    sandbox
        .soap_client()
        .unwrap()
        .request_campaign(&by_id(4496, &["EMAIL:anotherlead@company.com"]))
        .unwrap();
    let mut response = ureq::get(&format!("{}/sandbox/journal", sandbox.base_url()))
        .call()
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"api": "soap", "campaign_id": 4496, "lead_ids": [1002201], "tokens": [], "ignored_keys": 0}])
    );
}

#[test]
fn exact_bytes_on_the_wire() {
    // A bare server that records what it receives and answers success.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    let handle = std::thread::spawn(move || {
        let mut request = server
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .unwrap();
        let mut body = String::new();
        request.as_reader().read_to_string(&mut body).unwrap();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.to_string().to_ascii_lowercase(),
                    h.value.to_string(),
                )
            })
            .collect();
        let ok = r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Body><ns1:successRequestCampaign><result><success>true</success></result></ns1:successRequestCampaign></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
        request
            .respond(tiny_http::Response::from_string(ok))
            .unwrap();
        (headers, body)
    });
    let client = SoapClient::builder(
        format!("http://{addr}/soap/mktows/2_9"),
        "bigcorp1_461839624B16E06BA2D663",
        "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66",
    )
    .clock(FixedClock::parse("2010-04-09T14:04:54-07:00").unwrap())
    .build()
    .unwrap();
    client
        .request_campaign(&by_id(4496, &["EMAIL:lead@company.com"]))
        .unwrap();
    let (headers, body) = handle.join().unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(
        header("soapaction"),
        Some("\"http://www.marketo.com/mktows/requestCampaign\"")
    );
    assert_eq!(
        body,
        include_str!("../fixtures/request_campaign_by_id.xml").trim_end()
    );
}

/// A caller's own `ureq::Agent` (here one that turns 4xx/5xx into errors
/// and follows redirects) still has SOAP faults read from HTTP 500 bodies:
/// each call overrides what must hold (issue 9, a lean library).
#[test]
fn a_callers_own_agent_reads_faults_on_http_500() {
    use marketo_campaign::{HttpConfig, RetryPolicy, SoapCode};
    let sandbox = Sandbox::start().unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(true)
        .max_redirects(5)
        .build()
        .into();
    let client = sandbox
        .soap_client_builder()
        .http_config(
            HttpConfig::default()
                .agent(agent)
                .retry(RetryPolicy::never())
                .rate_limit(None),
        )
        .build()
        .unwrap();
    let request = by_id(4496, &["EMAIL:nobody@company.com"]);
    let err = client.request_campaign(&request).unwrap_err();
    assert_eq!(err.soap_code(), Some(SoapCode::LeadNotFound), "{err}");
    let ok = by_id(4496, &["EMAIL:lead@company.com"]);
    assert!(client.request_campaign(&ok).unwrap().is_complete());
    assert_eq!(sandbox.journal().len(), 1);
}
