//! The sandbox's Adobe Journey Optimizer side: Adobe IMS's token endpoint
//! and the unitary execution of API-triggered campaigns, checking what the
//! gateway and the API check, validating bodies against the crate's copy
//! of the schema (`spec/ajo-messaging.json`), journaling every execution.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::data::SandboxAjoCampaign;
use crate::http::{Answer, Head};
use crate::identity::TokenStatus;
use crate::journal::{AjoExecution, AjoRecipient, JournalEntry};
use crate::limits::Refused;
use crate::query::Params;
use crate::State;
use marketo_campaign::LeadKeyType;

/// Paths under this prefix belong to the AJO API.
pub(crate) const AJO_PREFIX: &str = "/ajo/";
/// The unitary execution's path.
pub(crate) const UNITARY_PATH: &str = "/ajo/im/executions/unitary";
/// The audience execution's path.
pub(crate) const AUDIENCE_PATH: &str = "/ajo/im/executions/audience";
/// Adobe IMS's token path.
pub(crate) const IMS_TOKEN_PATH: &str = "/ims/token/v3";
/// The JSON content type of every answer.
const JSON: &str = "application/json;charset=UTF-8";
/// The crate's copy of the schemas it writes and reads.
const SPEC: &str = include_str!("../spec/ajo-messaging.json");

/// The spec, parsed once.
fn spec() -> &'static Value {
    static SPEC_VALUE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SPEC_VALUE.get_or_init(|| serde_json::from_str(SPEC).unwrap_or(Value::Null))
}

/// Answers `POST /ims/token/v3` (form body: `grant_type`, `client_id`,
/// `client_secret`, `scope`): status and JSON body.
pub(crate) fn ims_token(state: &State, method: &str, head: &Head, body: &[u8]) -> Answer {
    let form = head.header("Content-Type").is_some_and(|t| {
        t.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if method != "POST" || !form {
        return error_json(
            400,
            json!({"error": "invalid_request", "error_description": "POST a form (application/x-www-form-urlencoded)"}),
        );
    }
    let mut params = Params::from_url("");
    params.extend(&String::from_utf8_lossy(body));
    let ajo = &state.data.ajo;
    if params.get("grant_type") != Some("client_credentials") {
        return error_json(
            400,
            json!({"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}),
        );
    }
    if params.get("client_id") != Some(ajo.client_id.as_str()) {
        return error_json(
            400,
            json!({"error": "invalid_client", "error_description": "invalid client_id parameter"}),
        );
    }
    if params.get("client_secret") != Some(ajo.client_secret.as_str()) {
        return error_json(
            401,
            json!({"error": "invalid_client", "error_description": "invalid client_secret parameter"}),
        );
    }
    if params.get("scope").is_none_or(|s| s.trim().is_empty()) {
        return error_json(
            400,
            json!({"error": "invalid_scope", "error_description": "scope is required"}),
        );
    }
    let (token, expires_in) = state.ims_tokens.token(state.clock.now());
    error_json(
        200,
        json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in.max(0)}),
    )
}

fn error_json(status: u16, body: Value) -> Answer {
    Answer::new(status, JSON, body.to_string())
}

/// Adobe's `errorResponse`.
fn problem(status: u16, code: &str, title: impl Into<String>, context: &[(&str, &str)]) -> Answer {
    let additional: serde_json::Map<String, Value> = context
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect();
    let body = json!({
        "type": format!("https://ns.adobe.com/aep/errors/{code}-{status}"),
        "title": title.into(),
        "status": status,
        "report": {"additionalContext": additional},
    });
    Answer::new(status, JSON, body.to_string())
}

/// Answers a request whose path starts with [`AJO_PREFIX`].
pub(crate) fn handle(state: &State, method: &str, head: &Head, body: &[u8]) -> Answer {
    let operation = match head.path() {
        UNITARY_PATH => "postIMUnitaryMessageExecution",
        AUDIENCE_PATH => "postIMAudienceMessageExecution",
        _ => return problem(404, "MSG-000404", "Not Found", &[]),
    };
    if method != "POST" {
        return problem(405, "MSG-000405", "Method Not Allowed", &[]);
    }
    let request_id = head.header("x-request-id").unwrap_or_default();
    let context = [("requestId", request_id)];
    if let Err(answer) = check_headers(state, head) {
        return answer;
    }
    let _in_flight = match state.ajo_limits.admit() {
        Ok(in_flight) => in_flight,
        Err(refused) => {
            let title = match refused {
                Refused::Rate => "Too many requests: rate limit reached",
                Refused::Concurrency => "Too many requests: concurrency limit reached",
            };
            let wait = state.ajo_limits.window().as_secs().max(1);
            return problem(429, "MSG-000429", title, &context)
                .with_header("Retry-After", wait.to_string());
        }
    };
    state.pause();
    let json_body = head
        .header("Content-Type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
    if !json_body {
        return problem(
            415,
            "MSG-000415",
            "Content-Type must be application/json",
            &context,
        );
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return problem(400, "MSG-000052", format!("Malformed JSON: {e}"), &context),
    };
    let spec = spec();
    let schema = &spec["operations"][operation]["requestBody"];
    if let Err(reason) = validate(spec, schema, &value, "$") {
        return problem(
            400,
            "MSG-000052",
            format!("Invalid request: {reason}"),
            &context,
        );
    }
    let campaign_id = value["campaignId"].as_str().unwrap_or_default();
    let body_request_id = value["requestId"].as_str().unwrap_or_default();
    let context = [("requestId", body_request_id), ("campaignId", campaign_id)];
    let Some(campaign) = state
        .data
        .ajo
        .campaigns
        .iter()
        .find(|c| c.id == campaign_id)
    else {
        return problem(404, "MSG-000404", "Campaign not found", &context);
    };
    let now = state.clock.now();
    match live(campaign.start.as_deref(), campaign.end.as_deref(), now) {
        Ok(true) => {}
        Ok(false) => {
            return problem(
                400,
                "MSG-000053",
                "The campaign is not live: the call falls outside its start and end dates",
                &context,
            )
        }
        Err(reason) => return problem(500, "MSG-000500", reason, &context),
    }
    if head.path() == AUDIENCE_PATH {
        return audience(state, campaign, &value, now);
    }
    let recipients: Vec<AjoRecipient> = value["recipients"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| AjoRecipient {
            kind: text(&r["type"]),
            user_id: text(&r["userId"]),
            namespace: text(&r["namespace"]),
            context: r["context"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect::<BTreeMap<_, _>>(),
        })
        .collect();
    let lead_ids = recipients
        .iter()
        .filter(|r| r.namespace == "email")
        .filter_map(|r| state.find_lead(LeadKeyType::Email, &r.user_id))
        .collect();
    let execution_id = format!(
        "HUMA-{:08}",
        state
            .ajo_executions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    );
    state.journal.record(JournalEntry {
        api: "ajo".into(),
        campaign_id: 0,
        lead_ids,
        tokens: Vec::new(),
        ignored_keys: 0,
        run_at: None,
        ajo: Some(AjoExecution {
            execution_id: execution_id.clone(),
            request_id: body_request_id.to_owned(),
            campaign_id: campaign_id.to_owned(),
            recipients,
            context: BTreeMap::new(),
        }),
    });
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    accepted(
        &execution_id,
        body_request_id,
        &stamp,
        &state.data.ajo.client_id,
    )
}

/// An audience execution of `campaign`, at once or at `schedule.executeAt`.
fn audience(
    state: &State,
    campaign: &SandboxAjoCampaign,
    value: &Value,
    now: DateTime<Utc>,
) -> Answer {
    let request_id = value["requestId"].as_str().unwrap_or_default();
    let problem_context = [
        ("requestId", request_id),
        ("campaignId", campaign.id.as_str()),
    ];
    if !campaign.audience {
        return problem(
            400,
            "MSG-000054",
            "The campaign is not audience-based: trigger it with unitary executions",
            &problem_context,
        );
    }
    let execute_at = value["schedule"]["executeAt"].as_str();
    if let Some(at) = execute_at {
        match DateTime::parse_from_rfc3339(at) {
            Ok(at) if at.with_timezone(&Utc) > now => {}
            Ok(_) => {
                return problem(
                    400,
                    "MSG-000055",
                    "schedule.executeAt is in the past",
                    &problem_context,
                )
            }
            Err(e) => {
                return problem(
                    400,
                    "MSG-000052",
                    format!("schedule.executeAt: {e}"),
                    &problem_context,
                )
            }
        }
    }
    let n = state
        .ajo_executions
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let id = match execute_at {
        Some(_) => format!("SCH-{n:08}"),
        None => format!("CMA-{n:08}"),
    };
    let context = value["context"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    state.journal.record(JournalEntry {
        api: "ajo".into(),
        campaign_id: 0,
        lead_ids: Vec::new(),
        tokens: Vec::new(),
        ignored_keys: 0,
        run_at: Some(execute_at.unwrap_or_default().to_owned()),
        ajo: Some(AjoExecution {
            execution_id: id.clone(),
            request_id: request_id.to_owned(),
            campaign_id: campaign.id.clone(),
            recipients: Vec::new(),
            context,
        }),
    });
    match execute_at {
        Some(at) => Answer::new(
            202,
            JSON,
            json!({
                "scheduleId": id,
                "campaignId": campaign.id,
                "executeAt": at,
                "scheduleStatus": "Scheduled",
            })
            .to_string(),
        ),
        None => accepted(
            &id,
            request_id,
            &now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            &state.data.ajo.client_id,
        ),
    }
}

/// The 202 answer (`imExecutionResponse`).
pub(crate) fn accepted(execution_id: &str, request_id: &str, stamp: &str, client: &str) -> Answer {
    let by = format!("{client}@AdobeID");
    let body = json!({
        "executionId": execution_id,
        "requestId": request_id,
        "createdAt": stamp,
        "createdBy": by,
        "modifiedAt": stamp,
        "modifiedBy": by,
    });
    Answer::new(202, JSON, body.to_string())
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Whether `now` falls within `[start, end)`.
fn live(start: Option<&str>, end: Option<&str>, now: DateTime<Utc>) -> Result<bool, String> {
    let parse = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("sandbox data: campaign date {t:?}: {e}"))
    };
    let started = start.map(parse).transpose()?.is_none_or(|s| s <= now);
    let ended = end.map(parse).transpose()?.is_some_and(|e| e <= now);
    Ok(started && !ended)
}

/// The gateway's checks: bearer token (401), API key and organization
/// (403), sandbox (403), required headers (400). `x-request-id` is
/// required here, stricter than Adobe, so that clients are checked to send
/// one.
fn check_headers(state: &State, head: &Head) -> Result<(), Answer> {
    let ajo = &state.data.ajo;
    let status = state
        .ims_tokens
        .bearer_status(head.header("Authorization"), state.clock.now());
    match status {
        TokenStatus::Valid => {}
        TokenStatus::Expired => {
            return Err(problem(
                401,
                "401013",
                "Oauth token is not valid: expired",
                &[],
            ))
        }
        TokenStatus::Unknown => {
            return Err(problem(401, "401013", "Oauth token is not valid", &[]))
        }
    }
    for name in [
        "x-api-key",
        "x-gw-ims-org-id",
        "x-sandbox-name",
        "x-request-id",
    ] {
        if head.header(name).is_none_or(|v| v.trim().is_empty()) {
            return Err(problem(
                400,
                "MSG-000400",
                format!("Missing required header {name}"),
                &[],
            ));
        }
    }
    let header = |name| head.header(name).unwrap_or_default().trim();
    if header("x-api-key") != ajo.client_id {
        return Err(problem(403, "403003", "Api Key is invalid", &[]));
    }
    if header("x-gw-ims-org-id") != ajo.org_id {
        return Err(problem(
            403,
            "403025",
            "Profile is not valid for this organization",
            &[],
        ));
    }
    if header("x-sandbox-name") != ajo.sandbox_name {
        return Err(problem(
            403,
            "403027",
            "Sandbox not found or not accessible",
            &[],
        ));
    }
    Ok(())
}

/// A strict validator for the OpenAPI 3.0 subset `spec/ajo-messaging.json`
/// uses: `$ref`, `type` (object, array, string, integer), `required`,
/// `properties` (no other property unless `additionalProperties`),
/// `additionalProperties`, `oneOf` with a `discriminator` (the mapping
/// picks the schema; an unmapped value is an error), `minItems`,
/// `maxItems`.
pub(crate) fn validate(
    spec: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix("#/components/schemas/")
            .map(|name| &spec["components"]["schemas"][name])
            .filter(|t| !t.is_null())
            .ok_or(format!("{path}: unknown $ref {reference}"))?;
        return validate(spec, target, value, path);
    }
    if let Some(choices) = schema.get("oneOf").and_then(Value::as_array) {
        if let Some(discriminator) = schema.get("discriminator") {
            let property = discriminator["propertyName"].as_str().unwrap_or_default();
            let tag = value
                .get(property)
                .and_then(Value::as_str)
                .ok_or(format!("{path}: missing {property}"))?;
            let reference = discriminator["mapping"][tag].as_str().ok_or(format!(
                "{path}.{property}: {tag:?} is not one of the mapped values"
            ))?;
            return validate(spec, &json!({"$ref": reference}), value, path);
        }
        let passing = choices
            .iter()
            .filter(|choice| validate(spec, choice, value, path).is_ok())
            .count();
        return match passing {
            1 => Ok(()),
            n => Err(format!("{path}: matches {n} of the oneOf schemas, not 1")),
        };
    }
    let implied = (schema.get("properties").is_some()
        || schema.get("additionalProperties").is_some())
    .then_some("object");
    match schema.get("type").and_then(Value::as_str).or(implied) {
        Some("object") => {
            let object = value.as_object().ok_or(format!("{path}: not an object"))?;
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !object.contains_key(name) {
                    return Err(format!("{path}: missing required {name}"));
                }
            }
            for (name, item) in object {
                let item_path = format!("{path}.{name}");
                match (
                    schema["properties"].get(name),
                    schema.get("additionalProperties"),
                ) {
                    (Some(property), _) => validate(spec, property, item, &item_path)?,
                    (None, Some(additional)) if additional.is_object() => {
                        validate(spec, additional, item, &item_path)?
                    }
                    _ => return Err(format!("{path}: property {name} is not in the schema")),
                }
            }
            Ok(())
        }
        Some("array") => {
            let items = value.as_array().ok_or(format!("{path}: not an array"))?;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < min {
                    return Err(format!("{path}: {} items, at least {min}", items.len()));
                }
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    return Err(format!("{path}: {} items, at most {max}", items.len()));
                }
            }
            for (i, item) in items.iter().enumerate() {
                validate(spec, &schema["items"], item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Some("string") => value
            .as_str()
            .map(|_| ())
            .ok_or(format!("{path}: not a string")),
        Some("integer") => value
            .as_i64()
            .map(|_| ())
            .ok_or(format!("{path}: not an integer")),
        other => Err(format!("{path}: unsupported schema type {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: Value) -> Result<(), String> {
        let spec = spec();
        validate(
            spec,
            &spec["operations"]["postIMUnitaryMessageExecution"]["requestBody"],
            &body,
            "$",
        )
    }

    fn recipient(kind: &str) -> Value {
        json!({"type": kind, "userId": "a@b.c", "namespace": "email", "context": {"A": "1"}})
    }

    #[test]
    fn the_schema_copy_parses_and_checks_bodies() {
        assert!(spec().is_object());
        let ok = json!({"requestId": "r", "campaignId": "c", "recipients": [recipient("aep")]});
        assert_eq!(check(ok), Ok(()));
        let external =
            json!({"requestId": "r", "campaignId": "c", "recipients": [recipient("external")]});
        assert_eq!(check(external), Ok(()));
        let err =
            check(json!({"requestId": "r", "campaignId": "c", "recipients": [recipient("lead")]}))
                .unwrap_err();
        assert!(err.contains("not one of the mapped values"), "{err}");
        let err = check(json!({"campaignId": "c", "recipients": [recipient("aep")]})).unwrap_err();
        assert!(err.contains("missing required requestId"), "{err}");
        let many: Vec<Value> = (0..21).map(|_| recipient("aep")).collect();
        let err =
            check(json!({"requestId": "r", "campaignId": "c", "recipients": many})).unwrap_err();
        assert!(err.contains("at most 20"), "{err}");
        let err =
            check(json!({"requestId": "r", "campaignId": "c", "recipients": []})).unwrap_err();
        assert!(err.contains("at least 1"), "{err}");
        let err = check(json!({"requestId": "r", "campaignId": "c", "recipients": [
            {"type": "aep", "userId": "a@b.c", "namespace": "email", "context": {"A": 1}}
        ]}))
        .unwrap_err();
        assert!(err.contains("oneOf"), "{err}");
        let err = check(json!({"requestId": "r", "campaignId": "c", "recipients": [recipient("aep")], "extra": 1}))
            .unwrap_err();
        assert!(err.contains("not in the schema"), "{err}");
    }

    #[test]
    fn campaign_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(live(None, None, now), Ok(true));
        assert_eq!(live(Some("2027-01-01T00:00:00Z"), None, now), Ok(false));
        assert_eq!(live(None, Some("2024-12-31T23:59:59Z"), now), Ok(false));
        assert_eq!(
            live(
                Some("2024-01-01T00:00:00Z"),
                Some("2027-01-01T00:00:00Z"),
                now
            ),
            Ok(true)
        );
        assert!(live(Some("soon"), None, now).is_err());
    }
}
