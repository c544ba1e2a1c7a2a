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

/// Whether `tool` runs (`tool probe...` succeeds); if not, the test is
/// skipped with a notice, or fails when `MC_REQUIRE_CLIENTS=1`.
fn have(tool: &str, probe: &[&str]) -> bool {
    let available = std::process::Command::new(tool)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        let required = std::env::var("MC_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{tool} is required (MC_REQUIRE_CLIENTS=1) but missing"
        );
        eprintln!("notice: skipping the {tool} part: {tool} is missing (set MC_REQUIRE_CLIENTS=1 to fail instead)");
    }
    available
}

/// Posts `size` bytes to `url` with Python's http.client (which sends the
/// whole body before it reads the answer), `chunked` or with a
/// Content-Length: the status it read, or the error it got.
fn python_post(url: &str, size: usize, chunked: bool) -> String {
    const SCRIPT: &str = r#"
import http.client, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
size, chunked = int(sys.argv[2]), sys.argv[3] == "chunked"
connection = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
try:
    body = b"a" * size
    if chunked:
        body = iter([body[i:i + 65536] for i in range(0, size, 65536)])
    connection.request("POST", url.path, body=body, headers={"Content-Type": "text/xml; charset=utf-8"}, encode_chunked=chunked)
    answer = connection.getresponse()
    answer.read()
    print(answer.status)
except Exception as e:
    print(type(e).__name__, e)
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", SCRIPT, url, &size.to_string()])
        .arg(if chunked { "chunked" } else { "length" })
        .output()
        .expect("python3 runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
        + &String::from_utf8_lossy(&output.stderr)
}

/// A SOAP body over the bridge's 1 MiB limit (2 MB, and 8 MB) gets a 413
/// that ordinary clients read: curl (which asks `Expect: 100-continue` for
/// such a body, and without it), Python's http.client (which sends it all
/// first), with a Content-Length or chunked; not a broken pipe. The bridge
/// goes on serving.
#[test]
fn an_oversized_body_gets_a_413_that_clients_read() {
    let (sandbox, server) = setup();
    let endpoint = server.endpoint();
    let dir = std::env::temp_dir().join(format!("mb-defects-413-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    for size in [2_000_000, 8_000_000] {
        let file = dir.join(format!("{size}.xml"));
        std::fs::write(&file, "a".repeat(size)).expect("the body's file");
        if have("curl", &["--version"]) {
            let data = format!("@{}", file.display());
            for expect in [None, Some("Expect:")] {
                for _ in 0..3 {
                    let mut curl = std::process::Command::new("curl");
                    curl.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                        .args(["-H", "Content-Type: text/xml; charset=utf-8"])
                        .args(["--data-binary", &data, &endpoint]);
                    if let Some(header) = expect {
                        curl.args(["-H", header]);
                    }
                    let output = curl.output().expect("curl runs");
                    let code = String::from_utf8_lossy(&output.stdout);
                    assert_eq!(code, "413", "curl, {size} bytes, {expect:?}: {output:?}");
                }
            }
        }
        if have("python3", &["--version"]) {
            for chunked in [false, true] {
                for _ in 0..3 {
                    let status = python_post(&endpoint, size, chunked);
                    assert_eq!(
                        status, "413",
                        "http.client, {size} bytes, chunked {chunked}"
                    );
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Still serving, and nothing ran.
    let (status, body) = test_support::http::get(&endpoint.replace("/soap/mktows/2_9", "/healthz"));
    assert_eq!(status, 200, "{body}");
    assert!(sandbox.journal().is_empty());
}
