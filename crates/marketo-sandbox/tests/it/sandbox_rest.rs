//! The sandbox's REST API, identity service, limits and SOAP retirement,
//! driven over HTTP with ureq. Every test checks the HTTP answers and what
//! the journal says ran.

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use marketo_campaign::{Clock, SystemClock};
use marketo_sandbox::{
    JournalEntry, JournalToken, Sandbox, SandboxConfig, SandboxData, SandboxLead,
};
use serde_json::{json, Value};
use test_support::http::{agent, read};

/// A clock the test moves by hand.
#[derive(Debug, Clone)]
struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    fn new() -> Self {
        ManualClock(Arc::new(Mutex::new(
            Utc.with_ymd_and_hms(2026, 8, 1, 12, 0, 0).unwrap(),
        )))
    }

    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += chrono::Duration::from_std(by).unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Asks the identity service with these parameters.
fn identity(sandbox: &Sandbox, params: &[(&str, &str)]) -> (u16, Value) {
    let mut request = agent().get(format!("{}/oauth/token", sandbox.identity_endpoint()));
    for (name, value) in params {
        request = request.query(*name, *value);
    }
    let (status, body) = read(request.call());
    (status, json_of(&body))
}

fn good_credentials(sandbox: &Sandbox) -> [(&'static str, String); 3] {
    [
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", sandbox.client_id().to_owned()),
        ("client_secret", sandbox.client_secret().to_owned()),
    ]
}

/// A valid access token and its `expires_in`.
fn token_with_life(sandbox: &Sandbox) -> (String, i64) {
    let credentials = good_credentials(sandbox);
    let params: Vec<(&str, &str)> = credentials.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (status, body) = identity(sandbox, &params);
    assert_eq!(status, 200, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["expires_in"].as_i64().unwrap(),
    )
}

fn token(sandbox: &Sandbox) -> String {
    token_with_life(sandbox).0
}

/// A sandbox of `config`, and a valid access token.
fn with_token(config: SandboxConfig) -> (Sandbox, String) {
    let sandbox = Sandbox::start_with(config).unwrap();
    let token = token(&sandbox);
    (sandbox, token)
}

/// `SandboxConfig` with `max_concurrent` calls per API, each taking 300 ms.
fn slow_calls(max_concurrent: usize) -> SandboxConfig {
    SandboxConfig::new()
        .max_concurrent(max_concurrent)
        .latency(Duration::from_millis(300))
}

/// The default data and `n` generated leads, from id 1.
fn generated_leads(n: u32) -> SandboxConfig {
    SandboxConfig::new().data(SandboxData::default().with_generated_leads(1, n))
}

/// `GET {rest}{path}` with these query parameters and an optional bearer
/// token; the JSON answer.
fn get(sandbox: &Sandbox, path: &str, query: &[(&str, &str)], token: Option<&str>) -> Value {
    let mut request = agent().get(format!("{}{path}", sandbox.rest_endpoint()));
    for (name, value) in query {
        request = request.query(*name, *value);
    }
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let (status, body) = read(request.call());
    assert_eq!(status, 200, "{body}");
    json_of(&body)
}

/// `POST {rest}{path}` with a content type and body; status and body.
fn post_raw(
    sandbox: &Sandbox,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let mut request = agent()
        .post(format!("{}{path}", sandbox.rest_endpoint()))
        .header("Content-Type", content_type);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    read(request.send(body.as_bytes()))
}

/// `POST` JSON; the JSON answer (always HTTP 200 for API calls).
fn post(sandbox: &Sandbox, path: &str, token: &str, body: &Value) -> Value {
    let (status, body) = post_raw(
        sandbox,
        path,
        Some(token),
        "application/json",
        &body.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    json_of(&body)
}

/// `POST /rest/v1/campaigns/{campaign}/schedule.json`; the JSON answer.
fn schedule(sandbox: &Sandbox, token: &str, campaign: u32, body: &Value) -> Value {
    post(
        sandbox,
        &format!("/rest/v1/campaigns/{campaign}/schedule.json"),
        token,
        body,
    )
}

/// `GET /rest/v1/leads.json` by `filter_type` for `values`; the JSON answer.
fn leads(sandbox: &Sandbox, token: &str, filter_type: &str, values: &str) -> Value {
    get(
        sandbox,
        "/rest/v1/leads.json",
        &[("filterType", filter_type), ("filterValues", values)],
        Some(token),
    )
}

/// The journal after two runs of batch campaign 5000 over `api`, the first
/// at 2026-09-01T10:00:00-07:00 with `{{my.Subject}}` = `subject`, the
/// second now.
fn two_schedules(sandbox: &Sandbox, api: &str, subject: &str) -> Vec<JournalEntry> {
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0].api, api);
    assert_eq!(journal[0].campaign_id, 5000);
    assert!(journal[0].lead_ids.is_empty());
    assert_eq!(
        journal[0].tokens,
        [JournalToken {
            name: "{{my.Subject}}".into(),
            value: subject.into()
        }]
    );
    assert_eq!(
        journal[0].run_at.as_deref(),
        Some("2026-09-01T10:00:00-07:00")
    );
    assert_eq!(journal[1].run_at.as_deref(), Some(""));
    journal
}

fn trigger(sandbox: &Sandbox, token: &str, campaign: u32, leads: &[u64]) -> Value {
    let leads: Vec<Value> = leads.iter().map(|id| json!({ "id": id })).collect();
    post(
        sandbox,
        &format!("/rest/v1/campaigns/{campaign}/trigger.json"),
        token,
        &json!({"input": {"leads": leads}}),
    )
}

/// The single error code of a `success:false` answer, checking the envelope.
fn error_code(answer: &Value) -> String {
    assert_eq!(answer["success"], false, "{answer}");
    assert!(answer["requestId"].as_str().unwrap().contains('#'));
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{answer}");
    errors[0]["code"].as_str().unwrap().to_owned()
}

fn error_message(answer: &Value) -> String {
    answer["errors"][0]["message"].as_str().unwrap().to_owned()
}

fn result(answer: &Value) -> &Vec<Value> {
    assert_eq!(answer["success"], true, "{answer}");
    assert!(answer["requestId"].as_str().unwrap().contains('#'));
    answer["result"].as_array().unwrap()
}

fn ids(answer: &Value) -> Vec<u64> {
    result(answer)
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

// ---------------------------------------------------------------- identity

#[test]
fn identity_returns_the_same_token_with_its_remaining_life() {
    let clock = ManualClock::new();
    let sandbox = Sandbox::start_with(SandboxConfig::new().clock(clock.clone())).unwrap();
    let (first, life) = token_with_life(&sandbox);
    assert_eq!(life, 3600);
    assert!(first.len() >= 20);

    clock.advance(Duration::from_secs(1000));
    assert_eq!(token_with_life(&sandbox), (first.clone(), 2600));
    clock.advance(Duration::from_millis(2_599_500));
    // Half a second left: the same token, expires_in 0.
    assert_eq!(token_with_life(&sandbox), (first.clone(), 0));
    clock.advance(Duration::from_millis(500));
    let (second, life) = token_with_life(&sandbox);
    assert_ne!(second, first);
    assert_eq!(life, 3600);

    // POST with query parameters works too, and answers the full shape.
    let url = format!(
        "{}/oauth/token?grant_type=client_credentials&client_id={}&client_secret={}",
        sandbox.identity_endpoint(),
        sandbox.client_id(),
        sandbox.client_secret()
    );
    let (status, body) = read(agent().post(&url).send_empty());
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!({"access_token": second, "token_type": "bearer", "expires_in": 3600, "scope": "apiuser@sandbox.example"})
    );
    assert!(sandbox.journal().is_empty());
}

#[test]
fn identity_issues_a_new_token_after_expire_tokens() {
    let sandbox = Sandbox::start().unwrap();
    let first = token(&sandbox);
    assert_eq!(token(&sandbox), first);
    sandbox.expire_tokens();
    let second = token(&sandbox);
    assert_ne!(second, first);
    // Over HTTP as well.
    let (status, _) = read(
        agent()
            .post(format!("{}/sandbox/tokens/expire", sandbox.base_url()))
            .send_empty(),
    );
    assert_eq!(status, 204);
    assert_ne!(token(&sandbox), second);
    assert!(sandbox.journal().is_empty());
}

#[test]
fn identity_refuses_bad_credentials_with_401() {
    let sandbox = Sandbox::start().unwrap();
    let id = sandbox.client_id().to_owned();
    let secret = sandbox.client_secret().to_owned();
    let cases: [&[(&str, &str)]; 5] = [
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "wrong"),
        ],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "wrong"),
            ("client_secret", &secret),
        ],
        &[("client_id", &id), ("client_secret", &secret)],
        &[
            ("grant_type", "password"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
        &[],
    ];
    for params in cases {
        let (status, body) = identity(&sandbox, params);
        assert_eq!(status, 401, "{params:?}");
        assert_eq!(
            body,
            json!({"error": "unauthorized", "error_description": "Bad client credentials"})
        );
    }
    assert!(sandbox.journal().is_empty());
}

#[test]
fn credentials_and_endpoints_are_advertised() {
    let sandbox = Sandbox::start().unwrap();
    assert_eq!(sandbox.rest_endpoint(), sandbox.base_url());
    assert_eq!(
        sandbox.identity_endpoint(),
        format!("{}/identity", sandbox.base_url())
    );
    assert_eq!(sandbox.client_id(), SandboxData::default().client_id);
    let line = json_of(&sandbox.startup_line());
    assert_eq!(line["rest_endpoint"], sandbox.rest_endpoint());
    assert_eq!(line["identity_endpoint"], sandbox.identity_endpoint());
    assert_eq!(line["client_id"], sandbox.client_id());
    assert_eq!(line["client_secret"], sandbox.client_secret());
    assert_eq!(line["soap_endpoint"], sandbox.soap_endpoint());
    // Credentials can be set in the data file.
    let data =
        SandboxData::from_json(r#"{"client_id":"my-id","client_secret":"my-secret"}"#).unwrap();
    let sandbox = Sandbox::start_with(SandboxConfig::new().data(data)).unwrap();
    assert_eq!(
        (sandbox.client_id(), sandbox.client_secret()),
        ("my-id", "my-secret")
    );
    let (status, _) = identity(
        &sandbox,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "my-id"),
            ("client_secret", "my-secret"),
        ],
    );
    assert_eq!(status, 200);
    assert!(sandbox.journal().is_empty());
}

// ------------------------------------------------------------------ tokens

#[test]
fn missing_bogus_and_query_parameter_tokens_are_601() {
    let sandbox = Sandbox::start().unwrap();
    let good = token(&sandbox);
    let path = "/rest/v1/campaigns/4496/trigger.json";
    let body = json!({"input": {"leads": [{"id": 1002200}]}}).to_string();
    let answers = [
        post_raw(&sandbox, path, None, "application/json", &body),
        post_raw(&sandbox, path, Some("bogus"), "application/json", &body),
        // The access_token query parameter is not accepted.
        post_raw(
            &sandbox,
            &format!("{path}?access_token={good}"),
            None,
            "application/json",
            &body,
        ),
    ];
    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
        let answer = json_of(&body);
        assert_eq!(error_code(&answer), "601");
        assert_eq!(error_message(&answer), "Access token invalid");
    }
    // A scheme other than Bearer does not count either.
    let (_, body) = read(
        agent()
            .get(format!(
                "{}/rest/v1/campaigns.json",
                sandbox.rest_endpoint()
            ))
            .header("Authorization", format!("Basic {good}"))
            .call(),
    );
    assert_eq!(error_code(&json_of(&body)), "601");
    assert!(sandbox.journal().is_empty());
    // The same token in the header works.
    assert_eq!(ids(&trigger(&sandbox, &good, 4496, &[1002200])), [4496]);
    assert_eq!(sandbox.journal().len(), 1);
}

#[test]
fn expired_tokens_are_602_until_renewed() {
    let clock = ManualClock::new();
    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .clock(clock.clone())
            .token_lifetime(Duration::from_secs(60)),
    )
    .unwrap();
    let first = token(&sandbox);
    result(&trigger(&sandbox, &first, 4496, &[1002200]));
    sandbox.expire_tokens();
    let answer = trigger(&sandbox, &first, 4496, &[1002200]);
    assert_eq!(error_code(&answer), "602");
    assert_eq!(error_message(&answer), "Access token expired");
    assert_eq!(sandbox.journal().len(), 1);

    // A token also expires when its life runs out.
    let second = token(&sandbox);
    assert_ne!(second, first);
    result(&trigger(&sandbox, &second, 4496, &[1002201]));
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        error_code(&trigger(&sandbox, &second, 4496, &[1002201])),
        "602"
    );
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[1].lead_ids, [1002201]);
}

// ------------------------------------------------------------------ limits

#[test]
fn rate_limit_is_606_until_the_window_passes() {
    let (sandbox, token) = with_token(SandboxConfig::new().rate_limit(5, Duration::from_secs(2)));
    for _ in 0..5 {
        result(&trigger(&sandbox, &token, 4496, &[1002200]));
        // Identity calls do not count.
        token_with_life(&sandbox);
    }
    let answer = trigger(&sandbox, &token, 4496, &[1002200]);
    assert_eq!(error_code(&answer), "606");
    assert_eq!(
        error_message(&answer),
        "Max rate limit '5' exceeded with in '2' secs"
    );
    // Refused calls do not count either, and look-ups count like triggers.
    assert_eq!(
        error_code(&get(&sandbox, "/rest/v1/campaigns.json", &[], Some(&token))),
        "606"
    );
    assert_eq!(sandbox.journal().len(), 5);
    std::thread::sleep(Duration::from_millis(2100));
    result(&trigger(&sandbox, &token, 4496, &[1002201]));
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 6);
    assert_eq!(journal[5].lead_ids, [1002201]);
}

#[test]
fn concurrency_limit_is_615() {
    let (sandbox, token) = with_token(slow_calls(2));
    let barrier = Barrier::new(4);
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    trigger(&sandbox, &token, 4496, &[1002200])
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let accepted = answers.iter().filter(|a| a["success"] == true).count();
    let refused: Vec<String> = answers
        .iter()
        .filter(|a| a["success"] == false)
        .map(error_code)
        .collect();
    assert!((1..=2).contains(&accepted), "{answers:?}");
    assert_eq!(accepted + refused.len(), 4);
    assert!(refused.iter().all(|code| code == "615"), "{refused:?}");
    assert_eq!(
        error_message(answers.iter().find(|a| a["success"] == false).unwrap()),
        "Concurrent access limit reached"
    );
    assert_eq!(sandbox.journal().len(), accepted);
    // Once the calls are over, there is room again.
    result(&trigger(&sandbox, &token, 4496, &[1002200]));
    assert_eq!(sandbox.journal().len(), accepted + 1);
}

// ----------------------------------------------------------------- trigger

#[test]
fn trigger_runs_and_is_journaled_as_rest() {
    let (sandbox, token) = with_token(SandboxConfig::new());
    let answer = post(
        &sandbox,
        "/rest/v1/campaigns/1234/trigger.json",
        &token,
        &json!({"input": {
            "leads": [{"id": 1002201}, {"id": 1002200}, {"id": 1002201}],
            "tokens": [
                {"name": "{{my.WebinarTitle}}", "value": "Rust & REST <live> é"},
                {"name": "{{my.JoinLink}}", "value": "https://x.example/?a=1&b=2"}
            ]
        }}),
    );
    // Marketo documents `[{"id":1234}]`; the sandbox answers the whole
    // Campaign the official Swagger requires, which holds it.
    assert_eq!(result(&answer).len(), 1);
    assert_eq!(result(&answer)[0]["id"], 1234);
    assert_eq!(result(&answer)[0]["name"], "Send Webinar Reminder");
    assert_eq!(result(&answer)[0]["type"], "trigger");
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].api, "rest");
    assert_eq!(journal[0].campaign_id, 1234);
    // Deduplicated, in the order received.
    assert_eq!(journal[0].lead_ids, [1002201, 1002200]);
    assert_eq!(
        journal[0].tokens,
        [
            JournalToken {
                name: "{{my.WebinarTitle}}".into(),
                value: "Rust & REST <live> é".into()
            },
            JournalToken {
                name: "{{my.JoinLink}}".into(),
                value: "https://x.example/?a=1&b=2".into()
            },
        ]
    );
    assert_eq!(journal[0].ignored_keys, 0);
    assert_eq!(journal[0].run_at, None);
    // The JSON journal keeps its shape: no run_at for a triggered run.
    let (_, body) = read(
        agent()
            .get(format!("{}/sandbox/journal", sandbox.base_url()))
            .call(),
    );
    assert!(json_of(&body)[0].get("run_at").is_none(), "{body}");
}

#[test]
fn wrong_content_type_is_612_and_bad_json_is_609() {
    let (sandbox, token) = with_token(SandboxConfig::new());
    let path = "/rest/v1/campaigns/4496/trigger.json";
    let good = json!({"input": {"leads": [{"id": 1002200}]}}).to_string();
    for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let (status, body) = post_raw(&sandbox, path, Some(&token), content_type, &good);
        assert_eq!(status, 200);
        let answer = json_of(&body);
        assert_eq!(error_code(&answer), "612", "{content_type:?}");
        assert_eq!(error_message(&answer), "Invalid Content Type");
    }
    for bad in ["{", "", "not json", "{\"input\": {\"leads\": [}}"] {
        let (_, body) = post_raw(
            &sandbox,
            path,
            Some(&token),
            "application/json; charset=utf-8",
            bad,
        );
        let answer = json_of(&body);
        assert_eq!(error_code(&answer), "609", "{bad:?}");
        assert_eq!(error_message(&answer), "Invalid JSON");
    }
    assert!(sandbox.journal().is_empty());
}

#[test]
fn batch_and_unknown_campaigns_are_refused() {
    let (sandbox, token) = with_token(SandboxConfig::new());
    let answer = trigger(&sandbox, &token, 5000, &[1002200]);
    assert_eq!(error_code(&answer), "1003");
    assert_eq!(
        error_message(&answer),
        "Campaign 'Monthly Newsletter' is a batch campaign and cannot be triggered"
    );
    for unknown in [999_999, 4_294_967_295] {
        let answer = trigger(&sandbox, &token, unknown, &[1002200]);
        assert_eq!(error_code(&answer), "1013");
        assert_eq!(error_message(&answer), "Campaign not found");
    }
    // An id too large for Marketo is not found either.
    let (_, body) = post_raw(
        &sandbox,
        "/rest/v1/campaigns/99999999999999999999/trigger.json",
        Some(&token),
        "application/json",
        r#"{"input":{"leads":[{"id":1002200}]}}"#,
    );
    assert_eq!(error_code(&json_of(&body)), "1013");
    assert!(sandbox.journal().is_empty());
}

#[test]
fn more_than_100_leads_or_tokens_is_1003_and_nothing_runs() {
    let (sandbox, token) = with_token(generated_leads(101));
    let leads: Vec<u64> = (1..=101).collect();
    let answer = trigger(&sandbox, &token, 4496, &leads);
    assert_eq!(error_code(&answer), "1003");
    assert_eq!(error_message(&answer), "leads exceeds the limit of 100");

    let tokens: Vec<Value> = (0..101)
        .map(|i| json!({"name": format!("{{{{my.T{i}}}}}"), "value": "v"}))
        .collect();
    let answer = post(
        &sandbox,
        "/rest/v1/campaigns/4496/trigger.json",
        &token,
        &json!({"input": {"leads": [{"id": 1}], "tokens": tokens}}),
    );
    assert_eq!(error_code(&answer), "1003");
    assert_eq!(error_message(&answer), "tokens exceeds the limit of 100");

    for body in [
        json!({"input": {"leads": []}}),
        json!({"input": {}}),
        json!({}),
        json!({"input": {"leads": [{"id": "1"}]}}),
        json!({"input": {"leads": [{"id": -1}]}}),
        json!({"input": {"leads": [{"id": 1}], "tokens": [{"name": "{{my.X}}"}]}}),
        json!([1, 2]),
    ] {
        let answer = post(
            &sandbox,
            "/rest/v1/campaigns/4496/trigger.json",
            &token,
            &body,
        );
        assert_eq!(error_code(&answer), "1003", "{body}");
    }
    assert!(sandbox.journal().is_empty());
    // Exactly 100 leads run.
    result(&trigger(&sandbox, &token, 4496, &leads[..100]));
    assert_eq!(sandbox.journal()[0].lead_ids.len(), 100);
}

#[test]
fn unknown_lead_is_1004_and_nothing_runs() {
    let (sandbox, token) = with_token(SandboxConfig::new());
    let leads = [1002200, 42, 1002201, 42, 5_000_000_000];
    let answer = trigger(&sandbox, &token, 4496, &leads);
    assert_eq!(error_code(&answer), "1004");
    assert_eq!(error_message(&answer), "Lead(s) not found: 42, 5000000000");
    assert!(sandbox.journal().is_empty());
}

// ---------------------------------------------------------------- schedule

#[test]
fn schedule_runs_batch_campaigns_only() {
    let (sandbox, token) = with_token(SandboxConfig::new());
    let answer = schedule(
        &sandbox,
        &token,
        5000,
        &json!({"input": {
            "runAt": "2026-09-01T10:00:00-07:00",
            "tokens": [{"name": "{{my.Subject}}", "value": "September"}],
            "cloneToProgramName": "Newsletter September"
        }}),
    );
    assert_eq!(result(&answer).len(), 1);
    assert_eq!(result(&answer)[0]["id"], 5000);
    assert_eq!(result(&answer)[0]["type"], "batch");
    // Without a body: run "now".
    let (status, body) = post_raw(
        &sandbox,
        "/rest/v1/campaigns/5000/schedule.json",
        Some(&token),
        "",
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(ids(&json_of(&body)), [5000]);

    let journal = two_schedules(&sandbox, "rest", "September");
    assert!(journal[1].tokens.is_empty());

    // A trigger campaign cannot be scheduled; unknown ones are not found.
    let answer = schedule(&sandbox, &token, 4496, &json!({}));
    assert_eq!(error_code(&answer), "1003");
    assert!(
        error_message(&answer).contains("not a batch campaign"),
        "{answer}"
    );
    let answer = schedule(&sandbox, &token, 777, &json!({}));
    assert_eq!(error_code(&answer), "1013");
    let answer = schedule(
        &sandbox,
        &token,
        5000,
        &json!({"input": {"runAt": "next tuesday"}}),
    );
    assert_eq!(error_code(&answer), "1001");
    assert_eq!(sandbox.journal().len(), 2);
}

// ----------------------------------------------------------------- look-ups

#[test]
fn campaigns_json_filters_by_name_and_program() {
    let (sandbox, token) = with_token(SandboxConfig::new());
    let path = "/rest/v1/campaigns.json";
    assert_eq!(
        ids(&get(&sandbox, path, &[], Some(&token))),
        [4496, 1234, 5000]
    );
    let answer = get(
        &sandbox,
        path,
        &[
            ("name", "Request Campaign Demo"),
            ("programName", "Demo Program"),
        ],
        Some(&token),
    );
    assert_eq!(
        result(&answer),
        &[json!({
            "id": 4496,
            "name": "Request Campaign Demo",
            "description": "",
            "type": "trigger",
            "programName": "Demo Program",
            "programId": 1001,
            "workspaceName": "Default",
            "createdAt": "2024-01-15T17:00:00Z",
            "updatedAt": "2024-06-03T09:30:00Z",
            "active": true
        })]
    );
    // Comma-separated lists, exact match.
    let answer = get(
        &sandbox,
        path,
        &[("name", "Monthly Newsletter,Send Webinar Reminder")],
        Some(&token),
    );
    assert_eq!(ids(&answer), [1234, 5000]);
    assert_eq!(result(&answer)[1]["type"], "batch");
    assert_eq!(
        ids(&get(
            &sandbox,
            path,
            &[("programName", "Webinars,Newsletters")],
            Some(&token)
        )),
        [1234, 5000]
    );
    assert!(ids(&get(
        &sandbox,
        path,
        &[("name", "request campaign demo")],
        Some(&token)
    ))
    .is_empty());
    assert!(ids(&get(
        &sandbox,
        path,
        &[
            ("name", "Request Campaign Demo"),
            ("programName", "Webinars")
        ],
        Some(&token)
    ))
    .is_empty());
    assert_eq!(
        error_code(&get(&sandbox, path, &[], None)),
        "601",
        "look-ups need a token too"
    );
    assert!(sandbox.journal().is_empty());
}

#[test]
fn leads_json_answers_every_filter_type() {
    let mut data = SandboxData::default();
    data.leads.push(SandboxLead {
        id: 7,
        email: Some("Seven@Example.com".into()),
        cookie: Some("c-seven-1, c-seven-2".into()),
        sfdc_account_id: Some("0015000000XyZaAAAV".into()),
        ..SandboxLead::default()
    });
    let (sandbox, token) = with_token(SandboxConfig::new().data(data));
    let lead = &SandboxData::default().leads[0];
    let cases: [(&str, &str, &[u64]); 10] = [
        ("id", "1002200", &[1002200]),
        ("email", "LEAD@Company.COM", &[1002200]),
        ("cookies", lead.cookie.as_deref().unwrap(), &[1002200]),
        // A lead's cookies field holds several: each finds it.
        ("cookies", "c-seven-1", &[7]),
        ("cookies", "c-seven-2", &[7]),
        (
            "sfdcAccountId",
            "0015000000XyZaAAAV",
            &[7, 1002200, 1002201],
        ),
        ("sfdcContactId", "0035000000UvWxYAAV", &[1002201]),
        ("sfdcLeadId", "00Q5000000FgHiJEAV", &[1002200]),
        ("sfdcLeadOwnerId", "0055000000KlMnOAAV", &[1002200, 1002201]),
        ("sfdcOpptyId", "0065000000EfGhIAAV", &[1002201]),
    ];
    for (filter_type, value, expected) in cases {
        let answer = get(
            &sandbox,
            "/rest/v1/leads.json",
            &[
                ("filterType", filter_type),
                ("filterValues", value),
                ("fields", "id"),
            ],
            Some(&token),
        );
        assert_eq!(ids(&answer), expected, "{filter_type}");
        // Other values of the same type find nothing.
        let answer = get(
            &sandbox,
            "/rest/v1/leads.json",
            &[("filterType", filter_type), ("filterValues", "nothing")],
            Some(&token),
        );
        assert!(ids(&answer).is_empty(), "{filter_type}");
    }
    // Several values, results sorted by id, one per lead, asked-for fields.
    let answer = get(
        &sandbox,
        "/rest/v1/leads.json",
        &[
            ("filterType", "email"),
            (
                "filterValues",
                "anotherlead@company.com,seven@example.com,nobody@x.com,LEAD@company.com,lead@company.com",
            ),
            ("fields", "id,email,sfdcLeadId,noSuchField"),
        ],
        Some(&token),
    );
    assert_eq!(
        result(&answer),
        &[
            json!({"id": 7, "email": "Seven@Example.com"}),
            json!({"id": 1002200, "email": "lead@company.com", "sfdcLeadId": "00Q5000000FgHiJEAV"}),
            json!({"id": 1002201, "email": "anotherlead@company.com", "sfdcLeadId": "00Q5000000ZaBcDEAV"}),
        ]
    );
    // Ids batch like any value; unknown ones find nothing.
    let answer = get(
        &sandbox,
        "/rest/v1/leads.json",
        &[
            ("filterType", "id"),
            ("filterValues", "1002201,7,42,7"),
            ("fields", "id"),
        ],
        Some(&token),
    );
    assert_eq!(result(&answer), &[json!({"id": 7}), json!({"id": 1002201})]);
    // Cookies batch too; the answer shows the whole field.
    let answer = get(
        &sandbox,
        "/rest/v1/leads.json",
        &[
            ("filterType", "cookies"),
            (
                "filterValues",
                &format!("c-seven-2,{}", lead.cookie.as_deref().unwrap()),
            ),
            ("fields", "id,cookies"),
        ],
        Some(&token),
    );
    assert_eq!(
        result(&answer),
        &[
            json!({"id": 7, "cookies": "c-seven-1, c-seven-2"}),
            json!({"id": 1002200, "cookies": lead.cookie.as_deref().unwrap()}),
        ]
    );
    // A documented filter type the sandbox's leads have no value for.
    let answer = get(
        &sandbox,
        "/rest/v1/leads.json",
        &[("filterType", "twitterId"), ("filterValues", "x")],
        Some(&token),
    );
    assert!(ids(&answer).is_empty(), "{answer}");
    assert!(sandbox.journal().is_empty());
}

#[test]
fn leads_json_checks_its_parameters() {
    let (sandbox, token) = with_token(SandboxConfig::new());
    let path = "/rest/v1/leads.json";
    for query in [
        &[("filterValues", "a@b.c")][..],
        &[("filterType", "email")],
        &[("filterType", "email"), ("filterValues", "")],
    ] {
        let answer = get(&sandbox, path, query, Some(&token));
        assert_eq!(error_code(&answer), "1003", "{query:?}");
        assert!(
            error_message(&answer).contains("filter"),
            "{query:?}: {answer}"
        );
    }
    // Only the filter types Marketo documents: leadOwnerEmail is a lead
    // field, but not one leads.json filters on. Marketo answers 1011.
    for filter_type in ["leadOwnerEmail", "Email", "firstName", "ID"] {
        let answer = leads(&sandbox, &token, filter_type, "a@b.c");
        assert_eq!(error_code(&answer), "1011", "{filter_type}: {answer}");
        assert!(
            error_message(&answer)
                .starts_with(&format!("Lookup field '{filter_type}' not supported")),
            "{answer}"
        );
    }
    // 300 values pass; 301 do not.
    let values: Vec<String> = (0..301).map(|i| format!("l{i}@e.co")).collect();
    let answer = leads(&sandbox, &token, "email", &values[..300].join(","));
    assert!(ids(&answer).is_empty());
    let answer = leads(&sandbox, &token, "email", &values.join(","));
    assert_eq!(error_code(&answer), "1003");
    assert_eq!(
        error_message(&answer),
        "filterValues exceeds the limit of 300"
    );
    // The same limit for ids.
    let ids_list: Vec<String> = (1..=301).map(|i| i.to_string()).collect();
    let answer = leads(&sandbox, &token, "id", &ids_list[..300].join(","));
    assert!(ids(&answer).is_empty(), "{answer}");
    let answer = leads(&sandbox, &token, "id", &ids_list.join(","));
    assert_eq!(error_code(&answer), "1003");
    // A request target longer than 8192 bytes is refused by HTTP.
    let long = format!(
        "{}{path}?filterType=email&filterValues={}",
        sandbox.rest_endpoint(),
        "x".repeat(8200)
    );
    let (status, _) = read(
        agent()
            .get(&long)
            .header("Authorization", format!("Bearer {token}"))
            .call(),
    );
    assert_eq!(status, 414);
    assert!(sandbox.journal().is_empty());
}

#[test]
fn unknown_rest_paths_are_404() {
    let (sandbox, token) = with_token(SandboxConfig::new());
    for (method, path) in [
        ("GET", "/rest/v1/nothing.json"),
        ("POST", "/rest/v1/campaigns.json"),
        ("GET", "/rest/v1/campaigns/4496/trigger.json"),
        ("POST", "/rest/v1/campaigns/abc/trigger.json"),
        ("GET", "/identity/oauth/other"),
    ] {
        let url = format!("{}{path}", sandbox.rest_endpoint());
        let auth = format!("Bearer {token}");
        let response = if method == "GET" {
            agent().get(&url).header("Authorization", &auth).call()
        } else {
            agent()
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send("{}")
        };
        assert_eq!(read(response).0, 404, "{method} {path}");
    }
    assert!(sandbox.journal().is_empty());
}

// -------------------------------------------------------------------- SOAP

/// Posts a hand-written envelope for `operation`, signed now.
fn soap_post(sandbox: &Sandbox, operation: &str, params: &str) -> (u16, String) {
    let timestamp = marketo_campaign::soap::w3c_timestamp(
        SystemClock.now(),
        marketo_campaign::soap::DEFAULT_TIMEZONE,
    );
    let signature = marketo_campaign::soap::request_signature(
        sandbox.soap_encryption_key(),
        &timestamp,
        sandbox.soap_user_id(),
    );
    let element = format!(
        "params{}{}",
        operation[..1].to_ascii_uppercase(),
        &operation[1..]
    );
    let envelope = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Header><ns1:AuthenticationHeader><mktowsUserId>{}</mktowsUserId><requestSignature>{signature}</requestSignature><requestTimestamp>{timestamp}</requestTimestamp></ns1:AuthenticationHeader></SOAP-ENV:Header><SOAP-ENV:Body><ns1:{element}>{params}</ns1:{element}></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
        sandbox.soap_user_id()
    );
    read(
        agent()
            .post(sandbox.soap_endpoint())
            .header("Content-Type", "text/xml; charset=utf-8")
            .header(
                "SOAPAction",
                format!("\"http://www.marketo.com/mktows/{operation}\""),
            )
            .send(envelope.as_bytes()),
    )
}

const REQUEST_4496: &str = "<source>MKTOWS</source><campaignId>4496</campaignId><leadList><leadKey><keyType>IDNUM</keyType><keyValue>1002200</keyValue></leadKey></leadList>";

#[test]
fn retired_soap_answers_410_or_404_and_runs_nothing() {
    let sandbox = Sandbox::start_with(SandboxConfig::new().soap_retired(Some(410))).unwrap();
    let (status, body) = soap_post(&sandbox, "requestCampaign", REQUEST_4496);
    assert_eq!(status, 410);
    assert!(body.starts_with("Gone"), "{body}");
    // Any method, any body.
    let (status, _) = read(agent().get(sandbox.soap_endpoint()).call());
    assert_eq!(status, 410);

    sandbox.retire_soap(Some(404));
    let (status, body) = soap_post(&sandbox, "requestCampaign", REQUEST_4496);
    assert_eq!(status, 404);
    assert!(body.starts_with("Not Found"), "{body}");
    assert!(sandbox.journal().is_empty());

    // REST keeps working meanwhile.
    let token = token(&sandbox);
    result(&trigger(&sandbox, &token, 4496, &[1002200]));

    sandbox.retire_soap(None);
    let (status, body) = soap_post(&sandbox, "requestCampaign", REQUEST_4496);
    assert_eq!(status, 200, "{body}");
    let apis: Vec<String> = sandbox.journal().into_iter().map(|e| e.api).collect();
    assert_eq!(apis, ["rest", "soap"]);
}

#[test]
fn soap_is_retired_and_restored_over_http() {
    let sandbox = Sandbox::start().unwrap();
    let admin = |path: &str| {
        read(
            agent()
                .post(format!("{}{path}", sandbox.base_url()))
                .send_empty(),
        )
        .0
    };
    assert_eq!(admin("/sandbox/soap/retire?status=410"), 204);
    assert_eq!(soap_post(&sandbox, "requestCampaign", REQUEST_4496).0, 410);
    assert_eq!(admin("/sandbox/soap/retire?status=404"), 204);
    assert_eq!(soap_post(&sandbox, "requestCampaign", REQUEST_4496).0, 404);
    assert_eq!(admin("/sandbox/soap/retire?status=200"), 400);
    assert_eq!(admin("/sandbox/soap/retire?status=gone"), 400);
    assert_eq!(soap_post(&sandbox, "requestCampaign", REQUEST_4496).0, 404);
    assert_eq!(admin("/sandbox/soap/retire"), 204);
    assert_eq!(soap_post(&sandbox, "requestCampaign", REQUEST_4496).0, 410);
    assert!(sandbox.journal().is_empty());
    assert_eq!(admin("/sandbox/soap/restore"), 204);
    assert_eq!(soap_post(&sandbox, "requestCampaign", REQUEST_4496).0, 200);
    assert_eq!(sandbox.journal().len(), 1);
}

#[test]
fn soap_schedule_campaign() {
    let sandbox = Sandbox::start().unwrap();
    let (status, body) = soap_post(
        &sandbox,
        "scheduleCampaign",
        "<programName>Newsletters</programName><campaignName>Monthly Newsletter</campaignName><campaignRunAt>2026-09-01T10:00:00-07:00</campaignRunAt><programTokenList><attrib><name>{{my.Subject}}</name><value>Fall &amp; more</value></attrib></programTokenList>",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<ns1:successScheduleCampaign><result><success>true</success></result></ns1:successScheduleCampaign>"),
        "{body}"
    );
    let (status, body) = soap_post(
        &sandbox,
        "scheduleCampaign",
        "<programName>Newsletters</programName><campaignName>Monthly Newsletter</campaignName>",
    );
    assert_eq!(status, 200, "{body}");

    two_schedules(&sandbox, "soap", "Fall & more");

    // A trigger campaign and an unknown one: 20113. A bad date: 20110.
    // Missing names: 20109. Wrong order: 20012.
    for (params, code, text) in [
        (
            "<programName>Demo Program</programName><campaignName>Request Campaign Demo</campaignName>",
            20113,
            "not a batch campaign",
        ),
        (
            "<programName>Newsletters</programName><campaignName>Weekly</campaignName>",
            20113,
            "Campaign not found",
        ),
        (
            "<programName>Newsletters</programName><campaignName>Monthly Newsletter</campaignName><campaignRunAt>soon</campaignRunAt>",
            20110,
            "campaignRunAt",
        ),
        (
            "<programName>Newsletters</programName>",
            20109,
            "campaignName",
        ),
        (
            "<campaignName>Monthly Newsletter</campaignName><programName>Newsletters</programName>",
            20012,
            "out-of-order",
        ),
    ] {
        let (status, body) = soap_post(&sandbox, "scheduleCampaign", params);
        assert_eq!(status, 500, "{body}");
        assert!(body.contains(&format!("<code>{code}</code>")), "{body}");
        assert!(body.contains(text), "{body}");
    }
    assert_eq!(sandbox.journal().len(), 2);
}

#[test]
fn soap_rate_limit_is_fault_20023() {
    let sandbox =
        Sandbox::start_with(SandboxConfig::new().rate_limit(2, Duration::from_secs(60))).unwrap();
    for _ in 0..2 {
        assert_eq!(soap_post(&sandbox, "requestCampaign", REQUEST_4496).0, 200);
    }
    let (status, body) = soap_post(&sandbox, "requestCampaign", REQUEST_4496);
    assert_eq!(status, 500);
    assert!(body.contains("<code>20023</code>"), "{body}");
    assert!(body.contains("Rate limit exceeded"), "{body}");
    assert_eq!(sandbox.journal().len(), 2);
    // REST has its own counter.
    let token = token(&sandbox);
    result(&trigger(&sandbox, &token, 4496, &[1002201]));
    assert_eq!(sandbox.journal().len(), 3);
}

#[test]
fn soap_concurrency_limit_is_fault_20024() {
    let sandbox = Sandbox::start_with(slow_calls(1)).unwrap();
    let barrier = Barrier::new(3);
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    soap_post(&sandbox, "requestCampaign", REQUEST_4496)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let accepted = answers.iter().filter(|(status, _)| *status == 200).count();
    assert!((1..=2).contains(&accepted), "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 500);
        assert!(body.contains("<code>20024</code>"), "{body}");
        assert!(body.contains("Concurrent request limit exceeded"), "{body}");
    }
    assert_eq!(sandbox.journal().len(), accepted);
}

#[test]
fn look_ups_and_triggers_scale_to_many_leads() {
    // The index answers from hash maps; a linear scan per value would take
    // 300 x 200,000 comparisons here.
    let (sandbox, token) = with_token(generated_leads(200_000));
    let values: Vec<String> = (1..=300)
        .map(|i| format!("LEAD{}@example.com", i * 600))
        .collect();
    let answer = get(
        &sandbox,
        "/rest/v1/leads.json",
        &[("filterType", "email"), ("filterValues", &values.join(","))],
        Some(&token),
    );
    let expected: Vec<u64> = (1..=300).map(|i| i * 600).collect();
    assert_eq!(ids(&answer), expected);
    let last: Vec<u64> = (199_901..=200_000).collect();
    result(&trigger(&sandbox, &token, 4496, &last));
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].lead_ids.first(), Some(&199_901));
    assert_eq!(journal[0].lead_ids.len(), 100);
}
