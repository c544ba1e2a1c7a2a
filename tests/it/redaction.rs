//! Servers that echo the request in an error body: the quoted body never
//! carries the bearer token, the client secret or the SOAP signature, even
//! when the secret straddles the point where the quote is cut (issue 8,
//! defect 9).

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Error, FixedClock, LeadKey, RestClient,
    RetryPolicy, SoapClient,
};

const CLIENT_SECRET: &str = "ClientSecretMv3Qw8E4q9ZxT2";
const TOKEN: &str = "cdf01657-110d-4155-99a7-f986b2ff13a0:ab";
const SIGNATURE: &str = "ffbff4d4bef354807481e66dc7540f7890523a87";

/// A server that answers every request with `status` and a body of
/// `pad` bytes of padding followed by the request's line and headers (and
/// its body), as some gateways and debug endpoints do. The identity path
/// answers a token unless `identity_echoes`.
fn echo_server(status: u16, pad: usize, identity_echoes: bool) -> String {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut echo = format!(
                "{}{} {}\r\n",
                "x".repeat(pad),
                request.method(),
                request.url()
            );
            for header in request.headers() {
                echo.push_str(&format!("{}: {}\r\n", header.field, header.value));
            }
            let mut body = String::new();
            let _ = request.as_reader().read_to_string(&mut body);
            echo.push_str(&body);
            let response = if request.url().starts_with("/identity/") && !identity_echoes {
                tiny_http::Response::from_string(format!(
                    r#"{{"access_token":"{TOKEN}","token_type":"bearer","expires_in":3599,"scope":"x"}}"#
                ))
            } else {
                tiny_http::Response::from_string(echo).with_status_code(status)
            };
            let _ = request.respond(response);
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn rest_client(base: &str) -> RestClient {
    let builder = RestClient::builder(base, "client-id", CLIENT_SECRET);
    test_support::quiet_client!(builder, Duration::from_secs(10))
}

fn request() -> CampaignRequest {
    CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(1002200).unwrap()]).unwrap()
}

/// Every way an error is shown.
fn shown(err: &Error) -> String {
    format!("{err}\n{err:?}")
}

fn assert_clean(text: &str) {
    for secret in [CLIENT_SECRET, TOKEN, SIGNATURE] {
        // No part of it either: its first 8 characters are enough to tell.
        assert!(!text.contains(&secret[..8]), "shows {secret:?}: {text}");
    }
    assert!(text.contains("[redacted]"), "nothing was redacted: {text}");
}

#[test]
fn an_echoed_bearer_token_is_redacted() {
    for status in [400, 403, 500, 502] {
        let base = echo_server(status, 0, false);
        let err = rest_client(&base).request_campaign(&request()).unwrap_err();
        assert_clean(&shown(&err));
    }
}

#[test]
fn an_echoed_client_secret_is_redacted_before_the_cut() {
    // The identity service quotes at most 200 bytes: put the secret across
    // byte 200 for every offset around it.
    for pad in 150..200 {
        let base = echo_server(400, pad, true);
        let err = rest_client(&base).request_campaign(&request()).unwrap_err();
        let text = shown(&err);
        assert!(!text.contains(&CLIENT_SECRET[..6]), "pad {pad}: {text}");
        assert!(!text.contains("ClientSec"), "pad {pad}: {text}");
    }
}

#[test]
fn an_echoed_soap_signature_is_redacted() {
    for status in [400, 500, 502] {
        let base = echo_server(status, 0, false);
        let client = SoapClient::builder(
            format!("{base}/soap/mktows/2_9"),
            "bigcorp1_461839624B16E06BA2D663",
            "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66",
        )
        .clock(FixedClock::parse("2010-04-09T14:04:54-07:00").unwrap())
        .rate_limit(None)
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
        let err = client.request_campaign(&request()).unwrap_err();
        assert_clean(&shown(&err));
    }
}

/// A server whose answers carry the client's token and secret bare, under
/// no name the redaction knows (found by the lookup_answers fuzz target: a
/// campaigns.json body holding the secret): no error shows either, whichever
/// call failed (look-up or trigger) and whatever the status.
#[test]
fn a_bare_echo_of_the_secret_or_the_token_is_redacted() {
    for status in [200, 400, 502] {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        thread::spawn(move || {
            for request in server.incoming_requests() {
                let response = if request.url().starts_with("/identity/") {
                    tiny_http::Response::from_string(format!(
                        r#"{{"access_token":"{TOKEN}","token_type":"bearer","expires_in":3599,"scope":"x"}}"#
                    ))
                } else {
                    tiny_http::Response::from_string(format!(
                        "<html>debug: {CLIENT_SECRET} / {TOKEN}</html>"
                    ))
                    .with_status_code(status)
                };
                let _ = request.respond(response);
            }
        });
        let client = rest_client(&format!("http://127.0.0.1:{port}"));
        let by_name = CampaignRequest::new(
            CampaignTarget::named("Send Webinar Reminder", "Webinars", []),
            [LeadKey::email("lead@company.com").unwrap()],
        )
        .unwrap();
        for request in [request(), by_name] {
            let err = client.request_campaign(&request).unwrap_err();
            assert_clean(&shown(&err));
        }
    }
}

/// A campaign search whose answer names campaigns with the client's secret
/// and token in them: the "no such campaign" refusal quotes what the search
/// returned, without either (found by the lookup_answers fuzz target).
#[test]
fn a_campaign_refusal_does_not_quote_the_secret_from_the_search() {
    let base = crate::rest_mock(TOKEN, "3599", |_| {
        format!(
            r#"{{"requestId":"1#1","success":true,"result":[{{"id":4496,"name":"Send Webinar {CLIENT_SECRET} {TOKEN}","programName":"Webinars","type":"trigger","isRequestable":true,"isActive":true}}]}}"#
        )
    });
    let client = rest_client(&base);
    let request = CampaignRequest::new(
        CampaignTarget::named("Send Webinar Reminder", "Webinars", []),
        [LeadKey::email("lead@company.com").unwrap()],
    )
    .unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    assert!(matches!(err, Error::Lookup(_)), "{err:?}");
    assert_clean(&shown(&err));
}
