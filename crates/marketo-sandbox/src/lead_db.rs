//! The sandbox's lead database: the data's leads, then what REST writes do
//! to them (`POST /rest/v1/leads.json`, cookie association), indexed for
//! look-ups, with the lead fields `describe.json` lists and a log of every
//! change (what tests read to see that a write was applied once).

use std::collections::BTreeMap;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::data::{SandboxLead, SandboxList};
use crate::leads::{self, LeadIndex};
use marketo_campaign::{Clock, LeadKeyType};

/// One lead field as `GET /rest/v1/leads/describe.json` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldInfo {
    pub(crate) id: u32,
    pub(crate) display_name: &'static str,
    pub(crate) data_type: &'static str,
    pub(crate) length: Option<u32>,
    pub(crate) rest: &'static str,
    /// The SOAP API's name (`attrName`), if SOAP sees the field.
    pub(crate) soap: Option<&'static str>,
    pub(crate) read_only: bool,
}

const fn field(
    id: u32,
    display_name: &'static str,
    data_type: &'static str,
    length: Option<u32>,
    rest: &'static str,
    soap: Option<&'static str>,
    read_only: bool,
) -> FieldInfo {
    FieldInfo {
        id,
        display_name,
        data_type,
        length,
        rest,
        soap,
        read_only,
    }
}

/// The sandbox's lead fields: Marketo's standard ones the sandbox keeps,
/// with their REST and SOAP names and data types.
pub(crate) const FIELDS: &[FieldInfo] = &[
    field(1, "Id", "integer", None, "id", Some("Id"), true),
    field(
        2,
        "Email Address",
        "email",
        Some(255),
        "email",
        Some("Email"),
        false,
    ),
    field(
        3,
        "First Name",
        "string",
        Some(255),
        "firstName",
        Some("FirstName"),
        false,
    ),
    field(
        4,
        "Last Name",
        "string",
        Some(255),
        "lastName",
        Some("LastName"),
        false,
    ),
    field(
        5,
        "Company Name",
        "string",
        Some(255),
        "company",
        Some("Company"),
        false,
    ),
    field(
        6,
        "Job Title",
        "string",
        Some(255),
        "title",
        Some("Title"),
        false,
    ),
    field(
        7,
        "Phone Number",
        "phone",
        Some(255),
        "phone",
        Some("Phone"),
        false,
    ),
    field(8, "City", "string", Some(255), "city", Some("City"), false),
    field(
        9,
        "Lead Score",
        "integer",
        None,
        "leadScore",
        Some("LeadScore"),
        false,
    ),
    field(
        10,
        "Unsubscribed",
        "boolean",
        None,
        "unsubscribed",
        Some("Unsubscribed"),
        false,
    ),
    field(11, "Cookies", "string", Some(255), "cookies", None, false),
    field(
        12,
        "SFDC Lead ID",
        "string",
        Some(18),
        "sfdcLeadId",
        Some("SFDCLeadId"),
        false,
    ),
    field(
        13,
        "SFDC Contact ID",
        "string",
        Some(18),
        "sfdcContactId",
        Some("SFDCContactId"),
        false,
    ),
    field(
        14,
        "SFDC Account ID",
        "string",
        Some(18),
        "sfdcAccountId",
        Some("SFDCAccountId"),
        false,
    ),
    field(
        15,
        "SFDC Lead Owner ID",
        "string",
        Some(18),
        "sfdcLeadOwnerId",
        Some("SFDCLeadOwnerId"),
        false,
    ),
    field(
        16,
        "SFDC Opportunity ID",
        "string",
        Some(18),
        "sfdcOpptyId",
        Some("SFDCOpptyId"),
        false,
    ),
];

/// The describe entry of REST field `name` (exact spelling).
pub(crate) fn describe(name: &str) -> Option<&'static FieldInfo> {
    FIELDS.iter().find(|f| f.rest == name)
}

/// What a sync does when the lookup field finds a lead, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    CreateOnly,
    UpdateOnly,
    CreateOrUpdate,
    /// Create a new lead whatever the lookup field finds.
    CreateDuplicate,
}

impl Action {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "createOnly" => Some(Action::CreateOnly),
            "updateOnly" => Some(Action::UpdateOnly),
            "createOrUpdate" => Some(Action::CreateOrUpdate),
            "createDuplicate" => Some(Action::CreateDuplicate),
            _ => None,
        }
    }
}

/// A change the lead database applied, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct LeadChange {
    /// The lead's id.
    pub lead_id: u32,
    /// `created`, `updated` or `cookie associated`.
    pub what: String,
    /// The fields written, by REST name, as written.
    pub fields: BTreeMap<String, String>,
}

/// The outcome of one sync record: `{"id","status"}` or
/// `{"status":"skipped","reasons":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncOutcome {
    Created(u32),
    Updated(u32),
    Skipped(u32, String),
}

/// What a list operation did for one lead id (REST's record status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListStatus {
    Added,
    Removed,
    MemberOf,
    NotMemberOf,
    Skipped(u32, String),
}

impl ListStatus {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            ListStatus::Added => "added",
            ListStatus::Removed => "removed",
            ListStatus::MemberOf => "memberof",
            ListStatus::NotMemberOf => "notmemberof",
            ListStatus::Skipped(..) => "skipped",
        }
    }
}

/// A list operation (`POST`/`DELETE lists/{id}/leads.json`, `ismember`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListOp {
    Add,
    Remove,
    IsMember,
}

/// An activity type the sandbox records: REST id, REST name (SOAP's
/// `activityType` is the name without spaces), primary attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActivityType {
    pub(crate) id: u32,
    pub(crate) name: &'static str,
    pub(crate) primary: &'static str,
}

/// The activity types the sandbox records (with Marketo's ids for them).
pub(crate) const ACTIVITY_TYPES: &[ActivityType] = &[
    ActivityType {
        id: 12,
        name: "New Lead",
        primary: "Lead Name",
    },
    ActivityType {
        id: 13,
        name: "Change Data Value",
        primary: "Attribute Name",
    },
    ActivityType {
        id: 24,
        name: "Add to List",
        primary: "List Name",
    },
    ActivityType {
        id: 25,
        name: "Remove from List",
        primary: "List Name",
    },
    ActivityType {
        id: 47,
        name: "Request Campaign",
        primary: "Campaign Name",
    },
    ActivityType {
        id: 32,
        name: "Merge Leads",
        primary: "Lead Name",
    },
];

const MERGE_LEADS: u32 = 32;

const NEW_LEAD: u32 = 12;
const CHANGE_DATA_VALUE: u32 = 13;
const ADD_TO_LIST: u32 = 24;
const REMOVE_FROM_LIST: u32 = 25;
/// The `Request Campaign` activity type's id.
pub(crate) const REQUEST_CAMPAIGN: u32 = 47;

/// One activity, as `activities.json` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Activity {
    pub(crate) id: u64,
    pub(crate) lead_id: u32,
    pub(crate) date: DateTime<Utc>,
    pub(crate) type_id: u32,
    pub(crate) campaign_id: Option<u32>,
    /// Shared by the activities of one event (a run's leads).
    pub(crate) primary_value: Arc<str>,
    pub(crate) attributes: Arc<[(String, String)]>,
}

/// The most activities the log keeps: past it, the oldest half is dropped
/// (paging tokens and ids stay absolute), so a long run does not grow the
/// sandbox without bound (Marketo itself keeps activities for 90 days).
pub(crate) const MAX_ACTIVITIES: usize = 1 << 20;

/// The leads, their index, the static lists, the change log and the
/// activity log.
#[derive(Debug)]
pub(crate) struct LeadDb {
    leads: Vec<SandboxLead>,
    index: LeadIndex,
    lists: Vec<SandboxList>,
    changes: Vec<LeadChange>,
    activities: Vec<Activity>,
    /// Activities dropped from the front of the log so far.
    dropped: usize,
    clock: Arc<dyn Clock>,
}

impl LeadDb {
    pub(crate) fn new(
        leads: Vec<SandboxLead>,
        lists: Vec<SandboxList>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let index = LeadIndex::new(&leads);
        LeadDb {
            leads,
            index,
            lists,
            changes: Vec::new(),
            activities: Vec::new(),
            dropped: 0,
            clock,
        }
    }

    /// The activities kept, oldest first, and the absolute position of the
    /// first (how many were dropped before it).
    pub(crate) fn activities(&self) -> (&[Activity], usize) {
        (&self.activities, self.dropped)
    }

    /// Records an activity of `type_id` for `lead_id` now.
    pub(crate) fn log_activity(
        &mut self,
        lead_id: u32,
        type_id: u32,
        primary_value: String,
        campaign_id: Option<u32>,
        attributes: Vec<(String, String)>,
    ) {
        self.log_activities(
            &[lead_id],
            type_id,
            primary_value.into(),
            campaign_id,
            attributes.into(),
        );
    }

    /// Records one activity of `type_id` for each of `lead_ids`, at one
    /// time, sharing the values.
    pub(crate) fn log_activities(
        &mut self,
        lead_ids: &[u32],
        type_id: u32,
        primary_value: Arc<str>,
        campaign_id: Option<u32>,
        attributes: Arc<[(String, String)]>,
    ) {
        if self.activities.len() + lead_ids.len() > MAX_ACTIVITIES {
            let drop = self.activities.len() / 2;
            self.activities.drain(..drop);
            self.dropped += drop;
        }
        let date = self.clock.now();
        for &lead_id in lead_ids {
            let id = (self.dropped + self.activities.len()) as u64 + 1;
            self.activities.push(Activity {
                id,
                lead_id,
                date,
                type_id,
                campaign_id,
                primary_value: Arc::clone(&primary_value),
                attributes: Arc::clone(&attributes),
            });
        }
    }

    /// The static lists.
    pub(crate) fn lists(&self) -> &[SandboxList] {
        &self.lists
    }

    /// Applies `op` to list `list_id` for each of `ids`, in order; `None`
    /// when there is no such list. Unknown leads are skipped (1004);
    /// removing a lead that is not a member is skipped (1015).
    pub(crate) fn list_op(
        &mut self,
        list_id: u32,
        op: ListOp,
        ids: &[u32],
    ) -> Option<Vec<ListStatus>> {
        let position = self.lists.iter().position(|l| l.id == list_id)?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            if self.index.position(id).is_none() {
                out.push(ListStatus::Skipped(1004, "Lead not found".into()));
                continue;
            }
            let list = &mut self.lists[position];
            let member = list.members.contains(&id);
            let status = match (op, member) {
                (ListOp::IsMember, true) => ListStatus::MemberOf,
                (ListOp::IsMember, false) => ListStatus::NotMemberOf,
                (ListOp::Add, true) => ListStatus::Added,
                (ListOp::Add, false) => {
                    list.members.push(id);
                    let name = list.name.clone();
                    self.log_activity(id, ADD_TO_LIST, name, None, Vec::new());
                    self.changes.push(LeadChange {
                        lead_id: id,
                        what: format!("added to list {list_id}"),
                        fields: BTreeMap::new(),
                    });
                    ListStatus::Added
                }
                (ListOp::Remove, true) => {
                    list.members.retain(|&m| m != id);
                    let name = list.name.clone();
                    self.log_activity(id, REMOVE_FROM_LIST, name, None, Vec::new());
                    self.changes.push(LeadChange {
                        lead_id: id,
                        what: format!("removed from list {list_id}"),
                        fields: BTreeMap::new(),
                    });
                    ListStatus::Removed
                }
                (ListOp::Remove, false) => ListStatus::Skipped(1015, "Lead not in list".into()),
            };
            out.push(status);
        }
        Some(out)
    }

    /// The lowest id answering to `key_type:value`.
    pub(crate) fn find_one(&self, key_type: LeadKeyType, value: &str) -> Option<u32> {
        self.index.find_one(key_type, value)
    }

    /// Every id answering to `key_type:value`, lowest first.
    pub(crate) fn find_all(&self, key_type: LeadKeyType, value: &str) -> Vec<u32> {
        self.index.find_all(key_type, value)
    }

    /// Lead `id`.
    pub(crate) fn get(&self, id: u32) -> Option<&SandboxLead> {
        self.index.position(id).and_then(|p| self.leads.get(p))
    }

    /// Every change so far.
    pub(crate) fn changes(&self) -> &[LeadChange] {
        &self.changes
    }

    /// Syncs one input record: finds the lead by `lookup_field` (a REST
    /// name; the value must be in the record), then creates, updates or
    /// skips as `action` says. Every field must be one of [`FIELDS`] or a
    /// custom field the data's leads have, of the right type; nothing of a
    /// skipped record is written.
    pub(crate) fn sync(
        &mut self,
        action: Action,
        lookup_field: &str,
        record: &Map<String, Value>,
        custom: &dyn Fn(&str) -> bool,
    ) -> SyncOutcome {
        let mut fields = BTreeMap::new();
        for (name, value) in record {
            let known = describe(name);
            if known.is_none() && !custom(name) {
                return SyncOutcome::Skipped(1006, format!("Field '{name}' not found"));
            }
            let text = match (known.map(|f| f.data_type), value) {
                (_, Value::Null) => String::new(),
                (Some("integer"), Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
                (Some("integer"), Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
                    s.trim().to_owned()
                }
                (Some("integer"), _) => {
                    return SyncOutcome::Skipped(1003, format!("Invalid value for field '{name}'"))
                }
                (Some("boolean"), Value::Bool(b)) => b.to_string(),
                (Some("boolean"), Value::String(s)) if s == "true" || s == "false" => s.clone(),
                (Some("boolean"), _) => {
                    return SyncOutcome::Skipped(1003, format!("Invalid value for field '{name}'"))
                }
                (Some("email"), Value::String(s)) if s.is_empty() || s.contains('@') => s.clone(),
                (Some("email"), _) => {
                    return SyncOutcome::Skipped(1003, format!("Invalid email address '{value}'"))
                }
                (_, Value::String(s)) => s.clone(),
                (_, Value::Number(n)) => n.to_string(),
                (_, Value::Bool(b)) => b.to_string(),
                (_, _) => {
                    return SyncOutcome::Skipped(1003, format!("Invalid value for field '{name}'"))
                }
            };
            if let Some(limit) = known.and_then(|f| f.length) {
                if text.chars().count() > limit as usize {
                    return SyncOutcome::Skipped(
                        1003,
                        format!("Value for field '{name}' exceeds {limit} characters"),
                    );
                }
            }
            fields.insert(name.clone(), text);
        }
        let Some(key) = fields.get(lookup_field).filter(|v| !v.is_empty()).cloned() else {
            return SyncOutcome::Skipped(1003, format!("Field '{lookup_field}' is required"));
        };
        let found = if action == Action::CreateDuplicate {
            Vec::new()
        } else if lookup_field == "id" {
            leads::parse_id(&key)
                .filter(|id| self.index.position(*id).is_some())
                .into_iter()
                .collect()
        } else {
            match LeadKeyType::from_rest_field(lookup_field) {
                Some(key_type) => self.find_all(key_type, &key),
                None => self.find_custom(lookup_field, &key),
            }
        };
        match (found.as_slice(), action) {
            ([_, _, ..], _) => {
                SyncOutcome::Skipped(1007, "Multiple lead match lookup criteria".into())
            }
            ([], Action::UpdateOnly) => SyncOutcome::Skipped(1004, "Lead not found".into()),
            ([id], Action::CreateOnly) => {
                SyncOutcome::Skipped(1005, format!("Lead already exists (id {id})"))
            }
            ([], Action::CreateOnly | Action::CreateOrUpdate) if lookup_field == "id" => {
                SyncOutcome::Skipped(1004, "Lead not found".into())
            }
            ([], _) => {
                let id = self.next_id();
                fields.remove("id");
                let mut lead = SandboxLead {
                    id,
                    ..SandboxLead::default()
                };
                apply(&mut lead, &fields);
                let name = lead_name(&lead);
                self.insert(lead);
                self.log_activity(id, NEW_LEAD, name, None, Vec::new());
                self.changes.push(LeadChange {
                    lead_id: id,
                    what: "created".into(),
                    fields,
                });
                SyncOutcome::Created(id)
            }
            ([id], _) => {
                let id = *id;
                fields.remove("id");
                let before = self.get(id).map(lead_fields).unwrap_or_default();
                self.update(id, |lead| apply(lead, &fields));
                for (name, value) in &fields {
                    let old = before.get(name).cloned().unwrap_or_default();
                    if &old != value {
                        let display = describe(name).map_or(name.as_str(), |f| f.display_name);
                        self.log_activity(
                            id,
                            CHANGE_DATA_VALUE,
                            display.to_owned(),
                            None,
                            vec![
                                ("New Value".to_owned(), value.clone()),
                                ("Old Value".to_owned(), old),
                            ],
                        );
                    }
                }
                self.changes.push(LeadChange {
                    lead_id: id,
                    what: "updated".into(),
                    fields,
                });
                SyncOutcome::Updated(id)
            }
        }
    }

    /// Merges the `losers` into `winner`: each field the winner has no
    /// value for takes the loser's, cookies and list memberships join the
    /// winner's, and the losers are deleted. `Err` names the first id that
    /// is no lead (nothing is changed then).
    pub(crate) fn merge(&mut self, winner: u32, losers: &[u32]) -> Result<(), u32> {
        for &id in std::iter::once(&winner).chain(losers) {
            if self.index.position(id).is_none()
                || (id != winner && losers.iter().filter(|&&l| l == id).count() > 1)
            {
                return Err(id);
            }
        }
        if losers.contains(&winner) {
            return Err(winner);
        }
        let mut merged = BTreeMap::new();
        for &loser in losers {
            let Some(from) = self.get(loser).cloned() else {
                return Err(loser);
            };
            let theirs = lead_fields(&from);
            let ours = self.get(winner).map(lead_fields).unwrap_or_default();
            let taken: BTreeMap<String, String> = theirs
                .into_iter()
                .filter(|(name, value)| {
                    name != "cookies"
                        && !value.is_empty()
                        && ours.get(name).is_none_or(String::is_empty)
                })
                .collect();
            self.update(winner, |lead| apply(lead, &taken));
            if let Some(cookies) = &from.cookie {
                for cookie in leads::cookies(cookies)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
                {
                    self.update(winner, |lead| {
                        let mut all: Vec<String> = lead
                            .cookie
                            .as_deref()
                            .map(|c| leads::cookies(c).map(str::to_owned).collect())
                            .unwrap_or_default();
                        if !all.contains(&cookie) {
                            all.push(cookie.clone());
                        }
                        lead.cookie = Some(all.join(", "));
                    });
                }
            }
            for list in &mut self.lists {
                if list.members.contains(&loser) {
                    list.members.retain(|&m| m != loser);
                    if !list.members.contains(&winner) {
                        list.members.push(winner);
                    }
                }
            }
            self.index.remove(&from);
            self.index.forget(loser);
            self.changes.push(LeadChange {
                lead_id: loser,
                what: format!("merged into {winner}"),
                fields: BTreeMap::new(),
            });
            merged.extend(taken);
        }
        let name = self.get(winner).map(lead_name).unwrap_or_default();
        let ids: Vec<String> = losers.iter().map(u32::to_string).collect();
        self.log_activity(
            winner,
            MERGE_LEADS,
            name,
            None,
            vec![("Merged Lead Ids".to_owned(), ids.join(","))],
        );
        self.changes.push(LeadChange {
            lead_id: winner,
            what: format!("merged {}", ids.join(",")),
            fields: merged,
        });
        Ok(())
    }

    /// Adds `cookie` to lead `id`'s cookies; `false` when there is no such
    /// lead.
    pub(crate) fn associate(&mut self, id: u32, cookie: &str) -> bool {
        if self.index.position(id).is_none() {
            return false;
        }
        self.update(id, |lead| {
            let mut cookies: Vec<String> = lead
                .cookie
                .as_deref()
                .map(|c| leads::cookies(c).map(str::to_owned).collect())
                .unwrap_or_default();
            if !cookies.iter().any(|c| c == cookie) {
                cookies.push(cookie.to_owned());
            }
            lead.cookie = Some(cookies.join(", "));
        });
        self.changes.push(LeadChange {
            lead_id: id,
            what: "cookie associated".into(),
            fields: BTreeMap::from([("cookies".to_owned(), cookie.to_owned())]),
        });
        true
    }

    fn next_id(&self) -> u32 {
        self.leads
            .iter()
            .map(|l| l.id)
            .max()
            .unwrap_or(1_000_000)
            .saturating_add(1)
    }

    fn find_custom(&self, name: &str, value: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .leads
            .iter()
            .filter(|l| l.fields.get(name).is_some_and(|v| v == value))
            .map(|l| l.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    fn insert(&mut self, lead: SandboxLead) {
        let position = self.leads.len();
        self.index.add(position, &lead);
        self.leads.push(lead);
    }

    fn update(&mut self, id: u32, change: impl FnOnce(&mut SandboxLead)) {
        let Some(position) = self.index.position(id) else {
            return;
        };
        let Some(lead) = self.leads.get_mut(position) else {
            return;
        };
        self.index.remove(lead);
        change(lead);
        self.index.add(position, lead);
    }
}

/// A lead's name for `New Lead`: first and last name, else its email.
fn lead_name(lead: &SandboxLead) -> String {
    let first = lead.fields.get("firstName").map_or("", String::as_str);
    let last = lead.fields.get("lastName").map_or("", String::as_str);
    let name = format!("{first} {last}").trim().to_owned();
    if name.is_empty() {
        lead.email.clone().unwrap_or_default()
    } else {
        name
    }
}

/// A lead's fields by REST name (key fields included, id aside).
fn lead_fields(lead: &SandboxLead) -> BTreeMap<String, String> {
    let mut fields = lead.fields.clone();
    for key_type in LeadKeyType::ALL {
        if let Some(value) = leads::field(lead, key_type) {
            fields.insert(key_type.rest_field().to_owned(), value.to_owned());
        }
    }
    fields
}

/// Writes REST `fields` into `lead`: key fields into their places, the
/// others into `fields`; an empty value clears.
fn apply(lead: &mut SandboxLead, fields: &BTreeMap<String, String>) {
    for (name, value) in fields {
        let value = (!value.is_empty()).then(|| value.clone());
        let slot = match LeadKeyType::from_rest_field(name) {
            Some(LeadKeyType::Idnum) => continue,
            Some(LeadKeyType::Email) => &mut lead.email,
            Some(LeadKeyType::Cookie) => &mut lead.cookie,
            Some(LeadKeyType::LeadOwnerEmail) => &mut lead.lead_owner_email,
            Some(LeadKeyType::SfdcAccountId) => &mut lead.sfdc_account_id,
            Some(LeadKeyType::SfdcContactId) => &mut lead.sfdc_contact_id,
            Some(LeadKeyType::SfdcLeadId) => &mut lead.sfdc_lead_id,
            Some(LeadKeyType::SfdcLeadOwnerId) => &mut lead.sfdc_lead_owner_id,
            Some(LeadKeyType::SfdcOpptyId) => &mut lead.sfdc_oppty_id,
            None => {
                match value {
                    Some(value) => lead.fields.insert(name.clone(), value),
                    None => lead.fields.remove(name),
                };
                continue;
            }
        };
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: Value) -> Map<String, Value> {
        match json {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn db() -> LeadDb {
        let clock: Arc<dyn Clock> = Arc::new(marketo_campaign::SystemClock);
        LeadDb::new(
            vec![SandboxLead {
                id: 5,
                email: Some("a@x.com".into()),
                ..SandboxLead::default()
            }],
            vec![SandboxList {
                id: 1,
                name: "L".into(),
                members: Vec::new(),
            }],
            clock,
        )
    }

    #[test]
    fn list_membership_changes_once() {
        let mut db = db();
        assert_eq!(db.list_op(9, ListOp::Add, &[5]), None);
        assert_eq!(
            db.list_op(1, ListOp::Add, &[5, 5, 6]),
            Some(vec![
                ListStatus::Added,
                ListStatus::Added,
                ListStatus::Skipped(1004, "Lead not found".into())
            ])
        );
        assert_eq!(
            db.list_op(1, ListOp::IsMember, &[5]),
            Some(vec![ListStatus::MemberOf])
        );
        assert_eq!(
            db.list_op(1, ListOp::Remove, &[5]),
            Some(vec![ListStatus::Removed])
        );
        assert!(matches!(
            db.list_op(1, ListOp::Remove, &[5]).as_deref(),
            Some([ListStatus::Skipped(1015, _)])
        ));
        assert_eq!(
            db.list_op(1, ListOp::IsMember, &[5]),
            Some(vec![ListStatus::NotMemberOf])
        );
        assert_eq!(db.changes().len(), 2);
    }

    #[test]
    fn create_update_skip_by_action() {
        let mut db = db();
        let none = |_: &str| false;
        let new = record(serde_json::json!({"email": "b@x.com", "firstName": "Ann"}));
        assert_eq!(
            db.sync(Action::UpdateOnly, "email", &new, &none),
            SyncOutcome::Skipped(1004, "Lead not found".into())
        );
        assert_eq!(
            db.sync(Action::CreateOrUpdate, "email", &new, &none),
            SyncOutcome::Created(6)
        );
        assert_eq!(db.find_one(LeadKeyType::Email, "B@x.com"), Some(6));
        let again = record(serde_json::json!({"email": "b@x.com", "firstName": "Bo"}));
        assert_eq!(
            db.sync(Action::CreateOrUpdate, "email", &again, &none),
            SyncOutcome::Updated(6)
        );
        assert_eq!(
            db.get(6).map(|l| l.fields["firstName"].as_str()),
            Some("Bo")
        );
        assert!(matches!(
            db.sync(Action::CreateOnly, "email", &again, &none),
            SyncOutcome::Skipped(1005, _)
        ));
        // An email change moves the lead in the index.
        let moved = record(serde_json::json!({"id": 6, "email": "c@x.com"}));
        assert_eq!(
            db.sync(Action::UpdateOnly, "id", &moved, &none),
            SyncOutcome::Updated(6)
        );
        assert_eq!(db.find_one(LeadKeyType::Email, "b@x.com"), None);
        assert_eq!(db.find_one(LeadKeyType::Email, "c@x.com"), Some(6));
        assert_eq!(db.changes().len(), 3);
    }

    #[test]
    fn unknown_fields_and_bad_values_write_nothing() {
        let mut db = db();
        let none = |_: &str| false;
        let unknown = record(serde_json::json!({"email": "a@x.com", "Foo__c": "x"}));
        assert_eq!(
            db.sync(Action::CreateOrUpdate, "email", &unknown, &none),
            SyncOutcome::Skipped(1006, "Field 'Foo__c' not found".into())
        );
        let bad = record(serde_json::json!({"email": "a@x.com", "leadScore": "many"}));
        assert!(matches!(
            db.sync(Action::CreateOrUpdate, "email", &bad, &none),
            SyncOutcome::Skipped(1003, _)
        ));
        assert!(db.changes().is_empty());
        assert_eq!(db.get(5).map(|l| l.fields.len()), Some(0));
    }

    #[test]
    fn the_activity_log_keeps_a_bounded_tail_with_absolute_ids() {
        let mut db = db();
        let ids: Vec<u32> = (1..=1000).collect();
        let batches = MAX_ACTIVITIES / 1000 + 5;
        for _ in 0..batches {
            db.log_activities(
                &ids,
                REQUEST_CAMPAIGN,
                "C".into(),
                Some(1),
                Vec::new().into(),
            );
        }
        let (kept, dropped) = db.activities();
        assert!(dropped > 0);
        assert!(kept.len() <= MAX_ACTIVITIES);
        assert_eq!(dropped + kept.len(), batches * 1000);
        assert_eq!(kept[0].id, dropped as u64 + 1);
        assert_eq!(kept.last().map(|a| a.id), Some((batches * 1000) as u64));
    }

    #[test]
    fn cookies_are_added_once() {
        let mut db = db();
        assert!(db.associate(5, "id:1&token:a"));
        assert!(db.associate(5, "id:1&token:a"));
        assert!(db.associate(5, "id:1&token:b"));
        assert!(!db.associate(99, "x"));
        assert_eq!(db.find_one(LeadKeyType::Cookie, "id:1&token:b"), Some(5));
        assert_eq!(
            db.get(5).and_then(|l| l.cookie.clone()).as_deref(),
            Some("id:1&token:a, id:1&token:b")
        );
    }
}
