//! The REST trigger body validates against the `triggerCampaignUsingPOST`
//! schema, from the crate's own copy of that part of Marketo's Swagger file.

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, ProgramToken, RestClient,
};
use serde_json::Value;

use crate::schema::validate;

const SPEC: &str = include_str!("../../spec/rest-campaigns.json");

fn trigger_schema(spec: &Value) -> &Value {
    &spec["operations"]["triggerCampaignUsingPOST"]
}

/// A `leads.json` answer finding every id asked for (`filterType=id`).
fn every_id_found(url: &str) -> String {
    let values = url
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("filterValues="))
        .unwrap_or_default();
    let result: Vec<Value> = values
        .split(',')
        .map(|id| serde_json::json!({"id": id.parse::<u64>().unwrap()}))
        .collect();
    serde_json::json!({"requestId": "1", "success": true, "result": result}).to_string()
}

/// The trigger calls `request` puts on the wire (path and body), as a bare
/// server playing Marketo receives them (every lead id is found; campaign
/// 1234 is the webinar's). The dry-run plan cannot show them: they depend
/// on the look-ups' answers.
fn trigger_calls(request: &CampaignRequest) -> Vec<(String, String)> {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    let chunks = request.chunks().len();
    let handle = std::thread::spawn(move || {
        let mut calls = Vec::new();
        while calls.len() < chunks {
            let mut request = server.recv().unwrap();
            let url = request.url().to_owned();
            let answer = if url.starts_with("/identity/oauth/token") {
                r#"{"access_token":"tok","token_type":"bearer","expires_in":3600,"scope":"x"}"#
                    .to_owned()
            } else if url.starts_with("/rest/v1/campaigns.json") {
                r#"{"requestId":"1","success":true,"result":[{"id":1234,"name":"Send Webinar Reminder","programName":"Webinars","type":"trigger"}]}"#.to_owned()
            } else if url.starts_with("/rest/v1/leads.json?filterType=id&") {
                every_id_found(&url)
            } else {
                assert!(url.ends_with("/trigger.json"), "{url}");
                let content_type = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Content-Type"))
                    .map(|h| h.value.to_string());
                assert_eq!(content_type.as_deref(), Some("application/json"));
                let mut body = String::new();
                request.as_reader().read_to_string(&mut body).unwrap();
                calls.push((url, body));
                r#"{"requestId":"2","success":true,"result":[{"id":4496}]}"#.to_owned()
            };
            request
                .respond(tiny_http::Response::from_string(answer))
                .unwrap();
        }
        calls
    });
    let client = RestClient::builder(format!("http://{addr}"), "id", "secret")
        .build()
        .unwrap();
    client.request_campaign(request).unwrap();
    handle.join().unwrap()
}

/// The trigger bodies `request` puts on the wire, parsed.
fn trigger_bodies(request: &CampaignRequest) -> Vec<Value> {
    trigger_calls(request)
        .iter()
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect()
}

#[test]
fn idnum_trigger_bodies_validate() {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let by_id = CampaignRequest::new(
        CampaignTarget::id(4496),
        (1..=250).map(|i| LeadKey::id(i).unwrap()),
    )
    .unwrap();
    let bodies = trigger_bodies(&by_id);
    assert_eq!(bodies.len(), 3);
    for body in &bodies {
        validate(&spec, trigger_schema(&spec), body, "body").unwrap();
    }
    assert_eq!(
        bodies[2],
        serde_json::json!({"input": {"leads": (201..=250).map(|id| serde_json::json!({"id": id})).collect::<Vec<_>>()}})
    );
}

#[test]
fn the_validator_can_fail() {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    for bad in [
        serde_json::json!({}),
        serde_json::json!({"input": {}}),
        serde_json::json!({"input": {"leads": [{"id": "1"}]}}),
        serde_json::json!({"input": {"leads": [{"leadId": 1}]}}),
        serde_json::json!({"input": {"leads": [{"id": 1}], "tokens": [{"name": "{{my.X}}"}]}}),
        serde_json::json!({"input": {"leads": [{"id": 1}], "token": []}}),
    ] {
        assert!(
            validate(&spec, trigger_schema(&spec), &bad, "body").is_err(),
            "{bad}"
        );
    }
}

#[test]
fn the_copy_agrees_with_the_official_swagger_file() {
    // The official file sits beside the project in development; a fresh
    // clone without it checks only the copy's own shape.
    let official = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/marketo-swagger-mapi.json");
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let Ok(text) = std::fs::read_to_string(&official) else {
        assert!(spec["definitions"]["TriggerCampaignRequest"].is_object());
        return;
    };
    let official: Value = serde_json::from_str(&text).unwrap();
    let strip = |v: &Value| -> Value {
        fn strip(v: &Value) -> Value {
            match v {
                Value::Object(m) => Value::Object(
                    m.iter()
                        .filter(|(k, _)| *k != "description")
                        .map(|(k, v)| (k.clone(), strip(v)))
                        .collect(),
                ),
                other => other.clone(),
            }
        }
        strip(v)
    };
    for (name, definition) in spec["definitions"].as_object().unwrap() {
        assert_eq!(
            strip(definition),
            strip(&official["definitions"][name]),
            "definition {name} differs from the official one"
        );
    }
    assert_eq!(
        official["paths"]["/rest/v1/campaigns/{campaignId}/trigger.json"]["post"]["parameters"][1]
            ["schema"]["$ref"],
        "#/definitions/TriggerCampaignRequest"
    );
}

#[test]
fn trigger_bodies_with_tokens_validate_as_sent() {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let request = CampaignRequest::new(
        CampaignTarget::named(
            "Send Webinar Reminder",
            "Webinars",
            [
                ProgramToken::new("{{my.WebinarTitle}}", "\"quoted\" \\ é").unwrap(),
                ProgramToken::new("{{my.JoinLink}}", "").unwrap(),
            ],
        ),
        [LeadKey::id(1002200).unwrap()],
    )
    .unwrap();
    // The four calls a named request makes: token, campaign, lead, trigger.
    let calls = trigger_calls(&request);
    assert_eq!(calls.len(), 1);
    let (url, body) = &calls[0];
    assert_eq!(url, "/rest/v1/campaigns/1234/trigger.json");
    assert_eq!(
        body,
        r#"{"input":{"leads":[{"id":1002200}],"tokens":[{"name":"{{my.WebinarTitle}}","value":"\"quoted\" \\ é"},{"name":"{{my.JoinLink}}","value":""}]}}"#
    );
    validate(
        &spec,
        trigger_schema(&spec),
        &serde_json::from_str(body).unwrap(),
        "body",
    )
    .unwrap();
}
