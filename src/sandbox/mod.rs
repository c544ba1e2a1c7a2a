//! An offline Marketo on loopback, for tests, examples and users.
//!
//! The sandbox speaks Marketo's SOAP API at `/soap/mktows/2_9` and checks
//! what Marketo checks: the envelope's shape (schema order, unqualified
//! children), the `SOAPAction`, the HMAC-SHA1 signature (fault 20014), the
//! timestamp's age (fault 20016), the parameter rules (20110), unknown or
//! batch campaigns (20113) and unknown leads (20103). Like Marketo, it
//! silently ignores lead keys past the 100th. Every campaign run is
//! journaled; read the journal with [`Sandbox::journal`] or
//! `GET /sandbox/journal`.
//!
//! ```
//! use marketo_campaign::sandbox::Sandbox;
//! let sandbox = Sandbox::start()?;
//! assert!(sandbox.soap_endpoint().starts_with("http://127.0.0.1:"));
//! assert!(sandbox.journal().is_empty());
//! # Ok::<(), marketo_campaign::Error>(())
//! ```

mod data;
mod journal;
mod soap;
mod xml;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use data::{SandboxCampaign, SandboxData, SandboxLead};
pub use journal::{JournalEntry, JournalToken};

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::request::LeadKeyType;
use crate::soap::{SoapClient, SoapClientBuilder};
use journal::Journal;

/// The SOAP endpoint's path, as on a real instance.
pub const SOAP_PATH: &str = "/soap/mktows/2_9";
/// The journal's path.
pub const JOURNAL_PATH: &str = "/sandbox/journal";
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
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: SandboxData::default(),
            clock: Arc::new(SystemClock),
            max_clock_skew: Duration::from_secs(15 * 60),
        }
    }
}

impl SandboxConfig {
    /// Defaults: listen on `127.0.0.1:0` (a free port), the default
    /// [`SandboxData`], the system clock, 15 minutes of allowed clock skew.
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
}

/// What the server threads share.
#[derive(Debug)]
pub(crate) struct State {
    data: SandboxData,
    lead_index: HashMap<(LeadKeyType, String), u32>,
    journal: Journal,
    clock: Arc<dyn Clock>,
    max_clock_skew: chrono::Duration,
}

impl State {
    fn new(config: &SandboxConfig) -> Self {
        let mut lead_index = HashMap::new();
        for lead in &config.data.leads {
            let fields = [
                (LeadKeyType::Idnum, Some(lead.id.to_string())),
                (LeadKeyType::Email, lead.email.clone()),
                (LeadKeyType::Cookie, lead.cookie.clone()),
                (LeadKeyType::LeadOwnerEmail, lead.lead_owner_email.clone()),
                (LeadKeyType::SfdcAccountId, lead.sfdc_account_id.clone()),
                (LeadKeyType::SfdcContactId, lead.sfdc_contact_id.clone()),
                (LeadKeyType::SfdcLeadId, lead.sfdc_lead_id.clone()),
                (
                    LeadKeyType::SfdcLeadOwnerId,
                    lead.sfdc_lead_owner_id.clone(),
                ),
                (LeadKeyType::SfdcOpptyId, lead.sfdc_oppty_id.clone()),
            ];
            for (key_type, value) in fields {
                if let Some(value) = value {
                    // The first lead with a value wins, as a look-up would find it.
                    lead_index
                        .entry((key_type, normalize(key_type, &value)))
                        .or_insert(lead.id);
                }
            }
        }
        State {
            data: config.data.clone(),
            lead_index,
            journal: Journal::default(),
            clock: config.clock.clone(),
            max_clock_skew: chrono::Duration::from_std(config.max_clock_skew)
                .unwrap_or(chrono::Duration::MAX),
        }
    }

    /// The id of the lead answering to `key_type:value`, if any.
    pub(crate) fn find_lead(&self, key_type: LeadKeyType, value: &str) -> Option<u32> {
        self.lead_index
            .get(&(key_type, normalize(key_type, value)))
            .copied()
    }
}

/// Emails compare without ASCII case; ids without surrounding blanks.
fn normalize(key_type: LeadKeyType, value: &str) -> String {
    match key_type {
        LeadKeyType::Email | LeadKeyType::LeadOwnerEmail => value.trim().to_ascii_lowercase(),
        LeadKeyType::Idnum => value.trim().to_owned(),
        _ => value.to_owned(),
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
        let state = Arc::new(State::new(&config));
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

fn handle(state: &State, mut request: tiny_http::Request) {
    let method = request.method().as_str().to_owned();
    let path = request
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    match (method.as_str(), path.as_str()) {
        ("POST", SOAP_PATH) => {
            let mut body = Vec::new();
            let read = request
                .as_reader()
                .take(MAX_REQUEST_BYTES + 1)
                .read_to_end(&mut body);
            if read.is_err() || body.len() as u64 > MAX_REQUEST_BYTES {
                return respond(request, 413, "text/plain", "request too large".into());
            }
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
        ("GET", JOURNAL_PATH) => {
            let json = serde_json::to_string(&state.journal.entries())
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
            respond(request, 200, "application/json", json);
        }
        ("DELETE", JOURNAL_PATH) => {
            state.journal.clear();
            respond(request, 204, "text/plain", String::new());
        }
        _ => respond(request, 404, "text/plain", "Not Found".into()),
    }
}
