//! Campaign flows: the Call Webhook steps the sandbox runs after a
//! triggered campaign ran, on a background thread, once the API call that
//! ran it has been answered (Marketo runs flows asynchronously).
//!
//! The one hook is [`Journal::record`](super::journal::Journal): every run
//! that any API side journals (SOAP, REST, and so the bridge and anything
//! else that reaches them) is queued for its connection's thread, and
//! released to a flow thread when that thread has written its answer.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::data::{SandboxData, SandboxLead};
use super::journal::{JournalEntry, JournalToken};
use marketo_campaign::webhook::{TokenContext, TokenValue, Webhook};
use marketo_campaign::Clock;
use marketo_campaign::Error;
use marketo_campaign::LeadKeyType;

/// A step of a campaign's flow.
///
/// In the sandbox's data: `"flow": [{"call_webhook": "Register for webinar"}]`,
/// naming a webhook of [`SandboxData::webhooks`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStep {
    /// Calls the webhook of that name, for each lead the campaign runs for.
    /// Trigger campaigns only: a batch campaign (`"requestable": false`)
    /// with this step is refused when the data is loaded.
    CallWebhook(String),
}

/// One webhook call the sandbox made, as `GET /sandbox/webhooks` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCall {
    /// The campaign whose flow made the call.
    pub campaign_id: u32,
    /// The lead it was made for.
    pub lead_id: u32,
    /// The webhook's name.
    pub webhook: String,
    /// The program tokens the campaign's request passed.
    pub tokens: Vec<JournalToken>,
    /// `GET` or `POST`.
    pub method: String,
    /// The URL called.
    pub url: String,
    /// The headers the webhook sets (custom ones, and `Content-Type` for a
    /// `POST`); the HTTP client adds its own `Host`, `Content-Length`,
    /// `User-Agent` and `Accept`.
    pub headers: Vec<(String, String)>,
    /// The body sent.
    pub body: String,
    /// The service's HTTP status; `None` when it did not answer in time or
    /// could not be reached (see `error`).
    pub status: Option<u16>,
    /// Why there is no status: timeout, connection refused, bad URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds from sending to the end of the answer (or the failure).
    pub latency_ms: u64,
    /// The lead fields the response mappings set (2xx answers only).
    pub mapped: BTreeMap<String, String>,
    /// The renderer's warnings (tokens sent as written, empty lead fields,
    /// …; see [`RenderedRequest::warnings`](marketo_campaign::webhook::RenderedRequest::warnings)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

thread_local! {
    /// Runs journaled by this thread's current call, whose flows wait for
    /// the call's answer to be written.
    static PENDING: RefCell<Vec<JournalEntry>> = const { RefCell::new(Vec::new()) };
}

/// A campaign as its flow needs it.
#[derive(Debug)]
struct FlowCampaign {
    name: String,
    program: String,
    program_id: u32,
    token_defaults: BTreeMap<String, String>,
    webhooks: Vec<Webhook>,
}

/// The flows of one sandbox: what they need, and what they did.
#[derive(Debug)]
pub(crate) struct Flows {
    campaigns: HashMap<u32, FlowCampaign>,
    leads: HashMap<u32, BTreeMap<String, String>>,
    /// Lead fields set by response mappings, over the data's.
    updates: Mutex<HashMap<u32, BTreeMap<String, String>>>,
    calls: Mutex<Vec<WebhookCall>>,
    /// Runs journaled whose flows have not finished.
    outstanding: Mutex<usize>,
    finished: Condvar,
    clock: Arc<dyn Clock>,
    http: WebhookHttp,
    /// The sandbox's base URL, for webhook URLs that start with `/`.
    base_url: OnceLock<String>,
}

impl Flows {
    pub(crate) fn new(
        data: &SandboxData,
        program_id: impl Fn(&str) -> u32,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> Self {
        let webhooks: HashMap<&str, &Webhook> =
            data.webhooks.iter().map(|w| (w.name.as_str(), w)).collect();
        let campaigns = data
            .campaigns
            .iter()
            .filter(|c| c.requestable && !c.flow.is_empty())
            .map(|c| {
                let steps = c
                    .flow
                    .iter()
                    .filter_map(|FlowStep::CallWebhook(name)| webhooks.get(name.as_str()))
                    .map(|w| (*w).clone())
                    .collect();
                let campaign = FlowCampaign {
                    name: c.name.clone(),
                    program: c.program.clone(),
                    program_id: program_id(&c.program),
                    token_defaults: c.token_defaults.clone(),
                    webhooks: steps,
                };
                (c.id, campaign)
            })
            .collect();
        let leads = data
            .leads
            .iter()
            .map(|lead| (lead.id, lead_fields_of(lead)))
            .collect();
        let http = WebhookHttp::new(timeout);
        Flows {
            campaigns,
            leads,
            updates: Mutex::default(),
            calls: Mutex::default(),
            outstanding: Mutex::new(0),
            finished: Condvar::new(),
            clock,
            http,
            base_url: OnceLock::new(),
        }
    }

    pub(crate) fn set_base_url(&self, url: String) {
        let _ = self.base_url.set(url);
    }

    /// Called for every journaled run: queues the flow of a triggered run
    /// whose campaign has one.
    pub(crate) fn on_run(&self, entry: &JournalEntry) {
        if entry.run_at.is_some() || !self.campaigns.contains_key(&entry.campaign_id) {
            return;
        }
        *self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        PENDING.with(|pending| pending.borrow_mut().push(entry.clone()));
    }

    /// Starts the flows this thread queued (its answer has been written).
    pub(crate) fn release(self: &Arc<Self>) {
        let runs = PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
        if runs.is_empty() {
            return;
        }
        let flows = Arc::clone(self);
        let count = runs.len();
        let spawned = std::thread::Builder::new()
            .name("sandbox-flow".into())
            .spawn(move || {
                for run in &runs {
                    flows.run(run);
                    flows.finish(1);
                }
            });
        if let Err(e) = spawned {
            log::warn!("sandbox cannot start a flow thread: {e}");
            self.finish(count);
        }
    }

    fn finish(&self, count: usize) {
        let mut outstanding = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *outstanding = outstanding.saturating_sub(count);
        self.finished.notify_all();
    }

    /// Waits until every flow queued so far has finished, at most `limit`;
    /// `true` if they all did.
    pub(crate) fn wait(&self, limit: Duration) -> bool {
        let outstanding = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (outstanding, _) = self
            .finished
            .wait_timeout_while(outstanding, limit, |n| *n > 0)
            .unwrap_or_else(PoisonError::into_inner);
        *outstanding == 0
    }

    pub(crate) fn calls(&self) -> Vec<WebhookCall> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn clear_calls(&self) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// A lead field a response mapping set, by REST name.
    pub(crate) fn updated_field(&self, lead_id: u32, name: &str) -> Option<String> {
        let updates = self.updates.lock().unwrap_or_else(PoisonError::into_inner);
        updates.get(&lead_id)?.get(name).cloned()
    }

    /// Runs one campaign run's flow: each step, for each lead in turn.
    fn run(&self, entry: &JournalEntry) {
        let Some(campaign) = self.campaigns.get(&entry.campaign_id) else {
            return;
        };
        for &lead_id in &entry.lead_ids {
            for webhook in &campaign.webhooks {
                let call = self.call(campaign, entry, lead_id, webhook);
                self.calls
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(call);
            }
        }
    }

    fn call(
        &self,
        campaign: &FlowCampaign,
        entry: &JournalEntry,
        lead_id: u32,
        webhook: &Webhook,
    ) -> WebhookCall {
        let mut fields = self.leads.get(&lead_id).cloned().unwrap_or_default();
        if let Some(updated) = self
            .updates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&lead_id)
        {
            fields.extend(updated.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let lead = fields.into_iter().map(|(name, value)| {
            let value = if name == "id" {
                TokenValue::Raw(value)
            } else {
                TokenValue::Text(value)
            };
            (name, value)
        });
        let context = TokenContext::new(self.clock.as_ref())
            .lead(lead)
            .campaign(entry.campaign_id, campaign.name.as_str())
            .program(
                campaign.program.as_str(),
                campaign.token_defaults.iter().map(|(k, v)| (k, v.as_str())),
            )
            .program_id(campaign.program_id)
            .request_tokens(entry.tokens.iter().map(|t| (&t.name, t.value.as_str())));
        let request = webhook.render(&context);
        let url = match (request.url.starts_with('/'), self.base_url.get()) {
            (true, Some(base)) => format!("{base}{}", request.url),
            _ => request.url.clone(),
        };
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let started = Instant::now();
        let answer = if request.method == "GET" {
            self.http.get(&url, &headers)
        } else {
            self.http.post(&url, &headers, request.body.as_bytes())
        };
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, error, mapped) = match answer {
            Ok(answer) => {
                let body = String::from_utf8_lossy(&answer.body);
                let mapped: BTreeMap<String, String> = webhook
                    .map_response(answer.status, &body)
                    .into_iter()
                    .collect();
                if !mapped.is_empty() {
                    self.updates
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(lead_id)
                        .or_default()
                        .extend(mapped.clone());
                }
                (Some(answer.status), None, mapped)
            }
            Err(e) => (None, Some(e), BTreeMap::new()),
        };
        WebhookCall {
            campaign_id: entry.campaign_id,
            lead_id,
            webhook: webhook.name.clone(),
            tokens: entry.tokens.clone(),
            method: request.method,
            url,
            headers: request.headers,
            body: request.body,
            status,
            error,
            latency_ms,
            mapped,
            warnings: request.warnings,
        }
    }
}

/// What went wrong with a webhook call, in a line.
/// The HTTP client that makes a flow's webhook calls, as Marketo's
/// servers would: one connection pool, Marketo's timeout, answers read
/// whatever their status (up to [`MAX_WEBHOOK_ANSWER_BYTES`]), no redirects.
#[derive(Debug)]
struct WebhookHttp {
    agent: ureq::Agent,
}

/// The most of a webhook's answer a flow reads: 1 MiB.
const MAX_WEBHOOK_ANSWER_BYTES: u64 = 1 << 20;

/// A webhook's answer: status and body.
struct WebhookAnswer {
    status: u16,
    body: Vec<u8>,
}

impl WebhookHttp {
    fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("marketo-sandbox/", env!("CARGO_PKG_VERSION")))
            .build();
        WebhookHttp {
            agent: config.into(),
        }
    }

    /// GETs `url`; the error is the transport's failure, in words.
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<WebhookAnswer, String> {
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::read(request.call())
    }

    /// POSTs `body` to `url`; the error is the transport's failure, in words.
    fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<WebhookAnswer, String> {
        let mut request = self.agent.post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::read(request.send(body))
    }

    fn read(
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<WebhookAnswer, String> {
        let mut response = answer.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_WEBHOOK_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok(WebhookAnswer { status, body })
    }
}

/// A lead's fields by REST name: its key fields and its other fields.
fn lead_fields_of(lead: &SandboxLead) -> BTreeMap<String, String> {
    let mut fields = lead.fields.clone();
    fields.insert("id".into(), lead.id.to_string());
    for key_type in LeadKeyType::ALL {
        if key_type == LeadKeyType::Idnum {
            continue;
        }
        if let Some(value) = super::leads::field(lead, key_type) {
            fields.insert(key_type.rest_field().to_owned(), value.to_owned());
        }
    }
    fields
}

/// Checks the flows of `data`: every Call Webhook step names a webhook of
/// the data, only trigger campaigns have them, every webhook is valid and
/// named once.
pub(crate) fn check(data: &SandboxData) -> Result<(), Error> {
    let config = |message: String| Err(Error::Config(format!("sandbox data: {message}")));
    let mut names = std::collections::HashSet::new();
    for webhook in &data.webhooks {
        if webhook.name.trim().is_empty() {
            return config(format!("webhook {:?} has no name", webhook.url));
        }
        if !names.insert(webhook.name.as_str()) {
            return config(format!("two webhooks are named {:?}", webhook.name));
        }
        // A URL starting with `/` names the sandbox itself.
        let mut absolute = webhook.clone();
        if absolute.url.starts_with('/') {
            absolute.url = format!("http://127.0.0.1{}", absolute.url);
        }
        if let Err(e) = absolute.check() {
            return config(e.to_string());
        }
    }
    for campaign in &data.campaigns {
        for (i, FlowStep::CallWebhook(name)) in campaign.flow.iter().enumerate() {
            if !campaign.requestable {
                return config(format!(
                    "campaign {} {:?} is a batch campaign (\"requestable\": false), and Call \
                     Webhook works only in trigger campaigns (flow step {} calls {name:?}); \
                     make it a trigger campaign or remove the step",
                    campaign.id,
                    campaign.name,
                    i + 1
                ));
            }
            if !names.contains(name.as_str()) {
                return config(format!(
                    "campaign {} {:?}, flow step {}: no webhook is named {name:?}",
                    campaign.id,
                    campaign.name,
                    i + 1
                ));
            }
        }
    }
    Ok(())
}
