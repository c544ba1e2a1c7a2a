//! The library's integration tests, one test binary (each `tests/*.rs`
//! would be a binary of its own, linked again after every change to the
//! library or the sandbox). `tests/secrets.rs` stays apart: it installs a
//! process-wide logger and panic hook.

mod ajo;
mod conformance;
mod faults;
mod hostile_answers;
mod pacing;
mod properties;
mod redaction;
mod rest;
mod rest_schema;
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
