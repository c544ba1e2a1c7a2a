//! The sandbox's REST API (`/rest/v1/...`): checks what Marketo checks
//! (bearer token, rate, concurrency, parameter rules), runs, journals.
//!
//! Every API call is answered with HTTP 200 and Marketo's envelope, in the
//! shape the official Swagger requires (a superset of the answers
//! Marketo's documentation shows, which leave out the empty lists):
//! `{"errors":[],"requestId","result":[...],"success":true,"warnings":[]}`
//! or `{"errors":[{"code","message"}],"requestId","result":[],"success":false,"warnings":[]}`.

use std::collections::BTreeSet;

use chrono::DateTime;
use serde_json::{json, Map, Value};

use crate::data::{SandboxCampaign, SandboxLead};
use crate::identity::TokenStatus;
use crate::journal::{JournalEntry, JournalToken};
use crate::lead_db;
use crate::leads::{self, from_rest_name, Filter};
use crate::limits::Refused;
use crate::query::Params;
use crate::State;
use marketo_campaign::MAX_LEADS_PER_CALL;

/// Paths under this prefix belong to the REST API.
pub(crate) const REST_PREFIX: &str = "/rest/";
/// Most values `leads.json` takes in `filterValues`.
const MAX_FILTER_VALUES: usize = 300;
/// Most tokens a trigger or schedule call takes.
const MAX_TOKENS: usize = 100;
/// `createdAt` of every sandbox campaign.
const CREATED_AT: &str = "2024-01-15T17:00:00Z";
/// `updatedAt` of every sandbox campaign.
const UPDATED_AT: &str = "2024-06-03T09:30:00Z";
/// The JSON content type of every API answer.
pub(crate) const JSON: &str = "application/json;charset=UTF-8";

/// One REST call, as the HTTP layer read it.
#[derive(Debug)]
pub(crate) struct RestRequest<'a> {
    pub(crate) method: &'a str,
    pub(crate) url: &'a str,
    pub(crate) authorization: Option<&'a str>,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

/// The REST operations the sandbox serves.
#[derive(Debug, Clone, Copy)]
enum Route<'a> {
    Campaigns,
    Leads,
    DescribeLeads,
    SyncLeads,
    LeadById(&'a str),
    Associate(&'a str),
    Lists,
    ListLeads(&'a str, lead_db::ListOp),
    ActivityTypes,
    PagingToken,
    Activities,
    ListMembers(&'a str),
    Merge(&'a str),
    Trigger(&'a str),
    Schedule(&'a str),
}

fn route<'a>(method: &str, path: &'a str) -> Option<Route<'a>> {
    let rest = path.strip_prefix("/rest/v1/")?;
    match (method, rest) {
        ("GET", "campaigns.json") => return Some(Route::Campaigns),
        ("GET", "leads.json") => return Some(Route::Leads),
        ("GET", "leads/describe.json") => return Some(Route::DescribeLeads),
        ("POST", "leads.json") => return Some(Route::SyncLeads),
        ("GET", "lists.json") => return Some(Route::Lists),
        ("GET", "activities/types.json") => return Some(Route::ActivityTypes),
        ("GET", "activities/pagingtoken.json") => return Some(Route::PagingToken),
        ("GET", "activities.json") => return Some(Route::Activities),
        _ => {}
    }
    if let Some(list) = rest.strip_prefix("lists/") {
        if let ("GET", Some((id, "leads.json"))) = (method, list.split_once('/')) {
            return numeric(id).map(Route::ListMembers);
        }
        let op = match (method, list.split_once('/').map(|(_, tail)| tail)) {
            ("POST", Some("leads.json")) => lead_db::ListOp::Add,
            ("DELETE", Some("leads.json")) => lead_db::ListOp::Remove,
            ("GET", Some("leads/ismember.json")) => lead_db::ListOp::IsMember,
            _ => return None,
        };
        let id = list.split_once('/').map(|(id, _)| id)?;
        return numeric(id).map(|id| Route::ListLeads(id, op));
    }
    match method {
        "GET" => {
            let id = rest.strip_prefix("lead/")?.strip_suffix(".json")?;
            return numeric(id).map(Route::LeadById);
        }
        "POST" => {}
        _ => return None,
    }
    if let Some(id) = rest
        .strip_prefix("leads/")
        .and_then(|r| r.strip_suffix("/associate.json"))
    {
        return numeric(id).map(Route::Associate);
    }
    if let Some(id) = rest
        .strip_prefix("leads/")
        .and_then(|r| r.strip_suffix("/merge.json"))
    {
        return numeric(id).map(Route::Merge);
    }
    let (id, action) = rest.strip_prefix("campaigns/")?.split_once('/')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match action {
        "trigger.json" => Some(Route::Trigger(id)),
        "schedule.json" => Some(Route::Schedule(id)),
        _ => None,
    }
}

/// `id` if it is all digits.
fn numeric(id: &str) -> Option<&str> {
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// A refusal: Marketo's error code and message.
#[derive(Debug)]
struct Failure {
    code: u32,
    message: String,
}

fn fail(code: u32, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// 1003, the code for invalid data.
fn invalid(message: impl Into<String>) -> Failure {
    fail(1003, message)
}

/// Answers a request whose path starts with [`REST_PREFIX`]: HTTP status,
/// content type, body. Unknown paths get 404.
pub(crate) fn handle(state: &State, request: &RestRequest<'_>) -> (u16, &'static str, String) {
    let path = request.url.split('?').next().unwrap_or_default();
    // Marketo takes `POST …?_method=DELETE` for a DELETE (long bodies).
    let method = match request.method {
        "POST" if Params::from_url(request.url).get("_method") == Some("DELETE") => "DELETE",
        other => other,
    };
    let Some(route) = route(method, path) else {
        return (404, "text/plain", "Not Found".to_owned());
    };
    let request_id = state.next_request_id();
    let body = match run(state, request, route) {
        Ok(Reply::Records(result)) => success(request_id, result),
        Ok(Reply::Page { result, next, more }) => {
            let mut body = success(request_id, result);
            body["nextPageToken"] = next.into();
            body["moreResult"] = more.into();
            body
        }
        Ok(Reply::Token(token)) => {
            // ResponseOfVoid: no `result`.
            let mut body = envelope(request_id, true, json!([]));
            body["nextPageToken"] = token.into();
            body
        }
        Err(failure) => {
            log::debug!("sandbox REST error {}: {}", failure.code, failure.message);
            error(request_id, failure.code, &failure.message)
        }
    };
    (200, JSON, body.to_string())
}

/// Marketo's envelope with the fields every answer's schema requires:
/// `requestId`, `success`, `errors` and `warnings` (empty).
fn envelope(request_id: String, success: bool, errors: Value) -> Value {
    json!({
        "errors": errors,
        "requestId": request_id,
        "success": success,
        "warnings": [],
    })
}

/// A `success:true` answer with `result`, and the empty `errors` and
/// `warnings` the Swagger requires.
pub(crate) fn success(request_id: String, result: Vec<Value>) -> Value {
    let mut body = envelope(request_id, true, json!([]));
    body["result"] = result.into();
    body
}

/// A `success:false` answer: Marketo's error `code` (as a string, as
/// Marketo writes it) and `message`, and the empty `result` and `warnings`
/// the Swagger requires.
pub(crate) fn error(request_id: String, code: u32, message: &str) -> Value {
    let errors = json!([{"code": code.to_string(), "message": message}]);
    let mut body = envelope(request_id, false, errors);
    body["result"] = json!([]);
    body
}

/// A successful answer: records, a page of records with its paging token,
/// or a paging token alone (`pagingtoken.json`).
enum Reply {
    Records(Vec<Value>),
    Page {
        result: Vec<Value>,
        next: String,
        more: bool,
    },
    Token(String),
}

fn run(state: &State, request: &RestRequest<'_>, route: Route<'_>) -> Result<Reply, Failure> {
    authorize(state, request.authorization)?;
    let _in_flight = state.rest_limits.admit().map_err(|refused| match refused {
        Refused::Rate => fail(
            606,
            format!(
                "Max rate limit '{}' exceeded with in '{}' secs",
                state.rest_limits.calls(),
                state.rest_limits.window().as_secs_f64()
            ),
        ),
        Refused::Concurrency => fail(615, "Concurrent access limit reached"),
    })?;
    state.pause();
    let params = Params::from_url(request.url);
    let records = match route {
        Route::ActivityTypes => return Ok(Reply::Records(activity_types())),
        Route::ListMembers(id) => return list_members(state, id, &params),
        Route::PagingToken => return paging_token(state, &params).map(Reply::Token),
        Route::Activities => return activities(state, &params),
        Route::Campaigns => campaigns(state, &params),
        Route::Leads => leads(state, &params),
        Route::DescribeLeads => Ok(describe_leads(state)),
        Route::SyncLeads => sync_leads(state, request),
        Route::LeadById(id) => lead_by_id(state, id, &params),
        Route::Associate(id) => associate(state, id, &params),
        Route::Merge(id) => merge(state, id, &params),
        Route::Lists => Ok(lists(state, &params)),
        Route::ListLeads(id, op) => list_leads(state, request, id, op, &params),
        Route::Trigger(id) => trigger(state, request, id),
        Route::Schedule(id) => schedule(state, request, id),
    };
    records.map(Reply::Records)
}

/// The `Authorization: Bearer` header decides; an `access_token` query
/// parameter is not accepted.
fn authorize(state: &State, authorization: Option<&str>) -> Result<(), Failure> {
    let status = state.tokens.bearer_status(authorization, state.clock.now());
    match status {
        TokenStatus::Valid => Ok(()),
        TokenStatus::Expired => Err(fail(602, "Access token expired")),
        TokenStatus::Unknown => Err(fail(601, "Access token invalid")),
    }
}

/// A campaign as the Swagger's `Campaign` (what `campaigns.json` lists and
/// a trigger or schedule answers).
pub(crate) fn campaign_json(state: &State, campaign: &SandboxCampaign) -> Value {
    json!({
        "id": campaign.id,
        "name": campaign.name,
        "description": "",
        "type": if campaign.requestable { "trigger" } else { "batch" },
        "programName": campaign.program,
        "programId": state.program_id(&campaign.program),
        "workspaceName": "Default",
        "createdAt": CREATED_AT,
        "updatedAt": UPDATED_AT,
        "active": true,
    })
}

/// `GET /rest/v1/campaigns.json`: filters `id`, `name`, `programName`
/// (comma-separated lists, exact match) and `isTriggerable=true`; other
/// parameters are ignored.
fn campaigns(state: &State, params: &Params) -> Result<Vec<Value>, Failure> {
    let ids = params
        .list("id")
        .map(|ids| {
            ids.into_iter()
                .map(|id| {
                    leads::parse_id(id).ok_or_else(|| fail(1001, format!("Invalid id '{id}'")))
                })
                .collect::<Result<Vec<u32>, _>>()
        })
        .transpose()?;
    let names = params.list("name");
    let programs = params.list("programName");
    let triggerable_only = params
        .get("isTriggerable")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Ok(state
        .data
        .campaigns
        .iter()
        .filter(|c| ids.as_ref().is_none_or(|ids| ids.contains(&c.id)))
        .filter(|c| names.as_ref().is_none_or(|n| n.contains(&c.name.as_str())))
        .filter(|c| {
            programs
                .as_ref()
                .is_none_or(|p| p.contains(&c.program.as_str()))
        })
        .filter(|c| !triggerable_only || c.requestable)
        .map(|c| campaign_json(state, c))
        .collect())
}

/// `GET /rest/v1/leads.json?filterType=..&filterValues=..&fields=..`.
///
/// `filterType` must be one Marketo documents ([`leads::FILTER_TYPES`]:
/// `id`, `email`, `cookies`, the `sfdc…` ids, …; exact spelling). Any other
/// name, `leadOwnerEmail` included, is refused with 1011 "Lookup field '…'
/// not supported", as Marketo answers it; a missing one with 1003. At most
/// 300 `filterValues` (1003). `id` values find the lead of that id;
/// `cookies` values find a lead by any one of its comma-separated cookies.
/// Without `fields`, each lead has `id` and `email`. Fields a lead has no
/// value for, and names that are not lead fields, are left out. Fields
/// set by a campaign flow's webhook response mapping show their new value. Leads come
/// in id order, each once.
fn leads(state: &State, params: &Params) -> Result<Vec<Value>, Failure> {
    let known = || leads::FILTER_TYPES.join(", ");
    let filter_type = params
        .get("filterType")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid(format!("filterType is required: one of {}", known())))?;
    let filter = leads::filter_type(filter_type).ok_or_else(|| {
        fail(
            1011,
            format!(
                "Lookup field '{filter_type}' not supported: use one of {}",
                known()
            ),
        )
    })?;
    let values = params
        .list("filterValues")
        .ok_or_else(|| invalid("filterValues is required"))?;
    if values.len() > MAX_FILTER_VALUES {
        return Err(invalid(format!(
            "filterValues exceeds the limit of {MAX_FILTER_VALUES}"
        )));
    }
    let fields = params.list("fields").unwrap_or_else(|| vec!["email"]);
    let ids: BTreeSet<u32> = match filter {
        Filter::Key(key_type) => values
            .iter()
            .flat_map(|value| state.lead_db().find_all(key_type, value))
            .collect(),
        Filter::Empty => BTreeSet::new(),
    };
    Ok(ids
        .into_iter()
        .filter_map(|id| state.lead(id))
        .map(|lead| lead_record(state, &lead, &fields))
        .collect())
}

/// A lead as `leads.json` answers it: `id` and the asked `fields` it has a
/// value for (a field a webhook's response mapping set wins; typed fields
/// as JSON numbers and booleans).
fn lead_record(state: &State, lead: &SandboxLead, fields: &[&str]) -> Value {
    let mut record = Map::new();
    record.insert("id".into(), lead.id.into());
    for &name in fields {
        let updated = state.flows.updated_field(lead.id, name);
        let value = updated.as_deref().or_else(|| {
            from_rest_name(name)
                .and_then(|k| leads::field(lead, k))
                .or_else(|| lead.fields.get(name).map(String::as_str))
        });
        let Some(value) = value else { continue };
        let typed = match lead_db::describe(name).map(|f| f.data_type) {
            Some("integer") => value.parse::<i64>().map(Value::from).ok(),
            Some("boolean") => value.parse::<bool>().map(Value::from).ok(),
            _ => None,
        };
        record.insert(name.to_owned(), typed.unwrap_or_else(|| value.into()));
    }
    Value::Object(record)
}

/// `GET /rest/v1/leads/describe.json`: every lead field, with its REST and
/// SOAP names, data type and length; the data's custom fields as strings.
fn describe_leads(state: &State) -> Vec<Value> {
    let map = |name: &str, read_only: bool| json!({"name": name, "readOnly": read_only});
    let standard = lead_db::FIELDS.iter().map(|f| {
        let mut field = json!({
            "id": f.id,
            "displayName": f.display_name,
            "dataType": f.data_type,
            "rest": map(f.rest, f.read_only),
        });
        if let Some(length) = f.length {
            field["length"] = length.into();
        }
        if let Some(soap) = f.soap {
            field["soap"] = map(soap, f.read_only);
        }
        field
    });
    let custom = state.custom_fields.iter().zip(1001u32..).map(|(name, id)| {
        json!({
            "id": id,
            "displayName": name,
            "dataType": "string",
            "length": 255,
            "rest": map(name, false),
            "soap": map(name, false),
        })
    });
    standard.chain(custom).collect()
}

/// Most records one `POST /rest/v1/leads.json` takes.
const MAX_SYNC_RECORDS: usize = 300;

/// `POST /rest/v1/leads.json`: `action` (createOnly, updateOnly,
/// createOrUpdate; default createOrUpdate), `lookupField` (default
/// `email`), `input` of 1 to 300 records. Each record is created, updated
/// or skipped with its reason, as Marketo answers; a skipped record writes
/// nothing.
fn sync_leads(state: &State, request: &RestRequest<'_>) -> Result<Vec<Value>, Failure> {
    require_json(request)?;
    let body = parse_json(request.body)?;
    let action = match body.get("action") {
        None | Some(Value::Null) => lead_db::Action::CreateOrUpdate,
        Some(Value::String(text)) => lead_db::Action::parse(text)
            .ok_or_else(|| invalid(format!("Invalid action '{text}'")))?,
        Some(_) => return Err(invalid("action must be a string")),
    };
    if body.get("asyncProcessing").and_then(Value::as_bool) == Some(true) {
        return Err(invalid("asyncProcessing is not supported by the sandbox"));
    }
    let lookup_field = match body.get("lookupField") {
        None | Some(Value::Null) => "email",
        Some(Value::String(name)) => name.as_str(),
        Some(_) => return Err(invalid("lookupField must be a string")),
    };
    if lookup_field != "id"
        && lead_db::describe(lookup_field).is_none()
        && !state.custom_fields.contains(lookup_field)
    {
        return Err(fail(1006, format!("Field '{lookup_field}' not found")));
    }
    let records = match body.get("input") {
        Some(Value::Array(records)) if !records.is_empty() => records,
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            return Err(invalid("input must hold at least one lead"))
        }
        Some(_) => return Err(invalid("input must be a list")),
    };
    if records.len() > MAX_SYNC_RECORDS {
        return Err(invalid(format!(
            "input exceeds the limit of {MAX_SYNC_RECORDS} records"
        )));
    }
    let custom = |name: &str| state.custom_fields.contains(name);
    let mut db = state.lead_db_mut();
    Ok(records
        .iter()
        .map(|record| {
            let outcome = match record {
                Value::Object(record) => db.sync(action, lookup_field, record, &custom),
                _ => lead_db::SyncOutcome::Skipped(1003, "A lead must be an object".into()),
            };
            match outcome {
                lead_db::SyncOutcome::Created(id) => json!({"id": id, "status": "created"}),
                lead_db::SyncOutcome::Updated(id) => json!({"id": id, "status": "updated"}),
                lead_db::SyncOutcome::Skipped(code, message) => json!({
                    "status": "skipped",
                    "reasons": [{"code": code.to_string(), "message": message}],
                }),
            }
        })
        .collect())
}

/// `GET /rest/v1/lead/{id}.json?fields=…`: the lead, or no record.
fn lead_by_id(state: &State, id: &str, params: &Params) -> Result<Vec<Value>, Failure> {
    let id = leads::parse_id(id).ok_or_else(|| fail(1001, format!("Invalid id '{id}'")))?;
    let fields = params.list("fields").unwrap_or_else(|| vec!["email"]);
    Ok(state
        .lead(id)
        .map(|lead| lead_record(state, &lead, &fields))
        .into_iter()
        .collect())
}

/// `GET /rest/v1/lists.json?name=…&id=…`: the static lists with one of
/// those names (exact) or ids; every list without either.
fn lists(state: &State, params: &Params) -> Vec<Value> {
    let names = params.list("name");
    let ids = params.list("id");
    state
        .lead_db()
        .lists()
        .iter()
        .filter(|list| {
            names
                .as_ref()
                .is_none_or(|names| names.contains(&list.name.as_str()))
                && ids
                    .as_ref()
                    .is_none_or(|ids| ids.iter().any(|id| leads::parse_id(id) == Some(list.id)))
        })
        .map(|list| {
            json!({
                "id": list.id,
                "name": list.name,
                "createdAt": CREATED_AT,
                "updatedAt": UPDATED_AT,
            })
        })
        .collect()
}

/// `GET /rest/v1/lists/{id}/leads.json?fields=…&batchSize=…&nextPageToken=…`:
/// the list's members, in the order they were added, a page at a time
/// (default and most 300). An unknown list is 1013.
fn list_members(state: &State, id: &str, params: &Params) -> Result<Reply, Failure> {
    let list_id = leads::parse_id(id).ok_or_else(|| fail(1001, "Invalid list id"))?;
    let start = match params.get("nextPageToken") {
        None => 0,
        Some(token) => token
            .strip_prefix("SBLST")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| fail(1003, format!("Invalid nextPageToken '{token}'")))?,
    };
    let batch = batch_size(params)?;
    let fields = params.list("fields").unwrap_or_else(|| vec!["email"]);
    let members = state
        .lead_db()
        .lists()
        .iter()
        .find(|l| l.id == list_id)
        .map(|l| l.members.clone())
        .ok_or_else(|| fail(1013, format!("Static list '{list_id}' not found")))?;
    let end = (start + batch).min(members.len());
    let result = members[start.min(end)..end]
        .iter()
        .filter_map(|&id| state.lead(id))
        .map(|lead| lead_record(state, &lead, &fields))
        .collect();
    Ok(if end < members.len() {
        Reply::Page {
            result,
            next: format!("SBLST{end}"),
            more: true,
        }
    } else {
        Reply::Records(result)
    })
}

/// Most leads one list call takes.
const MAX_LIST_LEADS: usize = 300;

/// `POST` (add), `DELETE` (remove; also `POST` with `_method=DELETE`)
/// `/rest/v1/lists/{id}/leads.json`, `GET …/leads/ismember.json`: lead ids
/// from the body's `input` (`[{"id": N}]`) or the `id` query parameter;
/// one record per id. An unknown list is 1013.
fn list_leads(
    state: &State,
    request: &RestRequest<'_>,
    list_id: &str,
    op: lead_db::ListOp,
    params: &Params,
) -> Result<Vec<Value>, Failure> {
    let mut ids = Vec::new();
    if let Some(query) = params.list("id") {
        for id in query {
            ids.push(leads::parse_id(id).ok_or_else(|| fail(1001, format!("Invalid id '{id}'")))?);
        }
    }
    if !request.body.is_empty() {
        require_json(request)?;
        let body = parse_json(request.body)?;
        let input = body
            .get("input")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("input must be a list of {\"id\": …}"))?;
        for record in input {
            let id = record
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| invalid("each input record needs an integer id"))?;
            ids.push(id);
        }
    }
    if ids.is_empty() || ids.len() > MAX_LIST_LEADS {
        return Err(invalid(format!(
            "between 1 and {MAX_LIST_LEADS} lead ids are required"
        )));
    }
    let list_id = leads::parse_id(list_id).ok_or_else(|| fail(1001, "Invalid list id"))?;
    let statuses = state
        .lead_db_mut()
        .list_op(list_id, op, &ids)
        .ok_or_else(|| fail(1013, format!("Static list '{list_id}' not found")))?;
    Ok(ids
        .iter()
        .zip(statuses)
        .map(|(id, status)| match status {
            lead_db::ListStatus::Skipped(code, message) => json!({
                "id": id,
                "status": "skipped",
                "reasons": [{"code": code.to_string(), "message": message}],
            }),
            other => json!({"id": id, "status": other.as_str()}),
        })
        .collect())
}

/// `GET /rest/v1/activities/types.json`: the activity types the sandbox
/// records.
fn activity_types() -> Vec<Value> {
    lead_db::ACTIVITY_TYPES
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "name": t.name,
                "description": t.name,
                "primaryAttribute": {"name": t.primary, "dataType": "string"},
                "attributes": [],
            })
        })
        .collect()
}

/// The prefix of the sandbox's activity paging tokens (then the position
/// in the activity log).
const TOKEN_PREFIX: &str = "SBACT";

/// `GET /rest/v1/activities/pagingtoken.json?sinceDatetime=…`: a token
/// for the first activity at or after that time.
fn paging_token(state: &State, params: &Params) -> Result<String, Failure> {
    let since = params
        .get("sinceDatetime")
        .ok_or_else(|| invalid("sinceDatetime is required"))?;
    let since = DateTime::parse_from_rfc3339(since)
        .map(|t| t.to_utc())
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(since, "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        })
        .map_err(|_| invalid(format!("Invalid sinceDatetime '{since}'")))?;
    let db = state.lead_db();
    let (kept, dropped) = db.activities();
    let position = dropped
        + kept
            .iter()
            .position(|a| a.date >= since)
            .unwrap_or(kept.len());
    Ok(format!("{TOKEN_PREFIX}{position:012}"))
}

/// `batchSize`: 1 to 300, default 300.
fn batch_size(params: &Params) -> Result<usize, Failure> {
    match params.get("batchSize") {
        None => Ok(300),
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=300).contains(n))
            .ok_or_else(|| invalid("batchSize must be 1 to 300")),
    }
}

/// Most activity types one `activities.json` call takes, and most leads.
const MAX_ACTIVITY_TYPES: usize = 10;
const MAX_ACTIVITY_LEADS: usize = 30;

/// `GET /rest/v1/activities.json?nextPageToken=…&activityTypeIds=…&leadIds=…&batchSize=…`:
/// the activities from the token's position on, of those types (and
/// leads), at most `batchSize` (default and most 300), oldest first.
fn activities(state: &State, params: &Params) -> Result<Reply, Failure> {
    let token = params
        .get("nextPageToken")
        .ok_or_else(|| invalid("nextPageToken is required"))?;
    let start: usize = token
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| fail(1003, format!("Invalid nextPageToken '{token}'")))?;
    let numbers = |name: &str| -> Result<Vec<u32>, Failure> {
        params
            .list(name)
            .unwrap_or_default()
            .iter()
            .map(|v| leads::parse_id(v).ok_or_else(|| invalid(format!("Invalid {name} '{v}'"))))
            .collect()
    };
    let types = numbers("activityTypeIds")?;
    if types.is_empty() || types.len() > MAX_ACTIVITY_TYPES {
        return Err(invalid(format!(
            "activityTypeIds: 1 to {MAX_ACTIVITY_TYPES} ids are required"
        )));
    }
    let lead_ids = numbers("leadIds")?;
    if lead_ids.len() > MAX_ACTIVITY_LEADS {
        return Err(invalid(format!(
            "leadIds exceeds the limit of {MAX_ACTIVITY_LEADS}"
        )));
    }
    let batch = batch_size(params)?;
    let db = state.lead_db();
    let (all, dropped) = db.activities();
    let mut result = Vec::new();
    // A token older than what the log keeps starts at the oldest kept.
    let mut position = start.saturating_sub(dropped).min(all.len());
    while position < all.len() && result.len() < batch {
        let a = &all[position];
        position += 1;
        if !types.contains(&a.type_id) || (!lead_ids.is_empty() && !lead_ids.contains(&a.lead_id)) {
            continue;
        }
        let mut record = json!({
            "id": a.id,
            "marketoGUID": a.id.to_string(),
            "leadId": a.lead_id,
            "activityDate": a.date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "activityTypeId": a.type_id,
            "primaryAttributeValue": &*a.primary_value,
            "attributes": a.attributes.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        });
        if let Some(campaign) = a.campaign_id {
            record["campaignId"] = campaign.into();
        }
        result.push(record);
    }
    Ok(Reply::Page {
        result,
        next: format!("{TOKEN_PREFIX}{:012}", dropped + position),
        more: position < all.len(),
    })
}

/// `POST /rest/v1/leads/{id}/merge.json?leadIds=…` (or `leadId=`): merges
/// those leads into lead `id` and deletes them. 1004 names a lead that is
/// not there; nothing is merged then.
fn merge(state: &State, id: &str, params: &Params) -> Result<Vec<Value>, Failure> {
    let winner = leads::parse_id(id).ok_or_else(|| fail(1001, format!("Invalid id '{id}'")))?;
    let losers: Vec<u32> = params
        .list("leadIds")
        .or_else(|| params.list("leadId"))
        .ok_or_else(|| invalid("leadId or leadIds is required"))?
        .iter()
        .map(|v| leads::parse_id(v).ok_or_else(|| fail(1001, format!("Invalid id '{v}'"))))
        .collect::<Result<_, _>>()?;
    if losers.is_empty() || losers.len() > 3 {
        return Err(invalid("between 1 and 3 losing lead ids are required"));
    }
    state
        .lead_db_mut()
        .merge(winner, &losers)
        .map_err(|id| fail(1004, format!("Lead '{id}' not found")))?;
    Ok(Vec::new())
}

/// `POST /rest/v1/leads/{id}/associate.json?cookie=…`: 1004 for an
/// unknown lead, 1003 without a cookie.
fn associate(state: &State, id: &str, params: &Params) -> Result<Vec<Value>, Failure> {
    let cookie = params
        .get("cookie")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| invalid("cookie is required"))?;
    let found = leads::parse_id(id).is_some_and(|id| state.lead_db_mut().associate(id, cookie));
    if found {
        Ok(Vec::new())
    } else {
        Err(fail(1004, format!("Lead '{id}' not found")))
    }
}

/// 612 unless the request says it is JSON.
fn require_json(request: &RestRequest<'_>) -> Result<(), Failure> {
    let is_json = request.content_type.is_some_and(|t| {
        t.trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    if is_json {
        Ok(())
    } else {
        Err(fail(612, "Invalid Content Type"))
    }
}

fn parse_json(body: &[u8]) -> Result<Value, Failure> {
    serde_json::from_slice(body).map_err(|_| fail(609, "Invalid JSON"))
}

/// The `input` object: absent or `null` gives `None`.
fn input(body: &Value) -> Result<Option<&Map<String, Value>>, Failure> {
    match body {
        Value::Null => Ok(None),
        Value::Object(body) => match body.get("input") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(input)) => Ok(Some(input)),
            Some(_) => Err(invalid("input must be an object")),
        },
        _ => Err(invalid("the request body must be an object")),
    }
}

/// `input.tokens`: at most 100 `{"name","value"}` string pairs.
fn tokens(input: Option<&Map<String, Value>>) -> Result<Vec<JournalToken>, Failure> {
    let list = match input.and_then(|i| i.get("tokens")) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("tokens must be a list")),
    };
    if list.len() > MAX_TOKENS {
        return Err(invalid(format!("tokens exceeds the limit of {MAX_TOKENS}")));
    }
    list.iter()
        .map(|token| match (token.get("name"), token.get("value")) {
            (Some(Value::String(name)), Some(Value::String(value))) if !name.is_empty() => {
                Ok(JournalToken {
                    name: name.clone(),
                    value: value.clone(),
                })
            }
            _ => Err(invalid(
                r#"each token must be {"name":"{{my.Name}}","value":"text"}"#,
            )),
        })
        .collect()
}

/// The campaign of a path id (all digits), if there is one.
pub(crate) fn campaign<'s>(state: &'s State, id: &str) -> Option<&'s SandboxCampaign> {
    let id: u32 = id.parse().ok()?;
    state.data.campaigns.iter().find(|c| c.id == id)
}

/// The campaign of a path id (all digits); 1013 when there is none.
fn find_campaign<'s>(state: &'s State, id: &str) -> Result<&'s SandboxCampaign, Failure> {
    campaign(state, id).ok_or_else(|| fail(1013, "Campaign not found"))
}

/// `POST /rest/v1/campaigns/{id}/trigger.json`.
fn trigger(state: &State, request: &RestRequest<'_>, id: &str) -> Result<Vec<Value>, Failure> {
    require_json(request)?;
    let body = parse_json(request.body)?;
    let input = input(&body)?;
    let requested = match input.and_then(|i| i.get("leads")) {
        None | Some(Value::Null) => return Err(invalid("input.leads is required")),
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(invalid("input.leads must hold at least one lead"))
        }
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("input.leads must be a list")),
    };
    if requested.len() > MAX_LEADS_PER_CALL {
        return Err(invalid(format!(
            "leads exceeds the limit of {MAX_LEADS_PER_CALL}"
        )));
    }
    // Every id as a number; u64 so ids past u32 are reported as not found.
    let requested = requested
        .iter()
        .map(|lead| {
            lead.get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| invalid(r#"each lead must be {"id":<lead id>}"#))
        })
        .collect::<Result<Vec<u64>, _>>()?;
    let tokens = tokens(input)?;
    let campaign = find_campaign(state, id)?;
    if !campaign.requestable {
        return Err(invalid(format!(
            "Campaign '{}' is a batch campaign and cannot be triggered",
            campaign.name
        )));
    }
    let mut lead_ids: Vec<u32> = Vec::with_capacity(requested.len());
    let mut missing: Vec<u64> = Vec::new();
    for id in requested {
        match u32::try_from(id)
            .ok()
            .filter(|&id| state.lead(id).is_some())
        {
            Some(id) if !lead_ids.contains(&id) => lead_ids.push(id),
            Some(_) => {}
            None if !missing.contains(&id) => missing.push(id),
            None => {}
        }
    }
    if !missing.is_empty() {
        let missing: Vec<String> = missing.iter().map(u64::to_string).collect();
        return Err(fail(
            1004,
            format!("Lead(s) not found: {}", missing.join(", ")),
        ));
    }
    state.record_run(JournalEntry {
        api: "rest".into(),
        campaign_id: campaign.id,
        lead_ids,
        tokens,
        ignored_keys: 0,
        run_at: None,
        ajo: None,
    });
    // Marketo documents `{"id":N}`; the Swagger requires a whole Campaign.
    Ok(vec![campaign_json(state, campaign)])
}

/// A `runAt` the sandbox accepts: RFC 3339, or ISO 8601 with a `+hhmm`
/// offset.
fn valid_run_at(run_at: &str) -> bool {
    DateTime::parse_from_rfc3339(run_at).is_ok()
        || DateTime::parse_from_str(run_at, "%Y-%m-%dT%H:%M:%S%.f%z").is_ok()
}

/// `POST /rest/v1/campaigns/{id}/schedule.json`. The body is optional; when
/// there is one it must be JSON. Without `runAt` the journal's `run_at` is
/// empty (Marketo runs the campaign five minutes later).
fn schedule(state: &State, request: &RestRequest<'_>, id: &str) -> Result<Vec<Value>, Failure> {
    let body = if request.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        require_json(request)?;
        parse_json(request.body)?
    };
    let input = input(&body)?;
    let run_at = match input.and_then(|i| i.get("runAt")) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(run_at)) if valid_run_at(run_at) => run_at.clone(),
        Some(other) => {
            return Err(fail(
                1001,
                format!(
                    "Invalid value '{other}' for runAt: use a date-time like 2024-05-01T10:00:00Z"
                ),
            ))
        }
    };
    match input.and_then(|i| i.get("cloneToProgramName")) {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(_) => return Err(invalid("cloneToProgramName must be a string")),
    }
    let tokens = tokens(input)?;
    let campaign = find_campaign(state, id)?;
    if campaign.requestable {
        return Err(invalid(format!(
            "Campaign '{}' is not a batch campaign",
            campaign.name
        )));
    }
    state.journal.record(JournalEntry {
        api: "rest".into(),
        campaign_id: campaign.id,
        lead_ids: Vec::new(),
        tokens,
        ignored_keys: 0,
        run_at: Some(run_at),
        ajo: None,
    });
    // Marketo documents `{"id":N}`; the Swagger requires a whole Campaign.
    Ok(vec![campaign_json(state, campaign)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            route("GET", "/rest/v1/campaigns.json"),
            Some(Route::Campaigns)
        ));
        assert!(matches!(
            route("POST", "/rest/v1/campaigns/12/trigger.json"),
            Some(Route::Trigger("12"))
        ));
        assert!(matches!(
            route("POST", "/rest/v1/campaigns/12/schedule.json"),
            Some(Route::Schedule("12"))
        ));
        for (method, path) in [
            ("POST", "/rest/v1/campaigns.json"),
            ("GET", "/rest/v1/campaigns/12/trigger.json"),
            ("POST", "/rest/v1/campaigns/x/trigger.json"),
            ("POST", "/rest/v1/campaigns//trigger.json"),
            ("POST", "/rest/v1/campaigns/1/2/trigger.json"),
            ("GET", "/rest/v2/leads.json"),
        ] {
            assert!(route(method, path).is_none(), "{method} {path}");
        }
    }

    #[test]
    fn run_at_formats() {
        assert!(valid_run_at("2024-05-01T10:00:00Z"));
        assert!(valid_run_at("2024-05-01T10:00:00-07:00"));
        assert!(valid_run_at("2024-05-01T10:00:00+0000"));
        assert!(!valid_run_at("tomorrow"));
        assert!(!valid_run_at("2024-05-01"));
    }
}
