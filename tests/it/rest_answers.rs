//! The sandbox's REST answers validate against Marketo's official Swagger
//! (issue 18 item 7): every operation it serves, its successes and its
//! errors, read against the operation's HTTP 200 schema from the crate's
//! copy of the official definitions (`spec/rest-answers.json`), as
//! Swagger 2.0 reads a schema (see `schema::validate_answer`).
//!
//! Marketo's own documented answers leave out `errors` and `warnings` on
//! success (and `result` on failure), which the Swagger requires, and
//! answer a trigger with `[{"id":N}]` where the Swagger requires a whole
//! `Campaign`. The sandbox writes the Swagger-complete superset: every
//! documented field, plus the required ones. The client reads both shapes
//! (`rest.rs` and `rest_schema.rs` feed it Marketo's documented ones from
//! bare servers; the round trips here feed it the sandbox's).

use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, RetryPolicy};
use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig};
use serde_json::{json, Value};

use crate::schema::validate_answer;

const SPEC: &str = include_str!("../../spec/rest-answers.json");

fn spec() -> Value {
    serde_json::from_str(SPEC).expect("spec/rest-answers.json is JSON")
}

/// A sandbox, a bearer token for it and an agent that reads every status.
struct Fixture {
    sandbox: Sandbox,
    bearer: String,
    agent: ureq::Agent,
    spec: Value,
    /// Operations whose answers were validated, with how many.
    seen: std::cell::RefCell<std::collections::BTreeMap<String, (usize, usize)>>,
}

impl Fixture {
    fn new() -> Self {
        Fixture::with(SandboxConfig::new())
    }

    fn with(config: SandboxConfig) -> Self {
        let sandbox = Sandbox::start_with(config).unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut fx = Fixture {
            sandbox,
            bearer: String::new(),
            agent,
            spec: spec(),
            seen: Default::default(),
        };
        let token_url = format!(
            "{}/oauth/token?grant_type=client_credentials&client_id={}&client_secret={}",
            fx.sandbox.identity_endpoint(),
            fx.sandbox.client_id(),
            fx.sandbox.client_secret()
        );
        let (status, token) = fx.call("GET", &token_url, None);
        assert_eq!(status, 200);
        fx.check("GET /identity/oauth/token", &token);
        fx.bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
        fx
    }

    /// One call with the fixture's token: its status and its body, parsed.
    fn call(&self, method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_as(&self.bearer, method, url, body)
    }

    /// One call with `bearer` as its `Authorization`.
    fn call_as(&self, bearer: &str, method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("Authorization", bearer)
            .header("Content-Type", "application/json");
        let response = match body {
            Some(body) => self
                .agent
                .run(request.body(body.to_string()).unwrap())
                .unwrap(),
            None => self.agent.run(request.body(()).unwrap()).unwrap(),
        };
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {url}: not JSON ({e}): {text}"));
        (status, value)
    }

    /// `answer` validates against `operation`'s 200 schema.
    fn check(&self, operation: &str, answer: &Value) {
        let schema = &self.spec["answers"][operation]["schema"];
        assert!(schema.is_string(), "{operation} is not in the spec copy");
        validate_answer(&self.spec, &json!({ "$ref": schema }), answer, "answer")
            .unwrap_or_else(|e| panic!("{operation}: {e}\n{answer:#}"));
        let mut seen = self.seen.borrow_mut();
        let counts = seen.entry(operation.to_owned()).or_default();
        if answer["success"] == false {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
    }

    /// Calls `path` (under `/rest/v1`) and validates the answer as
    /// `operation`'s; returns it. A DELETE goes as Marketo takes one with
    /// a body, and as the client sends it: `POST …?_method=DELETE`.
    fn api(&self, operation: &str, path_and_query: &str, body: Option<Value>) -> Value {
        let mut method = operation.split(' ').next().unwrap();
        let mut url = format!("{}/rest/v1{path_and_query}", self.sandbox.rest_endpoint());
        if method == "DELETE" {
            method = "POST";
            url.push_str(if url.contains('?') { "&" } else { "?" });
            url.push_str("_method=DELETE");
        }
        let (status, answer) = self.call(method, &url, body.as_ref());
        assert_eq!(status, 200, "{operation}: {answer}");
        self.check(operation, &answer);
        answer
    }
}

fn ok(answer: &Value) -> &Vec<Value> {
    assert_eq!(answer["success"], true, "{answer}");
    answer["result"].as_array().unwrap()
}

fn refused(answer: &Value, code: &str) {
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(answer["errors"][0]["code"], code, "{answer}");
}

#[test]
fn every_answer_validates_against_the_official_swagger() {
    let fx = Fixture::new();
    let op = |s: &str| s.to_owned();

    // Campaigns: list, trigger, schedule, and their refusals.
    let all = fx.api(&op("GET /rest/v1/campaigns.json"), "/campaigns.json", None);
    assert!(ok(&all).len() >= 3);
    let named = fx.api(
        "GET /rest/v1/campaigns.json",
        "/campaigns.json?name=Send%20Webinar%20Reminder",
        None,
    );
    assert_eq!(ok(&named)[0]["id"], 1234);
    let trigger = "POST /rest/v1/campaigns/{campaignId}/trigger.json";
    let ran = fx.api(
        trigger,
        "/campaigns/4496/trigger.json",
        Some(json!({"input": {"leads": [{"id": 1002200}]}})),
    );
    // Marketo's documented `{"id":N}`, within the Swagger's whole Campaign.
    assert_eq!(ok(&ran)[0]["id"], 4496);
    assert_eq!(ok(&ran)[0]["name"], "Request Campaign Demo");
    refused(
        &fx.api(
            trigger,
            "/campaigns/4496/trigger.json",
            Some(json!({"input": {"leads": [{"id": 999}]}})),
        ),
        "1004",
    );
    refused(
        &fx.api(
            trigger,
            "/campaigns/7/trigger.json",
            Some(json!({"input": {"leads": [{"id": 1002200}]}})),
        ),
        "1013",
    );
    let schedule = "POST /rest/v1/campaigns/{campaignId}/schedule.json";
    let scheduled = fx.api(
        schedule,
        "/campaigns/5000/schedule.json",
        Some(json!({"input": {"runAt": "2030-01-01T10:00:00Z"}})),
    );
    assert_eq!(ok(&scheduled)[0]["id"], 5000);
    refused(
        &fx.api(schedule, "/campaigns/4496/schedule.json", None),
        "1003",
    );

    // Leads: look-ups, describe, by id, sync, associate, merge.
    let leads = "GET /rest/v1/leads.json";
    let by_id = fx.api(
        leads,
        "/leads.json?filterType=id&filterValues=1002200,1002201",
        None,
    );
    assert_eq!(ok(&by_id).len(), 2);
    let by_email = fx.api(
        leads,
        "/leads.json?filterType=email&filterValues=lead@company.com&fields=email,firstName",
        None,
    );
    assert_eq!(ok(&by_email)[0]["email"], "lead@company.com");
    assert!(ok(&fx.api(leads, "/leads.json?filterType=id&filterValues=999", None)).is_empty());
    refused(&fx.api(leads, "/leads.json?filterType=id", None), "1003");
    let describe = fx.api(
        "GET /rest/v1/leads/describe.json",
        "/leads/describe.json",
        None,
    );
    assert!(ok(&describe).len() > 5);
    let one = "GET /rest/v1/lead/{leadId}.json";
    assert_eq!(
        ok(&fx.api(one, "/lead/1002200.json", None))[0]["id"],
        1002200
    );
    assert!(ok(&fx.api(one, "/lead/999.json", None)).is_empty());
    let sync = "POST /rest/v1/leads.json";
    let synced = fx.api(
        sync,
        "/leads.json",
        Some(json!({
            "action": "createOrUpdate",
            "lookupField": "email",
            "input": [
                {"email": "new@company.com", "firstName": "New"},
                {"email": "lead@company.com", "firstName": "Known"},
                {"firstName": "No key"},
            ],
        })),
    );
    let records = ok(&synced);
    assert_eq!(records[0]["status"], "created");
    assert_eq!(records[1]["status"], "updated");
    assert_eq!(records[2]["status"], "skipped");
    let new_id = records[0]["id"].as_u64().unwrap();
    refused(
        &fx.api(sync, "/leads.json", Some(json!({"action": "createOnly"}))),
        "1003",
    );
    let associate = "POST /rest/v1/leads/{leadId}/associate.json";
    let associated = fx.api(
        associate,
        "/leads/1002201/associate.json?cookie=id:561-HYG-937%26token:_mch-company.com-1-2",
        None,
    );
    assert_eq!(associated["success"], true, "{associated}");
    refused(
        &fx.api(
            associate,
            "/leads/999/associate.json?cookie=id:1%26token:x",
            None,
        ),
        "1004",
    );
    let merge = "POST /rest/v1/leads/{leadId}/merge.json";
    let merged = fx.api(
        merge,
        &format!("/leads/1002201/merge.json?leadIds={new_id}"),
        None,
    );
    assert_eq!(merged["success"], true, "{merged}");
    refused(
        &fx.api(merge, "/leads/1002201/merge.json?leadIds=999", None),
        "1004",
    );

    // Static lists: find, members, add, ask, remove.
    let lists = fx.api(
        "GET /rest/v1/lists.json",
        "/lists.json?name=Webinar%20Registrants",
        None,
    );
    assert_eq!(ok(&lists)[0]["id"], 1001);
    let add = "POST /rest/v1/lists/{listId}/leads.json";
    let added = fx.api(
        add,
        "/lists/1001/leads.json",
        Some(json!({"input": [{"id": 1002200}, {"id": 999}]})),
    );
    assert_eq!(ok(&added)[0]["status"], "added");
    assert_eq!(ok(&added)[1]["status"], "skipped");
    refused(
        &fx.api(
            add,
            "/lists/77/leads.json",
            Some(json!({"input": [{"id": 1002200}]})),
        ),
        "1013",
    );
    let members = fx.api(
        "GET /rest/v1/lists/{listId}/leads.json",
        "/lists/1001/leads.json?fields=email",
        None,
    );
    assert_eq!(ok(&members)[0]["id"], 1002200);
    let ismember = fx.api(
        "GET /rest/v1/lists/{listId}/leads/ismember.json",
        "/lists/1001/leads/ismember.json?id=1002200,1002201",
        None,
    );
    assert_eq!(ok(&ismember)[0]["status"], "memberof");
    assert_eq!(ok(&ismember)[1]["status"], "notmemberof");
    let removed = fx.api(
        "DELETE /rest/v1/lists/{listId}/leads.json",
        "/lists/1001/leads.json",
        Some(json!({"input": [{"id": 1002200}]})),
    );
    assert_eq!(ok(&removed)[0]["status"], "removed");

    // Activities: types, a paging token, the page (campaign runs, list
    // changes, new leads, data value changes, a merge).
    let types = fx.api(
        "GET /rest/v1/activities/types.json",
        "/activities/types.json",
        None,
    );
    assert!(ok(&types).len() >= 6);
    let token = fx.api(
        "GET /rest/v1/activities/pagingtoken.json",
        "/activities/pagingtoken.json?sinceDatetime=2000-01-01T00:00:00Z",
        None,
    );
    let token = token["nextPageToken"].as_str().unwrap().to_owned();
    refused(
        &fx.api(
            "GET /rest/v1/activities/pagingtoken.json",
            "/activities/pagingtoken.json",
            None,
        ),
        "1003",
    );
    let type_ids: Vec<String> = ok(&types).iter().map(|t| t["id"].to_string()).collect();
    let page = fx.api(
        "GET /rest/v1/activities.json",
        &format!(
            "/activities.json?nextPageToken={token}&activityTypeIds={}",
            type_ids.join(",")
        ),
        None,
    );
    let activities = ok(&page);
    assert!(activities.len() >= 5, "{page:#}");
    for id in [12, 13, 24, 25, 47] {
        assert!(
            activities.iter().any(|a| a["activityTypeId"] == id),
            "no activity of type {id}: {page:#}"
        );
    }

    // The token's refusals: an unknown one, none at all.
    let url = format!("{}/rest/v1/campaigns.json", fx.sandbox.rest_endpoint());
    let (status, invalid) = fx.call_as("Bearer not-a-token", "GET", &url, None);
    assert_eq!(status, 200);
    fx.check("GET /rest/v1/campaigns.json", &invalid);
    refused(&invalid, "601");

    // Every operation was seen answering, and most refusing.
    let seen = fx.seen.borrow();
    let answers = fx.spec["answers"].as_object().unwrap();
    for operation in answers.keys() {
        assert!(
            seen.get(operation).is_some_and(|c| c.0 > 0),
            "{operation} never answered: {seen:?}"
        );
    }
    let refusals: usize = seen.values().map(|c| c.1).sum();
    assert_eq!(refusals, 10, "{seen:?}");
}

#[test]
fn the_answer_validator_can_fail() {
    let spec = spec();
    let leads = json!({ "$ref": spec["answers"]["GET /rest/v1/leads.json"]["schema"] });
    let check = |answer: Value| validate_answer(&spec, &leads, &answer, "answer");
    let complete = json!({"errors": [], "requestId": "a#1", "result": [{"id": 1, "email": "x@y.z"}],
        "success": true, "warnings": []});
    check(complete.clone()).unwrap();
    // Marketo's documented shape lacks what the Swagger requires.
    let documented = json!({"requestId": "a#1", "result": [{"id": 1}], "success": true});
    assert!(check(documented)
        .unwrap_err()
        .contains("missing required errors"));
    let mut wrong = complete.clone();
    wrong["result"][0]["id"] = json!("1");
    assert!(check(wrong).unwrap_err().contains("not an integer"));
    let mut wrong = complete.clone();
    wrong["warnings"] = json!([{"code": "x", "message": "m"}]);
    assert!(check(wrong).unwrap_err().contains("not an integer"));
    let mut wrong = complete;
    wrong["success"] = json!("true");
    assert!(check(wrong).unwrap_err().contains("not a boolean"));
    // A trigger answered with Marketo's documented `{"id":N}` alone.
    let trigger = json!({ "$ref": spec["answers"]["POST /rest/v1/campaigns/{campaignId}/trigger.json"]["schema"] });
    let minimal = json!({"errors": [], "requestId": "a#1", "result": [{"id": 4496}], "success": true, "warnings": []});
    assert!(validate_answer(&spec, &trigger, &minimal, "answer")
        .unwrap_err()
        .contains("missing required createdAt"));
}

#[test]
fn rate_limit_and_injected_errors_validate_too() {
    // 606: one call per long window; the second is refused.
    let fx = Fixture::with(SandboxConfig::new().rate_limit(1, std::time::Duration::from_secs(600)));
    ok(&fx.api("GET /rest/v1/campaigns.json", "/campaigns.json", None));
    refused(
        &fx.api("GET /rest/v1/campaigns.json", "/campaigns.json", None),
        "606",
    );
    // The fault injector's Marketo errors (on HTTP 200) are the same shape.
    let fx = Fixture::new();
    for code in [615, 602, 1029] {
        fx.sandbox
            .inject(FaultRule::on_call(Fault::RestError(code), 1).api(Api::Rest))
            .unwrap();
        let answer = fx.api(
            "POST /rest/v1/campaigns/{campaignId}/trigger.json",
            "/campaigns/4496/trigger.json",
            Some(json!({"input": {"leads": [{"id": 1002200}]}})),
        );
        refused(&answer, &code.to_string());
        fx.sandbox.clear_faults();
    }
}

#[test]
fn the_client_reads_the_swagger_complete_answers() {
    // The look-up's fast path and the trigger reader, against the sandbox's
    // complete answers: every lead once, nothing refused.
    let sandbox = Sandbox::start().unwrap();
    let rest = sandbox
        .rest_client_builder()
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let request = CampaignRequest::new(
        CampaignTarget::id(4496),
        [
            LeadKey::id(1002200).unwrap(),
            LeadKey::email("anotherlead@company.com").unwrap(),
            LeadKey::id(999).unwrap(),
        ],
    )
    .unwrap();
    let outcome = rest.request_campaign(&request).unwrap();
    assert_eq!(outcome.unmatched().count(), 1);
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].lead_ids, [1002200, 1002201]);
}

#[test]
fn the_copy_agrees_with_the_official_swagger_files() {
    let spec = spec();
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference");
    let (Ok(mapi), Ok(identity)) = (
        std::fs::read_to_string(reference.join("marketo-swagger-mapi.json")),
        std::fs::read_to_string(reference.join("marketo-swagger-identity.json")),
    ) else {
        // A fresh clone without the official files checks the copy's shape.
        assert!(spec["definitions"]["ResponseOfLead"]["required"].is_array());
        return;
    };
    let mapi: Value = serde_json::from_str(&mapi).unwrap();
    let identity: Value = serde_json::from_str(&identity).unwrap();
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| *k != "description" && *k != "example")
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    for (name, definition) in spec["definitions"].as_object().unwrap() {
        let official = if name == "ResponseOfIdentity" {
            &identity["definitions"][name]
        } else {
            &mapi["definitions"][name]
        };
        assert_eq!(strip(definition), strip(official), "definition {name}");
    }
    for (operation, answer) in spec["answers"].as_object().unwrap() {
        let (method, path) = operation.split_once(' ').unwrap();
        let file = if path.starts_with("/identity") {
            &identity
        } else {
            &mapi
        };
        let official = &file["paths"][path][method.to_lowercase()];
        assert_eq!(
            official["operationId"], answer["operationId"],
            "{operation}"
        );
        assert_eq!(
            official["responses"]["200"]["schema"]["$ref"], answer["schema"],
            "{operation}"
        );
    }
}
