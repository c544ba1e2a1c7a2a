//! Marketo's REST activity API: the activity types, a paging token for a
//! point in time, and the activities after it (by type, for some leads).
//! The calls behind SOAP's `getLeadActivity`. All reads: whatever fails,
//! nothing was written.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use super::client::RestClient;
use super::lookup::encode;
use crate::error::Error;

/// Most activity type ids one `activities.json` call takes.
pub const MAX_ACTIVITY_TYPES: usize = 10;

/// Most lead ids one `activities.json` call takes.
pub const MAX_ACTIVITY_LEADS: usize = 30;

/// An activity type (`activities/types.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActivityType {
    /// Its id.
    pub id: u32,
    /// Its name (`Add to List`; SOAP's `activityType` is the name without
    /// spaces: `AddToList`).
    pub name: String,
    /// The name of its primary attribute (`List Name`), if any.
    pub primary_attribute: Option<String>,
}

/// One activity.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Activity {
    /// Its id.
    pub id: u64,
    /// The lead's id.
    pub lead_id: u32,
    /// When it happened (`activityDate`, as sent).
    pub date: String,
    /// Its type's id.
    pub type_id: u32,
    /// The campaign it came from, if any.
    pub campaign_id: Option<u32>,
    /// Its primary attribute's value (the list's name, the campaign's, …).
    pub primary_value: Option<String>,
    /// Its other attributes: name and value.
    pub attributes: Vec<(String, String)>,
}

/// A page of activities and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActivityPage {
    /// The activities, oldest first.
    pub activities: Vec<Activity>,
    /// The token of the next page (pass it to
    /// [`RestClient::lead_activities`] again).
    pub next_page_token: String,
    /// Whether more activities follow.
    pub more: bool,
}

#[derive(Deserialize)]
struct TypeRecord {
    id: u32,
    #[serde(default)]
    name: String,
    #[serde(rename = "primaryAttribute")]
    primary_attribute: Option<NameRecord>,
}

#[derive(Deserialize)]
struct NameRecord {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct ActivityRecord {
    id: u64,
    #[serde(rename = "leadId")]
    lead_id: u32,
    #[serde(rename = "activityDate", default)]
    date: String,
    #[serde(rename = "activityTypeId")]
    type_id: u32,
    #[serde(rename = "campaignId")]
    campaign_id: Option<u32>,
    #[serde(rename = "primaryAttributeValue")]
    primary_value: Option<serde_json::Value>,
    #[serde(default)]
    attributes: Vec<AttributeRecord>,
}

#[derive(Deserialize)]
struct AttributeRecord {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: serde_json::Value,
}

impl crate::rest::wire::Record for TypeRecord {}
impl crate::rest::wire::Record for ActivityRecord {}

fn text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl RestClient {
    /// Every activity type (`GET activities/types.json`).
    ///
    /// ```
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// let types = client.activity_types()?;
    /// assert!(types.iter().any(|t| t.name == "Add to List"));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn activity_types(&self) -> Result<Vec<ActivityType>, Error> {
        let page = self.api_get::<TypeRecord>("/rest/v1/activities/types.json")?;
        Ok(page
            .result
            .into_iter()
            .map(|t| ActivityType {
                id: t.id,
                name: t.name,
                primary_attribute: t.primary_attribute.map(|p| p.name),
            })
            .collect())
    }

    /// The paging token of the first activity at or after `since`
    /// (`GET activities/pagingtoken.json`).
    ///
    /// ```
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// let token = client.activity_paging_token(chrono::DateTime::UNIX_EPOCH)?;
    /// assert!(!token.is_empty());
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn activity_paging_token(&self, since: DateTime<Utc>) -> Result<String, Error> {
        let since = since.to_rfc3339_opts(SecondsFormat::Secs, true);
        let path = format!(
            "/rest/v1/activities/pagingtoken.json?sinceDatetime={}",
            encode(&since)
        );
        let page = self.api_get::<serde_json::Value>(&path)?;
        page.token.ok_or_else(|| Error::Protocol {
            status: 200,
            reason: "the paging token answer holds no nextPageToken".into(),
            body: String::new(),
        })
    }

    /// One page of activities from `token` on (`GET activities.json`): of
    /// `type_ids` (1 to [`MAX_ACTIVITY_TYPES`]), for `lead_ids` (at most
    /// [`MAX_ACTIVITY_LEADS`]; none: every lead), at most `batch_size`
    /// (1 to 300).
    ///
    /// ```
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// # let client = sandbox.rest_client()?;
    /// let token = client.activity_paging_token(chrono::DateTime::UNIX_EPOCH)?;
    /// client.add_to_list(1001, &[1002200])?;
    /// let page = client.lead_activities(&token, &[24], &[1002200], 300)?;
    /// assert_eq!(page.activities[0].primary_value.as_deref(), Some("Webinar Registrants"));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn lead_activities(
        &self,
        token: &str,
        type_ids: &[u32],
        lead_ids: &[u32],
        batch_size: usize,
    ) -> Result<ActivityPage, Error> {
        if type_ids.is_empty() || type_ids.len() > MAX_ACTIVITY_TYPES {
            return Err(Error::invalid(
                "activity type ids",
                format!(
                    "{} types; REST takes 1 to {MAX_ACTIVITY_TYPES} a call",
                    type_ids.len()
                ),
            ));
        }
        if lead_ids.len() > MAX_ACTIVITY_LEADS {
            return Err(Error::invalid(
                "lead ids",
                format!(
                    "{} leads; REST takes at most {MAX_ACTIVITY_LEADS} a call",
                    lead_ids.len()
                ),
            ));
        }
        if !(1..=300).contains(&batch_size) {
            return Err(Error::invalid(
                "batch size",
                "REST pages hold 1 to 300 activities",
            ));
        }
        let join = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let mut path = format!(
            "/rest/v1/activities.json?nextPageToken={}&activityTypeIds={}&batchSize={batch_size}",
            encode(token),
            join(type_ids)
        );
        if !lead_ids.is_empty() {
            path.push_str("&leadIds=");
            path.push_str(&join(lead_ids));
        }
        let page = self.api_get::<ActivityRecord>(&path)?;
        Ok(ActivityPage {
            more: page.next_page_token.is_some(),
            next_page_token: page.token.unwrap_or_default(),
            activities: page
                .result
                .into_iter()
                .map(|a| Activity {
                    id: a.id,
                    lead_id: a.lead_id,
                    date: a.date,
                    type_id: a.type_id,
                    campaign_id: a.campaign_id,
                    primary_value: a.primary_value.map(text),
                    attributes: a
                        .attributes
                        .into_iter()
                        .map(|at| (at.name, text(at.value)))
                        .collect(),
                })
                .collect(),
        })
    }
}
