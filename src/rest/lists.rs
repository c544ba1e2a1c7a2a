//! Marketo's REST static-list API: find a list by name, add leads to it,
//! remove them, ask whether they are members. The calls behind SOAP's
//! `listOperation` (`ADDTOLIST`, `REMOVEFROMLIST`, `ISMEMBEROFLIST`).
//!
//! Adding and removing are writes (POSTs): a lost answer is *unknown* and
//! never repeated by this client. Both are idempotent at Marketo (adding a
//! member again, removing a non-member, change nothing), so reading the
//! membership and sending again is safe.

use serde::Deserialize;

use super::client::RestClient;
use super::leads::{first_reason, ReasonRecord};
use super::lookup::encode;
use crate::error::Error;

/// Most lead ids one list call takes (Marketo's limit).
pub const MAX_LIST_LEADS: usize = 300;

/// A static list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StaticList {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
}

/// What a list call did for one lead id, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListMemberStatus {
    /// The lead is on the list (added now, or already there).
    Added,
    /// The lead was taken off the list.
    Removed,
    /// The lead is a member ([`RestClient::list_membership`]).
    MemberOf,
    /// The lead is not a member ([`RestClient::list_membership`]).
    NotMemberOf,
    /// Nothing was done for this lead: Marketo's reason (1004 lead not
    /// found, 1015 not in the list, …).
    Skipped {
        /// Marketo's reason code.
        code: String,
        /// Marketo's reason.
        message: String,
    },
}

#[derive(Deserialize)]
struct ListRecord {
    id: u32,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct MemberRecord {
    #[serde(default)]
    status: String,
    #[serde(default)]
    reasons: Vec<ReasonRecord>,
}

impl crate::rest::wire::Record for ListRecord {}
impl crate::rest::wire::Record for MemberRecord {}

fn check_ids(lead_ids: &[u32]) -> Result<(), Error> {
    if lead_ids.is_empty() || lead_ids.len() > MAX_LIST_LEADS {
        return Err(Error::invalid(
            "lead ids",
            format!(
                "{} lead ids; list calls take 1 to {MAX_LIST_LEADS}",
                lead_ids.len()
            ),
        ));
    }
    Ok(())
}

fn statuses(records: Vec<MemberRecord>, sent: usize) -> Result<Vec<ListMemberStatus>, Error> {
    if records.len() != sent {
        return Err(Error::Protocol {
            status: 200,
            reason: format!(
                "the list call answered {} records for {sent} leads",
                records.len()
            ),
            body: String::new(),
        });
    }
    Ok(records
        .into_iter()
        .map(|r| match r.status.as_str() {
            "added" => ListMemberStatus::Added,
            "removed" => ListMemberStatus::Removed,
            "memberof" => ListMemberStatus::MemberOf,
            "notmemberof" => ListMemberStatus::NotMemberOf,
            _ => {
                let (code, message) = first_reason(r.reasons, r.status);
                ListMemberStatus::Skipped { code, message }
            }
        })
        .collect())
}

fn id_body(lead_ids: &[u32]) -> String {
    let input: Vec<_> = lead_ids
        .iter()
        .map(|id| serde_json::json!({ "id": id }))
        .collect();
    serde_json::json!({ "input": input }).to_string()
}

impl RestClient {
    /// One page of list `list_id`'s members (`GET lists/{id}/leads.json`),
    /// each with `id` and the `fields` asked (REST names), and the token of
    /// the next page, if more follow. A read.
    ///
    /// ```
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// let (members, next) = client.list_leads(1002, &["email"], None)?;
    /// assert_eq!(members[0]["email"], "lead@company.com");
    /// assert!(next.is_none());
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn list_leads(
        &self,
        list_id: u32,
        fields: &[&str],
        page_token: Option<&str>,
    ) -> Result<(Vec<crate::rest::Lead>, Option<String>), Error> {
        let mut path = format!("/rest/v1/lists/{list_id}/leads.json?batchSize=300");
        if !fields.is_empty() {
            if let Some(bad) = fields.iter().find(|f| {
                f.is_empty() || !f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }) {
                return Err(Error::invalid(
                    "fields",
                    format!(
                        "{:?} is not a lead field name",
                        crate::error::excerpt(bad.as_bytes(), 64)
                    ),
                ));
            }
            path.push_str("&fields=");
            path.push_str(&fields.join(","));
        }
        if let Some(token) = page_token {
            path.push_str("&nextPageToken=");
            path.push_str(&encode(token));
        }
        let page = self.api_get::<serde_json::Value>(&path)?;
        let leads = page
            .result
            .into_iter()
            .filter_map(|r| match r {
                serde_json::Value::Object(lead) => Some(lead),
                _ => None,
            })
            .collect();
        Ok((leads, page.next_page_token))
    }

    /// The static lists named exactly `name` (`GET lists.json?name=`). A
    /// read: it writes nothing.
    ///
    /// ```
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// let lists = client.lists_by_name("Webinar Registrants")?;
    /// assert_eq!(lists[0].id, 1001);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn lists_by_name(&self, name: &str) -> Result<Vec<StaticList>, Error> {
        if name.trim().is_empty() || name.contains(',') {
            return Err(Error::invalid(
                "list name",
                "a list name is not blank and holds no comma (REST reads commas as separators)",
            ));
        }
        let page =
            self.api_get::<ListRecord>(&format!("/rest/v1/lists.json?name={}", encode(name)))?;
        Ok(page
            .result
            .into_iter()
            .map(|r| StaticList {
                id: r.id,
                name: r.name,
            })
            .collect())
    }

    /// Adds `lead_ids` to list `list_id` (`POST lists/{id}/leads.json`):
    /// one status per id, in order. A write: a lost answer is *unknown*.
    ///
    /// ```
    /// use marketo_campaign::rest::ListMemberStatus;
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// assert_eq!(client.add_to_list(1001, &[1002201])?, [ListMemberStatus::Added]);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn add_to_list(
        &self,
        list_id: u32,
        lead_ids: &[u32],
    ) -> Result<Vec<ListMemberStatus>, Error> {
        check_ids(lead_ids)?;
        let path = format!("/rest/v1/lists/{list_id}/leads.json");
        let page = self.call::<MemberRecord>("POST", &path, Some(id_body(lead_ids).as_bytes()))?;
        statuses(page.result, lead_ids.len())
    }

    /// Takes `lead_ids` off list `list_id` (`DELETE lists/{id}/leads.json`,
    /// sent as `POST …?_method=DELETE` as Marketo allows). A write: a lost
    /// answer is *unknown*.
    ///
    /// ```
    /// use marketo_campaign::rest::ListMemberStatus;
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// assert_eq!(client.remove_from_list(1002, &[1002200])?, [ListMemberStatus::Removed]);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn remove_from_list(
        &self,
        list_id: u32,
        lead_ids: &[u32],
    ) -> Result<Vec<ListMemberStatus>, Error> {
        check_ids(lead_ids)?;
        let path = format!("/rest/v1/lists/{list_id}/leads.json?_method=DELETE");
        let page = self.call::<MemberRecord>("POST", &path, Some(id_body(lead_ids).as_bytes()))?;
        statuses(page.result, lead_ids.len())
    }

    /// Whether each of `lead_ids` is on list `list_id`
    /// (`GET lists/{id}/leads/ismember.json`). A read.
    ///
    /// ```
    /// use marketo_campaign::rest::ListMemberStatus;
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// let members = client.list_membership(1002, &[1002200, 1002201])?;
    /// assert_eq!(members, [ListMemberStatus::MemberOf, ListMemberStatus::NotMemberOf]);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn list_membership(
        &self,
        list_id: u32,
        lead_ids: &[u32],
    ) -> Result<Vec<ListMemberStatus>, Error> {
        check_ids(lead_ids)?;
        let ids: Vec<String> = lead_ids.iter().map(u32::to_string).collect();
        let path = format!(
            "/rest/v1/lists/{list_id}/leads/ismember.json?id={}",
            ids.join(",")
        );
        let page = self.api_get::<MemberRecord>(&path)?;
        statuses(page.result, lead_ids.len())
    }
}
