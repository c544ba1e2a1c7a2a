//! The library's integration tests, one test binary (each `tests/*.rs`
//! would be a binary of its own, linked again after every change to the
//! library or the sandbox). `tests/secrets.rs` stays apart: it installs a
//! process-wide logger and panic hook.

mod ajo;
mod conformance;
mod faults;
mod hostile_answers;
mod leads;
mod pacing;
mod properties;
mod quota;
mod redaction;
mod rest;
mod rest_answers;
mod rest_schema;
mod schema;
mod shared_limiter;
mod soap_sandbox;
mod soap_server;
mod webhook_properties;
mod wsdl;

/// Posts `envelope` to a SOAP endpoint as a `requestCampaign` call: status
/// and body.
fn post_request_campaign(endpoint: &str, envelope: impl AsRef<[u8]>) -> (u16, String) {
    test_support::http::post(
        endpoint,
        &[
            ("Content-Type", "text/xml; charset=utf-8"),
            (
                "SOAPAction",
                "\"http://www.marketo.com/mktows/requestCampaign\"",
            ),
        ],
        envelope,
    )
}

/// A sandbox and its client by `client` (`Sandbox::soap_client`, ...).
fn started<C>(
    client: impl FnOnce(&marketo_sandbox::Sandbox) -> Result<C, marketo_campaign::Error>,
) -> (marketo_sandbox::Sandbox, C) {
    let sandbox = marketo_sandbox::Sandbox::start().unwrap();
    let client = client(&sandbox).unwrap();
    (sandbox, client)
}

/// The journal holds one run, over `api`, of `campaign` for `leads`: that
/// run.
fn one_run(
    sandbox: &marketo_sandbox::Sandbox,
    api: &str,
    campaign: u32,
    leads: &[u32],
) -> marketo_sandbox::JournalEntry {
    let mut journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    let run = journal.remove(0);
    assert_eq!(run.api, api);
    assert_eq!(run.campaign_id, campaign);
    assert_eq!(run.lead_ids, leads);
    run
}

/// `ScheduleRequest` of the "Monthly Newsletter" with `{{my.Month}}` =
/// `month`, at `at`.
fn newsletter_schedule(
    month: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> marketo_campaign::ScheduleRequest {
    marketo_campaign::ScheduleRequest::new(
        marketo_campaign::CampaignTarget::named(
            "Monthly Newsletter",
            "Newsletters",
            [marketo_campaign::ProgramToken::new("{{my.Month}}", month).unwrap()],
        ),
        Some(at),
    )
    .unwrap()
}

/// A REST mock on loopback: the identity service answers `token`, living
/// `expires_in` seconds; any other call, `api(url)`. Its base URL.
fn rest_mock(
    token: &'static str,
    expires_in: &'static str,
    api: impl Fn(&str) -> String + Send + 'static,
) -> String {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let body = if request.url().starts_with("/identity/") {
                format!(
                    r#"{{"access_token":"{token}","token_type":"bearer","expires_in":{expires_in},"scope":"x"}}"#
                )
            } else {
                api(request.url())
            };
            let _ = request.respond(tiny_http::Response::from_string(body));
        }
    });
    format!("http://127.0.0.1:{port}")
}
