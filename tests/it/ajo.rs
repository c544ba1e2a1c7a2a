//! Adobe Journey Optimizer: AjoClient's bytes on the wire (against a bare
//! mock server), its bodies against the crate's copy of the schema
//! (`spec/ajo-messaging.json`), its errors and their classification,
//! retries that keep the requestId, the token cache, secrets; then the
//! sandbox's AJO side; then the command line.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use marketo_campaign::ajo::{AjoClient, AjoClientBuilder, CampaignMap};
use marketo_campaign::{
    Action, CampaignRequest, CampaignRequester, CampaignScheduler, CampaignTarget, Delivery, Error,
    LeadKey, LeadKeyType, ProgramToken, RetryPolicy, ScheduleRequest,
};
use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig, SandboxData};
use serde_json::{json, Value};

use crate::schema::validate;

const SPEC: &str = include_str!("../../crates/marketo-sandbox/spec/ajo-messaging.json");
const SECRET: &str = "s3cr3t-v@lue+/=";
const WEBINAR: &str = "7c1e4b2a-9d3f-4e61-a8b5-3f2d1c0b1234";

// ---------------------------------------------------------------------------
// The schema, checked by a validator of the tests' own

fn spec() -> Value {
    serde_json::from_str(SPEC).unwrap()
}

/// Checks an execution body against `imExecutionRequestUnitary`.
fn check_body(body: &Value) -> Result<(), String> {
    let spec = spec();
    validate(
        &spec,
        &spec["operations"]["postIMUnitaryMessageExecution"]["requestBody"],
        body,
        "$",
    )
}

// ---------------------------------------------------------------------------
// A bare mock server

/// A request the mock received.
#[derive(Debug, Clone)]
struct Seen {
    url: String,
    method: String,
    /// Header names lowercased.
    headers: BTreeMap<String, String>,
    body: String,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    fn is_token(&self) -> bool {
        self.url == "/ims/token/v3"
    }
}

/// The mock's answer: status, extra headers, body.
type Reply = (u16, Vec<(&'static str, String)>, String);

/// A mock AJO + IMS on loopback; `answer(seen, n)` gets each execution call
/// with its number (from 1). Token requests get `tok-N` living `token_life`
/// seconds.
struct Mock {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    fn start(token_life: u64, answer: impl Fn(&Seen, usize) -> Reply + Send + 'static) -> Mock {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            let (mut tokens, mut executions) = (0, 0);
            for mut request in server.incoming_requests() {
                let mut body = String::new();
                request.as_reader().read_to_string(&mut body).unwrap();
                let got = Seen {
                    url: request.url().to_owned(),
                    method: request.method().to_string(),
                    headers: request
                        .headers()
                        .iter()
                        .map(|h| {
                            (
                                h.field.to_string().to_ascii_lowercase(),
                                h.value.to_string(),
                            )
                        })
                        .collect(),
                    body,
                    at: Instant::now(),
                };
                log.lock().unwrap().push(got.clone());
                let (status, headers, body) = if got.is_token() {
                    tokens += 1;
                    let body = json!({"access_token": format!("tok-{tokens}"), "token_type": "bearer", "expires_in": token_life});
                    (200, Vec::new(), body.to_string())
                } else {
                    executions += 1;
                    answer(&got, executions)
                };
                let mut response = tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(
                        tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap(),
                    );
                for (name, value) in headers {
                    response.add_header(tiny_http::Header::from_bytes(name, value).unwrap());
                }
                let _ = request.respond(response);
            }
        });
        Mock { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn executions(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| !s.is_token()).collect()
    }

    fn tokens(&self) -> usize {
        self.seen().iter().filter(|s| s.is_token()).count()
    }

    fn builder(&self) -> AjoClientBuilder {
        AjoClient::builder("client-id", SECRET, "ORG123@AdobeOrg", "prod")
            .endpoint(&self.url)
            .ims_token_url(format!("{}/ims/token/v3", self.url))
            .campaign_map(CampaignMap::new().with_id(1234, "c-webinar"))
            .retry(quick())
            .rate_limit(None)
    }

    fn client(&self) -> AjoClient {
        self.builder().build().unwrap()
    }
}

/// The 202 answer for execution `n`, echoing the body's requestId.
fn accepted(seen: &Seen, n: usize) -> Reply {
    let body = json!({"executionId": format!("EXEC-{n}"), "requestId": seen.json()["requestId"]});
    (202, Vec::new(), body.to_string())
}

fn quick() -> RetryPolicy {
    RetryPolicy::default().backoff(Duration::from_millis(5), Duration::from_millis(20))
}

fn webinar_tokens() -> Vec<ProgramToken> {
    vec![
        ProgramToken::new("{{my.WebinarTitle}}", "Migrating off SOAP").unwrap(),
        ProgramToken::new("{{my.JoinLink}}", "https://example.com/join?a=1&b=\"2\"").unwrap(),
        ProgramToken::new("{{my.WebinarImage}}", "https://example.com/webinar.png").unwrap(),
    ]
}

fn emails(range: std::ops::RangeInclusive<u32>) -> Vec<LeadKey> {
    range
        .map(|i| LeadKey::email(format!("lead{i}@example.com")).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// The client on the wire

#[test]
fn wire_bytes_of_the_token_request_and_an_execution() {
    let mock = Mock::start(3600, accepted);
    let request = CampaignRequest::new(
        CampaignTarget::id_with_tokens(1234, webinar_tokens()),
        [LeadKey::email("lead@company.com").unwrap()],
    )
    .unwrap();
    let outcome = mock.client().request_campaign(&request).unwrap();
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    let token = &seen[0];
    assert_eq!(
        (token.method.as_str(), token.url.as_str()),
        ("POST", "/ims/token/v3")
    );
    assert_eq!(
        token.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        token.body,
        "grant_type=client_credentials&client_id=client-id&client_secret=s3cr3t-v%40lue%2B%2F%3D\
         &scope=openid%2CAdobeID%2Cread_organizations%2Cadditional_info.projectedProductContext%2Csession"
    );
    let call = &seen[1];
    assert_eq!(
        (call.method.as_str(), call.url.as_str()),
        ("POST", "/ajo/im/executions/unitary")
    );
    for (name, value) in [
        ("authorization", "Bearer tok-1"),
        ("x-api-key", "client-id"),
        ("x-gw-ims-org-id", "ORG123@AdobeOrg"),
        ("x-sandbox-name", "prod"),
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ] {
        assert_eq!(call.header(name), value, "{name}");
    }
    let request_id = call.header("x-request-id");
    assert_eq!(request_id.len(), 36, "{request_id}");
    assert_eq!(
        call.body,
        format!(
            r#"{{"requestId":"{request_id}","campaignId":"c-webinar","recipients":[{{"type":"aep","userId":"lead@company.com","namespace":"email","context":{{"JoinLink":"https://example.com/join?a=1&b=\"2\"","WebinarImage":"https://example.com/webinar.png","WebinarTitle":"Migrating off SOAP"}}}}]}}"#
        )
    );
    assert_eq!(check_body(&call.json()), Ok(()));
    assert_eq!(outcome.chunks()[0].execution_id(), Some("EXEC-1"));
    assert_eq!(outcome.chunks()[0].backend(), "ajo");
    assert!(outcome.is_complete());
}

#[test]
fn bodies_validate_against_the_schema_copy_in_chunks_of_twenty() {
    let mock = Mock::start(3600, accepted);
    let mut leads = emails(1..=45);
    // A key named twice is sent once, whatever its case.
    leads.push(LeadKey::email("lead3@example.com").unwrap());
    leads.push(LeadKey::email("LEAD4@Example.com").unwrap());
    let request =
        CampaignRequest::new(CampaignTarget::ajo("c-direct", webinar_tokens()), leads).unwrap();
    let client = mock.client();
    assert_eq!(client.max_leads_per_call(), 20);
    let outcome = client.request_campaign(&request).unwrap();
    let calls = mock.executions();
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c.json()["recipients"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [20, 20, 5], "45 leads and 2 repeated, 20 a call");
    let mut sent = Vec::new();
    for call in &calls {
        let body = call.json();
        assert_eq!(check_body(&body), Ok(()), "{}", call.body);
        assert_eq!(body["campaignId"], "c-direct");
        for recipient in body["recipients"].as_array().unwrap() {
            assert_eq!(recipient["context"]["WebinarTitle"], "Migrating off SOAP");
            sent.push(recipient["userId"].as_str().unwrap().to_owned());
        }
    }
    let mut unique = sent.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((sent.len(), unique.len()), (45, 45));
    let ids: Vec<Option<&str>> = outcome.chunks().iter().map(|c| c.execution_id()).collect();
    assert_eq!(ids, [Some("EXEC-1"), Some("EXEC-2"), Some("EXEC-3")]);
    // The validator can fail: what the schema forbids is caught.
    let mut body = calls[0].json();
    let many: Vec<Value> = (0..21).map(|_| body["recipients"][0].clone()).collect();
    body["recipients"] = Value::Array(many);
    assert!(check_body(&body).unwrap_err().contains("maxItems"));
    let mut body = calls[0].json();
    body["recipients"][0]["type"] = json!("lead");
    assert!(check_body(&body).unwrap_err().contains("not mapped"));
    let mut body = calls[0].json();
    body.as_object_mut().unwrap().remove("requestId");
    assert!(check_body(&body).unwrap_err().contains("requestId"));
    let mut body = calls[0].json();
    body["recipients"][0]["context"]["n"] = json!(1);
    assert!(check_body(&body).is_err());
}

#[test]
fn each_call_has_a_fresh_request_id_kept_when_it_is_retried_after_retry_after() {
    // The first execution is rate limited with Retry-After: 1.
    let mock = Mock::start(3600, |seen, n| {
        if n == 1 {
            (
                429,
                vec![("Retry-After", "1".to_owned())],
                r#"{"title":"Too many requests"}"#.to_owned(),
            )
        } else {
            accepted(seen, n)
        }
    });
    let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=25)).unwrap();
    let outcome = mock.client().request_campaign(&request).unwrap();
    let calls = mock.executions();
    assert_eq!(calls.len(), 3);
    let ids: Vec<String> = calls
        .iter()
        .map(|c| c.header("x-request-id").to_owned())
        .collect();
    let body_ids: Vec<String> = calls
        .iter()
        .map(|c| c.json()["requestId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, body_ids, "x-request-id is the body's requestId");
    assert_eq!(ids[0], ids[1], "a retried call keeps its requestId");
    assert_ne!(ids[1], ids[2], "each call has its own");
    assert_eq!(
        calls[0].body, calls[1].body,
        "the same bytes are sent again"
    );
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "waited {waited:?} < Retry-After"
    );
    assert_eq!(outcome.chunks()[0].execution_id(), Some("EXEC-2"));
    assert_eq!(outcome.chunks()[1].execution_id(), Some("EXEC-3"));
}

#[test]
fn refusals_stop_without_a_retry_and_401_renews_the_token_once() {
    for status in [400, 403, 404, 409, 422] {
        let mock = Mock::start(3600, move |_, _| {
            (status, Vec::new(), r#"{"type":"https://ns.adobe.com/aep/errors/MSG-000052-400","title":"An error has occurred","status":400}"#.to_owned())
        });
        let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=1)).unwrap();
        let err = mock.client().request_campaign(&request).unwrap_err();
        assert_eq!(err.delivery(), Delivery::Refused, "{status}: {err}");
        assert!(
            matches!(err, Error::HttpStatus { status: s, .. } if s == status),
            "{err:?}"
        );
        assert_eq!(mock.executions().len(), 1, "{status}: not repeated");
    }
    // 401: the token is renewed and the call made once more, with the same
    // requestId; a second 401 is a refusal.
    let mock = Mock::start(3600, |_, _| {
        (
            401,
            Vec::new(),
            r#"{"title":"Oauth token is not valid"}"#.to_owned(),
        )
    });
    let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=1)).unwrap();
    let err = mock.client().request_campaign(&request).unwrap_err();
    assert_eq!(err.delivery(), Delivery::Refused);
    assert_eq!(mock.tokens(), 2);
    let calls = mock.executions();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].header("authorization"), "Bearer tok-1");
    assert_eq!(calls[1].header("authorization"), "Bearer tok-2");
    assert_eq!(
        calls[0].header("x-request-id"),
        calls[1].header("x-request-id")
    );
    // 401 then 202: served.
    let mock = Mock::start(3600, |seen, n| {
        if n == 1 {
            (401, Vec::new(), "{}".to_owned())
        } else {
            accepted(seen, n)
        }
    });
    assert!(mock
        .client()
        .request_campaign(&request)
        .unwrap()
        .is_complete());
}

#[test]
fn server_errors_after_sending_are_unknown_and_never_repeated() {
    for status in [500, 502, 503, 504] {
        for body in [
            "",
            "<html>Bad Gateway</html>",
            r#"{"title":"Too many requests","status":429}"#,
        ] {
            let mock = Mock::start(3600, move |_, _| (status, Vec::new(), body.to_owned()));
            let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=25)).unwrap();
            let err = mock.client().request_campaign(&request).unwrap_err();
            assert_eq!(err.delivery(), Delivery::Unknown, "{status} {body}: {err}");
            assert_eq!(err.classify().action, Action::Stop);
            assert_eq!(mock.executions().len(), 1, "{status}: never repeated");
            let outcome = err.outcome().expect("two chunks");
            assert_eq!(outcome.not_attempted().count(), 5);
        }
    }
    // An accepted status without an executionId proves nothing either way.
    let mock = Mock::start(3600, |_, _| (202, Vec::new(), "{}".to_owned()));
    let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=1)).unwrap();
    let err = mock.client().request_campaign(&request).unwrap_err();
    assert_eq!(err.delivery(), Delivery::Unknown);
    // A 429 that never passes: refused (nothing ran), after the attempts.
    let mock = Mock::start(3600, |_, _| (429, Vec::new(), "{}".to_owned()));
    let err = mock
        .builder()
        .retry(quick().max_attempts(3))
        .build()
        .unwrap()
        .request_campaign(&request)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RateLimited {
                retry_after: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.delivery(), Delivery::Refused);
    assert_eq!(mock.executions().len(), 3);
}

#[test]
fn a_connection_that_cannot_be_made_is_not_sent() {
    let mock = Mock::start(3600, accepted);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let client = mock
        .builder()
        .endpoint(format!("http://{closed}"))
        .retry(quick().max_attempts(2))
        .build()
        .unwrap();
    let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=1)).unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent, "{err:?}");
    assert!(matches!(err, Error::Transport { .. }));
    // The token service unreachable: nothing was triggered.
    let client = mock
        .builder()
        .ims_token_url(format!("http://{closed}/ims/token/v3"))
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent, "{err:?}");
    assert!(mock.executions().is_empty());
}

#[test]
fn unmapped_key_types_and_campaigns_are_refused_before_anything_is_sent() {
    let mock = Mock::start(3600, accepted);
    let client = mock.client();
    let request = CampaignRequest::new(
        CampaignTarget::id(1234),
        [
            LeadKey::email("lead@company.com").unwrap(),
            LeadKey::id(1002200).unwrap(),
            "COOKIE:id:561-HYG-937&token:_mch-x".parse().unwrap(),
        ],
    )
    .unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(err.delivery(), Delivery::NotSent);
    let text = err.to_string();
    assert!(
        text.contains("IDNUM") && text.contains("lead key 2"),
        "{text}"
    );
    assert!(client.plan(&request).is_err(), "the dry run refuses it too");
    // Unmapped campaigns, by id and by name.
    for target in [
        CampaignTarget::id(5000),
        CampaignTarget::named("Send Webinar Reminder", "Webinars", []),
    ] {
        let request = CampaignRequest::new(target, emails(1..=1)).unwrap();
        let err = client.request_campaign(&request).unwrap_err();
        assert!(err.to_string().contains("campaign map"), "{err}");
        assert_eq!(err.delivery(), Delivery::NotSent);
    }
    assert!(
        mock.seen().is_empty(),
        "nothing was sent, not even a token request"
    );
    // Mapped: IDNUM in a namespace of one's own.
    let client = mock
        .builder()
        .namespace(LeadKeyType::Idnum, "marketoId")
        .build()
        .unwrap();
    let request =
        CampaignRequest::new(CampaignTarget::id(1234), [LeadKey::id(1002200).unwrap()]).unwrap();
    client.request_campaign(&request).unwrap();
    let body = mock.executions()[0].json();
    assert_eq!(body["recipients"][0]["namespace"], "marketoId");
    assert_eq!(body["recipients"][0]["userId"], "1002200");
}

#[test]
fn the_token_is_cached_shared_by_clones_and_renewed_before_expiry() {
    let mock = Mock::start(3600, accepted);
    let client = mock.client();
    let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=1)).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let clone = client.clone();
            let request = &request;
            scope.spawn(move || clone.request_campaign(request).unwrap());
        }
    });
    assert_eq!((mock.tokens(), mock.executions().len()), (1, 4));
    // A token living less than the renewal margin (10 min) is renewed for
    // each call.
    let mock = Mock::start(300, accepted);
    let client = mock.client();
    for _ in 0..3 {
        client.request_campaign(&request).unwrap();
    }
    assert_eq!(mock.tokens(), 3);
    let bearers: Vec<String> = mock
        .executions()
        .iter()
        .map(|c| c.header("authorization").to_owned())
        .collect();
    assert_eq!(bearers, ["Bearer tok-1", "Bearer tok-2", "Bearer tok-3"]);
}

#[test]
fn secrets_and_tokens_are_never_printed() {
    // A server that echoes the credentials in its refusal, under their
    // names and under names no redaction knows.
    let mock = Mock::start(3600, |seen, _| {
        let echo = json!({
            "title": "bad request",
            "report": {"additionalContext": {
                "authorization": seen.header("authorization"),
                "client_secret": SECRET,
                "received": seen.header("authorization").trim_start_matches("Bearer "),
                "credential": SECRET,
            }},
        });
        (400, Vec::new(), echo.to_string())
    });
    let client = mock.client();
    let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=1)).unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    let shown = format!("{err} {err:?} {client:?} {client}");
    for secret in [SECRET, "tok-1"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("[redacted]"), "{shown}");
    let plans = serde_json::to_string(&client.plan(&request).unwrap()).unwrap();
    assert!(
        !plans.contains(SECRET) && !plans.contains("s3cr3t"),
        "{plans}"
    );
    assert!(plans.contains("client_secret=[redacted]") && plans.contains("Bearer [redacted]"));
}

#[test]
fn soap_and_rest_refuse_an_ajo_target_before_sending() {
    let sandbox = Sandbox::start().unwrap();
    let request = CampaignRequest::new(
        CampaignTarget::ajo(WEBINAR, webinar_tokens()),
        [LeadKey::email("lead@company.com").unwrap()],
    )
    .unwrap();
    let soap = sandbox.soap_client().unwrap();
    let rest = sandbox.rest_client().unwrap();
    for (name, result) in [
        ("soap", soap.request_campaign(&request)),
        ("rest", rest.request_campaign(&request)),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{name}: {err:?}");
        assert_eq!(err.delivery(), Delivery::NotSent);
    }
    assert!(soap.plan(&request).is_err() && rest.plan(&request).is_err());
    // Not even a token request: a REST token fault never struck.
    sandbox
        .inject(FaultRule::always(Fault::ResetAfterRequest).api(Api::Identity))
        .unwrap();
    assert!(matches!(
        rest.request_campaign(&request),
        Err(Error::InvalidInput { .. })
    ));
    assert!(sandbox.fault_log().is_empty());
    assert!(sandbox.journal().is_empty());
    // The same request runs over AJO.
    sandbox.clear_faults();
    sandbox
        .ajo_client()
        .unwrap()
        .request_campaign(&request)
        .unwrap();
    assert_eq!(sandbox.journal().len(), 1);
}

#[test]
fn a_schedule_is_an_audience_execution_with_execute_at() {
    let mock = Mock::start(3600, |_, n| {
        let body = json!({"scheduleId": format!("SCH-{n}"), "campaignId": "c-news", "executeAt": "2030-01-01T09:00:00.000Z", "scheduleStatus": "Scheduled"});
        (202, Vec::new(), body.to_string())
    });
    let client = mock
        .builder()
        .campaign_map(CampaignMap::new().with_named("Monthly Newsletter", "Newsletters", "c-news"))
        .build()
        .unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2030-01-01T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let request = crate::newsletter_schedule("January", at);
    let scheduled = client.schedule_campaign(&request).unwrap();
    assert_eq!(
        (scheduled.backend(), scheduled.id()),
        ("ajo", Some("SCH-1"))
    );
    let calls = mock.executions();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].url, "/ajo/im/executions/audience");
    let request_id = calls[0].header("x-request-id");
    assert_eq!(
        calls[0].body,
        format!(
            r#"{{"requestId":"{request_id}","campaignId":"c-news","context":{{"Month":"January"}},"schedule":{{"executeAt":"2030-01-01T09:00:00.000Z"}}}}"#
        )
    );
    let spec = spec();
    let operation = &spec["operations"]["postIMAudienceMessageExecution"];
    assert_eq!(
        validate(&spec, &operation["requestBody"], &calls[0].json(), "$"),
        Ok(())
    );
    let plan = client.plan_schedule(&request).unwrap();
    assert_eq!(
        plan[1].url,
        format!("{}/ajo/im/executions/audience", mock.url)
    );
    assert_eq!(
        validate(
            &spec,
            &operation["requestBody"],
            &serde_json::from_str(&plan[1].body).unwrap(),
            "$"
        ),
        Ok(())
    );
    // An unmapped campaign: nothing sent.
    let err = client
        .schedule_campaign(&ScheduleRequest::new(CampaignTarget::id(5000), None).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(mock.executions().len(), 1);
}

#[test]
fn the_sandbox_schedules_audience_campaigns_and_refuses_the_rest() {
    // The sandbox's clock, pinned.
    let clock = marketo_campaign::FixedClock::parse("2026-11-25T12:00:00Z").unwrap();
    let sandbox = Sandbox::start_with(SandboxConfig::new().clock(clock)).unwrap();
    let client = sandbox.ajo_client().unwrap();
    let at = clock.0 + chrono::Duration::days(7);
    let month = || [ProgramToken::new("{{my.Month}}", "December").unwrap()];
    let scheduled = client
        .schedule_campaign(
            &ScheduleRequest::new(
                CampaignTarget::named("Monthly Newsletter", "Newsletters", month()),
                Some(at),
            )
            .unwrap(),
        )
        .unwrap();
    assert!(scheduled.id().unwrap().starts_with("SCH-"), "{scheduled:?}");
    let now = client
        .schedule_campaign(
            &ScheduleRequest::new(CampaignTarget::id_with_tokens(5000, month()), None).unwrap(),
        )
        .unwrap();
    assert!(now.id().unwrap().starts_with("CMA-"), "{now:?}");
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 2);
    let execution = journal[0].ajo.as_ref().unwrap();
    assert_eq!(
        execution.campaign_id,
        "9b8a7c6d-5000-4e3f-a2b1-c0d9e8f75000"
    );
    assert_eq!(execution.execution_id, scheduled.id().unwrap());
    assert_eq!(execution.context["Month"], "December");
    assert_eq!(
        journal[0].run_at.as_deref(),
        Some(
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .as_str()
        )
    );
    assert_eq!(journal[1].run_at.as_deref(), Some(""));
    // Refused, nothing journaled: a time in the past, a campaign that is
    // not audience-based.
    sandbox.clear_journal();
    let past = clock.0 - chrono::Duration::hours(1);
    for request in [
        ScheduleRequest::new(CampaignTarget::id(5000), Some(past)).unwrap(),
        ScheduleRequest::new(CampaignTarget::id(1234), None).unwrap(),
    ] {
        let err = client.schedule_campaign(&request).unwrap_err();
        assert!(
            matches!(err, Error::HttpStatus { status: 400, .. }),
            "{err:?}"
        );
        assert_eq!(err.delivery(), Delivery::Refused);
    }
    assert!(sandbox.journal().is_empty());
}

#[test]
fn fallback_from_a_retired_soap_to_ajo_runs_each_lead_once() {
    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .soap_retired(Some(410))
            .data(SandboxData::default().with_generated_leads(1, 100)),
    )
    .unwrap();
    let client = marketo_campaign::Fallback::new(
        sandbox.soap_client().unwrap(),
        sandbox.ajo_client().unwrap(),
    );
    let request = CampaignRequest::new(CampaignTarget::id(4496), emails(1..=45)).unwrap();
    let outcome = client.request_campaign(&request).unwrap();
    let backends: Vec<&str> = outcome.chunks().iter().map(|c| c.backend()).collect();
    assert_eq!(backends, ["ajo", "ajo", "ajo"]);
    let journal = sandbox.journal();
    let mut ids: Vec<u32> = journal.iter().flat_map(|e| e.lead_ids.clone()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=45).collect::<Vec<u32>>());
    assert!(journal.iter().all(|e| e.api == "ajo"));
}

/// Generated requests (hostile token names and values, repeated and
/// re-cased emails, any size up to 70 leads), planned and then sent to the
/// sandbox: every body validates against the schema copy, carries at most
/// 20 recipients, its own requestId (also its x-request-id); the recipients
/// are the request's distinct emails in order; every recipient's context is
/// the tokens, and the sandbox journals exactly that.
#[test]
fn generated_requests_give_schema_valid_bodies_and_journal_what_was_asked() {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let strategy = (
        vec((test_support::token_name(), test_support::hostile()), 0..5),
        vec((0u32..40, any::<bool>()), 1..70),
    );
    let sandbox =
        Sandbox::start_with(SandboxConfig::new().rate_limit(100_000, Duration::from_secs(1)))
            .unwrap();
    let client = sandbox
        .ajo_client_builder()
        .rate_limit(None)
        .build()
        .unwrap();
    let mut runner = TestRunner::deterministic();
    let mut checked = 0;
    for _ in 0..256 {
        let (tokens, leads) = strategy.new_tree(&mut runner).unwrap().current();
        // Tokens the crate refuses (bad names, text XML cannot carry, a
        // name given twice) are not requests.
        let Ok(tokens) = tokens
            .iter()
            .map(|(n, v)| ProgramToken::new(n.as_str(), v.as_str()))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        let keys: Vec<LeadKey> = leads
            .iter()
            .map(|(n, upper)| {
                let email = format!("lead{n}@example.com");
                LeadKey::email(if *upper { email.to_uppercase() } else { email }).unwrap()
            })
            .collect();
        let Ok(request) = CampaignRequest::new(CampaignTarget::ajo(WEBINAR, tokens.clone()), keys)
        else {
            continue;
        };
        let context: BTreeMap<String, String> = tokens
            .iter()
            .map(|t| {
                let name = t.name().trim_start_matches("{{my.").trim_end_matches("}}");
                (name.to_owned(), t.value().to_owned())
            })
            .collect();
        let mut distinct: Vec<String> = Vec::new();
        for key in request.leads() {
            if !distinct.iter().any(|d| d.eq_ignore_ascii_case(key.value())) {
                distinct.push(key.value().to_owned());
            }
        }
        let plans = client.plan(&request).unwrap();
        let mut sent = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for plan in &plans[1..] {
            let body: Value = serde_json::from_str(&plan.body).unwrap();
            assert_eq!(check_body(&body), Ok(()), "{}", plan.body);
            assert!(ids.insert(body["requestId"].as_str().unwrap().to_owned()));
            assert_eq!(body["requestId"], plan.headers["x-request-id"].as_str());
            let recipients = body["recipients"].as_array().unwrap();
            assert!(recipients.len() <= 20);
            for r in recipients {
                sent.push(r["userId"].as_str().unwrap().to_owned());
                let got: BTreeMap<String, String> =
                    serde_json::from_value(r.get("context").cloned().unwrap_or(json!({}))).unwrap();
                assert_eq!(got, context);
            }
        }
        assert_eq!(sent, distinct);
        sandbox.clear_journal();
        client.request_campaign(&request).unwrap();
        let journal = sandbox.journal();
        let recipients: Vec<_> = journal
            .iter()
            .flat_map(|e| e.ajo.as_ref().unwrap().recipients.clone())
            .collect();
        let users: Vec<&str> = recipients.iter().map(|r| r.user_id.as_str()).collect();
        assert_eq!(users, distinct);
        assert!(recipients.iter().all(|r| r.context == context));
        checked += 1;
    }
    assert!(
        checked >= 48,
        "only {checked} generated requests were valid"
    );
    eprintln!("{checked} generated requests checked");
}

// ---------------------------------------------------------------------------
// The sandbox's AJO side

/// Posts to the sandbox as a bare client: status, headers, body.
fn post(url: &str, headers: &[(&str, &str)], body: &str) -> (u16, Option<String>, Value) {
    let mut request = test_support::http::agent().post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.send(body).unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("Retry-After")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.body_mut().read_to_string().unwrap();
    (
        status,
        retry,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn ims_token(sandbox: &Sandbox) -> String {
    let data = sandbox.ajo_data();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=openid",
        data.client_id, data.client_secret
    );
    let (status, _, body) = post(
        &sandbox.ims_token_url(),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn the_sandbox_checks_headers_token_body_and_campaign() {
    let sandbox = Sandbox::start().unwrap();
    let data = sandbox.ajo_data().clone();
    let url = format!("{}/ajo/im/executions/unitary", sandbox.ajo_endpoint());
    let bearer = format!("Bearer {}", ims_token(&sandbox));
    let good = json!({"requestId": "r-1", "campaignId": WEBINAR, "recipients": [
        {"type": "aep", "userId": "lead@company.com", "namespace": "email", "context": {"WebinarTitle": "T"}}
    ]});
    let headers = |skip: &str, replace: Option<(&str, &str)>| -> Vec<(String, String)> {
        [
            ("Authorization", bearer.as_str()),
            ("x-api-key", data.client_id.as_str()),
            ("x-gw-ims-org-id", data.org_id.as_str()),
            ("x-sandbox-name", data.sandbox_name.as_str()),
            ("x-request-id", "r-1"),
            ("Content-Type", "application/json"),
        ]
        .into_iter()
        .filter(|(name, _)| *name != skip)
        .map(|(name, value)| match replace {
            Some((n, v)) if n == name => (name.to_owned(), v.to_owned()),
            _ => (name.to_owned(), value.to_owned()),
        })
        .collect()
    };
    let send = |headers: Vec<(String, String)>, body: &Value| {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let (status, _, answer) = post(&url, &headers, &body.to_string());
        (status, answer)
    };
    type Headers = Vec<(String, String)>;
    let cases: Vec<(&str, Headers, Value, u16)> = vec![
        (
            "no token",
            headers("Authorization", None),
            good.clone(),
            401,
        ),
        (
            "unknown token",
            headers("", Some(("Authorization", "Bearer nope"))),
            good.clone(),
            401,
        ),
        ("no api key", headers("x-api-key", None), good.clone(), 400),
        (
            "wrong api key",
            headers("", Some(("x-api-key", "other"))),
            good.clone(),
            403,
        ),
        (
            "no org",
            headers("x-gw-ims-org-id", None),
            good.clone(),
            400,
        ),
        (
            "wrong org",
            headers("", Some(("x-gw-ims-org-id", "X@AdobeOrg"))),
            good.clone(),
            403,
        ),
        (
            "no sandbox",
            headers("x-sandbox-name", None),
            good.clone(),
            400,
        ),
        (
            "wrong sandbox",
            headers("", Some(("x-sandbox-name", "dev"))),
            good.clone(),
            403,
        ),
        (
            "no request id",
            headers("x-request-id", None),
            good.clone(),
            400,
        ),
        (
            "not JSON",
            headers("", Some(("Content-Type", "text/plain"))),
            good.clone(),
            415,
        ),
        (
            "no requestId",
            headers("", None),
            json!({"campaignId": WEBINAR, "recipients": good["recipients"]}),
            400,
        ),
        (
            "21 recipients",
            headers("", None),
            json!({"requestId": "r", "campaignId": WEBINAR, "recipients": vec![good["recipients"][0].clone(); 21]}),
            400,
        ),
        (
            "no recipients",
            headers("", None),
            json!({"requestId": "r", "campaignId": WEBINAR, "recipients": []}),
            400,
        ),
        (
            "recipient type lead",
            headers("", None),
            json!({"requestId": "r", "campaignId": WEBINAR, "recipients": [{"type": "lead", "userId": "a", "namespace": "email"}]}),
            400,
        ),
        (
            "recipient without namespace",
            headers("", None),
            json!({"requestId": "r", "campaignId": WEBINAR, "recipients": [{"type": "aep", "userId": "a"}]}),
            400,
        ),
        (
            "unknown campaign",
            headers("", None),
            json!({"requestId": "r", "campaignId": "nope", "recipients": good["recipients"]}),
            404,
        ),
        (
            "ended campaign",
            headers("", None),
            json!({"requestId": "r", "campaignId": "e5d4c3b2-a1f0-4e9d-8c7b-6a5f4e3d2c1b", "recipients": good["recipients"]}),
            400,
        ),
    ];
    let spec = spec();
    for (name, headers, body, status) in cases {
        let (got, answer) = send(headers, &body);
        assert_eq!(got, status, "{name}: {answer}");
        // Adobe's error format.
        assert_eq!(
            validate(
                &spec,
                &json!({"$ref": "#/components/schemas/errorResponse"}),
                &answer,
                "$"
            ),
            Ok(()),
            "{name}: {answer}"
        );
        assert_eq!(answer["status"], status, "{name}");
    }
    assert!(sandbox.journal().is_empty(), "nothing ran");
    let (status, answer) = send(headers("", None), &good);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        validate(
            &spec,
            &spec["operations"]["postIMUnitaryMessageExecution"]["responses"]["202"],
            &answer,
            "$"
        ),
        Ok(())
    );
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].api, "ajo");
    assert_eq!(journal[0].lead_ids, [1002200]);
    let execution = journal[0].ajo.as_ref().unwrap();
    assert_eq!(
        execution.execution_id,
        answer["executionId"].as_str().unwrap()
    );
    assert_eq!(execution.request_id, "r-1");
    assert_eq!(execution.campaign_id, WEBINAR);
    assert_eq!(execution.recipients[0].context["WebinarTitle"], "T");
    // The IMS token endpoint refuses bad credentials.
    let (status, _, body) = post(
        &sandbox.ims_token_url(),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!(
            "grant_type=client_credentials&client_id={}&client_secret=wrong&scope=openid",
            data.client_id
        ),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[test]
fn an_ended_or_unknown_campaign_is_a_refusal_and_runs_nothing() {
    let sandbox = Sandbox::start().unwrap();
    let client = sandbox.ajo_client().unwrap();
    // Ended: 400. Unknown: the API's own 404, a refusal that does not
    // retire Journey Optimizer (action stop, not fall back).
    let ended = CampaignRequest::new(
        CampaignTarget::ajo("e5d4c3b2-a1f0-4e9d-8c7b-6a5f4e3d2c1b", []),
        emails(1..=1),
    )
    .unwrap();
    let err = client.request_campaign(&ended).unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(err.delivery(), Delivery::Refused);
    let unknown =
        CampaignRequest::new(CampaignTarget::ajo("no-such-campaign", []), emails(1..=1)).unwrap();
    let err = client.request_campaign(&unknown).unwrap_err();
    assert!(matches!(err, Error::Lookup(_)), "{err:?}");
    assert!(err.to_string().contains("Campaign not found"), "{err}");
    let class = err.classify();
    assert_eq!(
        (class.delivery, class.action),
        (Delivery::Refused, marketo_campaign::Action::Stop)
    );
    // A campaign that starts later.
    let mut data = SandboxData::default();
    data.ajo.campaigns[0].start = Some("2999-01-01T00:00:00Z".into());
    let sandbox2 = Sandbox::start_with(SandboxConfig::new().data(data)).unwrap();
    let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=1)).unwrap();
    let err = sandbox2
        .ajo_client()
        .unwrap()
        .request_campaign(&request)
        .unwrap_err();
    assert_eq!(err.delivery(), Delivery::Refused, "{err}");
    assert!(sandbox.journal().is_empty() && sandbox2.journal().is_empty());
}

#[test]
fn the_sandbox_rate_limit_answers_429_with_retry_after_and_the_client_waits_it() {
    let sandbox =
        Sandbox::start_with(SandboxConfig::new().rate_limit(1, Duration::from_secs(1))).unwrap();
    let client = sandbox
        .ajo_client_builder()
        .retry(RetryPolicy::default().backoff(Duration::from_millis(10), Duration::from_millis(20)))
        .rate_limit(None)
        .build()
        .unwrap();
    let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=40)).unwrap();
    let started = Instant::now();
    let outcome = client.request_campaign(&request).unwrap();
    let elapsed = started.elapsed();
    assert!(outcome.is_complete());
    // The second call was refused (429, Retry-After: 1) and sent again
    // after the wait, not after the 10 ms backoff.
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 2);
    let ids: Vec<&str> = journal
        .iter()
        .map(|e| e.ajo.as_ref().unwrap().request_id.as_str())
        .collect();
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn an_expired_ims_token_is_renewed_and_the_call_sent_once_more() {
    let sandbox = Sandbox::start().unwrap();
    let client = sandbox.ajo_client().unwrap();
    let request = CampaignRequest::new(CampaignTarget::id(1234), emails(1..=1)).unwrap();
    client.request_campaign(&request).unwrap();
    sandbox.expire_tokens();
    client.request_campaign(&request).unwrap();
    assert_eq!(sandbox.journal().len(), 2);
}

#[test]
fn faults_strike_ajo_calls_and_the_fault_log_names_them() {
    // The second AJO call runs, then its answer is cut: unknown, journaled
    // once, not repeated; the calls after it are not attempted.
    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .data(SandboxData::default().with_generated_leads(1, 100))
            .faults([FaultRule::on_call(Fault::ResetMidResponse, 2).api(Api::Ajo)]),
    )
    .unwrap();
    let client = sandbox.ajo_client_builder().retry(quick()).build().unwrap();
    let request = CampaignRequest::new(CampaignTarget::id(4496), emails(1..=60)).unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    assert_eq!(err.delivery(), Delivery::Unknown);
    let outcome = err.outcome().unwrap();
    assert_eq!(outcome.accepted_chunks(), 1);
    assert_eq!(outcome.not_attempted().count(), 20);
    assert_eq!(sandbox.journal().len(), 2, "the cut call ran, once");
    let log = sandbox.fault_log();
    assert_eq!((log[0].api, log[0].call, log[0].ran), (Api::Ajo, 2, true));
    assert_eq!(log[0].path, "/ajo/im/executions/unitary");
    // Rules for any API strike AJO calls; the identity rule strikes IMS.
    sandbox.clear_journal();
    sandbox.clear_fault_log();
    sandbox
        .inject(FaultRule::on_call(Fault::ResetAfterRequest, 1).api(Api::Identity))
        .unwrap();
    sandbox
        .inject(FaultRule::on_call(
            Fault::HttpStatus {
                status: 503,
                body: true,
                runs: false,
            },
            1,
        ))
        .unwrap();
    let fresh = sandbox.ajo_client_builder().retry(quick()).build().unwrap();
    let err = fresh
        .request_campaign(&CampaignRequest::new(CampaignTarget::id(4496), emails(1..=1)).unwrap())
        .unwrap_err();
    assert_eq!(err.delivery(), Delivery::Unknown, "{err}");
    let apis: Vec<Api> = sandbox.fault_log().iter().map(|e| e.api).collect();
    assert_eq!(
        apis,
        [Api::Identity, Api::Ajo],
        "the token was asked again, then the 503"
    );
    assert!(sandbox.journal().is_empty());
}
