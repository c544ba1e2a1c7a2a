//! The campaign map: Marketo-shaped targets to AJO campaign ids.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::Error;
use crate::request::CampaignTarget;

/// Which Adobe Journey Optimizer campaign serves a Marketo-shaped target:
/// a Marketo campaign id, or a campaign name + program name, maps to an
/// AJO campaign id (a string). With it, requests written for SOAP or REST
/// (and [`Fallback`](crate::Fallback), bulk runs, the bridge) run on AJO
/// unchanged. A [`CampaignTarget::Ajo`] names its AJO campaign itself and
/// needs no entry.
///
/// A target the map does not hold is refused before anything is sent
/// ([`Error::InvalidInput`], *not sent*): an unmapped campaign is never
/// guessed.
///
/// ```
/// use marketo_campaign::ajo::CampaignMap;
/// use marketo_campaign::CampaignTarget;
/// let map = CampaignMap::new()
///     .with_id(4496, "a1b2c3d4-demo")
///     .with_named("Send Webinar Reminder", "Webinars", "5f1e2d3c-webinar");
/// assert_eq!(map.resolve(&CampaignTarget::id(4496))?, "a1b2c3d4-demo");
/// assert_eq!(map.resolve(&CampaignTarget::named("Send Webinar Reminder", "Webinars", []))?, "5f1e2d3c-webinar");
/// assert_eq!(map.resolve(&CampaignTarget::ajo("direct-id", []))?, "direct-id");
/// assert!(map.resolve(&CampaignTarget::id(5000)).is_err());
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignMap {
    by_id: BTreeMap<u32, String>,
    by_name: BTreeMap<(String, String), String>,
}

/// One entry of a map file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    marketo_id: Option<u32>,
    campaign: Option<String>,
    program: Option<String>,
    ajo_campaign_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    campaigns: Vec<Entry>,
}

impl CampaignMap {
    /// An empty map: only [`CampaignTarget::Ajo`] targets resolve.
    pub fn new() -> Self {
        CampaignMap::default()
    }

    /// The same map, with Marketo campaign `marketo_id` served by the AJO
    /// campaign `ajo_campaign_id` (replacing an entry for that id).
    pub fn with_id(mut self, marketo_id: u32, ajo_campaign_id: impl Into<String>) -> Self {
        self.by_id.insert(marketo_id, ajo_campaign_id.into());
        self
    }

    /// The same map, with the Marketo campaign `campaign` of program
    /// `program` (names compared exactly) served by the AJO campaign
    /// `ajo_campaign_id` (replacing an entry for that pair).
    pub fn with_named(
        mut self,
        campaign: impl Into<String>,
        program: impl Into<String>,
        ajo_campaign_id: impl Into<String>,
    ) -> Self {
        self.by_name
            .insert((campaign.into(), program.into()), ajo_campaign_id.into());
        self
    }

    /// Reads a map from JSON:
    ///
    /// ```json
    /// {"campaigns": [
    ///   {"marketo_id": 4496, "ajo_campaign_id": "a1b2c3d4-demo"},
    ///   {"campaign": "Send Webinar Reminder", "program": "Webinars", "ajo_campaign_id": "5f1e2d3c-webinar"}
    /// ]}
    /// ```
    ///
    /// Each entry has `marketo_id` or `campaign` + `program`, never both;
    /// an unknown field, an empty or malformed AJO id, or a target listed
    /// twice is an error ([`Error::Config`]) naming the entry.
    ///
    /// ```
    /// use marketo_campaign::ajo::CampaignMap;
    /// let map = CampaignMap::from_json(r#"{"campaigns":[{"marketo_id":4496,"ajo_campaign_id":"x"}]}"#)?;
    /// assert_eq!(map.len(), 1);
    /// let twice = r#"{"campaigns":[{"marketo_id":1,"ajo_campaign_id":"x"},{"marketo_id":1,"ajo_campaign_id":"y"}]}"#;
    /// assert!(CampaignMap::from_json(twice).unwrap_err().to_string().contains("entry 2"));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let file: File =
            serde_json::from_str(json).map_err(|e| Error::Config(format!("campaign map: {e}")))?;
        let mut map = CampaignMap::new();
        for (i, entry) in file.campaigns.into_iter().enumerate() {
            let bad =
                |reason: String| Error::Config(format!("campaign map, entry {}: {reason}", i + 1));
            CampaignTarget::ajo(entry.ajo_campaign_id.as_str(), [])
                .validate()
                .map_err(|e| bad(e.to_string()))?;
            let replaced = match (entry.marketo_id, entry.campaign, entry.program) {
                (Some(id), None, None) => {
                    CampaignTarget::id(id)
                        .validate()
                        .map_err(|e| bad(e.to_string()))?;
                    map.by_id.insert(id, entry.ajo_campaign_id)
                }
                (None, Some(campaign), Some(program)) => {
                    CampaignTarget::named(campaign.as_str(), program.as_str(), [])
                        .validate()
                        .map_err(|e| bad(e.to_string()))?;
                    map.by_name
                        .insert((campaign, program), entry.ajo_campaign_id)
                }
                _ => return Err(bad("give either marketo_id, or campaign and program".into())),
            };
            if replaced.is_some() {
                return Err(bad("this Marketo campaign is mapped twice".into()));
            }
        }
        Ok(map)
    }

    /// The map as [`CampaignMap::from_json`] reads it (a map file):
    /// entries by id, in id order, then by campaign + program.
    ///
    /// ```
    /// use marketo_campaign::ajo::CampaignMap;
    /// let map = CampaignMap::new()
    ///     .with_id(4496, "a1b2c3d4-demo")
    ///     .with_named("Send Webinar Reminder", "Webinars", "5f1e2d3c-webinar");
    /// let json = map.to_json();
    /// assert!(json.starts_with(r#"{"campaigns":["#), "{json}");
    /// assert_eq!(CampaignMap::from_json(&json)?, map);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        let by_id = self
            .by_id
            .iter()
            .map(|(id, ajo)| serde_json::json!({"marketo_id": id, "ajo_campaign_id": ajo}));
        let by_name = self.by_name.iter().map(|((campaign, program), ajo)| {
            serde_json::json!({"campaign": campaign, "program": program, "ajo_campaign_id": ajo})
        });
        serde_json::json!({"campaigns": by_id.chain(by_name).collect::<Vec<_>>()}).to_string()
    }

    /// Reads [`CampaignMap::from_json`] from a file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        Self::from_json(&json)
    }

    /// How many Marketo campaigns the map holds.
    pub fn len(&self) -> usize {
        self.by_id.len() + self.by_name.len()
    }

    /// `true` when the map holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The AJO campaign id that serves `target`: its own for
    /// [`CampaignTarget::Ajo`], the map's entry otherwise. A target with
    /// no entry is [`Error::InvalidInput`] (nothing is sent).
    pub fn resolve<'a>(&'a self, target: &'a CampaignTarget) -> Result<&'a str, Error> {
        let found = match target {
            CampaignTarget::Ajo { campaign_id, .. } => return Ok(campaign_id),
            CampaignTarget::Id { id, .. } => self.by_id.get(id),
            CampaignTarget::Named {
                campaign, program, ..
            } => self.by_name.get(&(campaign.clone(), program.clone())),
        };
        found.map(String::as_str).ok_or_else(|| {
            Error::invalid(
                "campaign",
                format!("{target} has no Adobe Journey Optimizer campaign in the campaign map; add it (--campaign-map FILE, CampaignMap) or name the AJO campaign directly (CampaignTarget::ajo)"),
            )
        })
    }
}
