//! `RestClient`: trigger and schedule over Marketo's REST API.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::SecondsFormat;

use crate::error::{Error, RestCode};
use crate::plan::PlannedRequest;
use crate::request::{CampaignRequest, CampaignTarget, LeadKey};
use crate::requester::{send_in_chunks, AmbiguousKey, CampaignRequester, ChunkAccepted, Outcome};
use crate::rest::lookup::{
    check_expressible, plan_lead_queries, resolve, resolve_next, IdsOnce, LeadIds, Resolved,
};
use crate::rest::token::TokenCache;
use crate::rest::wire::{
    self, check_skipped, ActionRecord, LeadId, Page, ScheduleBody, ScheduleInput, TokenRef,
    TriggerBody, TriggerInput,
};
use crate::schedule::{CampaignScheduler, ScheduleRequest, Scheduled};
use crate::secret::Secret;
use crate::transport::{check_endpoint, env_var, http_setters, Caller, HttpConfig};

/// Marketo takes at most this many tokens in one trigger or schedule call.
pub const MAX_TOKENS_PER_CALL: usize = 100;

/// A client for Marketo's REST API.
///
/// Triggers campaigns by id for lead ids (`trigger.json`), looking up
/// campaign names and lead keys first (`IDNUM` keys are checked too), so
/// requests SOAP can express work here too, with the same meaning: a key
/// names one lead. Keys that name none, or several, are reported and run
/// nothing; `LEADOWNEREMAIL` keys, which REST cannot look up, are refused
/// before sending. Cheap to clone; clones share the connection pool,
/// the access token and the campaign look-up cache.
///
/// ```no_run
/// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, RestClient};
///
/// let client = RestClient::builder("https://123-ABC-456.mktorest.com", "client-id", "client-secret").build()?;
/// let request = CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::email("lead@company.com")?])?;
/// let outcome = client.request_campaign(&request)?;
/// for key in outcome.unmatched() {
///     eprintln!("no such lead: {key}");
/// }
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RestClient {
    endpoint: String,
    caller: Caller,
    tokens: Arc<TokenCache>,
    campaigns: Arc<Mutex<HashMap<(String, String), u32>>>,
}

/// Builds a [`RestClient`]. Every setter documents its default.
#[derive(Debug, Clone)]
pub struct RestClientBuilder {
    endpoint: String,
    identity: Option<String>,
    client_id: String,
    client_secret: Secret,
    renew_margin: Duration,
    http: HttpConfig,
}

impl RestClientBuilder {
    /// Reads `MARKETO_REST_ENDPOINT`, `MARKETO_CLIENT_ID`,
    /// `MARKETO_CLIENT_SECRET` and, optionally, `MARKETO_REST_IDENTITY`
    /// (default: the endpoint + `/identity`).
    pub fn from_env() -> Result<Self, Error> {
        let mut builder = RestClient::builder(
            env_var("MARKETO_REST_ENDPOINT")?,
            env_var("MARKETO_CLIENT_ID")?,
            env_var("MARKETO_CLIENT_SECRET")?,
        );
        if let Ok(identity) = env_var("MARKETO_REST_IDENTITY") {
            builder = builder.identity(identity);
        }
        Ok(builder)
    }

    /// The identity service's base URL. Default: the endpoint + `/identity`.
    pub fn identity(mut self, url: impl Into<String>) -> Self {
        self.identity = Some(url.into());
        self
    }

    /// How long before its expiry a token is renewed. Default: 60 s.
    pub fn token_renew_margin(mut self, margin: Duration) -> Self {
        self.renew_margin = margin;
        self
    }

    http_setters!();

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<RestClient, Error> {
        let endpoint = self.endpoint.trim_end_matches('/').to_owned();
        let identity = self
            .identity
            .map(|i| i.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("{endpoint}/identity"));
        check_endpoint("REST endpoint", &endpoint, self.http.allow_plain_http)?;
        check_endpoint("identity endpoint", &identity, self.http.allow_plain_http)?;
        if self.client_id.trim().is_empty() {
            return Err(Error::Config("the REST client id is empty".into()));
        }
        if self.client_secret.expose().is_empty() {
            return Err(Error::Config("the REST client secret is empty".into()));
        }
        Ok(RestClient {
            endpoint,
            caller: Caller::new(&self.http),
            tokens: Arc::new(TokenCache::new(
                &identity,
                self.client_id,
                self.client_secret,
                self.renew_margin,
            )),
            campaigns: Arc::default(),
        })
    }
}

impl RestClient {
    /// A builder for the REST endpoint (e.g. `https://123-ABC-456.mktorest.com`),
    /// the client id and the client secret.
    pub fn builder(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> RestClientBuilder {
        RestClientBuilder {
            endpoint: endpoint.into(),
            identity: None,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            renew_margin: Duration::from_secs(60),
            http: HttpConfig::default(),
        }
    }

    /// What this client's HTTP calls did so far (token, look-ups,
    /// triggers; shared by its clones): counts by path and result, and a
    /// latency histogram.
    pub fn http_metrics(&self) -> crate::metrics::HttpMetrics {
        self.caller.http().metrics()
    }

    /// The REST endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn campaign_cache_get(&self, key: &(String, String)) -> Option<u32> {
        self.campaigns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied()
    }

    pub(crate) fn campaign_cache_put(&self, key: (String, String), id: u32) {
        self.campaigns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, id);
    }

    /// One API call, paced by the limiter and repeated as the retry policy
    /// allows. A GET triggers nothing: whatever failed, its error is
    /// [`Error::ReadFailed`], which the policy repeats when the cause passes.
    pub(crate) fn call<T: wire::Record>(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Page<T>, Error> {
        self.caller.with_retries(self, |_| {
            let result = self.call_once(method, path, body);
            match (body, result) {
                (None, Err(err)) => Err(read_failed(path, err)),
                (_, result) => result,
            }
        })
    }

    /// One API call with the current token; on 601/602 the token is renewed
    /// and the call made once more (the refused call ran nothing).
    fn call_once<T: wire::Record>(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Page<T>, Error> {
        let mut url = String::with_capacity(self.endpoint.len() + path.len());
        url.push_str(&self.endpoint);
        url.push_str(path);
        let mut renewed = false;
        loop {
            let token = self.tokens.get(self.caller.http())?;
            let mut bearer = String::with_capacity(7 + token.expose().len());
            bearer.push_str("Bearer ");
            bearer.push_str(token.expose());
            let response = match body {
                Some(body) => self.caller.post(
                    &url,
                    &[
                        ("Authorization", &bearer),
                        ("Content-Type", "application/json"),
                        ("Accept", "application/json"),
                    ],
                    body,
                ),
                None => self.caller.get(
                    &url,
                    &[("Authorization", &bearer), ("Accept", "application/json")],
                ),
            }?;
            match T::read_page(response.status, &response.body) {
                Err(Error::Rest {
                    code: code @ (RestCode::TokenInvalid | RestCode::TokenExpired),
                    message,
                }) if !renewed => {
                    log::debug!(
                        "{self}: {method} {path}: {} {message}; renewing the token",
                        code.code()
                    );
                    self.tokens.invalidate(&token);
                    renewed = true;
                }
                // An answer echoing the token or the secret under no
                // recognisable name is still never quoted.
                other => return other.map_err(|err| self.scrub(err)),
            }
        }
    }

    /// `err` without this client's secret or current token anywhere in
    /// the server text it quotes.
    pub(crate) fn scrub(&self, err: Error) -> Error {
        self.tokens.scrub(err)
    }

    pub(crate) fn api_get<T: wire::Record>(&self, path: &str) -> Result<Page<T>, Error> {
        self.call("GET", path, None)
    }

    fn campaign_id(&self, target: &CampaignTarget) -> Result<u32, Error> {
        match target {
            CampaignTarget::Id { id, .. } => Ok(*id),
            CampaignTarget::Named {
                campaign, program, ..
            } => self.lookup_campaign(campaign, program),
            CampaignTarget::Ajo { .. } => Err(not_marketo(target)),
        }
    }

    fn check_tokens(count: usize) -> Result<(), Error> {
        if count > MAX_TOKENS_PER_CALL {
            return Err(Error::invalid(
                "program tokens",
                format!("{count} tokens; Marketo's REST API takes at most {MAX_TOKENS_PER_CALL}"),
            ));
        }
        Ok(())
    }

    /// Looks up `leads` (`leads.json`, 300 values a call, `IDNUM` checked
    /// too) and returns the keys that name no single lead (none, or
    /// several), in the order given. Triggers nothing: a failed look-up is
    /// [`Error::ReadFailed`]; a key type REST cannot look up
    /// (`LEADOWNEREMAIL`) is [`Error::InvalidInput`]. The SOAP bridge uses
    /// it to keep SOAP's all-or-nothing rule for unknown leads.
    pub fn unmatched_leads(&self, leads: &[LeadKey]) -> Result<Vec<LeadKey>, Error> {
        check_expressible(leads)?;
        let (queries, _) = plan_lead_queries(self.endpoint.len(), leads);
        let ids = self.lookup_leads(&queries)?;
        Ok(not_one_lead(&ids, leads))
    }

    /// Every campaign the API may request (`campaigns.json`, all pages):
    /// id, name and description of each, as SOAP's `getCampaignsForSource`
    /// lists them (the bridge serves that call with this). Read-only: an
    /// error runs nothing.
    ///
    /// ```no_run
    /// # let client = marketo_campaign::RestClientBuilder::from_env()?.build()?;
    /// for (id, name, _description) in client.requestable_campaigns()? {
    ///     println!("{id} {name}");
    /// }
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn requestable_campaigns(&self) -> Result<Vec<(u32, String, String)>, Error> {
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..100 {
            let path = match &page {
                Some(token) => format!(
                    "/rest/v1/campaigns.json?nextPageToken={}",
                    super::lookup::encode(token)
                ),
                None => "/rest/v1/campaigns.json".to_owned(),
            };
            let answer = self.api_get::<serde_json::Value>(&path)?;
            for record in &answer.result {
                let text = |field: &str| {
                    record
                        .get(field)
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let id = record
                    .get("id")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|id| u32::try_from(id).ok());
                if let (Some(id), "trigger") = (id, text("type").as_str()) {
                    out.push((id, text("name"), text("description")));
                }
            }
            page = answer.next_page_token;
            if page.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// The HTTP requests [`request_campaign`](CampaignRequester::request_campaign)
    /// would send that can be known without a network: the token request
    /// (secret redacted), the campaign look-up (by name) and the lead
    /// look-ups. Every lead key is looked up first, `IDNUM` included (an
    /// unknown id is then reported by key instead of failing its chunk), so
    /// which leads each trigger call carries depends on the look-ups'
    /// answers: trigger calls are not planned. A request REST cannot express
    /// (a `LEADOWNEREMAIL` key, too many tokens) is refused here as it would
    /// be when sent.
    pub fn plan(&self, request: &CampaignRequest) -> Result<Vec<PlannedRequest>, Error> {
        check_target(request.target())?;
        let tokens = request_tokens(request.target());
        Self::check_tokens(tokens.len())?;
        check_expressible(request.leads())?;
        let get_headers = BTreeMap::from([
            ("Accept".to_owned(), "application/json".to_owned()),
            ("Authorization".to_owned(), "Bearer [redacted]".to_owned()),
        ]);
        let mut plans = vec![PlannedRequest {
            method: "GET",
            url: self.tokens.redacted_url(),
            headers: BTreeMap::from([("Accept".to_owned(), "application/json".to_owned())]),
            body: String::new(),
        }];
        if let CampaignTarget::Named {
            campaign, program, ..
        } = request.target()
        {
            plans.push(PlannedRequest {
                method: "GET",
                url: format!(
                    "{}{}",
                    self.endpoint,
                    super::lookup::campaigns_path(campaign, program)
                ),
                headers: get_headers.clone(),
                body: String::new(),
            });
        }
        let (queries, _) = plan_lead_queries(self.endpoint.len(), request.leads());
        for query in &queries {
            plans.push(PlannedRequest {
                method: "GET",
                url: format!("{}{}", self.endpoint, query.path(None)),
                headers: get_headers.clone(),
                body: String::new(),
            });
        }
        Ok(plans)
    }
}

/// An AJO campaign cannot run on Marketo: refused before sending.
fn not_marketo(target: &CampaignTarget) -> Error {
    Error::invalid(
        "campaign",
        format!("{target} runs over Adobe Journey Optimizer only (AjoClient, --backend ajo), not over Marketo's REST API"),
    )
}

/// Refuses a target REST cannot run, before anything is sent.
fn check_target(target: &CampaignTarget) -> Result<(), Error> {
    match target {
        CampaignTarget::Ajo { .. } => Err(not_marketo(target)),
        _ => Ok(()),
    }
}

/// The error of a failed GET: nothing was triggered. Errors that say so
/// already (bad input, configuration, credentials, a token request) pass.
fn read_failed(path: &str, err: Error) -> Error {
    match err {
        Error::Transport { .. }
        | Error::Protocol { .. }
        | Error::HttpStatus { .. }
        | Error::Rest { .. } => {
            // The path may carry lead values: name the call, not the URL.
            let call = if path.starts_with("/rest/v1/leads.json") {
                "lead look-up"
            } else if path.starts_with("/rest/v1/campaigns.json") {
                "campaign look-up"
            } else {
                "REST GET"
            };
            Error::ReadFailed {
                call: call.into(),
                source: Box::new(err),
            }
        }
        other => other,
    }
}

/// The keys of `leads` that name no lead, or several: SOAP's unknown leads.
fn not_one_lead(ids: &LeadIds, leads: &[LeadKey]) -> Vec<LeadKey> {
    leads
        .iter()
        .filter(|key| !matches!(resolve(ids, key), Resolved::One(_)))
        .cloned()
        .collect()
}

fn request_tokens(target: &CampaignTarget) -> Vec<TokenRef<'_>> {
    TokenRef::all(target.tokens())
}

/// The trigger body for one chunk (None when no lead of it is to run) and
/// what the chunk reports: keys that named no single lead, and among them
/// those that matched several. A key matching several leads runs none of
/// them: REST cannot tell which one SOAP would have named, and running a
/// campaign for a lead the caller did not mean cannot be undone, while the
/// caller can resend the lead it means by `IDNUM`. Each lead runs once per
/// request (`served`).
fn trigger_body(
    ids: &LeadIds,
    leads: &[LeadKey],
    tokens: &[TokenRef<'_>],
    served: &mut IdsOnce,
) -> Result<(Option<String>, ChunkAccepted), Error> {
    let mut lead_ids = Vec::with_capacity(leads.len());
    let mut report = ChunkAccepted::default();
    let mut cursor = 0;
    for key in leads {
        match resolve_next(ids, key, &mut cursor) {
            // A lead named twice in one request runs once.
            Resolved::One(id) => {
                if served.first(id) {
                    lead_ids.push(LeadId { id });
                }
            }
            Resolved::None => report.unmatched.push(key.clone()),
            Resolved::Several(several) => {
                report.unmatched.push(key.clone());
                report.ambiguous.push(AmbiguousKey {
                    key: key.clone(),
                    lead_ids: several.to_vec(),
                });
            }
        }
    }
    if lead_ids.is_empty() {
        return Ok((None, report));
    }
    let body = TriggerBody {
        input: TriggerInput {
            leads: lead_ids,
            tokens: tokens
                .iter()
                .map(|t| TokenRef {
                    name: t.name,
                    value: t.value,
                })
                .collect(),
        },
    };
    let json = body
        .to_json()
        .map_err(|e| Error::Config(format!("writing the trigger body failed: {e}")))?;
    Ok((Some(json), report))
}

impl fmt::Display for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rest({})", self.endpoint)
    }
}

impl CampaignRequester for RestClient {
    /// Looks up the campaign (by name) and every lead key (`IDNUM` too,
    /// with `filterType=id`), then triggers chunk by chunk. Look-up
    /// failures happen before any trigger: nothing ran. Keys that match no
    /// lead are reported in the chunk's
    /// [`unmatched`](crate::ChunkReport::unmatched) and the chunk's other
    /// leads run; a key that matches several leads runs none of them and is
    /// also reported, with their ids, in
    /// [`ambiguous`](crate::ChunkReport::ambiguous); a lead named by several
    /// keys runs once. A key type REST cannot look up (`LEADOWNEREMAIL`:
    /// Marketo documents no such filter) refuses the whole request before
    /// anything is sent ([`Error::InvalidInput`], *not sent*).
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        let (campaign_id, tokens, ids) = self.resolve_request(request)?;
        self.trigger_resolved(request, campaign_id, &ids, &tokens)
    }

    /// 100: `trigger.json` takes at most 100 leads.
    fn max_leads_per_call(&self) -> usize {
        crate::MAX_LEADS_PER_CALL
    }
}

impl RestClient {
    /// [`request_campaign`](CampaignRequester::request_campaign) with SOAP's
    /// rule for unknown leads, looking up once: when a key names no single
    /// lead, nothing is triggered and those keys are returned (`Ok(Err)`).
    /// SOAP's `requestCampaign` fails the whole call (20103) in that case;
    /// the bridge keeps that meaning with this.
    ///
    /// ```no_run
    /// use marketo_campaign::{CampaignRequest, CampaignTarget, LeadKey, RestClientBuilder};
    /// let client = RestClientBuilder::from_env()?.build()?;
    /// let request = CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::email("a@b.c")?])?;
    /// match client.request_campaign_all_or_nothing(&request)? {
    ///     Ok(outcome) => println!("ran: {}", outcome.is_complete()),
    ///     Err(unmatched) => println!("nothing ran; no single lead for {unmatched:?}"),
    /// }
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn request_campaign_all_or_nothing(
        &self,
        request: &CampaignRequest,
    ) -> Result<Result<Outcome, Vec<LeadKey>>, Error> {
        let (campaign_id, tokens, ids) = self.resolve_request(request)?;
        let unmatched = not_one_lead(&ids, request.leads());
        if !unmatched.is_empty() {
            return Ok(Err(unmatched));
        }
        self.trigger_resolved(request, campaign_id, &ids, &tokens)
            .map(Ok)
    }

    /// Checks what REST can express of `request`, finds its campaign and
    /// looks its leads up: the campaign id, the tokens and the lead ids.
    /// Nothing is triggered.
    fn resolve_request<'r>(
        &self,
        request: &'r CampaignRequest,
    ) -> Result<(u32, Vec<TokenRef<'r>>, LeadIds), Error> {
        check_target(request.target())?;
        let tokens = request_tokens(request.target());
        Self::check_tokens(tokens.len())?;
        check_expressible(request.leads())?;
        let campaign_id = self.campaign_id(request.target())?;
        let (queries, inexpressible) = plan_lead_queries(self.endpoint.len(), request.leads());
        if !inexpressible.is_empty() {
            log::warn!(
                "{self}: {} lead key(s) hold a comma or are too long for a URL: they cannot be looked up over REST and are reported unmatched",
                inexpressible.len()
            );
        }
        let ids = self.lookup_leads(&queries)?;
        Ok((campaign_id, tokens, ids))
    }

    /// Triggers `campaign_id` chunk by chunk for the leads `ids` resolved.
    fn trigger_resolved(
        &self,
        request: &CampaignRequest,
        campaign_id: u32,
        ids: &LeadIds,
        tokens: &[TokenRef<'_>],
    ) -> Result<Outcome, Error> {
        let path = format!("/rest/v1/campaigns/{campaign_id}/trigger.json");
        let mut served = IdsOnce::with_capacity(request.leads().len());
        send_in_chunks(request, self.max_leads_per_call(), "rest", |_, leads| {
            let (body, report) = trigger_body(ids, leads, tokens, &mut served)?;
            if let Some(body) = body {
                log::debug!(
                    "{self}: trigger campaign {campaign_id} for a chunk of {}",
                    leads.len()
                );
                let page = self.call::<ActionRecord>("POST", &path, Some(body.as_bytes()))?;
                check_skipped(&page.result)?;
            }
            Ok(report)
        })
    }
}

impl CampaignScheduler for RestClient {
    fn schedule_campaign(&self, request: &ScheduleRequest) -> Result<Scheduled, Error> {
        check_target(request.target())?;
        Self::check_tokens(request.tokens().len())?;
        let campaign_id = self.campaign_id(request.target())?;
        let body = ScheduleBody {
            input: ScheduleInput {
                run_at: request
                    .run_at()
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                tokens: TokenRef::all(request.tokens()),
            },
        };
        let json = serde_json::to_vec(&body)
            .map_err(|e| Error::Config(format!("writing the schedule body failed: {e}")))?;
        let page = self.call::<ActionRecord>(
            "POST",
            &format!("/rest/v1/campaigns/{campaign_id}/schedule.json"),
            Some(&json),
        )?;
        check_skipped(&page.result)?;
        Ok(Scheduled {
            id: None,
            backend: "rest".into(),
        })
    }
}
