//! `AjoClient`: unitary executions of API-triggered campaigns.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ajo::map::CampaignMap;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::plan::PlannedRequest;
use crate::redact;
use crate::request::{CampaignRequest, LeadKey, LeadKeyType};
use crate::requester::{send_in_chunks, CampaignRequester, ChunkAccepted, Outcome};
use crate::rest::token::TokenCache;
use crate::schedule::{CampaignScheduler, ScheduleRequest, Scheduled};
use crate::secret::Secret;
use crate::transport::{check_endpoint, http_setters, Caller, HttpConfig, HttpResponse};

/// The most recipients one unitary execution takes (the schema's
/// `maxItems`).
pub const MAX_RECIPIENTS_PER_CALL: usize = 20;
/// Adobe's API gateway.
pub const DEFAULT_ENDPOINT: &str = "https://platform.adobe.io";
/// Adobe IMS's token URL (OAuth server-to-server).
pub const DEFAULT_IMS_TOKEN_URL: &str = "https://ims-na1.adobelogin.com/ims/token/v3";
/// The scopes an OAuth server-to-server credential for Experience Platform
/// APIs lists in the Adobe Developer Console.
pub const DEFAULT_SCOPES: &str =
    "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session";
/// The unitary execution's path under the endpoint.
pub const UNITARY_PATH: &str = "/ajo/im/executions/unitary";
/// The audience execution's path under the endpoint (schedules).
pub const AUDIENCE_PATH: &str = "/ajo/im/executions/audience";

/// A client for Adobe Journey Optimizer's Interactive Message Execution
/// API: it runs API-triggered campaigns for the request's leads with
/// unitary executions (`POST /ajo/im/executions/unitary`), at most
/// [`MAX_RECIPIENTS_PER_CALL`] recipients a call.
///
/// - The campaign: a [`CampaignTarget::Ajo`](crate::CampaignTarget::Ajo)
///   names it; a Marketo-shaped target (id, or name + program) is turned
///   into one by the builder's [`CampaignMap`]. An unmapped target is
///   refused before anything is sent.
/// - The recipients: each lead key becomes a recipient of type `aep`
///   whose `namespace` is its key type's identity namespace (default
///   `EMAIL` → `email`; add others with
///   [`namespace`](AjoClientBuilder::namespace)). A key type with no
///   namespace refuses the whole request before anything is sent, naming
///   it. A key named twice in a request is sent once.
/// - The tokens: each program token `{{my.Name}}` becomes `context.Name`
///   of every recipient (in AJO content: `{{context.Name}}`).
/// - Each call carries a fresh `requestId` (in the body and as
///   `x-request-id`), the same when that call is repeated; the answer's
///   `executionId` is the chunk's
///   [`execution_id`](crate::ChunkReport::execution_id).
///
/// Errors follow the crate's one classification: HTTP 400/401/403/404 and
/// other 4xx are refusals (nothing ran; a 401 renews the token and is sent
/// once more); 429 is [`Error::RateLimited`], retried after its
/// `Retry-After`; a 5xx, a timeout or a cut answer after sending is
/// *unknown* and never repeated (Adobe's internal retries are not relied on
/// to avoid duplicates); a connection that could not be made is *not
/// sent*. Cheap to clone; clones share the connection pool, the token and
/// the rate limiter.
///
/// ```no_run
/// use marketo_campaign::ajo::{AjoClient, CampaignMap};
/// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, ProgramToken};
///
/// let client = AjoClient::builder("client-id", "client-secret", "12345@AdobeOrg", "prod")
///     .campaign_map(CampaignMap::new().with_id(1234, "5f1e2d3c-webinar"))
///     .build()?;
/// let target = CampaignTarget::id_with_tokens(1234, [ProgramToken::new("{{my.WebinarTitle}}", "Rust")?]);
/// let outcome = client.request_campaign(&CampaignRequest::new(target, [LeadKey::email("lead@company.com")?])?)?;
/// println!("execution {:?}", outcome.chunks()[0].execution_id());
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AjoClient {
    url: String,
    audience_url: String,
    api_key: String,
    org_id: String,
    sandbox_name: String,
    caller: Caller,
    tokens: Arc<TokenCache>,
    namespaces: Arc<BTreeMap<LeadKeyType, String>>,
    campaigns: Arc<CampaignMap>,
}

/// Builds an [`AjoClient`]. Every setter documents its default.
///
/// ```
/// use std::time::Duration;
/// use marketo_campaign::ajo::{AjoClient, CampaignMap};
/// use marketo_campaign::{LeadKeyType, RateLimit};
/// let client = AjoClient::builder("client-id", "client-secret", "12345@AdobeOrg", "prod")
///     .endpoint("https://platform.adobe.io")
///     .ims_token_url("https://ims-na1.adobelogin.com/ims/token/v3")
///     .scopes("openid,AdobeID,read_organizations")
///     .namespace(LeadKeyType::Idnum, "marketoId")
///     .campaign_map(CampaignMap::new().with_id(1234, "5f1e2d3c-webinar"))
///     .token_renew_margin(Duration::from_secs(300))
///     .rate_limit(Some(RateLimit::new(50, Duration::from_secs(1), 10)))
///     .build()?;
/// assert_eq!(client.url(), "https://platform.adobe.io/ajo/im/executions/unitary");
/// // Credentials are checked when built.
/// assert!(AjoClient::builder("id", "", "org@AdobeOrg", "prod").build().is_err());
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AjoClientBuilder {
    endpoint: String,
    ims_token_url: String,
    scopes: String,
    client_id: String,
    client_secret: Secret,
    org_id: String,
    sandbox_name: String,
    renew_margin: Duration,
    namespaces: BTreeMap<LeadKeyType, String>,
    campaigns: CampaignMap,
    http: HttpConfig,
}

/// The first set of `AJO_<name>`, `ADOBE_<name>`.
fn either_env(name: &str) -> Option<String> {
    [format!("AJO_{name}"), format!("ADOBE_{name}")]
        .iter()
        .find_map(|var| crate::transport::env_var(var).ok())
}

fn required_env(name: &str) -> Result<String, Error> {
    either_env(name)
        .ok_or_else(|| Error::Config(format!("neither AJO_{name} nor ADOBE_{name} is set")))
}

impl AjoClientBuilder {
    /// Reads the configuration from the environment; for each setting the
    /// `AJO_` variable wins over the `ADOBE_` one:
    ///
    /// | variable | setting | default |
    /// |---|---|---|
    /// | `AJO_CLIENT_ID` / `ADOBE_CLIENT_ID` | OAuth client id, also sent as `x-api-key` | required |
    /// | `AJO_CLIENT_SECRET` / `ADOBE_CLIENT_SECRET` | OAuth client secret | required |
    /// | `AJO_ORG_ID` / `ADOBE_ORG_ID` | `x-gw-ims-org-id` (`…@AdobeOrg`) | required |
    /// | `AJO_SANDBOX_NAME` / `ADOBE_SANDBOX_NAME` | `x-sandbox-name` | required |
    /// | `AJO_ENDPOINT` / `ADOBE_ENDPOINT` | the API gateway | [`DEFAULT_ENDPOINT`] |
    /// | `AJO_IMS_TOKEN_URL` / `ADOBE_IMS_TOKEN_URL` | the IMS token URL | [`DEFAULT_IMS_TOKEN_URL`] |
    /// | `AJO_SCOPES` / `ADOBE_SCOPES` | the OAuth scopes | [`DEFAULT_SCOPES`] |
    /// | `AJO_CAMPAIGN_MAP` / `ADOBE_CAMPAIGN_MAP` | a [`CampaignMap`] JSON file | none |
    pub fn from_env() -> Result<Self, Error> {
        let mut builder = AjoClient::builder(
            required_env("CLIENT_ID")?,
            required_env("CLIENT_SECRET")?,
            required_env("ORG_ID")?,
            required_env("SANDBOX_NAME")?,
        );
        if let Some(endpoint) = either_env("ENDPOINT") {
            builder = builder.endpoint(endpoint);
        }
        if let Some(url) = either_env("IMS_TOKEN_URL") {
            builder = builder.ims_token_url(url);
        }
        if let Some(scopes) = either_env("SCOPES") {
            builder = builder.scopes(scopes);
        }
        if let Some(file) = either_env("CAMPAIGN_MAP") {
            builder = builder.campaign_map(CampaignMap::from_file(file)?);
        }
        Ok(builder)
    }

    /// The API gateway's base URL; the unitary execution is
    /// [`UNITARY_PATH`] under it. Default: [`DEFAULT_ENDPOINT`].
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = url.into();
        self
    }

    /// The IMS token URL. Default: [`DEFAULT_IMS_TOKEN_URL`].
    pub fn ims_token_url(mut self, url: impl Into<String>) -> Self {
        self.ims_token_url = url.into();
        self
    }

    /// The OAuth scopes asked for, comma-separated as the Developer
    /// Console lists them. Default: [`DEFAULT_SCOPES`].
    pub fn scopes(mut self, scopes: impl Into<String>) -> Self {
        self.scopes = scopes.into();
        self
    }

    /// How long before its expiry a token is renewed. Default: 10 minutes
    /// (IMS tokens live 24 hours).
    pub fn token_renew_margin(mut self, margin: Duration) -> Self {
        self.renew_margin = margin;
        self
    }

    /// Lead keys of `key_type` become recipients in the identity namespace
    /// `namespace` (e.g. `IDNUM` → a custom `marketoId` namespace), replacing
    /// its mapping if it had one. Default: `EMAIL` → `email`, nothing else.
    ///
    /// ```
    /// use marketo_campaign::ajo::AjoClient;
    /// use marketo_campaign::LeadKeyType;
    /// let client = AjoClient::builder("id", "secret", "org@AdobeOrg", "prod")
    ///     .namespace(LeadKeyType::Idnum, "marketoId")
    ///     .build()?;
    /// assert_eq!(client.namespace_of(LeadKeyType::Idnum), Some("marketoId"));
    /// assert_eq!(client.namespace_of(LeadKeyType::Email), Some("email"));
    /// assert_eq!(client.namespace_of(LeadKeyType::Cookie), None);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn namespace(mut self, key_type: LeadKeyType, namespace: impl Into<String>) -> Self {
        self.namespaces.insert(key_type, namespace.into());
        self
    }

    /// Forgets every key-type mapping, `EMAIL`'s included; add the ones
    /// you want with [`namespace`](AjoClientBuilder::namespace).
    pub fn clear_namespaces(mut self) -> Self {
        self.namespaces.clear();
        self
    }

    /// The map from Marketo-shaped targets to AJO campaign ids. Default:
    /// empty (only [`CampaignTarget::Ajo`](crate::CampaignTarget::Ajo)
    /// targets run).
    pub fn campaign_map(mut self, map: CampaignMap) -> Self {
        self.campaigns = map;
        self
    }

    http_setters!();

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<AjoClient, Error> {
        let endpoint = self.endpoint.trim_end_matches('/').to_owned();
        check_endpoint("AJO endpoint", &endpoint, self.http.allow_plain_http)?;
        check_endpoint(
            "IMS token URL",
            &self.ims_token_url,
            self.http.allow_plain_http,
        )?;
        for (what, value) in [
            ("AJO client id", &self.client_id),
            ("AJO organization id", &self.org_id),
            ("AJO sandbox name", &self.sandbox_name),
        ] {
            if value.trim().is_empty() {
                return Err(Error::Config(format!("the {what} is empty")));
            }
            if value.chars().any(char::is_control) {
                return Err(Error::Config(format!(
                    "the {what} holds a control character"
                )));
            }
        }
        if self.client_secret.expose().is_empty() {
            return Err(Error::Config("the AJO client secret is empty".into()));
        }
        if let Some((key_type, _)) = self.namespaces.iter().find(|(_, ns)| ns.trim().is_empty()) {
            return Err(Error::Config(format!(
                "the identity namespace of {key_type} is empty"
            )));
        }
        Ok(AjoClient {
            url: format!("{endpoint}{UNITARY_PATH}"),
            audience_url: format!("{endpoint}{AUDIENCE_PATH}"),
            api_key: self.client_id.clone(),
            org_id: self.org_id,
            sandbox_name: self.sandbox_name,
            caller: Caller::new(&self.http),
            tokens: Arc::new(TokenCache::ims(
                &self.ims_token_url,
                self.client_id,
                self.client_secret,
                self.scopes,
                self.renew_margin,
            )),
            namespaces: Arc::new(self.namespaces),
            campaigns: Arc::new(self.campaigns),
        })
    }
}

/// The body of a unitary execution (`imExecutionRequestUnitary`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UnitaryBody<'a> {
    request_id: &'a str,
    campaign_id: &'a str,
    recipients: Vec<Recipient<'a>>,
}

/// An `AEPRecipient`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Recipient<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    user_id: &'a str,
    namespace: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    context: &'a BTreeMap<&'a str, &'a str>,
}

/// The accepted answer: `imExecutionResponse` (an execution) or
/// `ScheduledExecutionResponse` (a schedule).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionAnswer {
    execution_id: Option<String>,
    schedule_id: Option<String>,
}

/// The body of an audience execution (`imExecutionRequestAudience`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AudienceBody<'a> {
    request_id: &'a str,
    campaign_id: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    context: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleAt>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScheduleAt {
    execute_at: String,
}

/// A request resolved for AJO: its campaign and its context (every key's
/// namespace was checked).
struct Resolved<'r> {
    campaign_id: &'r str,
    context: BTreeMap<&'r str, &'r str>,
}

impl AjoClient {
    /// A builder for the OAuth server-to-server credential (client id,
    /// also the `x-api-key`; client secret), the IMS organization
    /// (`x-gw-ims-org-id`, e.g. `12345@AdobeOrg`) and the Experience
    /// Platform sandbox (`x-sandbox-name`, e.g. `prod`).
    pub fn builder(
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        org_id: impl Into<String>,
        sandbox_name: impl Into<String>,
    ) -> AjoClientBuilder {
        AjoClientBuilder {
            endpoint: DEFAULT_ENDPOINT.into(),
            ims_token_url: DEFAULT_IMS_TOKEN_URL.into(),
            scopes: DEFAULT_SCOPES.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            org_id: org_id.into(),
            sandbox_name: sandbox_name.into(),
            renew_margin: Duration::from_secs(600),
            namespaces: BTreeMap::from([(LeadKeyType::Email, "email".to_owned())]),
            campaigns: CampaignMap::new(),
            http: HttpConfig::default(),
        }
    }

    /// The unitary execution URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The identity namespace lead keys of `key_type` are sent in, if any.
    pub fn namespace_of(&self, key_type: LeadKeyType) -> Option<&str> {
        self.namespaces.get(&key_type).map(String::as_str)
    }

    /// The campaign map.
    pub fn campaign_map(&self) -> &CampaignMap {
        &self.campaigns
    }

    /// Checks what AJO can express of `request`: its campaign (mapped),
    /// its tokens (as context) and every key's namespace. Nothing is sent.
    fn resolve<'r>(&'r self, request: &'r CampaignRequest) -> Result<Resolved<'r>, Error> {
        let campaign_id = self.campaigns.resolve(request.target())?;
        let mut unmapped = request
            .leads()
            .iter()
            .enumerate()
            .filter(|(_, key)| self.namespace_of(key.key_type()).is_none());
        if let Some((position, first)) = unmapped.next() {
            let more = unmapped.count();
            return Err(Error::invalid(
                format!("lead key {} ({})", position + 1, first.key_type()),
                format!(
                    "lead key type {} has no identity namespace for Adobe Journey Optimizer{}; map it (AjoClientBuilder::namespace, --namespace TYPE=NAMESPACE) or name the lead by a mapped type ({})",
                    first.key_type(),
                    if more == 0 {
                        String::new()
                    } else {
                        format!(" ({more} more key(s) of unmapped types)")
                    },
                    if self.namespaces.is_empty() {
                        "none is mapped".to_owned()
                    } else {
                        self.namespaces
                            .iter()
                            .map(|(t, ns)| format!("{t} -> {ns}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
        }
        let context = request
            .target()
            .tokens()
            .iter()
            .map(|t| (context_key(t.name()), t.value()))
            .collect();
        Ok(Resolved {
            campaign_id,
            context,
        })
    }

    /// The body of one call: the chunk's keys not already sent in this
    /// request (`sent`), or `None` when none is left.
    fn body(
        &self,
        resolved: &Resolved<'_>,
        request_id: &str,
        leads: &[LeadKey],
        sent: &mut HashSet<(LeadKeyType, String)>,
    ) -> Result<Option<String>, Error> {
        let mut recipients = Vec::with_capacity(leads.len());
        for key in leads {
            // Emails name one person whatever their case (Marketo compares
            // them so): `A@x.com` and `a@x.com` are sent once.
            let identity = match key.key_type() {
                LeadKeyType::Email => key.value().to_ascii_lowercase(),
                _ => key.value().to_owned(),
            };
            if !sent.insert((key.key_type(), identity)) {
                continue;
            }
            let namespace = self.namespace_of(key.key_type()).unwrap_or_default();
            recipients.push(Recipient {
                kind: "aep",
                user_id: key.value(),
                namespace,
                context: &resolved.context,
            });
        }
        if recipients.is_empty() {
            return Ok(None);
        }
        let body = UnitaryBody {
            request_id,
            campaign_id: resolved.campaign_id,
            recipients,
        };
        serde_json::to_string(&body)
            .map(Some)
            .map_err(|e| Error::Config(format!("writing the execution body: {e}")))
    }

    /// The headers of a call, with `bearer` as the Authorization value.
    fn headers<'a>(&'a self, bearer: &'a str, request_id: &'a str) -> [(&'a str, &'a str); 7] {
        [
            ("Authorization", bearer),
            ("x-api-key", &self.api_key),
            ("x-gw-ims-org-id", &self.org_id),
            ("x-sandbox-name", &self.sandbox_name),
            ("x-request-id", request_id),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ]
    }

    /// One execution, paced and repeated as the retry policy allows, with
    /// the same request id each time: its `executionId` (or `scheduleId`).
    fn execute(&self, url: &str, request_id: &str, body: &[u8]) -> Result<String, Error> {
        self.caller
            .with_retries(self, |_| self.execute_once(url, request_id, body))
    }

    /// One execution with the current token; on 401 the token is renewed
    /// and the call made once more (the refused call ran nothing).
    fn execute_once(&self, url: &str, request_id: &str, body: &[u8]) -> Result<String, Error> {
        let mut renewed = false;
        loop {
            let token = self.tokens.get(self.caller.http())?;
            let bearer = format!("Bearer {}", token.expose());
            let response = self
                .caller
                .post(url, &self.headers(&bearer, request_id), body)?;
            if response.status == 401 && !renewed {
                log::debug!("{self}: HTTP 401 for request {request_id}; renewing the token");
                self.tokens.invalidate(&token);
                renewed = true;
                continue;
            }
            // An answer that echoes the token or the client secret (under
            // any name) does not carry them into an error.
            let secrets = [token.expose(), self.tokens.client_secret().expose()];
            return read_answer(&response, &SystemClock, &secrets);
        }
    }

    /// The HTTP requests [`request_campaign`](CampaignRequester::request_campaign)
    /// would send: the IMS token request (secret redacted), then one
    /// execution per chunk of at most [`MAX_RECIPIENTS_PER_CALL`]
    /// recipients (token redacted). The `requestId`s shown are fresh: a
    /// real run draws its own. A request AJO cannot express (an unmapped
    /// campaign or key type) is refused here as it would be when sent.
    ///
    /// ```
    /// use marketo_campaign::ajo::AjoClient;
    /// use marketo_campaign::{CampaignRequest, CampaignTarget, LeadKey};
    /// let client = AjoClient::builder("id", "s3cret", "org@AdobeOrg", "prod").build()?;
    /// let request = CampaignRequest::new(CampaignTarget::ajo("c-1", []), [LeadKey::email("a@b.c")?])?;
    /// let plan = client.plan(&request)?;
    /// assert_eq!(plan.len(), 2);
    /// assert!(plan[0].body.contains("client_secret=[redacted]"));
    /// assert_eq!(plan[1].headers["Authorization"], "Bearer [redacted]");
    /// assert!(plan[1].body.contains(r#""campaignId":"c-1""#));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn plan(&self, request: &CampaignRequest) -> Result<Vec<PlannedRequest>, Error> {
        let resolved = self.resolve(request)?;
        let mut plans = vec![self.tokens.planned()];
        let mut sent = HashSet::new();
        for leads in request.chunks_of(MAX_RECIPIENTS_PER_CALL) {
            let request_id = fresh_request_id();
            let Some(body) = self.body(&resolved, &request_id, leads, &mut sent)? else {
                continue;
            };
            let headers = self
                .headers("Bearer [redacted]", &request_id)
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect();
            plans.push(PlannedRequest {
                method: "POST",
                url: self.url.clone(),
                headers,
                body,
            });
        }
        Ok(plans)
    }
}

/// `{{my.WebinarTitle}}` → `WebinarTitle` (a token name always has this
/// form: [`ProgramToken::new`](crate::ProgramToken::new) checks it).
fn context_key(name: &str) -> &str {
    name.strip_prefix("{{my.")
        .and_then(|rest| rest.strip_suffix("}}"))
        .unwrap_or(name)
}

/// Reads an execution answer: the `executionId` of an accepted call, or the
/// error its status means. A body quoted in an error is redacted, `secrets`
/// removed wherever they appear.
pub(crate) fn read_answer(
    response: &HttpResponse,
    clock: &dyn Clock,
    secrets: &[&str],
) -> Result<String, Error> {
    let status = response.status;
    let quote = || redact::quote_with(&response.body, 512, secrets);
    match status {
        200..=299 => {
            let answer: Option<ExecutionAnswer> = serde_json::from_slice(&response.body).ok();
            let id = answer.and_then(|a| a.execution_id.or(a.schedule_id));
            match id.filter(|id| !id.is_empty()) {
                Some(id) => Ok(id),
                None => Err(Error::Protocol {
                    status,
                    reason: "an accepted answer without an executionId".into(),
                    body: quote(),
                }),
            }
        }
        429 => Err(Error::RateLimited {
            retry_after: response
                .retry_after
                .as_deref()
                .and_then(|value| retry_after(value, clock)),
            body: quote(),
        }),
        // A 404 in the API's own error format: the API is there and the
        // campaign is not (a wrong id). Refused, and not a reason to
        // retire this backend: the same id fails everywhere.
        404 if is_api_error(&response.body, 404) => Err(Error::Lookup(format!(
            "Journey Optimizer answered 404: {}",
            quote()
        ))),
        // 501, or 404 without the API's error body: no such API (as for
        // REST, a refusal another backend may serve).
        400..=499 | 501 => Err(Error::HttpStatus {
            status,
            body: quote(),
        }),
        _ => Err(Error::Protocol {
            status,
            reason: if status >= 500 {
                "a server error after the call was sent".into()
            } else {
                "not an execution answer".into()
            },
            body: quote(),
        }),
    }
}

/// Whether `body` is the API's `errorResponse` for `status` (a JSON object
/// whose `status` is it), rather than a gateway's page.
fn is_api_error(body: &[u8], status: u16) -> bool {
    #[derive(serde::Deserialize)]
    struct ErrorResponse {
        status: Option<u16>,
    }
    serde_json::from_slice::<ErrorResponse>(body).is_ok_and(|e| e.status == Some(status))
}

/// The longest `Retry-After` believed: an hour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A `Retry-After` value: delay-seconds or an HTTP date.
fn retry_after(value: &str, clock: &dyn Clock) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - clock.now();
    Some(wait.to_std().unwrap_or_default().min(MAX_RETRY_AFTER))
}

/// A fresh request id: a random UUID (version 4), from std's randomly
/// keyed hasher and a process-wide counter.
pub(crate) fn fresh_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let (high, low) = crate::random::words(COUNT.fetch_add(1, Ordering::Relaxed));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0x0fff,
        ((low >> 48) & 0x3fff) | 0x8000,
        low & 0xffff_ffff_ffff
    )
}

impl fmt::Display for AjoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ajo({})", self.url)
    }
}

impl AjoClient {
    /// The body of an audience execution for `request`, with `request_id`.
    fn audience_body(&self, request: &ScheduleRequest, request_id: &str) -> Result<String, Error> {
        let campaign_id = self.campaigns.resolve(request.target())?;
        let body = AudienceBody {
            request_id,
            campaign_id,
            context: request
                .tokens()
                .iter()
                .map(|t| (context_key(t.name()), t.value()))
                .collect(),
            schedule: request.run_at().map(|at| ScheduleAt {
                execute_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }),
        };
        serde_json::to_string(&body)
            .map_err(|e| Error::Config(format!("writing the audience body: {e}")))
    }

    /// The HTTP requests [`schedule_campaign`](CampaignScheduler::schedule_campaign)
    /// would send: the IMS token request and the audience execution
    /// (secrets redacted; the `requestId` shown is fresh).
    ///
    /// ```
    /// use marketo_campaign::ajo::AjoClient;
    /// use marketo_campaign::{CampaignTarget, FixedClock, Clock, ScheduleRequest};
    /// let client = AjoClient::builder("id", "s3cret", "org@AdobeOrg", "prod").build()?;
    /// let at = FixedClock::parse("2030-01-01T09:00:00Z")?.now();
    /// let plan = client.plan_schedule(&ScheduleRequest::new(CampaignTarget::ajo("news", []), Some(at))?)?;
    /// assert!(plan[1].url.ends_with("/ajo/im/executions/audience"));
    /// assert!(plan[1].body.contains(r#""schedule":{"executeAt":"2030-01-01T09:00:00.000Z"}"#));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn plan_schedule(&self, request: &ScheduleRequest) -> Result<Vec<PlannedRequest>, Error> {
        let request_id = fresh_request_id();
        let body = self.audience_body(request, &request_id)?;
        let headers = self
            .headers("Bearer [redacted]", &request_id)
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Ok(vec![
            self.tokens.planned(),
            PlannedRequest {
                method: "POST",
                url: self.audience_url.clone(),
                headers,
                body,
            },
        ])
    }
}

impl CampaignScheduler for AjoClient {
    /// An audience execution (`POST /ajo/im/executions/audience`) of the
    /// AJO campaign the target names or maps to, for the audience the
    /// campaign defines in AJO (as a Marketo batch campaign's smart list
    /// does): with `schedule.executeAt` when the request has a run time,
    /// at once otherwise. Tokens become the execution's `context`. The
    /// answer's `scheduleId` (or `executionId`) is [`Scheduled::id`]. AJO
    /// refuses it (HTTP 400, *refused*) for a campaign that is not
    /// audience-based, not live, or a time in the past. Errors are
    /// classified as for executions; an unmapped campaign is refused before
    /// anything is sent.
    fn schedule_campaign(&self, request: &ScheduleRequest) -> Result<Scheduled, Error> {
        let request_id = fresh_request_id();
        let body = self.audience_body(request, &request_id)?;
        let id = self.execute(&self.audience_url, &request_id, body.as_bytes())?;
        Ok(Scheduled {
            backend: "ajo".into(),
            id: Some(id),
        })
    }
}

impl CampaignRequester for AjoClient {
    /// Checks the whole request first (campaign mapped, every key type
    /// mapped to a namespace: otherwise [`Error::InvalidInput`], nothing
    /// sent), then sends one unitary execution per chunk of at most 20
    /// recipients, each with a fresh `requestId`. A key named twice runs
    /// once (emails compared without regard to ASCII case); a chunk left
    /// with no recipient sends nothing and is accepted. AJO does not say which recipients it found: no key is
    /// reported unmatched.
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        let resolved = self.resolve(request)?;
        let mut sent = HashSet::with_capacity(request.leads().len());
        send_in_chunks(request, MAX_RECIPIENTS_PER_CALL, "ajo", |index, leads| {
            let request_id = fresh_request_id();
            let Some(body) = self.body(&resolved, &request_id, leads, &mut sent)? else {
                return Ok(ChunkAccepted::new());
            };
            log::debug!(
                "{self}: execution of {} for chunk {index} ({} keys), request {request_id}",
                resolved.campaign_id,
                leads.len()
            );
            let execution_id = self.execute(&self.url, &request_id, body.as_bytes())?;
            Ok(ChunkAccepted::new().with_execution_id(execution_id))
        })
    }

    /// 20: the schema's `maxItems` for recipients.
    fn max_leads_per_call(&self) -> usize {
        MAX_RECIPIENTS_PER_CALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn answer(status: u16, body: &str, retry: Option<&str>) -> HttpResponse {
        HttpResponse {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: retry.map(str::to_owned),
        }
    }

    #[test]
    fn answers_are_classified() {
        let clock = FixedClock::parse("2026-11-25T15:00:00Z").unwrap();
        let ok = answer(202, r#"{"executionId":"HUMA-1","requestId":"r"}"#, None);
        assert_eq!(read_answer(&ok, &clock, &[]).unwrap(), "HUMA-1");
        let err = read_answer(&answer(202, "{}", None), &clock, &[]).unwrap_err();
        assert_eq!(err.delivery(), crate::Delivery::Unknown);
        for status in [400, 401, 403, 404] {
            let err = read_answer(&answer(status, "{}", None), &clock, &[]).unwrap_err();
            assert_eq!(err.delivery(), crate::Delivery::Refused, "{status}");
        }
        // A bare 404: no such API, another backend may serve it. The API's
        // own 404 (an unknown campaign): refused, and no reason to retire
        // Journey Optimizer.
        let gone = read_answer(&answer(404, "<html>Not Found</html>", None), &clock, &[]);
        assert_eq!(gone.unwrap_err().classify().action, crate::Action::FallBack);
        let unknown_campaign = read_answer(
            &answer(
                404,
                r#"{"type":"https://ns.adobe.com/aep/errors/MSG-000404-404","title":"Campaign not found","status":404,"report":{"additionalContext":{}}}"#,
                None,
            ),
            &clock,
            &[],
        )
        .unwrap_err();
        let class = unknown_campaign.classify();
        assert_eq!(
            (class.delivery, class.action),
            (crate::Delivery::Refused, crate::Action::Stop)
        );
        assert!(unknown_campaign.to_string().contains("Campaign not found"));
        let err = read_answer(&answer(429, "", Some("7")), &clock, &[]).unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(err.classify().action, crate::Action::Retry);
        let err = read_answer(
            &answer(429, "", Some("Wed, 25 Nov 2026 15:00:30 GMT")),
            &clock,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
        let err = read_answer(&answer(429, "", Some("soon")), &clock, &[]).unwrap_err();
        assert_eq!(err.retry_after(), None);
        // Secrets are removed from a quoted body, under any name.
        let err = read_answer(
            &answer(400, r#"{"x":"tok-9 and s3cret"}"#, None),
            &clock,
            &["tok-9", "s3cret"],
        )
        .unwrap_err();
        assert!(
            !err.to_string().contains("tok-9") && !err.to_string().contains("s3cret"),
            "{err}"
        );
        for status in [500, 502, 503, 504, 302] {
            let err = read_answer(&answer(status, "", None), &clock, &[]).unwrap_err();
            assert_eq!(err.delivery(), crate::Delivery::Unknown, "{status}");
        }
        let err = read_answer(&answer(501, "", None), &clock, &[]).unwrap_err();
        assert_eq!(err.classify().action, crate::Action::FallBack);
    }

    #[test]
    fn request_ids_are_fresh_uuids() {
        let ids: HashSet<String> = (0..1000).map(|_| fresh_request_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'), "{id}");
        }
    }

    #[test]
    fn token_names_become_context_keys() {
        assert_eq!(context_key("{{my.WebinarTitle}}"), "WebinarTitle");
        assert_eq!(context_key("{{my.Join Link}}"), "Join Link");
    }
}
