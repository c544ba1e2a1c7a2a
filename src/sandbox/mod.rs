//! An offline Marketo on loopback, for tests, examples and users.
//!
//! The sandbox speaks Marketo's SOAP API at `/soap/mktows/2_9` and checks
//! what Marketo checks: the envelope's shape (schema order, unqualified
//! children), the `SOAPAction`, the HMAC-SHA1 signature (fault 20014), the
//! timestamp's age (fault 20016), the parameter rules (20110), unknown or
//! batch campaigns (20113) and unknown leads (20103). Like Marketo, it
//! silently ignores lead keys past the 100th. It also serves
//! `scheduleCampaign`.
//!
//! It speaks Marketo's REST API under [`Sandbox::rest_endpoint`] and its
//! identity service under [`Sandbox::identity_endpoint`]:
//!
//! - `GET` or `POST /identity/oauth/token?grant_type=client_credentials&client_id=..&client_secret=..`
//!   issues a bearer token; while it is valid, asking again returns the same
//!   token with its remaining life.
//! - `GET /rest/v1/campaigns.json`, `GET /rest/v1/leads.json`,
//!   `POST /rest/v1/campaigns/{id}/trigger.json` and
//!   `POST /rest/v1/campaigns/{id}/schedule.json`, each checking the
//!   `Authorization: Bearer` token (601, 602), the rate limit (606), the
//!   concurrency limit (615) and the parameter rules (609, 612, 1003, 1004,
//!   1013). Unlike SOAP, REST refuses more than 100 leads rather than
//!   ignoring the excess.
//!
//! SOAP calls have their own rate and concurrency limits (faults 20023 and
//! 20024). The SOAP endpoint can be retired, to rehearse Marketo's removal
//! of SOAP: it then answers every request with HTTP 404 or 410 and runs
//! nothing ([`SandboxConfig::soap_retired`], [`Sandbox::retire_soap`]).
//!
//! Every campaign run is journaled; read the journal with
//! [`Sandbox::journal`] or `GET /sandbox/journal`.
//!
//! Administration over HTTP (no credentials, loopback only):
//!
//! | Request | Effect |
//! |---|---|
//! | `GET /sandbox/journal` | the journal as a JSON array |
//! | `DELETE /sandbox/journal` | empties the journal |
//! | `POST /sandbox/soap/retire?status=410` | retires SOAP (status 404 or 410; default 410) |
//! | `POST /sandbox/soap/restore` | brings SOAP back |
//! | `POST /sandbox/tokens/expire` | expires every issued REST token |
//!
//! ```
//! use marketo_campaign::sandbox::Sandbox;
//! let sandbox = Sandbox::start()?;
//! assert!(sandbox.soap_endpoint().starts_with("http://127.0.0.1:"));
//! assert_eq!(sandbox.identity_endpoint(), format!("{}/identity", sandbox.rest_endpoint()));
//! assert!(sandbox.journal().is_empty());
//! # Ok::<(), marketo_campaign::Error>(())
//! ```

mod data;
mod identity;
mod journal;
mod leads;
mod limits;
mod query;
mod rest;
mod soap;
mod xml;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use data::{SandboxCampaign, SandboxData, SandboxLead};
pub use journal::{JournalEntry, JournalToken};

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::request::LeadKeyType;
use crate::rest::{RestClient, RestClientBuilder};
use crate::soap::{SoapClient, SoapClientBuilder};
use identity::Tokens;
use journal::Journal;
use leads::LeadIndex;
use limits::Limiter;
use query::Params;

/// The SOAP endpoint's path, as on a real instance.
pub const SOAP_PATH: &str = "/soap/mktows/2_9";
/// The journal's path.
pub const JOURNAL_PATH: &str = "/sandbox/journal";
/// The identity service's path under the base URL.
pub const IDENTITY_PATH: &str = "/identity";
/// `POST` here (`?status=404` or `410`, default 410) retires the SOAP endpoint.
pub const SOAP_RETIRE_PATH: &str = "/sandbox/soap/retire";
/// `POST` here brings the SOAP endpoint back.
pub const SOAP_RESTORE_PATH: &str = "/sandbox/soap/restore";
/// `POST` here expires every REST access token issued so far.
pub const EXPIRE_TOKENS_PATH: &str = "/sandbox/tokens/expire";
/// Longest request target (path and query) the sandbox reads; longer ones
/// get HTTP 414, as Marketo's front end answers.
const MAX_URI_BYTES: usize = 8192;
/// Largest request body the sandbox reads.
const MAX_REQUEST_BYTES: u64 = 4 * 1024 * 1024;
/// Requests served at once (Marketo allows 10 concurrent calls; more workers
/// let the sandbox see and refuse the excess).
const WORKERS: usize = 16;

/// How to start a sandbox. Every field has a default.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    listen: SocketAddr,
    data: SandboxData,
    clock: Arc<dyn Clock>,
    max_clock_skew: Duration,
    token_lifetime: Duration,
    rate_calls: u32,
    rate_window: Duration,
    max_concurrent: usize,
    latency: Duration,
    soap_retired: Option<u16>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: SandboxData::default(),
            clock: Arc::new(SystemClock),
            max_clock_skew: Duration::from_secs(15 * 60),
            token_lifetime: Duration::from_secs(3600),
            rate_calls: 100,
            rate_window: Duration::from_secs(20),
            max_concurrent: 10,
            latency: Duration::ZERO,
            soap_retired: None,
        }
    }
}

impl SandboxConfig {
    /// Defaults: listen on `127.0.0.1:0` (a free port), the default
    /// [`SandboxData`], the system clock, 15 minutes of allowed clock skew,
    /// REST tokens living 3600 s, 100 calls per 20 s and 10 concurrent calls
    /// per API, no added latency, SOAP in service.
    ///
    /// ```
    /// use std::time::Duration;
    /// use marketo_campaign::sandbox::{Sandbox, SandboxConfig};
    /// let sandbox = Sandbox::start_with(
    ///     SandboxConfig::new()
    ///         .token_lifetime(Duration::from_secs(60))
    ///         .rate_limit(5, Duration::from_secs(2))
    ///         .max_concurrent(2)
    ///         .latency(Duration::from_millis(10))
    ///         .soap_retired(Some(410)),
    /// )?;
    /// assert!(sandbox.rest_endpoint().starts_with("http://127.0.0.1:"));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn new() -> Self {
        SandboxConfig::default()
    }

    /// The address to listen on. Default: `127.0.0.1:0`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The campaigns, leads and credentials. Default: [`SandboxData::default`].
    pub fn data(mut self, data: SandboxData) -> Self {
        self.data = data;
        self
    }

    /// The clock the sandbox checks timestamps against. Default: the system clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How far a `requestTimestamp` may be from the sandbox's clock before
    /// the request is refused with 20016. Default: 15 minutes.
    pub fn max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// How long a REST access token lives. Default: 3600 s, as on Marketo.
    /// Expiry is measured on the sandbox's [`clock`](SandboxConfig::clock).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// At most `calls` admitted calls in any sliding `window`, counted
    /// separately for REST (beyond: error 606) and SOAP (beyond: fault
    /// 20023). Identity calls do not count. Default: 100 calls per 20 s, as
    /// on Marketo.
    pub fn rate_limit(mut self, calls: u32, window: Duration) -> Self {
        self.rate_calls = calls;
        self.rate_window = window;
        self
    }

    /// At most this many calls in flight at once, counted separately for
    /// REST (beyond: error 615) and SOAP (beyond: fault 20024). Default: 10,
    /// as on Marketo. The sandbox serves 16 requests at once, so limits
    /// above 15 cannot be reached.
    pub fn max_concurrent(mut self, calls: usize) -> Self {
        self.max_concurrent = calls;
        self
    }

    /// An artificial delay inside every REST API call and SOAP call, after
    /// the checks that admit it and while it counts as in flight, so that
    /// concurrency can be observed. Default: zero.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// `Some(404)` or `Some(410)`: the SOAP endpoint answers every request
    /// with that HTTP status and a short `text/plain` body, and runs
    /// nothing, as after Marketo's removal of SOAP. Other statuses from 400
    /// to 599 are used as given; anything else is answered as 410. Default:
    /// `None`, SOAP in service. Change it at run time with
    /// [`Sandbox::retire_soap`].
    pub fn soap_retired(mut self, status: Option<u16>) -> Self {
        self.soap_retired = status;
        self
    }
}

/// What the server threads share.
#[derive(Debug)]
pub(crate) struct State {
    data: SandboxData,
    leads: LeadIndex,
    program_ids: HashMap<String, u32>,
    journal: Journal,
    clock: Arc<dyn Clock>,
    max_clock_skew: chrono::Duration,
    tokens: Tokens,
    rest_limits: Limiter,
    soap_limits: Limiter,
    latency: Duration,
    /// The HTTP status the retired SOAP endpoint answers; 0 in service.
    soap_retired: AtomicU16,
    request_prefix: u16,
    request_count: AtomicU64,
}

impl State {
    fn new(config: SandboxConfig) -> Self {
        let mut program_ids = HashMap::new();
        for campaign in &config.data.campaigns {
            let next =
                u32::try_from(program_ids.len()).map_or(u32::MAX, |n| n.saturating_add(1001));
            program_ids.entry(campaign.program.clone()).or_insert(next);
        }
        let limiter = || Limiter::new(config.rate_calls, config.rate_window, config.max_concurrent);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(0);
        State {
            leads: LeadIndex::new(&config.data.leads),
            program_ids,
            journal: Journal::default(),
            clock: config.clock,
            max_clock_skew: chrono::Duration::from_std(config.max_clock_skew)
                .unwrap_or(chrono::Duration::MAX),
            tokens: Tokens::new(config.token_lifetime),
            rest_limits: limiter(),
            soap_limits: limiter(),
            latency: config.latency,
            soap_retired: AtomicU16::new(retired_status(config.soap_retired)),
            // Truncation intended: four hex digits, as Marketo's request ids.
            request_prefix: hasher.finish() as u16,
            request_count: AtomicU64::new(0),
            data: config.data,
        }
    }

    /// The id of the lead answering to `key_type:value`, if any (the first
    /// one in data order when several do).
    pub(crate) fn find_lead(&self, key_type: LeadKeyType, value: &str) -> Option<u32> {
        self.leads.find_first(key_type, value)
    }

    /// Lead `id`.
    pub(crate) fn lead(&self, id: u32) -> Option<&SandboxLead> {
        self.leads
            .position(id)
            .and_then(|position| self.data.leads.get(position))
    }

    /// The synthetic id of a program, numbered from 1001 in order of first
    /// appearance.
    pub(crate) fn program_id(&self, program: &str) -> u32 {
        self.program_ids.get(program).copied().unwrap_or_default()
    }

    /// A fresh REST `requestId`, `<hex>#<sequence>`.
    pub(crate) fn next_request_id(&self) -> String {
        let count = self.request_count.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{:04x}#{count}", self.request_prefix)
    }

    /// The configured latency of an admitted call.
    pub(crate) fn pause(&self) {
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
    }

    fn soap_retired(&self) -> Option<u16> {
        match self.soap_retired.load(Ordering::SeqCst) {
            0 => None,
            status => Some(status),
        }
    }

    fn retire_soap(&self, status: Option<u16>) {
        self.soap_retired
            .store(retired_status(status), Ordering::SeqCst);
    }
}

/// The status a retired SOAP endpoint answers (0: in service).
fn retired_status(status: Option<u16>) -> u16 {
    match status {
        None => 0,
        Some(status @ 400..=599) => status,
        Some(_) => 410,
    }
}

/// A running sandbox. It stops when dropped.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts a sandbox with the default configuration on a free loopback port.
    pub fn start() -> Result<Sandbox, Error> {
        Sandbox::start_with(SandboxConfig::default())
    }

    /// Starts a sandbox.
    pub fn start_with(config: SandboxConfig) -> Result<Sandbox, Error> {
        let server = tiny_http::Server::http(config.listen).map_err(|e| {
            Error::Config(format!("sandbox cannot listen on {}: {e}", config.listen))
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::Config("sandbox is not listening on an IP address".into()))?;
        let server = Arc::new(server);
        let state = Arc::new(State::new(config));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..WORKERS)
            .map(|i| {
                let (server, state, stop) = (server.clone(), state.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("sandbox-{i}"))
                    .spawn(move || serve(&server, &state, &stop))
                    .map_err(|e| Error::Config(format!("sandbox cannot start a thread: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sandbox {
            addr,
            state,
            stop,
            workers,
        })
    }

    /// The address the sandbox listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The SOAP endpoint, `http://127.0.0.1:PORT/soap/mktows/2_9`.
    pub fn soap_endpoint(&self) -> String {
        format!("{}{SOAP_PATH}", self.base_url())
    }

    /// The SOAP user id the sandbox accepts.
    pub fn soap_user_id(&self) -> &str {
        &self.state.data.soap_user_id
    }

    /// The SOAP encryption key (a sandbox credential, not a secret).
    pub fn soap_encryption_key(&self) -> &str {
        &self.state.data.soap_encryption_key
    }

    /// A [`SoapClient`] builder for this sandbox, credentials filled in.
    pub fn soap_client_builder(&self) -> SoapClientBuilder {
        SoapClient::builder(
            self.soap_endpoint(),
            self.soap_user_id(),
            self.soap_encryption_key(),
        )
    }

    /// A [`SoapClient`] for this sandbox.
    pub fn soap_client(&self) -> Result<SoapClient, Error> {
        self.soap_client_builder().build()
    }

    /// A [`RestClient`] builder for this sandbox, endpoints and credentials
    /// filled in.
    pub fn rest_client_builder(&self) -> RestClientBuilder {
        RestClient::builder(self.rest_endpoint(), self.client_id(), self.client_secret())
            .identity(self.identity_endpoint())
    }

    /// A [`RestClient`] for this sandbox.
    pub fn rest_client(&self) -> Result<RestClient, Error> {
        self.rest_client_builder().build()
    }

    /// The REST base URL, `http://127.0.0.1:PORT`; the API lives under
    /// `/rest/v1/`.
    pub fn rest_endpoint(&self) -> String {
        self.base_url()
    }

    /// The identity service, `http://127.0.0.1:PORT/identity`; tokens come
    /// from `/oauth/token` under it.
    pub fn identity_endpoint(&self) -> String {
        format!("{}{IDENTITY_PATH}", self.base_url())
    }

    /// The REST client id the identity service accepts.
    pub fn client_id(&self) -> &str {
        &self.state.data.client_id
    }

    /// The REST client secret (a sandbox credential, not a secret).
    pub fn client_secret(&self) -> &str {
        &self.state.data.client_secret
    }

    /// Retires the SOAP endpoint (`Some(404)` or `Some(410)`) or brings it
    /// back (`None`); see [`SandboxConfig::soap_retired`].
    pub fn retire_soap(&self, status: Option<u16>) {
        self.state.retire_soap(status);
    }

    /// Expires every REST access token issued so far: the next API call with
    /// one gets error 602, and the identity service issues a new token.
    pub fn expire_tokens(&self) {
        self.state.tokens.expire_all();
    }

    /// Every campaign run so far, in order.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.state.journal.entries()
    }

    /// Empties the journal.
    pub fn clear_journal(&self) {
        self.state.journal.clear();
    }

    /// The one-line JSON the CLI prints on start: endpoints and credentials.
    pub fn startup_line(&self) -> String {
        serde_json::json!({
            "soap_endpoint": self.soap_endpoint(),
            "soap_user_id": self.soap_user_id(),
            "soap_encryption_key": self.soap_encryption_key(),
            "rest_endpoint": self.rest_endpoint(),
            "identity_endpoint": self.identity_endpoint(),
            "client_id": self.client_id(),
            "client_secret": self.client_secret(),
            "journal": format!("{}{JOURNAL_PATH}", self.base_url()),
        })
        .to_string()
    }

    /// Blocks until the process is stopped (for `marketo-campaign sandbox`).
    pub fn wait(self) {
        loop {
            std::thread::park();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// Runs the SOAP endpoint's reader and rules on `body` against a default
/// sandbox's data (for fuzz targets): the status it would answer.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_soap(body: &[u8]) -> u16 {
    static STATE: std::sync::OnceLock<State> = std::sync::OnceLock::new();
    let state = STATE.get_or_init(|| State::new(SandboxConfig::default()));
    soap::handle(state, Some(crate::soap::SOAP_ACTION_REQUEST_CAMPAIGN), body).0
}

fn serve(server: &tiny_http::Server, state: &State, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(50)) {
            Ok(Some(request)) => handle(state, request),
            Ok(None) => {}
            Err(e) => log::debug!("sandbox accept error: {e}"),
        }
    }
}

fn header(request: &tiny_http::Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_owned())
}

fn respond(request: tiny_http::Request, status: u16, content_type: &str, body: String) {
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", content_type) {
        response = response.with_header(header);
    }
    if let Err(e) = request.respond(response) {
        log::debug!("sandbox could not answer: {e}");
    }
}

/// Reads a request body, at most [`MAX_REQUEST_BYTES`]; `None` when it is
/// larger or cannot be read.
fn read_body(request: &mut tiny_http::Request) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut body);
    (read.is_ok() && body.len() as u64 <= MAX_REQUEST_BYTES).then_some(body)
}

/// What a retired SOAP endpoint says.
fn retired_text(status: u16) -> String {
    match status {
        404 => "Not Found: this instance has no SOAP API; use the REST API".into(),
        410 => "Gone: Marketo's SOAP API has been removed; use the REST API".into(),
        other => format!("SOAP API unavailable (HTTP {other}); use the REST API"),
    }
}

fn handle(state: &State, mut request: tiny_http::Request) {
    let method = request.method().as_str().to_owned();
    let url = request.url().to_owned();
    if url.len() > MAX_URI_BYTES {
        return respond(request, 414, "text/plain", "URI Too Long".into());
    }
    let path = url.split('?').next().unwrap_or_default();
    if path == SOAP_PATH {
        if let Some(status) = state.soap_retired() {
            return respond(request, status, "text/plain", retired_text(status));
        }
    }
    match (method.as_str(), path) {
        ("POST", SOAP_PATH) => {
            let Some(body) = read_body(&mut request) else {
                return respond(request, 413, "text/plain", "request too large".into());
            };
            let content_type = header(&request, "Content-Type").unwrap_or_default();
            if !content_type.to_ascii_lowercase().starts_with("text/xml") {
                return respond(
                    request,
                    415,
                    "text/plain",
                    "SOAP 1.1 requests are text/xml".into(),
                );
            }
            let action = header(&request, "SOAPAction");
            let (status, body) = soap::handle(state, action.as_deref(), &body);
            respond(request, status, "text/xml; charset=utf-8", body);
        }
        ("GET" | "POST", identity::TOKEN_PATH) => {
            let mut params = Params::from_url(&url);
            if method == "POST" {
                let Some(body) = read_body(&mut request) else {
                    return respond(request, 413, "text/plain", "request too large".into());
                };
                let form = header(&request, "Content-Type").is_some_and(|t| {
                    t.to_ascii_lowercase()
                        .starts_with("application/x-www-form-urlencoded")
                });
                if form {
                    params.extend(&String::from_utf8_lossy(&body));
                }
            }
            let (status, body) = identity::handle(state, &params);
            respond(request, status, rest::JSON, body);
        }
        (_, p) if p.starts_with(rest::REST_PREFIX) => {
            let body = if method == "POST" {
                match read_body(&mut request) {
                    Some(body) => body,
                    None => return respond(request, 413, "text/plain", "request too large".into()),
                }
            } else {
                Vec::new()
            };
            let authorization = header(&request, "Authorization");
            let content_type = header(&request, "Content-Type");
            let rest_request = rest::RestRequest {
                method: &method,
                url: &url,
                authorization: authorization.as_deref(),
                content_type: content_type.as_deref(),
                body: &body,
            };
            let (status, content_type, body) = rest::handle(state, &rest_request);
            respond(request, status, content_type, body);
        }
        ("GET", JOURNAL_PATH) => {
            let json = serde_json::to_string(&state.journal.entries())
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
            respond(request, 200, "application/json", json);
        }
        ("DELETE", JOURNAL_PATH) => {
            state.journal.clear();
            respond(request, 204, "text/plain", String::new());
        }
        ("POST", SOAP_RETIRE_PATH) => {
            let params = Params::from_url(&url);
            match params.get("status").map(str::parse::<u16>) {
                None => state.retire_soap(Some(410)),
                Some(Ok(status @ 400..=599)) => state.retire_soap(Some(status)),
                Some(_) => {
                    return respond(
                        request,
                        400,
                        "text/plain",
                        "status must be an HTTP status from 400 to 599, e.g. 404 or 410".into(),
                    )
                }
            }
            respond(request, 204, "text/plain", String::new());
        }
        ("POST", SOAP_RESTORE_PATH) => {
            state.retire_soap(None);
            respond(request, 204, "text/plain", String::new());
        }
        ("POST", EXPIRE_TOKENS_PATH) => {
            state.tokens.expire_all();
            respond(request, 204, "text/plain", String::new());
        }
        _ => respond(request, 404, "text/plain", "Not Found".into()),
    }
}
