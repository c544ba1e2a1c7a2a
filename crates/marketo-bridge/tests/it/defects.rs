//! Issue 18's defects of the bridge (and of the sandbox's SOAP endpoint,
//! which reads envelopes with the same codec).

use marketo_bridge::{Bridge, RunningBridge};
use marketo_campaign::soap::{request_signature, w3c_timestamp, Authenticator, DEFAULT_TIMEZONE};
use marketo_campaign::{Clock, SystemClock};
use marketo_sandbox::Sandbox;
use test_support::http::post;

/// A sandbox and a bridge in front of its REST side.
fn setup() -> (Sandbox, RunningBridge) {
    let sandbox = Sandbox::start().expect("the sandbox starts");
    let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    let bridge = Bridge::rest(sandbox.rest_client().expect("a REST client"), auth);
    let server = bridge
        .serve("127.0.0.1:0".parse().expect("an address"), false)
        .expect("the bridge serves");
    (sandbox, server)
}

/// An `AuthenticationHeader` for `user`, signed now with `key`.
fn auth_header(user: &str, key: &str) -> String {
    let timestamp = w3c_timestamp(SystemClock.now(), DEFAULT_TIMEZONE);
    let signature = request_signature(key, &timestamp, user);
    format!(
        "<ns1:AuthenticationHeader><mktowsUserId>{user}</mktowsUserId><requestSignature>{signature}</requestSignature><requestTimestamp>{timestamp}</requestTimestamp></ns1:AuthenticationHeader>"
    )
}

/// A `requestCampaign` of campaign 4496 for lead@company.com, with
/// `headers` in its SOAP header.
fn envelope(headers: &[String]) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Header>{}</SOAP-ENV:Header><SOAP-ENV:Body><ns1:paramsRequestCampaign><source>MKTOWS</source><campaignId>4496</campaignId><leadList><leadKey><keyType>EMAIL</keyType><keyValue>lead@company.com</keyValue></leadKey></leadList></ns1:paramsRequestCampaign></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
        headers.concat()
    )
}

fn post_soap(endpoint: &str, body: &str) -> (u16, String) {
    post(
        endpoint,
        &[
            ("Content-Type", "text/xml; charset=utf-8"),
            (
                "SOAPAction",
                "\"http://www.marketo.com/mktows/requestCampaign\"",
            ),
        ],
        body,
    )
}

/// Two `AuthenticationHeader`s, one valid and one bogus, in either order:
/// fault 20014 and nothing runs, from the bridge and from the sandbox's own
/// SOAP endpoint. One valid header alone still runs the campaign.
#[test]
fn two_authentication_headers_are_refused_with_20014() {
    let (sandbox, server) = setup();
    let user = sandbox.soap_user_id().to_owned();
    let valid = auth_header(&user, sandbox.soap_encryption_key());
    let bogus = auth_header(&user, "not-the-key-0000000000000000000000000000");
    let other_user = auth_header("someone_else", sandbox.soap_encryption_key());
    for (name, endpoint) in [
        ("bridge", server.endpoint()),
        ("sandbox", sandbox.soap_endpoint()),
    ] {
        for headers in [
            [valid.clone(), bogus.clone()],
            [bogus.clone(), valid.clone()],
            [valid.clone(), other_user.clone()],
            [valid.clone(), valid.clone()],
        ] {
            let (status, body) = post_soap(&endpoint, &envelope(&headers));
            assert_eq!(status, 500, "{name}: {body}");
            assert!(body.contains("<code>20014</code>"), "{name}: {body}");
            assert!(
                body.contains("more than one AuthenticationHeader"),
                "{name}: {body}"
            );
            assert!(
                sandbox.journal().is_empty(),
                "{name}: nothing may run: {:?}",
                sandbox.journal()
            );
        }
    }
    // One header: runs, through the bridge.
    let (status, body) = post_soap(&server.endpoint(), &envelope(&[valid]));
    assert_eq!(status, 200, "{body}");
    assert_eq!(sandbox.journal().len(), 1, "{:?}", sandbox.journal());
}
