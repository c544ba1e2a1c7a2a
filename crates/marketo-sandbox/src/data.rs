//! What the sandbox knows: credentials, campaigns and leads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use marketo_campaign::webhook::Webhook;
use marketo_campaign::Error;
use marketo_campaign::LeadKeyType;

use super::flows::FlowStep;

/// A Smart Campaign in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCampaign {
    /// Campaign id.
    pub id: u32,
    /// Campaign name.
    pub name: String,
    /// Name of the program that holds it.
    pub program: String,
    /// `false` for a batch campaign, which cannot be requested.
    #[serde(default = "yes")]
    pub requestable: bool,
    /// The program's `{{my.…}}` tokens, by name (informational).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// The program's `{{my.…}}` tokens' default values, by name, for the
    /// campaign's flow (a request's token values override them).
    #[serde(default)]
    pub token_defaults: BTreeMap<String, String>,
    /// The campaign's flow steps, run after each triggered run, for each
    /// lead (see [`FlowStep`]). Call Webhook steps need a trigger campaign:
    /// `requestable` is what tells trigger (requested) campaigns from batch
    /// ones here.
    #[serde(default)]
    pub flow: Vec<FlowStep>,
}

fn yes() -> bool {
    true
}

/// An Adobe Journey Optimizer API-triggered campaign in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxAjoCampaign {
    /// The AJO campaign id.
    pub id: String,
    /// The campaign's name (informational).
    #[serde(default)]
    pub name: String,
    /// When the campaign starts (RFC 3339); before it, executions fail
    /// (HTTP 400). `None`: live from the start.
    #[serde(default)]
    pub start: Option<String>,
    /// When the campaign ends (RFC 3339); from then on, executions fail
    /// (HTTP 400). `None`: never ends.
    #[serde(default)]
    pub end: Option<String>,
    /// The Marketo campaign it replaces, if any: the sandbox's campaign map
    /// ([`Sandbox::ajo_campaign_map`](crate::Sandbox::ajo_campaign_map))
    /// maps that id, and that campaign's name + program, to this one.
    #[serde(default)]
    pub marketo_campaign_id: Option<u32>,
    /// The context keys its content uses (informational).
    #[serde(default)]
    pub context: Vec<String>,
    /// `true` for an audience-based campaign (run or scheduled for its
    /// audience with `POST /ajo/im/executions/audience`, as a Marketo
    /// batch campaign is scheduled); `false` (the default) for one
    /// triggered for recipients (unitary executions), which the audience
    /// endpoint refuses (HTTP 400).
    #[serde(default)]
    pub audience: bool,
}

/// The sandbox's Adobe Journey Optimizer side: IMS credentials, the
/// organization, the Experience Platform sandbox and the campaigns. In a
/// data file, under `"ajo"`; missing fields take the defaults.
///
/// ```
/// use marketo_sandbox::{Sandbox, SandboxConfig, SandboxData};
/// let data = SandboxData::from_json(r#"{"ajo": {"campaigns": [
///     {"id": "c-1", "name": "Welcome", "marketo_campaign_id": 4496,
///      "start": "2024-01-01T00:00:00Z", "end": "2999-01-01T00:00:00Z"}
/// ]}}"#)?;
/// assert_eq!(data.ajo.sandbox_name, "prod");
/// let sandbox = Sandbox::start_with(SandboxConfig::new().data(data))?;
/// assert_eq!(sandbox.ajo_campaign_map().len(), 2); // by id, and by name + program
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxAjo {
    /// The OAuth client id IMS accepts; also the `x-api-key`.
    pub client_id: String,
    /// The OAuth client secret IMS accepts.
    pub client_secret: String,
    /// The `x-gw-ims-org-id` accepted.
    pub org_id: String,
    /// The `x-sandbox-name` accepted.
    pub sandbox_name: String,
    /// The API-triggered campaigns.
    pub campaigns: Vec<SandboxAjoCampaign>,
}

impl Default for SandboxAjo {
    /// Client id `5c2f9e71d04a4b6f8e3a1c7d9b0e2f64`, secret
    /// `p8e-sandboxAjoSecret-Q7wX2vR9tL4m`, organization
    /// `A1B2C3D4E5F6A7B8C9D0E1F2@AdobeOrg`, sandbox `prod`; campaigns
    /// `7c1e4b2a-9d3f-4e61-a8b5-3f2d1c0b1234` (the webinar reminder, for
    /// Marketo campaign 1234, context `WebinarTitle`, `JoinLink`,
    /// `WebinarImage`), `2a9f6e3d-4496-4c1b-b7e2-5d8c9a0f4496` (for Marketo
    /// campaign 4496), and `e5d4c3b2-a1f0-4e9d-8c7b-6a5f4e3d2c1b`, which
    /// ended on 2024-12-31; and `9b8a7c6d-5000-4e3f-a2b1-c0d9e8f75000`, an
    /// audience campaign for Marketo's batch campaign 5000 (schedules).
    fn default() -> Self {
        let campaign = |id: &str, name: &str, end: Option<&str>, marketo, context: &[&str]| {
            SandboxAjoCampaign {
                id: id.into(),
                name: name.into(),
                start: Some("2024-01-01T00:00:00Z".into()),
                end: end.map(str::to_owned),
                marketo_campaign_id: marketo,
                context: context.iter().map(|c| (*c).to_owned()).collect(),
                audience: false,
            }
        };
        SandboxAjo {
            client_id: "5c2f9e71d04a4b6f8e3a1c7d9b0e2f64".into(),
            client_secret: "p8e-sandboxAjoSecret-Q7wX2vR9tL4m".into(),
            org_id: "A1B2C3D4E5F6A7B8C9D0E1F2@AdobeOrg".into(),
            sandbox_name: "prod".into(),
            campaigns: vec![
                campaign(
                    "7c1e4b2a-9d3f-4e61-a8b5-3f2d1c0b1234",
                    "Webinar Reminder (API-triggered)",
                    None,
                    Some(1234),
                    &["WebinarTitle", "JoinLink", "WebinarImage"],
                ),
                campaign(
                    "2a9f6e3d-4496-4c1b-b7e2-5d8c9a0f4496",
                    "Request Campaign Demo (API-triggered)",
                    None,
                    Some(4496),
                    &[],
                ),
                campaign(
                    "e5d4c3b2-a1f0-4e9d-8c7b-6a5f4e3d2c1b",
                    "Spring Promo 2024 (ended)",
                    Some("2024-12-31T23:59:59Z"),
                    None,
                    &[],
                ),
                SandboxAjoCampaign {
                    audience: true,
                    ..campaign(
                        "9b8a7c6d-5000-4e3f-a2b1-c0d9e8f75000",
                        "Monthly Newsletter (audience)",
                        None,
                        Some(5000),
                        &["Month"],
                    )
                },
            ],
        }
    }
}

/// A lead in the sandbox, with every field a SOAP lead key can name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxLead {
    /// Marketo lead id (`IDNUM`).
    pub id: u32,
    /// `EMAIL`.
    pub email: Option<String>,
    /// `COOKIE`: the lead's Munchkin cookies, several separated by commas
    /// as in Marketo's `cookies` field. A `COOKIE` key (or a
    /// `filterType=cookies` value) finds the lead by any one of them, or
    /// by the whole field.
    pub cookie: Option<String>,
    /// `LEADOWNEREMAIL`.
    pub lead_owner_email: Option<String>,
    /// `SFDCACCOUNTID`.
    pub sfdc_account_id: Option<String>,
    /// `SFDCCONTACTID`.
    pub sfdc_contact_id: Option<String>,
    /// `SFDCLEADID`.
    pub sfdc_lead_id: Option<String>,
    /// `SFDCLEADOWNERID`.
    pub sfdc_lead_owner_id: Option<String>,
    /// `SFDCOPPTYID`.
    pub sfdc_oppty_id: Option<String>,
    /// Other fields by REST name (`firstName`, …), for webhook tokens and
    /// `leads.json?fields=`.
    pub fields: BTreeMap<String, String>,
}

impl SandboxLead {
    /// Whether this lead answers to the key `key_type:value`. Emails compare
    /// without regard to ASCII case, as Marketo does; a cookie matches any
    /// one of the lead's comma-separated cookies, or the whole field.
    ///
    /// When several leads answer to one key, the sandbox's SOAP API runs
    /// the campaign for the lowest id of them (the first one `leads.json`
    /// lists); `RestClient` runs none of them and reports the key as
    /// [ambiguous](marketo_campaign::ChunkReport::ambiguous).
    ///
    /// ```
    /// use marketo_sandbox::SandboxLead;
    /// use marketo_campaign::LeadKeyType;
    /// let lead = SandboxLead { id: 7, cookie: Some("id:1&token:a, id:1&token:b".into()), ..SandboxLead::default() };
    /// assert!(lead.matches(LeadKeyType::Cookie, "id:1&token:b"));
    /// assert!(lead.matches(LeadKeyType::Idnum, "7"));
    /// assert!(!lead.matches(LeadKeyType::Cookie, "id:1"));
    /// ```
    pub fn matches(&self, key_type: LeadKeyType, value: &str) -> bool {
        let field = match key_type {
            LeadKeyType::Idnum => return value.trim().parse::<u32>().ok() == Some(self.id),
            LeadKeyType::Email => {
                return self
                    .email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(value.trim()))
            }
            LeadKeyType::LeadOwnerEmail => {
                return self
                    .lead_owner_email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(value.trim()))
            }
            LeadKeyType::Cookie => {
                return self.cookie.as_deref().is_some_and(|field| {
                    field == value || crate::leads::cookies(field).any(|c| c == value)
                })
            }
            LeadKeyType::SfdcAccountId => &self.sfdc_account_id,
            LeadKeyType::SfdcContactId => &self.sfdc_contact_id,
            LeadKeyType::SfdcLeadId => &self.sfdc_lead_id,
            LeadKeyType::SfdcLeadOwnerId => &self.sfdc_lead_owner_id,
            LeadKeyType::SfdcOpptyId => &self.sfdc_oppty_id,
        };
        field.as_deref() == Some(value)
    }
}

/// The sandbox's data: credentials, campaigns, leads. Load your own with
/// [`SandboxData::from_json`]; missing fields take the defaults.
///
/// ```
/// use marketo_sandbox::SandboxData;
/// let data = SandboxData::from_json(r#"{"campaigns":[{"id":7,"name":"C","program":"P"}]}"#)?;
/// assert_eq!(data.campaigns[0].id, 7);
/// assert_eq!(data.soap_user_id, SandboxData::default().soap_user_id);
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxData {
    /// The SOAP user id the sandbox accepts.
    pub soap_user_id: String,
    /// The SOAP encryption key the sandbox verifies signatures with.
    pub soap_encryption_key: String,
    /// The REST client id the identity service accepts.
    pub client_id: String,
    /// The REST client secret the identity service accepts.
    pub client_secret: String,
    /// The campaigns.
    pub campaigns: Vec<SandboxCampaign>,
    /// The leads.
    pub leads: Vec<SandboxLead>,
    /// The webhooks campaign flows call by name ([`FlowStep::CallWebhook`]).
    /// A URL starting with `/` names the sandbox itself, e.g.
    /// `/sandbox/echo`, which answers what it received.
    pub webhooks: Vec<Webhook>,
    /// The Adobe Journey Optimizer side.
    pub ajo: SandboxAjo,
    /// Static lists (`lists.json`, SOAP's `listOperation`).
    pub lists: Vec<SandboxList>,
}

/// A static list: its id, its name (unique, compared exactly as Marketo's
/// `lists.json?name=` does), and its members' lead ids.
///
/// ```
/// let list: marketo_sandbox::SandboxList =
///     serde_json::from_str(r#"{"id": 7, "name": "VIP", "members": [1002200]}"#)?;
/// assert_eq!(list.members, [1002200]);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxList {
    /// The list's id.
    pub id: u32,
    /// The list's name.
    pub name: String,
    /// The lead ids on the list, in the order they were added.
    pub members: Vec<u32>,
}

impl Default for SandboxData {
    /// The README's data: campaign 4496 "Request Campaign Demo" in "Demo
    /// Program"; 1234 "Send Webinar Reminder" in "Webinars" with three tokens;
    /// 5000 "Monthly Newsletter", a batch campaign; leads 1002200
    /// `lead@company.com` and 1002201 `anotherlead@company.com`; static
    /// lists 1001 "Webinar Registrants" (empty) and 1002 "Newsletter
    /// Subscribers" (lead 1002200). The SOAP
    /// credentials are those of Marketo's published signature example; the
    /// REST client id is `8f0c6a2e-4c1b-4d7e-9a35-2b6f1c0d9e47` and its
    /// secret `sandboxSecretK3yZ9x7QvT2mW4pL`.
    fn default() -> Self {
        let campaign =
            |id, name: &str, program: &str, requestable, tokens: &[&str]| SandboxCampaign {
                id,
                name: name.into(),
                program: program.into(),
                requestable,
                tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
                token_defaults: BTreeMap::new(),
                flow: Vec::new(),
            };
        SandboxData {
            soap_user_id: "bigcorp1_461839624B16E06BA2D663".into(),
            soap_encryption_key: "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66".into(),
            client_id: "8f0c6a2e-4c1b-4d7e-9a35-2b6f1c0d9e47".into(),
            client_secret: "sandboxSecretK3yZ9x7QvT2mW4pL".into(),
            campaigns: vec![
                campaign(4496, "Request Campaign Demo", "Demo Program", true, &[]),
                campaign(
                    1234,
                    "Send Webinar Reminder",
                    "Webinars",
                    true,
                    &[
                        "{{my.WebinarTitle}}",
                        "{{my.JoinLink}}",
                        "{{my.WebinarImage}}",
                    ],
                ),
                campaign(5000, "Monthly Newsletter", "Newsletters", false, &[]),
            ],
            leads: vec![
                SandboxLead {
                    id: 1002200,
                    email: Some("lead@company.com".into()),
                    cookie: Some(
                        "id:561-HYG-937&token:_mch-company.com-1374552656411-90718".into(),
                    ),
                    lead_owner_email: Some("owner@company.com".into()),
                    sfdc_account_id: Some("0015000000XyZaAAAV".into()),
                    sfdc_contact_id: Some("0035000000AbCdEAAV".into()),
                    sfdc_lead_id: Some("00Q5000000FgHiJEAV".into()),
                    sfdc_lead_owner_id: Some("0055000000KlMnOAAV".into()),
                    sfdc_oppty_id: Some("0065000000PqRsTAAV".into()),
                    fields: BTreeMap::new(),
                },
                SandboxLead {
                    id: 1002201,
                    email: Some("anotherlead@company.com".into()),
                    cookie: Some(
                        "id:561-HYG-937&token:_mch-company.com-1374552656411-90719".into(),
                    ),
                    lead_owner_email: Some("owner@company.com".into()),
                    sfdc_account_id: Some("0015000000XyZaAAAV".into()),
                    sfdc_contact_id: Some("0035000000UvWxYAAV".into()),
                    sfdc_lead_id: Some("00Q5000000ZaBcDEAV".into()),
                    sfdc_lead_owner_id: Some("0055000000KlMnOAAV".into()),
                    sfdc_oppty_id: Some("0065000000EfGhIAAV".into()),
                    fields: BTreeMap::new(),
                },
            ],
            webhooks: Vec::new(),
            ajo: SandboxAjo::default(),
            lists: vec![
                SandboxList {
                    id: 1001,
                    name: "Webinar Registrants".into(),
                    members: Vec::new(),
                },
                SandboxList {
                    id: 1002,
                    name: "Newsletter Subscribers".into(),
                    members: vec![1002200],
                },
            ],
        }
    }
}

impl SandboxData {
    /// Parses JSON; missing fields take their defaults. Fails on data
    /// [`SandboxData::check`] refuses.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let data: SandboxData =
            serde_json::from_str(json).map_err(|e| Error::Config(format!("sandbox data: {e}")))?;
        data.check()?;
        Ok(data)
    }

    /// Checks the campaigns' flows: every Call Webhook step names one of
    /// [`webhooks`](SandboxData::webhooks), no batch campaign
    /// (`requestable: false`) has one (Marketo allows Call Webhook in trigger
    /// campaigns only), every webhook is valid and has a name of its own.
    /// [`Sandbox::start_with`](super::Sandbox::start_with) checks too.
    ///
    /// ```
    /// use marketo_sandbox::SandboxData;
    /// let err = SandboxData::from_json(r#"{
    ///     "webhooks": [{"name": "W", "url": "https://e.com", "request_type": "GET"}],
    ///     "campaigns": [{"id": 7, "name": "C", "program": "P", "requestable": false, "flow": [{"call_webhook": "W"}]}]
    /// }"#).unwrap_err();
    /// assert!(err.to_string().contains("batch campaign"));
    /// ```
    pub fn check(&self) -> Result<(), Error> {
        super::flows::check(self)
    }

    /// Reads [`SandboxData::from_json`] from a file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        Self::from_json(&json)
    }

    /// Adds `count` leads with ids from `first_id` and emails
    /// `lead{id}@example.com`, for bulk tests.
    pub fn with_generated_leads(mut self, first_id: u32, count: u32) -> Self {
        self.leads.extend(
            (first_id..first_id.saturating_add(count)).map(|id| SandboxLead {
                id,
                email: Some(format!("lead{id}@example.com")),
                ..SandboxLead::default()
            }),
        );
        self
    }
}
