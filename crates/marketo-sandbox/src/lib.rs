//! An offline Marketo on loopback, for tests, examples and users.
//!
//! `marketo-sandbox` is the workspace member for the test double: put it in
//! your dev-dependencies the way you would wiremock. It depends on the
//! client library `marketo-campaign` through its public API only (the
//! request model, the SOAP codec and authenticator, the clients its
//! `*_client()` helpers build), never on the bridge or the command line.
//!
//! The sandbox speaks Marketo's SOAP API at `/soap/mktows/2_9` and checks
//! what Marketo checks: the envelope's shape (schema order, unqualified
//! children), the `SOAPAction`, the HMAC-SHA1 signature (fault 20014), the
//! timestamp's age (fault 20016), the parameter rules (20110), unknown or
//! batch campaigns (20113) and unknown leads (20103). Like Marketo, it
//! silently ignores lead keys past the 100th. It also serves
//! `scheduleCampaign`, and the WSDL at `/soap/mktows/2_9?WSDL` (any case;
//! its `soap:address` names the sandbox, from the request's `Host`), so
//! that WSDL-driven clients find it.
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
//! - A lead database: `GET /rest/v1/leads/describe.json` (REST and SOAP
//!   names, data types), `POST /rest/v1/leads.json` (createOnly,
//!   updateOnly, createOrUpdate, createDuplicate by a `lookupField`; skipped
//!   records with Marketo's reasons), `GET /rest/v1/lead/{id}.json`,
//!   `POST /rest/v1/leads/{id}/associate.json`; static lists
//!   (`GET lists.json`, `POST`/`DELETE lists/{id}/leads.json`,
//!   `GET lists/{id}/leads/ismember.json`); activities recorded by what
//!   happens (New Lead, Change Data Value, Add to / Remove from List,
//!   Request Campaign) with `activities/types.json`, `pagingtoken.json` and
//!   `activities.json`. [`Sandbox::lead`] and [`Sandbox::lead_changes`]
//!   show what writes did.
//!
//! It speaks Adobe Journey Optimizer's Interactive Message Execution API
//! under [`Sandbox::ajo_endpoint`], and Adobe IMS at
//! [`Sandbox::ims_token_url`] (see [`Sandbox::ajo_client_builder`]):
//!
//! - `POST /ims/token/v3` (form: `grant_type=client_credentials`,
//!   `client_id`, `client_secret`, `scope`) issues a bearer token.
//! - `POST /ajo/im/executions/unitary` checks the bearer token (401), the
//!   `x-api-key`, `x-gw-ims-org-id` and `x-sandbox-name` (403 when wrong;
//!   400 when missing, as is a missing `x-request-id`), the rate and
//!   concurrency limits (429 with `Retry-After`), the body against the
//!   crate's copy of the schema (`spec/ajo-messaging.json`: required
//!   fields, 1 to 20 recipients, recipient `type`; 400), the campaign
//!   (unknown: 404; outside its start and end dates: 400), then journals
//!   the execution (`api: "ajo"`, [`JournalEntry::ajo`]) and answers 202
//!   with its `executionId`.
//! - `POST /ajo/im/executions/audience` makes the same checks against the
//!   audience schema, refuses (400) a campaign that is not audience-based
//!   or a `schedule.executeAt` in the past, journals the execution with
//!   `run_at` and answers 202 with a `scheduleId` (or an `executionId`
//!   when it runs at once).
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
//! | `POST /sandbox/faults` | adds a [`FaultRule`] (JSON, or an array of them; a bare [`Fault`] strikes every call) |
//! | `GET /sandbox/faults` | the rules in force |
//! | `DELETE /sandbox/faults` | removes every rule and ends any refusal |
//! | `GET /sandbox/faults/log` | the [`FaultEvent`]s so far |
//! | `DELETE /sandbox/faults/log` | empties the fault log |
//! | `GET /sandbox/webhooks` | the [`WebhookCall`]s campaign flows made, as a JSON array |
//! | `DELETE /sandbox/webhooks` | empties that list |
//! | any method, `/sandbox/echo` | a webhook receiver: answers 200 with what it received |
//!
//! # Campaign flows
//!
//! A campaign of the data may have flow steps ([`SandboxCampaign::flow`]):
//! [`FlowStep::CallWebhook`] names a webhook of [`SandboxData::webhooks`].
//! Each time a trigger campaign runs (by SOAP, REST, and so the bridge),
//! once the API call is answered, a background thread calls each webhook
//! for each lead, in order, rendered as [`marketo_campaign::webhook`] says, with
//! Marketo's 30-second timeout ([`SandboxConfig::webhook_timeout`]);
//! response mappings update the lead's fields on 2xx answers only (a later
//! `leads.json?fields=…` shows them, and later webhooks' tokens use them).
//! Every call is journaled as a [`WebhookCall`] ([`Sandbox::webhook_calls`],
//! `GET /sandbox/webhooks`); [`Sandbox::wait_for_flows`] waits for them.
//! Batch campaigns with a Call Webhook step are refused at start.
//!
//! ```
//! use marketo_sandbox::Sandbox;
//! let sandbox = Sandbox::start()?;
//! assert!(sandbox.soap_endpoint().starts_with("http://127.0.0.1:"));
//! assert_eq!(sandbox.identity_endpoint(), format!("{}/identity", sandbox.rest_endpoint()));
//! assert!(sandbox.journal().is_empty());
//! # Ok::<(), marketo_campaign::Error>(())
//! ```
//!
//! # Faults
//!
//! The sandbox can misbehave on purpose, to test what a client does when
//! the network or Marketo fails. A [`FaultRule`] says which [`Fault`]
//! strikes which calls: those of one [`Api`], on the Nth matching call, on
//! every Nth, or on all, at most a number of times. Set rules at start
//! ([`SandboxConfig::faults`]), at run time ([`Sandbox::inject`],
//! [`Sandbox::clear_faults`]) or over HTTP (`/sandbox/faults`). Every fault
//! that strikes is logged as a [`FaultEvent`] ([`Sandbox::fault_log`],
//! `GET /sandbox/faults/log`) that says whether the campaign ran, that is
//! whether the call wrote a journal entry.
//!
//! | Fault | The call runs | What the client sees |
//! |---|---|---|
//! | [`RefuseConnections`](Fault::RefuseConnections) | no | connection refused: the port stops listening |
//! | [`ResetAfterRequest`](Fault::ResetAfterRequest) | no | the connection closes after the request, unanswered |
//! | [`ResetMidResponse`](Fault::ResetMidResponse) | yes | status, headers and half the body, then the connection closes |
//! | [`Delay`](Fault::Delay) | yes | the normal answer, late (a client with a shorter timeout gives up) |
//! | [`HttpStatus`](Fault::HttpStatus) | as set; default no | that status (400 to 599), with a short HTML body or an empty one |
//! | [`MalformedBody`](Fault::MalformedBody) | yes | the normal status, a complete but not well-formed XML or JSON body |
//! | [`TruncatedBody`](Fault::TruncatedBody) | yes | the normal status, the first half of the body, correctly framed |
//! | [`EmptyOk`](Fault::EmptyOk) | yes | HTTP 200 with an empty body |
//! | [`SoapFault`](Fault::SoapFault) | no | a SOAP fault (HTTP 500) with that code; SOAP calls only |
//! | [`RestError`](Fault::RestError) | no | HTTP 200, `success:false` with that code; REST API calls only |
//! | [`Answer`](Fault::Answer) | as set; default no | that status (200 to 599) with an empty, text, nginx HTML, SOAP fault or REST error body |
//! | [`Cut`](Fault::Cut) | as set; default no | no answer, half a body then the connection closes, or half a body correctly framed |
//! | [`Stall`](Fault::Stall) | no | nothing for a while, then the connection closes unanswered |
//!
//! "Runs" means the call goes through the sandbox's usual checks and, if
//! they pass, runs and is journaled; then the fault spoils the answer. A
//! fault that does not run answers (or drops) the call unexamined: nothing
//! is checked, counted toward the limits, or journaled.
//!
//! Calls are counted per API, from 1 since start: SOAP (`/soap/mktows/2_9`;
//! a `?WSDL` fetch is not a call and is never faulted), REST (everything
//! under `/rest/`), AJO (everything under `/ajo/`) and identity
//! (`/identity/oauth/token` and IMS's `/ims/token/v3`).
//! Rules for [`Api::Any`] match SOAP, REST and AJO calls; identity calls are
//! faulted only by rules for [`Api::Identity`]. A rule can also keep to one
//! HTTP method or path prefix ([`FaultRule::method`],
//! [`FaultRule::path_prefix`]), e.g. only the REST look-ups. The
//! `/sandbox/...` endpoints are never faulted.
//!
//! ```
//! use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig};
//! use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, Delivery};
//!
//! // The first SOAP call runs, but its answer is cut off mid-body.
//! let sandbox = Sandbox::start_with(
//!     SandboxConfig::new().faults([FaultRule::on_call(Fault::ResetMidResponse, 1).api(Api::Soap)]),
//! )?;
//! let request = CampaignRequest::new(CampaignTarget::id(4496), ["EMAIL:lead@company.com".parse()?])?;
//! let err = sandbox.soap_client()?.request_campaign(&request).unwrap_err();
//! assert_eq!(err.delivery(), Delivery::Unknown);
//! assert_eq!(sandbox.journal().len(), 1);
//! let log = sandbox.fault_log();
//! assert_eq!((log[0].api, log[0].call, log[0].ran), (Api::Soap, 1, true));
//!
//! // From now on SOAP and REST API calls get a 503 without running.
//! sandbox.inject(FaultRule::always(Fault::HttpStatus { status: 503, body: true, runs: false }))?;
//! sandbox.clear_faults();
//! # Ok::<(), marketo_campaign::Error>(())
//! ```
//!
//! The sandbox serves HTTP/1.1 itself (keep-alive, pipelining,
//! `Content-Length` and chunked request bodies, `Expect: 100-continue`), so
//! that faults can act below HTTP. SOAP can have a port of its own
//! ([`SandboxConfig::soap_listen`]) so that a refusal takes SOAP down alone.

#![deny(missing_docs)]

mod ajo;
mod data;
mod faults;
mod flows;
mod http;
mod identity;
mod journal;
mod lead_db;
mod leads;
mod limits;
mod net;
mod query;
mod rest;
mod soap;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use data::{
    SandboxAjo, SandboxAjoCampaign, SandboxCampaign, SandboxData, SandboxLead, SandboxList,
};
pub use faults::{Api, CutAt, Fault, FaultBody, FaultEvent, FaultRule, Schedule};
pub use flows::{FlowStep, WebhookCall};
pub use journal::{AjoExecution, AjoRecipient, JournalEntry, JournalToken};
pub use lead_db::LeadChange;

use faults::Faults;
use http::{Answer, Head};
use identity::Tokens;
use journal::Journal;
use lead_db::LeadDb;
use limits::Limiter;
use marketo_campaign::rest::{RestClient, RestClientBuilder};
use marketo_campaign::soap::{SoapClient, SoapClientBuilder};
use marketo_campaign::Error;
use marketo_campaign::LeadKeyType;
use marketo_campaign::{Clock, SystemClock};
use net::Net;
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
/// `POST` a [`FaultRule`] here (JSON) to add it, `GET` the rules in force,
/// `DELETE` to remove them all.
pub const FAULTS_PATH: &str = "/sandbox/faults";
/// `GET` the [`FaultEvent`]s here, `DELETE` to empty the log.
pub const FAULT_LOG_PATH: &str = "/sandbox/faults/log";
/// `GET` the [`WebhookCall`]s of campaign flows here, `DELETE` to empty the list.
pub const WEBHOOKS_PATH: &str = "/sandbox/webhooks";
/// A webhook receiver in the sandbox: any method; answers 200 with a JSON
/// object of what it received (`method`, `target`, `content_type`, `body`,
/// `bytes`). Sandbox webhooks reach it as `"url": "/sandbox/echo…"`.
pub const ECHO_PATH: &str = "/sandbox/echo";
/// Longest request target (path and query) the sandbox reads; longer ones
/// get HTTP 414, as Marketo's front end answers.
const MAX_URI_BYTES: usize = 8192;
/// Largest request body the sandbox reads; larger ones get HTTP 413.
const MAX_REQUEST_BYTES: u64 = 4 * 1024 * 1024;

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
    soap_listen: Option<SocketAddr>,
    allow_non_loopback: bool,
    faults: Vec<FaultRule>,
    webhook_timeout: Duration,
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
            soap_listen: None,
            allow_non_loopback: false,
            faults: Vec::new(),
            webhook_timeout: marketo_campaign::webhook::MARKETO_TIMEOUT,
        }
    }
}

impl SandboxConfig {
    /// Defaults: listen on `127.0.0.1:0` (a free port), the default
    /// [`SandboxData`], the system clock, 15 minutes of allowed clock skew,
    /// REST tokens living 3600 s, 100 calls per 20 s and 10 concurrent calls
    /// per API, no added latency, SOAP in service on the same port as
    /// REST, no faults.
    ///
    /// ```
    /// use std::time::Duration;
    /// use marketo_sandbox::{Sandbox, SandboxConfig};
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

    /// The address to listen on. Default: `127.0.0.1:0`. It must be a
    /// loopback address (`127.0.0.0/8` or `::1`) unless
    /// [`danger_allow_non_loopback`](SandboxConfig::danger_allow_non_loopback)
    /// says otherwise: [`Sandbox::start_with`] refuses any other.
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

    /// How long a REST access token lives (and an IMS token of the AJO
    /// side). Default: 3600 s, as on Marketo.
    /// Expiry is measured on the sandbox's [`clock`](SandboxConfig::clock).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// At most `calls` admitted calls in any sliding `window`, counted
    /// separately for REST (beyond: error 606), SOAP (beyond: fault
    /// 20023) and AJO (beyond: HTTP 429 with `Retry-After`). Identity calls do not count. Default: 100 calls per 20 s, as
    /// on Marketo.
    pub fn rate_limit(mut self, calls: u32, window: Duration) -> Self {
        self.rate_calls = calls;
        self.rate_window = window;
        self
    }

    /// At most this many calls in flight at once, counted separately for
    /// REST (beyond: error 615), SOAP (beyond: fault 20024) and AJO
    /// (beyond: HTTP 429). Default: 10,
    /// as on Marketo. The sandbox serves 16 requests at once, so limits
    /// above 15 cannot be reached.
    pub fn max_concurrent(mut self, calls: usize) -> Self {
        self.max_concurrent = calls;
        self
    }

    /// An artificial delay inside every REST API, SOAP and AJO call, after
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

    /// Also listens on `addr` (e.g. `127.0.0.1:0`), and makes
    /// [`Sandbox::soap_endpoint`] point there: SOAP gets a port of its own,
    /// as on Marketo, where SOAP and REST are different hosts, so that a
    /// connection-level fault ([`Fault::RefuseConnections`]) can take SOAP
    /// down while REST stays up. Both ports serve every path. Default:
    /// none, SOAP is served on the main port.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig};
    /// let sandbox = Sandbox::start_with(
    ///     SandboxConfig::new()
    ///         .soap_listen(SocketAddr::from(([127, 0, 0, 1], 0)))
    ///         .faults([FaultRule::always(Fault::RefuseConnections { lasting: None }).api(Api::Soap)]),
    /// )?;
    /// assert_ne!(sandbox.soap_addr(), sandbox.addr());
    /// assert!(std::net::TcpStream::connect(sandbox.soap_addr()).is_err());
    /// assert!(std::net::TcpStream::connect(sandbox.addr()).is_ok());
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn soap_listen(mut self, addr: SocketAddr) -> Self {
        self.soap_listen = Some(addr);
        self
    }

    /// `true`: let [`listen`](SandboxConfig::listen) and
    /// [`soap_listen`](SandboxConfig::soap_listen) name addresses other
    /// than loopback (e.g. `0.0.0.0:8080`). Default: `false`, and
    /// [`Sandbox::start_with`] refuses such addresses, because the
    /// administration API (`/sandbox/...`: faults, journal of lead ids,
    /// token expiry) has no authentication, and the credentials the sandbox
    /// accepts are printed on its start-up line: anyone who can reach the
    /// port can read and steer it.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use marketo_sandbox::{Sandbox, SandboxConfig};
    /// let anywhere = SocketAddr::from(([0, 0, 0, 0], 8080));
    /// let err = Sandbox::start_with(SandboxConfig::new().listen(anywhere)).unwrap_err();
    /// assert!(err.to_string().contains("loopback only"));
    ///
    /// // Reachable from the network, on purpose:
    /// let exposed = SandboxConfig::new().listen(anywhere).danger_allow_non_loopback(true);
    /// ```
    pub fn danger_allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// The fault rules in force from the start (replacing any given
    /// before); see [`Fault`]. Default: none. Change them at run time with
    /// [`Sandbox::inject`] and [`Sandbox::clear_faults`].
    ///
    /// ```
    /// use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig};
    /// let sandbox = Sandbox::start_with(SandboxConfig::new().faults([
    ///     FaultRule::on_call(Fault::SoapFault(20011), 2).api(Api::Soap),
    ///     FaultRule::every(Fault::EmptyOk, 3).times(2),
    /// ]))?;
    /// assert_eq!(sandbox.faults().len(), 2);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn faults(mut self, rules: impl IntoIterator<Item = FaultRule>) -> Self {
        self.faults = rules.into_iter().collect();
        self
    }

    /// How long a campaign flow's Call Webhook step waits for the service
    /// (connection included) before giving up; the call is then journaled
    /// without a status and maps nothing. Default: 30 s, as Marketo.
    ///
    /// ```
    /// use std::time::Duration;
    /// use marketo_sandbox::SandboxConfig;
    /// let config = SandboxConfig::new().webhook_timeout(Duration::from_millis(500));
    /// ```
    pub fn webhook_timeout(mut self, timeout: Duration) -> Self {
        self.webhook_timeout = timeout;
        self
    }
}

/// What the server threads share.
#[derive(Debug)]
pub(crate) struct State {
    data: SandboxData,
    /// The leads (moved out of `data`), as REST writes change them.
    leads: std::sync::RwLock<LeadDb>,
    /// Custom lead fields: the names the data's leads have beyond
    /// [`lead_db::FIELDS`] (each a string field).
    custom_fields: std::collections::BTreeSet<String>,
    program_ids: HashMap<String, u32>,
    journal: Journal,
    clock: Arc<dyn Clock>,
    /// Checks SOAP signatures and timestamps against `clock`.
    soap_auth: marketo_campaign::soap::Authenticator,
    tokens: Tokens,
    /// Adobe IMS tokens, for the AJO side.
    ims_tokens: Tokens,
    ajo_limits: Limiter,
    /// AJO executions so far (their ids).
    ajo_executions: AtomicU64,
    rest_limits: Limiter,
    soap_limits: Limiter,
    latency: Duration,
    /// The HTTP status the retired SOAP endpoint answers; 0 in service.
    soap_retired: AtomicU16,
    request_prefix: u16,
    request_count: AtomicU64,
    faults: Faults,
    flows: Arc<flows::Flows>,
}

impl State {
    fn new(mut config: SandboxConfig) -> Self {
        let mut program_ids = HashMap::new();
        for campaign in &config.data.campaigns {
            let next =
                u32::try_from(program_ids.len()).map_or(u32::MAX, |n| n.saturating_add(1001));
            program_ids.entry(campaign.program.clone()).or_insert(next);
        }
        let limiter = || Limiter::new(config.rate_calls, config.rate_window, config.max_concurrent);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(0);
        let soap_auth = marketo_campaign::soap::Authenticator::new(
            config.data.soap_user_id.as_str(),
            config.data.soap_encryption_key.as_bytes(),
        )
        .max_clock_skew(config.max_clock_skew)
        .shared_clock(Arc::clone(&config.clock));
        let flows = Arc::new(flows::Flows::new(
            &config.data,
            |program| program_ids.get(program).copied().unwrap_or_default(),
            Arc::clone(&config.clock),
            config.webhook_timeout,
        ));
        let custom_fields = config
            .data
            .leads
            .iter()
            .flat_map(|lead| lead.fields.keys())
            .filter(|name| lead_db::describe(name).is_none())
            .cloned()
            .collect();
        let leads = std::mem::take(&mut config.data.leads);
        let lists = std::mem::take(&mut config.data.lists);
        State {
            leads: std::sync::RwLock::new(LeadDb::new(leads, lists, Arc::clone(&config.clock))),
            custom_fields,
            program_ids,
            journal: Journal::with_flows(Arc::clone(&flows)),
            flows,
            clock: config.clock,
            soap_auth,
            tokens: Tokens::new(config.token_lifetime),
            ims_tokens: Tokens::new(config.token_lifetime),
            ajo_limits: limiter(),
            ajo_executions: AtomicU64::new(0),
            rest_limits: limiter(),
            soap_limits: limiter(),
            latency: config.latency,
            soap_retired: AtomicU16::new(retired_status(config.soap_retired)),
            // Truncation intended: four hex digits, as Marketo's request ids.
            request_prefix: hasher.finish() as u16,
            request_count: AtomicU64::new(0),
            faults: Faults::new(config.faults),
            data: config.data,
        }
    }

    /// The id of the lead answering to `key_type:value`, if any (the lowest
    /// id when several do: see `leads.rs`).
    pub(crate) fn find_lead(&self, key_type: LeadKeyType, value: &str) -> Option<u32> {
        self.lead_db().find_one(key_type, value)
    }

    /// Lead `id`, as it is now.
    pub(crate) fn lead(&self, id: u32) -> Option<SandboxLead> {
        self.lead_db().get(id).cloned()
    }

    /// Journals a campaign run and records a `Request Campaign` activity
    /// for each of its leads (scheduled runs record none).
    pub(crate) fn record_run(&self, entry: JournalEntry) {
        if entry.run_at.is_none() {
            let name = self
                .data
                .campaigns
                .iter()
                .find(|c| c.id == entry.campaign_id)
                .map_or_else(
                    || format!("campaign {}", entry.campaign_id),
                    |c| c.name.clone(),
                );
            self.lead_db_mut().log_activities(
                &entry.lead_ids,
                lead_db::REQUEST_CAMPAIGN,
                name.into(),
                Some(entry.campaign_id),
                vec![("Source".to_owned(), entry.api.to_uppercase())].into(),
            );
        }
        self.journal.record(entry);
    }

    /// The lead database, to read.
    pub(crate) fn lead_db(&self) -> std::sync::RwLockReadGuard<'_, LeadDb> {
        self.leads
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lead database, to write.
    pub(crate) fn lead_db_mut(&self) -> std::sync::RwLockWriteGuard<'_, LeadDb> {
        self.leads
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// `127.0.0.0/8`, `::1`, or `::ffff:127.x.y.z`.
fn is_loopback(addr: SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
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

/// A running sandbox. It stops when dropped: its threads end and its
/// ports close.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    soap_addr: SocketAddr,
    net: Arc<Net>,
    acceptors: Vec<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts a sandbox with the default configuration on a free loopback port.
    pub fn start() -> Result<Sandbox, Error> {
        Sandbox::start_with(SandboxConfig::default())
    }

    /// Starts a sandbox. Fails when an address cannot be bound or a fault
    /// rule cannot strike (see [`Sandbox::inject`]).
    pub fn start_with(mut config: SandboxConfig) -> Result<Sandbox, Error> {
        for rule in &config.faults {
            if let Some(problem) = rule.problem() {
                return Err(Error::Config(format!("sandbox fault rule: {problem}")));
            }
        }
        config.data.check()?;
        if !config.allow_non_loopback {
            for addr in std::iter::once(config.listen).chain(config.soap_listen) {
                if !is_loopback(addr) {
                    return Err(Error::Config(format!(
                        "the sandbox listens on loopback only, not {addr}: its \
                         administration API (faults, journal) has no authentication; \
                         allow other addresses explicitly \
                         (SandboxConfig::danger_allow_non_loopback, CLI --allow-non-loopback)"
                    )));
                }
            }
        }
        let bind = |addr: SocketAddr| {
            TcpListener::bind(addr)
                .map_err(|e| Error::Config(format!("sandbox cannot listen on {addr}: {e}")))
        };
        let mut listeners = vec![bind(config.listen)?];
        if let Some(addr) = config.soap_listen.take() {
            listeners.push(bind(addr)?);
        }
        let (net, acceptors) = Net::start(State::new(config), listeners)
            .map_err(|e| Error::Config(format!("sandbox cannot start: {e}")))?;
        let (Some(addr), Some(soap_addr)) = (net.addr(0), net.addr(net.soap_port())) else {
            net.shutdown(acceptors);
            return Err(Error::Config("sandbox has no address".into()));
        };
        net.state.flows.set_base_url(format!("http://{addr}"));
        Ok(Sandbox {
            addr,
            soap_addr,
            net,
            acceptors,
        })
    }

    /// The address the sandbox listens on (its main port: REST, identity,
    /// administration, and SOAP unless it has its own).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address [`Sandbox::soap_endpoint`] names: the main address, or
    /// SOAP's own ([`SandboxConfig::soap_listen`]).
    pub fn soap_addr(&self) -> SocketAddr {
        self.soap_addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The SOAP endpoint, `http://127.0.0.1:PORT/soap/mktows/2_9` (on
    /// [`Sandbox::soap_addr`]).
    pub fn soap_endpoint(&self) -> String {
        format!("http://{}{SOAP_PATH}", self.soap_addr)
    }

    /// The SOAP user id the sandbox accepts.
    pub fn soap_user_id(&self) -> &str {
        &self.net.state.data.soap_user_id
    }

    /// The SOAP encryption key (a sandbox credential, not a secret).
    pub fn soap_encryption_key(&self) -> &str {
        &self.net.state.data.soap_encryption_key
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
        &self.net.state.data.client_id
    }

    /// The REST client secret (a sandbox credential, not a secret).
    pub fn client_secret(&self) -> &str {
        &self.net.state.data.client_secret
    }

    /// Retires the SOAP endpoint (`Some(404)` or `Some(410)`) or brings it
    /// back (`None`); see [`SandboxConfig::soap_retired`].
    pub fn retire_soap(&self, status: Option<u16>) {
        self.net.state.retire_soap(status);
    }

    /// Expires every REST access token and IMS token issued so far: the
    /// next API call with one gets error 602 (AJO: HTTP 401), and the
    /// identity service issues a new token.
    pub fn expire_tokens(&self) {
        self.net.state.tokens.expire_all();
        self.net.state.ims_tokens.expire_all();
    }

    /// The AJO API gateway, `http://127.0.0.1:PORT`; the unitary execution
    /// is `/ajo/im/executions/unitary` under it.
    pub fn ajo_endpoint(&self) -> String {
        self.base_url()
    }

    /// Adobe IMS's token URL, `http://127.0.0.1:PORT/ims/token/v3`.
    pub fn ims_token_url(&self) -> String {
        format!("{}{}", self.base_url(), ajo::IMS_TOKEN_PATH)
    }

    /// The sandbox's AJO credentials, organization and campaigns.
    pub fn ajo_data(&self) -> &SandboxAjo {
        &self.net.state.data.ajo
    }

    /// The campaign map of the sandbox's data: each AJO campaign that
    /// replaces a Marketo campaign ([`SandboxAjoCampaign::marketo_campaign_id`])
    /// serves that campaign's id and, when the sandbox knows that campaign,
    /// its name + program.
    pub fn ajo_campaign_map(&self) -> marketo_campaign::ajo::CampaignMap {
        let data = &self.net.state.data;
        let mut map = marketo_campaign::ajo::CampaignMap::new();
        for ajo in &data.ajo.campaigns {
            let Some(marketo_id) = ajo.marketo_campaign_id else {
                continue;
            };
            map = map.with_id(marketo_id, ajo.id.as_str());
            if let Some(marketo) = data.campaigns.iter().find(|c| c.id == marketo_id) {
                map = map.with_named(
                    marketo.name.as_str(),
                    marketo.program.as_str(),
                    ajo.id.as_str(),
                );
            }
        }
        map
    }

    /// An [`AjoClient`](marketo_campaign::AjoClient) builder for this sandbox:
    /// endpoint, IMS token URL, credentials, organization, sandbox name
    /// and [`ajo_campaign_map`](Sandbox::ajo_campaign_map) filled in.
    ///
    /// ```
    /// use marketo_sandbox::Sandbox;
    /// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey};
    /// let sandbox = Sandbox::start()?;
    /// let client = sandbox.ajo_client_builder().build()?;
    /// let request = CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::email("lead@company.com")?])?;
    /// client.request_campaign(&request)?;
    /// let execution = sandbox.journal()[0].ajo.clone().expect("an AJO run");
    /// assert_eq!(execution.campaign_id, "2a9f6e3d-4496-4c1b-b7e2-5d8c9a0f4496");
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn ajo_client_builder(&self) -> marketo_campaign::ajo::AjoClientBuilder {
        let ajo = self.ajo_data();
        marketo_campaign::ajo::AjoClient::builder(
            ajo.client_id.as_str(),
            ajo.client_secret.as_str(),
            ajo.org_id.as_str(),
            ajo.sandbox_name.as_str(),
        )
        .endpoint(self.ajo_endpoint())
        .ims_token_url(self.ims_token_url())
        .campaign_map(self.ajo_campaign_map())
    }

    /// An [`AjoClient`](marketo_campaign::AjoClient) for this sandbox.
    pub fn ajo_client(&self) -> Result<marketo_campaign::ajo::AjoClient, Error> {
        self.ajo_client_builder().build()
    }

    /// Lead `id` as it is now (after any REST writes), or `None`.
    ///
    /// ```
    /// let sandbox = marketo_sandbox::Sandbox::start()?;
    /// assert_eq!(sandbox.lead(1002200).and_then(|l| l.email).as_deref(), Some("lead@company.com"));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn lead(&self, id: u32) -> Option<SandboxLead> {
        self.net.state.lead(id)
    }

    /// Every change REST writes made to the lead database, in order
    /// (`created`, `updated`, `cookie associated`, with the fields
    /// written): what tests read to see that a write was applied, and
    /// applied once.
    ///
    /// ```
    /// let sandbox = marketo_sandbox::Sandbox::start()?;
    /// assert!(sandbox.lead_changes().is_empty());
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn lead_changes(&self) -> Vec<LeadChange> {
        self.net.state.lead_db().changes().to_vec()
    }

    /// Every campaign run so far, in order.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.net.state.journal.entries()
    }

    /// Empties the journal.
    pub fn clear_journal(&self) {
        self.net.state.journal.clear();
    }

    /// Every webhook call campaign flows made so far, in order of
    /// completion (see [Campaign flows](self#campaign-flows)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use marketo_sandbox::{Sandbox, SandboxConfig, SandboxData};
    /// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey};
    ///
    /// let data = SandboxData::from_json(r#"{
    ///     "webhooks": [{"name": "Echo", "url": "/sandbox/echo?lead={{lead.id}}", "request_type": "GET"}],
    ///     "campaigns": [{"id": 7, "name": "C", "program": "P", "flow": [{"call_webhook": "Echo"}]}],
    ///     "leads": [{"id": 1, "email": "a@example.com"}]
    /// }"#)?;
    /// let sandbox = Sandbox::start_with(SandboxConfig::new().data(data))?;
    /// let request = CampaignRequest::new(CampaignTarget::id(7), [LeadKey::id(1)?])?;
    /// sandbox.soap_client()?.request_campaign(&request)?;
    /// assert!(sandbox.wait_for_flows(Duration::from_secs(10)));
    /// let calls = sandbox.webhook_calls();
    /// assert_eq!(calls[0].url, format!("{}/sandbox/echo?lead=1", sandbox.base_url()));
    /// assert_eq!(calls[0].status, Some(200));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn webhook_calls(&self) -> Vec<WebhookCall> {
        self.net.state.flows.calls()
    }

    /// Empties the list of webhook calls.
    pub fn clear_webhook_calls(&self) {
        self.net.state.flows.clear_calls();
    }

    /// Waits until the flows of every campaign run journaled so far have
    /// finished, at most `limit`; `true` if they all did.
    pub fn wait_for_flows(&self, limit: Duration) -> bool {
        self.net.state.flows.wait(limit)
    }

    /// Adds a fault rule, in force at once (after the rules already in
    /// force). A refusal it makes due starts before this returns: the port
    /// has stopped listening and its idle connections are closed.
    ///
    /// Fails, adding nothing, when the rule can never strike or is
    /// malformed: a SOAP fault for other than SOAP calls, a REST error for
    /// other than REST calls, an HTTP status outside 400 to 599, a count of
    /// 0.
    ///
    /// ```
    /// use marketo_sandbox::{Api, Fault, FaultRule, Sandbox};
    /// let sandbox = Sandbox::start()?;
    /// sandbox.inject(FaultRule::on_call(Fault::RestError(606), 1))?;
    /// assert!(sandbox.inject(FaultRule::always(Fault::RestError(606)).api(Api::Soap)).is_err());
    /// assert_eq!(sandbox.faults(), [FaultRule::on_call(Fault::RestError(606), 1)]);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn inject(&self, rule: FaultRule) -> Result<(), Error> {
        if let Some(problem) = rule.problem() {
            return Err(Error::Config(format!("sandbox fault rule: {problem}")));
        }
        self.net.inject(rule);
        Ok(())
    }

    /// Removes every fault rule and ends any refusal: before this returns,
    /// refused ports listen again. The fault log is kept.
    pub fn clear_faults(&self) {
        self.net.clear_faults();
    }

    /// The fault rules in force, in the order added.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.net.state.faults.rules()
    }

    /// Every fault that struck so far, in order.
    pub fn fault_log(&self) -> Vec<FaultEvent> {
        self.net.state.faults.events()
    }

    /// Empties the fault log.
    pub fn clear_fault_log(&self) {
        self.net.state.faults.clear_log();
    }

    /// The one-line JSON the CLI prints on start: endpoints and
    /// credentials, and `ajo_campaigns`: each AJO campaign's `id`, `name`,
    /// `audience` (an audience campaign, run by schedules) and the Marketo
    /// campaign it stands for (`marketo_campaign_id`, and when the sandbox
    /// holds that campaign its `marketo_campaign` name and
    /// `marketo_program`; `null` for none), as
    /// [`ajo_campaign_map`](Sandbox::ajo_campaign_map) maps them.
    ///
    /// ```
    /// use marketo_sandbox::Sandbox;
    /// let sandbox = Sandbox::start()?;
    /// let line: serde_json::Value = serde_json::from_str(&sandbox.startup_line()).unwrap();
    /// let webinar = &line["ajo_campaigns"][0];
    /// assert_eq!(webinar["id"], "7c1e4b2a-9d3f-4e61-a8b5-3f2d1c0b1234");
    /// assert_eq!(webinar["marketo_campaign_id"], 1234);
    /// assert_eq!(webinar["marketo_campaign"], "Send Webinar Reminder");
    /// assert_eq!(webinar["marketo_program"], "Webinars");
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn startup_line(&self) -> String {
        let data = &self.net.state.data;
        let ajo_campaigns: Vec<serde_json::Value> = data
            .ajo
            .campaigns
            .iter()
            .map(|ajo| {
                let marketo = ajo
                    .marketo_campaign_id
                    .and_then(|id| data.campaigns.iter().find(|c| c.id == id));
                serde_json::json!({
                    "id": ajo.id,
                    "name": ajo.name,
                    "audience": ajo.audience,
                    "marketo_campaign_id": ajo.marketo_campaign_id,
                    "marketo_campaign": marketo.map(|c| c.name.as_str()),
                    "marketo_program": marketo.map(|c| c.program.as_str()),
                })
            })
            .collect();
        serde_json::json!({
            "soap_endpoint": self.soap_endpoint(),
            "soap_user_id": self.soap_user_id(),
            "soap_encryption_key": self.soap_encryption_key(),
            "rest_endpoint": self.rest_endpoint(),
            "identity_endpoint": self.identity_endpoint(),
            "client_id": self.client_id(),
            "client_secret": self.client_secret(),
            "ajo_endpoint": self.ajo_endpoint(),
            "ims_token_url": self.ims_token_url(),
            "ajo_client_id": self.ajo_data().client_id,
            "ajo_client_secret": self.ajo_data().client_secret,
            "ajo_org_id": self.ajo_data().org_id,
            "ajo_sandbox_name": self.ajo_data().sandbox_name,
            "journal": format!("{}{JOURNAL_PATH}", self.base_url()),
            "webhooks": format!("{}{WEBHOOKS_PATH}", self.base_url()),
            "ajo_campaigns": ajo_campaigns,
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
        self.net.shutdown(std::mem::take(&mut self.acceptors));
    }
}

/// Runs the SOAP endpoint's reader and rules on `body` against a default
/// sandbox's data (for the fuzz targets in `fuzz/`, feature `fuzzing`):
/// the status it would answer. Not a public API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn fuzz_soap(body: &[u8]) -> u16 {
    static STATE: std::sync::OnceLock<State> = std::sync::OnceLock::new();
    // The clock of Marketo's published signature example, and no rate
    // limit: inputs signed like the example get past authentication and
    // exercise the parameter rules.
    let state = STATE.get_or_init(|| {
        let then = chrono::DateTime::parse_from_rfc3339("2010-04-09T14:04:54-07:00")
            .map(|t| t.to_utc())
            .unwrap_or_default();
        State::new(
            SandboxConfig::default()
                .clock(marketo_campaign::FixedClock(then))
                .rate_limit(u32::MAX, Duration::from_secs(1))
                .max_concurrent(usize::MAX),
        )
    });
    soap::handle(
        state,
        Some(marketo_campaign::soap::SOAP_ACTION_REQUEST_CAMPAIGN),
        body,
    )
    .0
}

/// What a retired SOAP endpoint says.
fn retired_text(status: u16) -> String {
    match status {
        404 => "Not Found: this instance has no SOAP API; use the REST API".into(),
        410 => "Gone: Marketo's SOAP API has been removed; use the REST API".into(),
        other => format!("SOAP API unavailable (HTTP {other}); use the REST API"),
    }
}

fn text(status: u16, body: impl Into<String>) -> Answer {
    Answer::new(status, "text/plain", body.into())
}

fn json_answer(status: u16, value: &impl serde::Serialize) -> Answer {
    match serde_json::to_string(value) {
        Ok(json) => Answer::new(status, "application/json", json),
        Err(e) => text(500, format!("cannot write JSON: {e}")),
    }
}

/// The rules in a `POST /sandbox/faults` body: a rule, an array of rules,
/// or a bare fault (strikes every call).
fn parse_rules(body: &[u8]) -> Result<Vec<FaultRule>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let one = |value: serde_json::Value| -> Result<FaultRule, String> {
        if value.get("kind").is_some() {
            serde_json::from_value::<Fault>(value)
                .map(FaultRule::always)
                .map_err(|e| format!("bad fault: {e}"))
        } else {
            serde_json::from_value::<FaultRule>(value).map_err(|e| format!("bad fault rule: {e}"))
        }
    };
    let rules = match value {
        serde_json::Value::Array(items) => items.into_iter().map(one).collect(),
        value => one(value).map(|rule| vec![rule]),
    }?;
    if let Some(problem) = rules.iter().find_map(FaultRule::problem) {
        return Err(problem);
    }
    Ok(rules)
}

/// Serves one request (the fault layer in [`net`] has let it through).
fn route(net: &Net, request: &Head, body: &[u8]) -> Answer {
    let state = &net.state;
    let method = request.method.as_str();
    let url = request.target.as_str();
    if url.len() > MAX_URI_BYTES {
        return text(414, "URI Too Long");
    }
    let path = request.path();
    if path == SOAP_PATH {
        if let Some(status) = state.soap_retired() {
            return text(status, retired_text(status));
        }
        if soap::asks_for_wsdl(request) {
            let wsdl = soap::wsdl(request.header("Host"), net.addr(net.soap_port()));
            return Answer::new(200, soap::XML, wsdl);
        }
    }
    match (method, path) {
        ("POST", SOAP_PATH) => {
            let content_type = request.header("Content-Type").unwrap_or_default();
            if !content_type.to_ascii_lowercase().starts_with("text/xml") {
                return text(415, "SOAP 1.1 requests are text/xml");
            }
            let (status, xml) = soap::handle(state, request.header("SOAPAction"), body);
            Answer::new(status, soap::XML, xml)
        }
        ("GET" | "POST", identity::TOKEN_PATH) => {
            let mut params = Params::from_url(url);
            if method == "POST" {
                let form = request.header("Content-Type").is_some_and(|t| {
                    t.to_ascii_lowercase()
                        .starts_with("application/x-www-form-urlencoded")
                });
                if form {
                    params.extend(&String::from_utf8_lossy(body));
                }
            }
            let (status, json) = identity::handle(state, &params);
            Answer::new(status, rest::JSON, json)
        }
        (_, ajo::IMS_TOKEN_PATH) => ajo::ims_token(state, method, request, body),
        (_, p) if p.starts_with(ajo::AJO_PREFIX) => ajo::handle(state, method, request, body),
        (_, p) if p.starts_with(rest::REST_PREFIX) => {
            let empty: &[u8] = &[];
            let rest_request = rest::RestRequest {
                method,
                url,
                authorization: request.header("Authorization"),
                content_type: request.header("Content-Type"),
                body: if method == "POST" { body } else { empty },
            };
            let (status, content_type, json) = rest::handle(state, &rest_request);
            Answer::new(status, content_type, json)
        }
        ("GET", JOURNAL_PATH) => json_answer(200, &state.journal.entries()),
        ("DELETE", JOURNAL_PATH) => {
            state.journal.clear();
            Answer::empty(204)
        }
        ("POST", SOAP_RETIRE_PATH) => {
            let params = Params::from_url(url);
            match params.get("status").map(str::parse::<u16>) {
                None => state.retire_soap(Some(410)),
                Some(Ok(status @ 400..=599)) => state.retire_soap(Some(status)),
                Some(_) => {
                    return text(
                        400,
                        "status must be an HTTP status from 400 to 599, e.g. 404 or 410",
                    )
                }
            }
            Answer::empty(204)
        }
        ("POST", SOAP_RESTORE_PATH) => {
            state.retire_soap(None);
            Answer::empty(204)
        }
        ("POST", EXPIRE_TOKENS_PATH) => {
            state.tokens.expire_all();
            Answer::empty(204)
        }
        ("POST", FAULTS_PATH) => match parse_rules(body) {
            Ok(rules) => {
                for rule in &rules {
                    net.inject(rule.clone());
                }
                json_answer(201, &rules)
            }
            Err(problem) => text(400, problem),
        },
        ("GET", FAULTS_PATH) => json_answer(200, &state.faults.rules()),
        ("DELETE", FAULTS_PATH) => {
            net.clear_faults();
            Answer::empty(204)
        }
        ("GET", FAULT_LOG_PATH) => json_answer(200, &state.faults.events()),
        ("GET", WEBHOOKS_PATH) => json_answer(200, &state.flows.calls()),
        ("DELETE", WEBHOOKS_PATH) => {
            state.flows.clear_calls();
            Answer::empty(204)
        }
        (_, ECHO_PATH) => json_answer(
            200,
            &serde_json::json!({
                "method": method,
                "target": url,
                "content_type": request.header("Content-Type"),
                "body": String::from_utf8_lossy(body),
                "bytes": body.len(),
            }),
        ),
        ("DELETE", FAULT_LOG_PATH) => {
            state.faults.clear_log();
            Answer::empty(204)
        }
        _ => text(404, "Not Found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_on_loopback_only_unless_allowed() {
        for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0", "[2001:db8::1]:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let err = Sandbox::start_with(SandboxConfig::new().listen(addr)).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{addr}: {err:?}");
            assert!(err.to_string().contains("loopback only"), "{err}");
            let err = Sandbox::start_with(SandboxConfig::new().soap_listen(addr)).unwrap_err();
            assert!(err.to_string().contains("loopback only"), "{err}");
        }
        // Allowed: the check is skipped (this address cannot be bound here,
        // so no port opens to the network).
        let err = Sandbox::start_with(
            SandboxConfig::new()
                .listen("192.0.2.1:0".parse().unwrap())
                .danger_allow_non_loopback(true),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("loopback only"), "{err}");
        for addr in [
            "127.0.0.1:1",
            "127.0.0.2:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(is_loopback(addr.parse().unwrap()), "{addr}");
        }
        for addr in ["[::ffff:10.0.0.1]:1", "10.0.0.1:1", "0.0.0.0:1"] {
            assert!(!is_loopback(addr.parse().unwrap()), "{addr}");
        }
        assert!(
            Sandbox::start_with(SandboxConfig::new().listen("127.0.0.2:0".parse().unwrap()))
                .is_ok()
        );
    }
}
