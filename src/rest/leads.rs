//! Marketo's REST lead API: describe the lead fields, read leads, sync
//! (create or update) them, associate a Munchkin cookie. The calls a Rust
//! integration migrating off SOAP's `describeMObject`, `getLead` and
//! `syncLead` makes, and the ones the bridge serves those with.
//!
//! Reads are GETs: whatever fails, nothing was written
//! ([`Error::ReadFailed`]). Writes are POSTs: an answer lost, cut or
//! replaced by a gateway's 5xx leaves the write *unknown*
//! ([`Delivery::Unknown`](crate::Delivery::Unknown)): it may have been
//! applied. They are never repeated then, whatever the retry policy: read
//! the lead before writing again. A sync *by a lookup field*
//! (`createOrUpdate` by email) is safe to send again once you have read
//! the lead; a `createOnly` or a cookie association repeated may not be.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::client::RestClient;
use super::lookup::encode;
use crate::error::Error;

/// Most records one `POST /rest/v1/leads.json` takes (Marketo's limit).
pub const MAX_SYNC_RECORDS: usize = 300;

/// Most losing leads one merge takes (Marketo's limit).
pub const MAX_MERGE_LOSERS: usize = 3;

/// Most values one `GET /rest/v1/leads.json` filters on (Marketo's limit).
pub const MAX_FILTER_VALUES: usize = 300;

/// A lead as REST answers it: `id` and the fields asked for that the lead
/// has a value for, by REST name.
pub type Lead = Map<String, Value>;

/// One lead field, as `GET /rest/v1/leads/describe.json` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeadField {
    /// The field's id.
    pub id: u32,
    /// Its name in Marketo's UI.
    pub display_name: String,
    /// `string`, `email`, `integer`, `boolean`, `datetime`, …
    pub data_type: String,
    /// The most characters it holds (text fields).
    pub length: Option<u32>,
    /// Its REST name (`firstName`), if REST sees it.
    pub rest_name: Option<String>,
    /// Its SOAP name (`FirstName`, the `attrName`), if SOAP sees it.
    pub soap_name: Option<String>,
    /// Whether REST refuses to write it.
    pub read_only: bool,
}

/// What a sync does with each record ([`RestClient::sync_leads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncAction {
    /// Create a lead; a record whose lookup field finds one is skipped.
    CreateOnly,
    /// Update the lead the lookup field finds; none found, skipped.
    UpdateOnly,
    /// Update the lead the lookup field finds, or create one (SOAP
    /// `syncLead`'s meaning).
    CreateOrUpdate,
    /// Create a lead whatever the lookup field finds (SOAP
    /// `syncMultipleLeads` with `dedupEnabled` false).
    CreateDuplicate,
}

impl SyncAction {
    /// The name REST takes (`createOrUpdate`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncAction::CreateOnly => "createOnly",
            SyncAction::UpdateOnly => "updateOnly",
            SyncAction::CreateOrUpdate => "createOrUpdate",
            SyncAction::CreateDuplicate => "createDuplicate",
        }
    }
}

/// What a sync did with one record, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeadSync {
    /// A lead was created, with this id.
    Created(u32),
    /// This lead was updated.
    Updated(u32),
    /// Nothing was written for this record: Marketo's reason (`code`,
    /// `message`; 1004 lead not found, 1005 already exists, 1006 unknown
    /// field, 1007 several leads match, …).
    Skipped {
        /// Marketo's reason code.
        code: String,
        /// Marketo's reason.
        message: String,
    },
}

#[derive(Deserialize)]
struct DescribeRecord {
    id: u32,
    #[serde(rename = "displayName", default)]
    display_name: String,
    #[serde(rename = "dataType", default)]
    data_type: String,
    length: Option<u32>,
    rest: Option<NameRecord>,
    soap: Option<NameRecord>,
}

#[derive(Deserialize)]
struct NameRecord {
    name: String,
    #[serde(rename = "readOnly", default)]
    read_only: bool,
}

#[derive(Deserialize)]
struct SyncRecord {
    id: Option<u32>,
    status: String,
    #[serde(default)]
    reasons: Vec<ReasonRecord>,
}

/// A skipped record's reason, as REST writes it.
#[derive(Deserialize)]
pub(super) struct ReasonRecord {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The first reason's code and message; without one, no code and
/// `status` as the message.
pub(super) fn first_reason(reasons: Vec<ReasonRecord>, status: String) -> (String, String) {
    match reasons.into_iter().next() {
        Some(reason) => (reason.code, reason.message),
        None => (String::new(), status),
    }
}

impl crate::rest::wire::Record for DescribeRecord {}
impl crate::rest::wire::Record for SyncRecord {}

/// A field or lookup name REST takes: letters, digits and `_`.
fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Error::invalid(
            what,
            format!(
                "{:?} is not a lead field name (letters, digits and _ only)",
                crate::error::excerpt(name.as_bytes(), 64)
            ),
        ));
    }
    Ok(())
}

impl RestClient {
    /// Every lead field (`GET /rest/v1/leads/describe.json`), with its
    /// REST and SOAP names and data type. A read: it writes nothing.
    ///
    /// ```
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// let fields = client.describe_leads()?;
    /// let first = fields.iter().find(|f| f.soap_name.as_deref() == Some("FirstName")).unwrap();
    /// assert_eq!(first.rest_name.as_deref(), Some("firstName"));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn describe_leads(&self) -> Result<Vec<LeadField>, Error> {
        let page = self.api_get::<DescribeRecord>("/rest/v1/leads/describe.json")?;
        Ok(page
            .result
            .into_iter()
            .map(|r| {
                let read_only = r.rest.as_ref().is_some_and(|n| n.read_only);
                LeadField {
                    id: r.id,
                    display_name: r.display_name,
                    data_type: r.data_type,
                    length: r.length,
                    rest_name: r.rest.map(|n| n.name),
                    soap_name: r.soap.map(|n| n.name),
                    read_only,
                }
            })
            .collect())
    }

    /// The leads whose `filter_type` field (`email`, `id`, `cookies`,
    /// `sfdcLeadId`, …; see [`DOCUMENTED_FILTER_TYPES`](crate::rest::DOCUMENTED_FILTER_TYPES))
    /// is one of `values` (at most [`MAX_FILTER_VALUES`]), each with `id`
    /// and the `fields` asked (REST names) it has a value for; every page.
    /// A read: it writes nothing.
    ///
    /// ```
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// let leads = client.get_leads("email", &["lead@company.com"], &["email", "firstName"])?;
    /// assert_eq!(leads[0]["id"], 1002200);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn get_leads(
        &self,
        filter_type: &str,
        values: &[&str],
        fields: &[&str],
    ) -> Result<Vec<Lead>, Error> {
        check_name("filterType", filter_type)?;
        for field in fields {
            check_name("fields", field)?;
        }
        if values.is_empty() || values.len() > MAX_FILTER_VALUES {
            return Err(Error::invalid(
                "filterValues",
                format!(
                    "{} values; REST takes 1 to {MAX_FILTER_VALUES} a call",
                    values.len()
                ),
            ));
        }
        if let Some(value) = values
            .iter()
            .find(|v| v.contains(',') || v.trim().is_empty())
        {
            return Err(Error::invalid(
                "filterValues",
                format!(
                    "{:?}: a value REST cannot filter on (blank, or holding a comma)",
                    crate::error::excerpt(value.as_bytes(), 64)
                ),
            ));
        }
        let joined = values
            .iter()
            .map(|v| encode(v))
            .collect::<Vec<_>>()
            .join(",");
        let mut path =
            format!("/rest/v1/leads.json?filterType={filter_type}&filterValues={joined}");
        if !fields.is_empty() {
            path.push_str("&fields=");
            path.push_str(&fields.join(","));
        }
        let mut out = Vec::new();
        let mut page_path = path.clone();
        for _ in 0..1000 {
            let page = self.api_get::<Value>(&page_path)?;
            out.extend(page.result.into_iter().filter_map(|r| match r {
                Value::Object(lead) => Some(lead),
                _ => None,
            }));
            match page.next_page_token {
                Some(token) => page_path = format!("{path}&nextPageToken={}", encode(&token)),
                None => break,
            }
        }
        Ok(out)
    }

    /// Syncs `leads` (records by REST field name, each holding
    /// `lookup_field`; at most [`MAX_SYNC_RECORDS`]) with one
    /// `POST /rest/v1/leads.json`: what happened to each record, in input
    /// order. Refused unsent: no records, too many, a bad name.
    ///
    /// A write: an answer lost, cut or replaced by a gateway's 5xx is an
    /// error of [`Delivery::Unknown`](crate::Delivery::Unknown) — the
    /// records may have been written; it is never repeated by this client.
    ///
    /// ```
    /// use marketo_campaign::rest::{LeadSync, SyncAction};
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// let mut lead = serde_json::Map::new();
    /// lead.insert("email".into(), "new@company.com".into());
    /// lead.insert("firstName".into(), "Ann".into());
    /// let done = client.sync_leads(SyncAction::CreateOrUpdate, "email", &[lead])?;
    /// assert!(matches!(done[0], LeadSync::Created(_)));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn sync_leads(
        &self,
        action: SyncAction,
        lookup_field: &str,
        leads: &[Lead],
    ) -> Result<Vec<LeadSync>, Error> {
        check_name("lookupField", lookup_field)?;
        if leads.is_empty() || leads.len() > MAX_SYNC_RECORDS {
            return Err(Error::invalid(
                "leads",
                format!(
                    "{} records; REST syncs 1 to {MAX_SYNC_RECORDS} a call",
                    leads.len()
                ),
            ));
        }
        for lead in leads {
            for name in lead.keys() {
                check_name("lead field", name)?;
            }
        }
        let body = serde_json::json!({
            "action": action.as_str(),
            "lookupField": lookup_field,
            "input": leads,
        })
        .to_string();
        let page = self.call::<SyncRecord>("POST", "/rest/v1/leads.json", Some(body.as_bytes()))?;
        if page.result.len() != leads.len() {
            return Err(Error::Protocol {
                status: 200,
                reason: format!(
                    "the sync answered {} records for {} sent; some may have been written",
                    page.result.len(),
                    leads.len()
                ),
                body: String::new(),
            });
        }
        Ok(page
            .result
            .into_iter()
            .map(|r| match (r.status.as_str(), r.id) {
                ("created", Some(id)) => LeadSync::Created(id),
                ("updated", Some(id)) => LeadSync::Updated(id),
                _ => {
                    let (code, message) = first_reason(r.reasons, r.status);
                    LeadSync::Skipped { code, message }
                }
            })
            .collect())
    }

    /// Merges the leads `losers` (1 to 3) into lead `winner`
    /// (`POST leads/{id}/merge.json?leadIds=…`): the winner keeps its
    /// values and takes the losers' where it has none; the losers are
    /// deleted. A write: a lost answer is *unknown* (read the losers: a
    /// merged lead is gone), never repeated by this client.
    ///
    /// ```
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// client.merge_leads(1002200, &[1002201])?;
    /// assert!(sandbox.lead(1002201).is_none());
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn merge_leads(&self, winner: u32, losers: &[u32]) -> Result<(), Error> {
        if losers.is_empty() || losers.len() > MAX_MERGE_LOSERS || losers.contains(&winner) {
            return Err(Error::invalid(
                "losing leads",
                format!(
                    "{} losing leads{}; a merge takes 1 to {MAX_MERGE_LOSERS}, none of them the winner",
                    losers.len(),
                    if losers.contains(&winner) { ", the winner among them" } else { "" }
                ),
            ));
        }
        let ids: Vec<String> = losers.iter().map(u32::to_string).collect();
        let path = format!(
            "/rest/v1/leads/{winner}/merge.json?leadIds={}",
            ids.join(",")
        );
        self.call::<Value>("POST", &path, Some(b"")).map(|_| ())
    }

    /// Associates the Munchkin `cookie` with lead `lead_id`
    /// (`POST /rest/v1/leads/{id}/associate.json`): Marketo then merges
    /// that cookie's anonymous activity into the lead. A write: a lost
    /// answer is *unknown*, never repeated by this client.
    ///
    /// ```
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// client.associate_cookie(1002200, "id:123-ABC-456&token:_mch-example.com-1")?;
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn associate_cookie(&self, lead_id: u32, cookie: &str) -> Result<(), Error> {
        if cookie.trim().is_empty() {
            return Err(Error::invalid("cookie", "the cookie is blank"));
        }
        let path = format!(
            "/rest/v1/leads/{lead_id}/associate.json?cookie={}",
            encode(cookie)
        );
        self.call::<Value>("POST", &path, Some(b"")).map(|_| ())
    }
}
