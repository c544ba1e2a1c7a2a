//! The SOAP→REST bridge: a server that speaks Marketo's SOAP API to legacy
//! integrations and serves their calls through any [`CampaignRequester`]
//! (a [`RestClient`] by default).
//!
//! `marketo-bridge` is the workspace member for the server operations
//! teams deploy (the command line's `marketo-campaign bridge` runs it). It
//! holds the HTTP server (hyper on tokio, TLS by tokio-rustls) and depends
//! on the client library `marketo-campaign` through its public API only
//! (the SOAP codec, `Authenticator`, the requesters, metrics); its tests
//! use `marketo-sandbox` as a dev-dependency.
//!
//! - `POST /soap/mktows/<2_0 … 2_9>`: `requestCampaign`, `scheduleCampaign`
//!   and `getCampaignsForSource`, and the lead operations `syncLead`,
//!   `syncMultipleLeads`, `getLead`, `getMultipleLeads`, `describeMObject`, `listOperation` and `getLeadActivity` (SOAP's attribute names translated
//!   through REST's lead describe; see [`SERVED`]), each
//!   `AuthenticationHeader` verified by an [`Authenticator`] (faults 20014 /
//!   20016 as Marketo); any other operation gets fault 20012 naming it and
//!   what is served.
//! - `GET /soap/mktows/<version>?WSDL` (any case): the WSDL, with
//!   `soap:address` at the bridge ([`Bridge::public_url`], else the
//!   request's `Host`).
//! - `GET /healthz`: `ok`. `GET /metrics`: Prometheus text.
//!
//! SOAP's meaning is kept: with a [`RestClient`] for look-ups, every lead
//! key is looked up before anything runs, and a key that names no single
//! lead fails the call with 20103 naming it (unless
//! [`run_matched_leads`](Bridge::run_matched_leads) is set). Requests of
//! more than 100 keys: Marketo ignored keys past the 100th silently; the
//! bridge serves them all (in calls of 100 to REST). A backend error
//! becomes the fault legacy code expects (see the README's table); an
//! *unknown* outcome is fault 20011 saying that the campaign may have run
//! and not to resend.
//!
//! ```no_run
//! use marketo_bridge::Bridge;
//! use marketo_campaign::soap::Authenticator;
//! use marketo_campaign::RestClient;
//!
//! let rest = RestClient::builder("https://123-ABC-456.mktorest.com", "client-id", "client-secret").build()?;
//! let auth = Authenticator::new("bigcorp1_461839624B16E06BA2D663", "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66");
//! let server = Bridge::rest(rest, auth).serve("127.0.0.1:8080".parse()?, false)?;
//! println!("SOAP endpoint: {}", server.endpoint());
//! server.wait();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod dedupe;
mod faults;
mod leads;
mod server;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};

pub use server::RunningBridge;

use marketo_campaign::metrics::{Histogram, HttpMetrics};
use marketo_campaign::rest::RestClient;
use marketo_campaign::soap::{
    escape_text, read_envelope_with, Authenticator, Fault, GetCampaignsForSource,
    ListOperationType, Operation, ReadLimits, RequestCampaign, ScheduleCampaign, CONTENT_TYPE,
    SUCCESS_REQUEST_CAMPAIGN, SUCCESS_SCHEDULE_CAMPAIGN,
};
use marketo_campaign::CampaignRequester;
use marketo_campaign::{CampaignScheduler, ScheduleRequest};
use marketo_campaign::{CampaignTarget, LeadKey, Source};
use marketo_campaign::{Error, SoapCode};

/// The SOAP operations the bridge serves; any other of Marketo's gets
/// fault 20012 naming these.
///
/// ```
/// assert!(marketo_bridge::SERVED.contains(&"syncLead"));
/// ```
pub const SERVED: [&str; 12] = [
    "requestCampaign",
    "scheduleCampaign",
    "getCampaignsForSource",
    "syncLead",
    "syncMultipleLeads",
    "getLead",
    "getMultipleLeads",
    "describeMObject",
    "listOperation",
    "getLeadActivity",
    "getLeadChanges",
    "mergeLeads",
];

/// Largest SOAP request the bridge reads by default: 1 MiB (a
/// `requestCampaign` of 100 keys is about 10 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// How long the bridge waits for a request's headers, for its body, and
/// for a TLS handshake, each: 30 s.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP answer: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Answer {
    fn text(status: u16, body: impl Into<String>) -> Self {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    fn soap(body: impl Into<String>) -> Self {
        Answer {
            status: 200,
            content_type: CONTENT_TYPE,
            body: body.into(),
        }
    }

    fn fault(fault: &Fault) -> Self {
        Answer {
            status: Fault::HTTP_STATUS,
            content_type: CONTENT_TYPE,
            body: fault.to_xml(),
        }
    }
}

/// An HTTP request as the bridge sees it (for [`Bridge::answer`]).
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The request target: path and query, e.g. `/soap/mktows/2_9?WSDL`.
    pub url: &'a str,
    /// The `Host` header, if any.
    pub host: Option<&'a str>,
    /// The `SOAPAction` header, if any.
    pub soap_action: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
struct Metrics {
    calls: Mutex<BTreeMap<(String, String), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    fn record(&self, operation: &str, result: &str, elapsed: Duration) {
        *self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((operation.to_owned(), result.to_owned()))
            .or_default() += 1;
        self.latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(operation.to_owned())
            .or_default()
            .observe(elapsed);
    }

    /// Prometheus text: the SOAP calls, and the REST client's calls when
    /// there is one.
    fn render(&self, rest: Option<&HttpMetrics>) -> String {
        let mut out = String::from(
            "# HELP marketo_bridge_calls_total SOAP calls by operation and result (success or the fault code).\n\
             # TYPE marketo_bridge_calls_total counter\n",
        );
        for ((op, result), n) in self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "marketo_bridge_calls_total{{operation=\"{op}\",result=\"{result}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP marketo_bridge_call_duration_seconds Time to serve a SOAP call, by operation.\n\
             # TYPE marketo_bridge_call_duration_seconds histogram\n",
        );
        for (op, histogram) in self
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            write_histogram(
                &mut out,
                "marketo_bridge_call_duration_seconds",
                &format!("operation=\"{op}\""),
                histogram,
            );
        }
        if let Some(rest) = rest {
            out.push_str(
                "# HELP marketo_bridge_rest_calls_total The bridge's calls to Marketo (identity, look-ups, triggers) by path and HTTP status.\n\
                 # TYPE marketo_bridge_rest_calls_total counter\n",
            );
            for (path, result, n) in rest.calls() {
                let _ = writeln!(
                    out,
                    "marketo_bridge_rest_calls_total{{path=\"{path}\",result=\"{result}\"}} {n}"
                );
            }
            out.push_str(
                "# HELP marketo_bridge_rest_call_duration_seconds Time of the bridge's calls to Marketo.\n\
                 # TYPE marketo_bridge_rest_call_duration_seconds histogram\n",
            );
            write_histogram(
                &mut out,
                "marketo_bridge_rest_call_duration_seconds",
                "",
                rest.latency(),
            );
        }
        out
    }
}

/// A Prometheus histogram: `_bucket` lines (cumulative, `le`), `_sum`,
/// `_count`.
fn write_histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (le, n) in histogram.cumulative() {
        let le = if le.is_infinite() {
            "+Inf".to_owned()
        } else {
            le.to_string()
        };
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
    }
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(
        out,
        "{name}_sum{braces} {}\n{name}_count{braces} {}",
        histogram.sum_seconds(),
        histogram.count()
    );
}

/// The bridge: SOAP in, a [`CampaignRequester`] out. Cheap to share: the
/// server serves every connection with one bridge, so every caller shares
/// one backend (one REST token, one rate limiter).
///
/// Build it with [`Bridge::rest`] (REST for everything) or [`Bridge::new`]
/// (your requester for `requestCampaign`, plus [`lookups`](Bridge::lookups)
/// for SOAP's unknown-lead rule, `scheduleCampaign` and
/// `getCampaignsForSource`).
#[derive(Debug)]
pub struct Bridge<R> {
    requester: R,
    rest: Option<RestClient>,
    /// The requester is `rest` itself ([`Bridge::rest`]): look up once.
    direct: bool,
    auth: Authenticator,
    run_matched: bool,
    dry_run: bool,
    public_url: Option<String>,
    /// Served over TLS: the WSDL's `soap:address` from `Host` is `https://`.
    https: bool,
    max_body: usize,
    /// Headers (and keep-alive idle), body, TLS handshake: each.
    read_timeout: Duration,
    metrics: Metrics,
    /// The lead describe, for SOAP's attribute names.
    fields: leads::Fields,
    /// Resend protection, when a window is set.
    dedupe: Option<dedupe::Dedupe>,
}

impl Bridge<RestClient> {
    /// A bridge that serves every operation through `rest`, accepting the
    /// SOAP users `auth` knows.
    pub fn rest(rest: RestClient, auth: Authenticator) -> Self {
        let mut bridge = Bridge::new(rest.clone(), auth).lookups(rest);
        bridge.direct = true;
        bridge
    }
}

impl<R: CampaignRequester> Bridge<R> {
    /// A bridge that runs `requestCampaign` through `requester`, accepting
    /// the SOAP users `auth` knows. Without [`lookups`](Bridge::lookups),
    /// unknown leads are left to the requester, and `scheduleCampaign` and
    /// `getCampaignsForSource` are answered with fault 20012.
    pub fn new(requester: R, auth: Authenticator) -> Self {
        Bridge {
            requester,
            rest: None,
            direct: false,
            auth,
            run_matched: false,
            dry_run: false,
            public_url: None,
            https: false,
            max_body: DEFAULT_MAX_BODY_BYTES,
            read_timeout: DEFAULT_READ_TIMEOUT,
            metrics: Metrics::default(),
            fields: leads::Fields::default(),
            dedupe: None,
        }
    }

    /// The REST client for look-ups (lead keys before a run, campaigns for
    /// `getCampaignsForSource`) and for `scheduleCampaign`.
    pub fn lookups(mut self, rest: RestClient) -> Self {
        self.rest = Some(rest);
        self
    }

    /// Run the campaign for the leads that were found even when some keys
    /// name no lead (the call still succeeds; the unknown keys are logged).
    /// Default: `false`, as SOAP: a key that names no single lead fails the
    /// whole call with 20103 and nothing runs.
    pub fn run_matched_leads(mut self, run: bool) -> Self {
        self.run_matched = run;
        self
    }

    /// Answer every authenticated call with success without calling the
    /// backend, logging the REST calls it would make. Default: `false`.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The bridge's public base URL (e.g. `https://bridge.example.com`),
    /// for the WSDL's `soap:address`. Default: from the request's `Host`.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Largest request body read. Default: [`DEFAULT_MAX_BODY_BYTES`].
    /// A larger body gets HTTP 413 after the bridge has read and thrown
    /// away the rest of it (up to 16 MiB), so that a client sending its
    /// whole body before reading reads the 413; a client that asked
    /// `Expect: 100-continue` gets it before sending the body.
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    /// Longest a connection may take to send a request's headers (or, idle
    /// between requests, to start the next one), to send its body, or to
    /// finish a TLS handshake; past it the connection is closed (a body
    /// too slow gets 408). Default: [`DEFAULT_READ_TIMEOUT`].
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Resend protection, off by default: a `requestCampaign` or
    /// `scheduleCampaign` equal to one this bridge answered within
    /// `window` (same SOAP user, campaign, leads in order, tokens, source
    /// and run time) is not run again: it gets the first call's answer, and
    /// one arriving while the first is still served waits for it (at most
    /// the [`read_timeout`](Bridge::read_timeout), then fault 20011 saying
    /// it was not run). Calls that provably ran nothing are not remembered,
    /// so their retries run. Turn it on when legacy clients resend calls
    /// that timed out on their side; it also suppresses a deliberate
    /// repeat within the window. The claims live in this process.
    ///
    /// ```
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// use std::time::Duration;
    /// use marketo_bridge::Bridge;
    /// use marketo_campaign::soap::Authenticator;
    /// let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    /// let bridge = Bridge::rest(sandbox.rest_client()?, auth).dedupe_window(Duration::from_secs(300));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn dedupe_window(mut self, window: Duration) -> Self {
        self.dedupe = (!window.is_zero()).then(|| dedupe::Dedupe::new(window));
        self
    }

    /// [`dedupe_window`](Bridge::dedupe_window) with the claims kept in the
    /// Redis at `url` (`redis://HOST:PORT/DB`), so that they hold across
    /// every bridge pointed at it: a resend reaching another bridge still
    /// gets the first call's answer. A claim is one `SET … NX` (atomic);
    /// if Redis cannot answer, the call is not run (fault 20011 saying so).
    ///
    /// ```no_run
    /// # let sandbox = marketo_sandbox::Sandbox::start()?;
    /// use std::time::Duration;
    /// use marketo_bridge::Bridge;
    /// use marketo_campaign::soap::Authenticator;
    /// let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    /// let bridge = Bridge::rest(sandbox.rest_client()?, auth)
    ///     .dedupe_window_in_redis(Duration::from_secs(300), "redis://127.0.0.1:6379/0")?;
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn dedupe_window_in_redis(mut self, window: Duration, url: &str) -> Result<Self, Error> {
        self.dedupe = if window.is_zero() {
            None
        } else {
            Some(dedupe::Dedupe::in_redis(window, url)?)
        };
        Ok(self)
    }

    /// The answer to one HTTP request.
    pub fn answer(&self, request: &HttpRequest<'_>) -> Answer {
        let (path, query) = request.url.split_once('?').unwrap_or((request.url, ""));
        match (request.method, path) {
            ("GET" | "HEAD", "/healthz") => return Answer::text(200, "ok\n"),
            ("GET", "/metrics") => {
                return Answer {
                    status: 200,
                    content_type: "text/plain; version=0.0.4",
                    body: self
                        .metrics
                        .render(self.rest.as_ref().map(RestClient::http_metrics).as_ref()),
                }
            }
            _ => {}
        }
        if !is_soap_path(path) {
            return Answer::text(404, "not found\n");
        }
        match request.method {
            "GET" | "HEAD" if asks_for_wsdl(query) => Answer {
                status: 200,
                content_type: CONTENT_TYPE,
                body: marketo_campaign::soap::wsdl(&self.endpoint_for(path, request.host)),
            },
            "POST" => self.soap_call(request),
            _ => Answer::text(405, "method not allowed\n"),
        }
    }

    /// The SOAP endpoint for `path`, as the WSDL names it.
    fn endpoint_for(&self, path: &str, host: Option<&str>) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match (&self.public_url, host) {
            (Some(url), _) if url.contains("/soap/mktows/") => url.clone(),
            (Some(url), _) => format!("{url}{path}"),
            (None, Some(host)) if plain_host(host) => format!("{scheme}://{host}{path}"),
            (None, _) => format!("{scheme}://127.0.0.1{path}"),
        }
    }

    fn soap_call(&self, request: &HttpRequest<'_>) -> Answer {
        let started = Instant::now();
        let mut call = CallLog {
            operation: String::from("unreadable"),
            campaign: String::new(),
            leads: 0,
            backend: "none",
        };
        let result = self.serve_soap(request, &mut call);
        let CallLog {
            operation,
            campaign,
            leads,
            backend,
        } = call;
        let elapsed = started.elapsed();
        let (answer, outcome, code) = match result {
            Ok(body) => (Answer::soap(body), "success", 0),
            Err(fault) => (Answer::fault(&fault), "fault", fault.code().code()),
        };
        let result_label = if code == 0 {
            "success".to_owned()
        } else {
            code.to_string()
        };
        self.metrics.record(&operation, &result_label, elapsed);
        // One line per call; never a key, a signature or a token.
        log::info!(
            "bridge call operation={operation} campaign={campaign:?} leads={leads} result={outcome} code={code} backend={backend} dry_run={} latency_ms={:.1}",
            self.dry_run,
            elapsed.as_secs_f64() * 1000.0
        );
        answer
    }

    fn serve_soap(&self, request: &HttpRequest<'_>, log: &mut CallLog) -> Result<String, Fault> {
        let mut limits = ReadLimits::default();
        limits.max_bytes = self.max_body;
        // Marketo ignored keys past the 100th; the bridge serves them all.
        limits.max_lead_keys = usize::MAX;
        let envelope = read_envelope_with(request.body, &limits)?;
        log.operation.clear();
        log.operation.push_str(envelope.operation_name());
        envelope.check_soap_action(request.soap_action)?;
        self.auth.verify(envelope.auth())?;
        let user = envelope.auth().user_id().to_owned();
        let operation = envelope.into_operation().map_err(|fault| {
            if fault.code() == SoapCode::RequestNotUnderstood
                && !SERVED.contains(&log.operation.as_str())
            {
                Fault::new(
                    SoapCode::RequestNotUnderstood,
                    format!(
                        "operation {} is not supported by the bridge; it serves {}",
                        log.operation,
                        SERVED.join(", ")
                    ),
                )
            } else {
                fault
            }
        })?;
        match operation {
            Operation::RequestCampaign(call) => {
                log.campaign = describe_campaign(&call);
                log.leads = call.lead_keys().len();
                let key = request_key(&user, &call);
                self.once(key, log, |log| self.request_campaign(&call, log))
            }
            Operation::ScheduleCampaign(call) => {
                log.campaign = format!("{:?} in {:?}", call.campaign_name(), call.program_name());
                let key = schedule_key(&user, &call);
                self.once(key, log, |log| self.schedule_campaign(&call, log))
            }
            Operation::GetCampaignsForSource(call) => self.campaigns_for_source(&call, log),
            Operation::SyncLead(call) => {
                log.leads = 1;
                let rest = self.lead_rest("syncLead")?;
                if self.dry_run {
                    return Err(Fault::new(
                        SoapCode::RequestNotUnderstood,
                        "syncLead is not served in dry-run mode; nothing was written",
                    ));
                }
                leads::sync_lead(rest, &self.fields, &call)
            }
            Operation::GetLead(call) => {
                log.leads = 1;
                leads::get_lead(self.lead_rest("getLead")?, &self.fields, &call)
            }
            Operation::ListOperation(call) => {
                log.leads = call.members().len();
                let rest = self.lead_rest("listOperation")?;
                if self.dry_run && call.operation() != ListOperationType::IsMemberOfList {
                    return Err(Fault::new(
                        SoapCode::RequestNotUnderstood,
                        "listOperation is not served in dry-run mode; nothing was done",
                    ));
                }
                leads::list_operation(rest, &call)
            }
            Operation::SyncMultipleLeads(call) => {
                log.leads = call.records().len();
                let rest = self.lead_rest("syncMultipleLeads")?;
                if self.dry_run {
                    return Err(Fault::new(
                        SoapCode::RequestNotUnderstood,
                        "syncMultipleLeads is not served in dry-run mode; nothing was written",
                    ));
                }
                leads::sync_multiple_leads(rest, &self.fields, &call)
            }
            Operation::GetMultipleLeads(call) => {
                leads::get_multiple_leads(self.lead_rest("getMultipleLeads")?, &self.fields, &call)
            }
            Operation::MergeLeads(call) => {
                let rest = self.lead_rest("mergeLeads")?;
                if self.dry_run {
                    return Err(Fault::new(
                        SoapCode::RequestNotUnderstood,
                        "mergeLeads is not served in dry-run mode; nothing was merged",
                    ));
                }
                leads::merge_leads(rest, &call)
            }
            Operation::GetLeadChanges(call) => {
                leads::get_lead_changes(self.lead_rest("getLeadChanges")?, &call)
            }
            Operation::GetLeadActivity(call) => {
                log.leads = 1;
                leads::get_lead_activity(self.lead_rest("getLeadActivity")?, &call)
            }
            Operation::DescribeMObject(call) => {
                leads::describe(self.lead_rest("describeMObject")?, &self.fields, &call)
            }
            // An operation the codec reads that this bridge does not serve.
            _ => Err(Fault::unsupported_operation(&log.operation)),
        }
    }

    /// Runs a campaign call through the resend protection, when it is on.
    fn once(
        &self,
        key: String,
        log: &mut CallLog,
        run: impl FnOnce(&mut CallLog) -> Result<String, Fault>,
    ) -> Result<String, Fault> {
        let Some(dedupe) = &self.dedupe else {
            return run(log);
        };
        match dedupe.claim(key, self.read_timeout) {
            dedupe::Claim::Answered(reply) => {
                log.backend = "deduplicated";
                reply
            }
            dedupe::Claim::Run(running) => {
                let reply = run(log);
                // Forgotten only when it provably ran nothing (never
                // called, not sent, refused): a retry of it must run.
                // Unknown, partly run and successful calls stay.
                let ran_nothing =
                    reply.is_err() && matches!(log.backend, "none" | "not_sent" | "refused");
                running.finish(&reply, !ran_nothing);
                reply
            }
        }
    }

    /// The REST client that serves lead operations: without one (a bridge
    /// built with [`Bridge::new`] and no [`lookups`](Bridge::lookups)),
    /// fault 20012 naming the operation.
    fn lead_rest(&self, operation: &str) -> Result<&RestClient, Fault> {
        self.rest
            .as_ref()
            .ok_or_else(|| Fault::unsupported_operation(operation))
    }

    fn request_campaign(
        &self,
        call: &RequestCampaign<'_>,
        log: &mut CallLog,
    ) -> Result<String, Fault> {
        let request = call.to_request()?;
        if self.dry_run {
            if let Some(rest) = &self.rest {
                for plan in rest.plan(&request).map_err(|e| log.failed(&e))? {
                    log::info!("bridge dry run: would send {} {}", plan.method, plan.url);
                }
            }
            log::info!(
                "bridge dry run: would request {} for {} lead key(s)",
                describe_campaign(call),
                request.leads().len()
            );
            return Ok(SUCCESS_REQUEST_CAMPAIGN.to_owned());
        }
        if let (Some(rest), true, false) = (&self.rest, self.direct, self.run_matched) {
            // One look-up for the check and the trigger.
            return match rest
                .request_campaign_all_or_nothing(&request)
                .map_err(|e| log.failed(&e))?
            {
                Err(unmatched) => Err(match unmatched.first() {
                    Some(first) => lead_not_found(first, unmatched.len()),
                    None => Fault::new(SoapCode::LeadNotFound, "Lead not found"),
                }),
                Ok(_) => {
                    log.backend = "accepted";
                    Ok(SUCCESS_REQUEST_CAMPAIGN.to_owned())
                }
            };
        }
        if let (Some(rest), false) = (&self.rest, self.run_matched) {
            let unmatched = rest
                .unmatched_leads(request.leads())
                .map_err(|e| log.failed(&e))?;
            if let Some(first) = unmatched.first() {
                return Err(lead_not_found(first, unmatched.len()));
            }
        }
        let outcome = self
            .requester
            .request_campaign(&request)
            .map_err(|e| log.failed(&e))?;
        log.backend = "accepted";
        let unmatched: Vec<&LeadKey> = outcome.unmatched().collect();
        if let Some(first) = unmatched.first() {
            if self.run_matched {
                log::warn!(
                    "bridge: {} lead key(s) named no single lead and did not run",
                    unmatched.len()
                );
            } else if outcome.accepted_chunks() == 0 {
                return Err(lead_not_found(first, unmatched.len()));
            } else {
                // The others ran: a fault would invite a resend.
                log::warn!(
                    "bridge: {} lead key(s) named no single lead at trigger time; the campaign ran for the others",
                    unmatched.len()
                );
            }
        }
        Ok(SUCCESS_REQUEST_CAMPAIGN.to_owned())
    }

    fn schedule_campaign(
        &self,
        call: &ScheduleCampaign<'_>,
        log: &mut CallLog,
    ) -> Result<String, Fault> {
        let Some(rest) = &self.rest else {
            return Err(Fault::unsupported_operation("scheduleCampaign"));
        };
        let run_at = call.run_at().map(parse_run_at).transpose()?;
        let target = CampaignTarget::named(
            call.campaign_name(),
            call.program_name(),
            call.program_tokens()?,
        );
        let request = ScheduleRequest::new(target, run_at)
            .map_err(|e| Fault::new(SoapCode::BadParameter, e.to_string()))?;
        if self.dry_run {
            log::info!("bridge dry run: would schedule {:?}", call.campaign_name());
            return Ok(SUCCESS_SCHEDULE_CAMPAIGN.to_owned());
        }
        rest.schedule_campaign(&request)
            .map_err(|e| log.failed(&e))?;
        log.backend = "accepted";
        Ok(SUCCESS_SCHEDULE_CAMPAIGN.to_owned())
    }

    fn campaigns_for_source(
        &self,
        call: &GetCampaignsForSource<'_>,
        log: &mut CallLog,
    ) -> Result<String, Fault> {
        let Some(rest) = &self.rest else {
            return Err(Fault::unsupported_operation("getCampaignsForSource"));
        };
        if call.source() != Source::Mktows {
            // REST's campaigns.json knows "requestable by the API" only.
            return Err(Fault::new(
                SoapCode::RequestNotUnderstood,
                format!(
                    "getCampaignsForSource with source {} is not supported by the bridge: Marketo's REST API lists only the campaigns the API may request (source MKTOWS)",
                    call.source().as_str()
                ),
            ));
        }
        let campaigns = rest.requestable_campaigns().map_err(|e| log.failed(&e))?;
        log.backend = "accepted";
        let wanted = call.name().map(str::to_lowercase);
        let exact = call.exact_name().unwrap_or(false);
        let mut records = String::new();
        let mut count = 0;
        for (id, name, description) in &campaigns {
            let keep = match (&wanted, exact) {
                (None, _) => true,
                (Some(_), true) => Some(name.as_str()) == call.name(),
                (Some(w), false) => name.to_lowercase().contains(w.as_str()),
            };
            if keep {
                count += 1;
                let _ = write!(
                    records,
                    "<campaignRecord><id>{id}</id><name>{}</name><description>{}</description></campaignRecord>",
                    escape_text(name),
                    escape_text(description)
                );
            }
        }
        Ok(format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Body>"#,
                "<ns1:successGetCampaignsForSource><result><returnCount>{count}</returnCount>",
                "<campaignRecordList>{records}</campaignRecordList></result></ns1:successGetCampaignsForSource>",
                "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
            ),
            count = count,
            records = records
        ))
    }
}

impl<R: CampaignRequester + Send + Sync + 'static> Bridge<R> {
    /// Serves HTTP on `addr` until [`RunningBridge::shutdown`]. Refuses a
    /// non-loopback address unless `allow_non_loopback` (the bridge
    /// triggers campaigns for whoever holds a SOAP key: serve TLS
    /// ([`serve_tls`](Bridge::serve_tls)) or put TLS in front of it before
    /// exposing it).
    pub fn serve(
        self,
        addr: std::net::SocketAddr,
        allow_non_loopback: bool,
    ) -> Result<RunningBridge, Error> {
        server::serve(Arc::new(self), addr, allow_non_loopback, None)
    }

    /// Serves HTTPS on `addr` with a certificate chain and its private key
    /// (PEM: `CERTIFICATE`s, leaf first, and an unencrypted PKCS#8
    /// `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`), TLS 1.2 and
    /// 1.3 through rustls 0.23. The WSDL's `soap:address` is then `https://`
    /// (unless [`public_url`](Bridge::public_url) says otherwise). Otherwise
    /// as [`serve`](Bridge::serve).
    pub fn serve_tls(
        mut self,
        addr: std::net::SocketAddr,
        allow_non_loopback: bool,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<RunningBridge, Error> {
        let tls = server::Tls::new(cert_pem, key_pem)?;
        self.https = true;
        server::serve(Arc::new(self), addr, allow_non_loopback, Some(tls))
    }
}

/// The SOAP users to accept, from a file of one `USER_ID ENCRYPTION_KEY`
/// pair a line (white space between them; blank lines and lines starting
/// with `#` are skipped). The error names a bad line by number, never its
/// content.
pub fn authenticator_from_file(path: &std::path::Path) -> Result<Authenticator, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
    let mut auth: Option<Authenticator> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(user), Some(key), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(Error::Config(format!(
                "{} line {}: expected USER_ID ENCRYPTION_KEY",
                path.display(),
                n + 1
            )));
        };
        auth = Some(match auth {
            Some(auth) => auth.user(user, key),
            None => Authenticator::new(user, key),
        });
    }
    auth.ok_or_else(|| Error::Config(format!("{} names no SOAP user", path.display())))
}

/// What the call log line says about a call.
struct CallLog {
    operation: String,
    campaign: String,
    leads: usize,
    /// `none` (not called), `accepted`, or the failed call's delivery
    /// (`not_sent`, `refused`, `unknown`).
    backend: &'static str,
}

impl CallLog {
    /// The fault for a backend error, noting its delivery.
    fn failed(&mut self, err: &Error) -> Fault {
        self.backend = match err {
            // Chunks before the failed one ran, whatever the failed one's
            // delivery.
            Error::Incomplete(outcome) if outcome.accepted_chunks() > 0 => "partial",
            other => other.delivery().as_str(),
        };
        faults::fault_for(err)
    }
}

fn lead_not_found(first: &LeadKey, count: usize) -> Fault {
    let more = if count > 1 {
        format!(" (and {} more)", count - 1)
    } else {
        String::new()
    };
    Fault::new(
        SoapCode::LeadNotFound,
        format!("Lead not found: {first}{more}; the campaign did not run"),
    )
}

/// What makes two `requestCampaign` calls the same one: the SOAP user,
/// source, campaign, lead keys in order and tokens.
fn request_key(user: &str, call: &RequestCampaign<'_>) -> String {
    let mut key = format!(
        "requestCampaign\u{0}{user}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{:?}",
        call.source().as_str(),
        call.campaign_id(),
        call.campaign_name(),
        call.program_name()
    );
    for lead in call.lead_keys() {
        let _ = write!(key, "\u{1}{}:{}", lead.key_type().as_str(), lead.value());
    }
    for token in call.tokens() {
        let _ = write!(key, "\u{2}{}={}", token.name(), token.value());
    }
    key
}

/// What makes two `scheduleCampaign` calls the same one.
fn schedule_key(user: &str, call: &ScheduleCampaign<'_>) -> String {
    let mut key = format!(
        "scheduleCampaign\u{0}{user}\u{0}{}\u{0}{}\u{0}{:?}",
        call.program_name(),
        call.campaign_name(),
        call.run_at()
    );
    for token in call.tokens() {
        let _ = write!(key, "\u{2}{}={}", token.name(), token.value());
    }
    key
}

fn describe_campaign(call: &RequestCampaign<'_>) -> String {
    match (
        call.campaign_id(),
        call.campaign_name(),
        call.program_name(),
    ) {
        (Some(id), _, _) => id.to_string(),
        (None, Some(name), Some(program)) => format!("{name:?} in {program:?}"),
        _ => String::new(),
    }
}

/// `campaignRunAt`: an `xs:dateTime`, with a zone or (read as UTC) without.
fn parse_run_at(text: &str) -> Result<DateTime<Utc>, Fault> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.to_utc());
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|_| {
            Fault::new(
                SoapCode::BadParameter,
                "campaignRunAt is not an xs:dateTime",
            )
        })
}

/// `/soap/mktows/2_0` … `/soap/mktows/2_9`.
fn is_soap_path(path: &str) -> bool {
    matches!(
        path.strip_prefix("/soap/mktows/").map(str::as_bytes),
        Some([b'2', b'_', b'0'..=b'9'])
    )
}

/// `?WSDL`, `?wsdl`, `?wsdl=`, … (the first parameter's name, any case).
fn asks_for_wsdl(query: &str) -> bool {
    let first = query.split('&').next().unwrap_or("");
    first
        .split('=')
        .next()
        .unwrap_or("")
        .eq_ignore_ascii_case("wsdl")
}

/// A `Host` value that can go into a URL as it is: `host[:port]`.
fn plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries() {
        assert!(is_soap_path("/soap/mktows/2_0"));
        assert!(is_soap_path("/soap/mktows/2_9"));
        assert!(!is_soap_path("/soap/mktows/3_0"));
        assert!(!is_soap_path("/soap/mktows/2_10"));
        assert!(asks_for_wsdl("WSDL"));
        assert!(asks_for_wsdl("wsdl"));
        assert!(asks_for_wsdl("Wsdl=&x=1"));
        assert!(!asks_for_wsdl("x=1&wsdl"));
        assert!(plain_host("127.0.0.1:8080"));
        assert!(!plain_host("evil.com/\"><x"));
    }

    use marketo_campaign::soap::{request_signature, w3c_timestamp, DEFAULT_TIMEZONE};
    use marketo_campaign::StubRequester;
    use marketo_campaign::{Clock, Delivery, SystemClock};

    const USER: &str = "bigcorp1_461839624B16E06BA2D663";
    const KEY: &str = "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66";

    fn request_campaign_body(key: &str) -> String {
        let timestamp = w3c_timestamp(SystemClock.now(), DEFAULT_TIMEZONE);
        let signature = request_signature(key, &timestamp, USER);
        format!(
            r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Header><ns1:AuthenticationHeader><mktowsUserId>{USER}</mktowsUserId><requestSignature>{signature}</requestSignature><requestTimestamp>{timestamp}</requestTimestamp></ns1:AuthenticationHeader></SOAP-ENV:Header><SOAP-ENV:Body><ns1:paramsRequestCampaign><source>MKTOWS</source><campaignId>4496</campaignId><leadList><leadKey><keyType>IDNUM</keyType><keyValue>7</keyValue></leadKey></leadList></ns1:paramsRequestCampaign></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
        )
    }

    fn post<'a>(body: &'a str) -> HttpRequest<'a> {
        HttpRequest {
            method: "POST",
            url: "/soap/mktows/2_9",
            host: Some("127.0.0.1:1"),
            soap_action: Some("\"http://www.marketo.com/mktows/requestCampaign\""),
            body: body.as_bytes(),
        }
    }

    #[test]
    fn any_requester_behind_the_bridge() {
        let bridge = Bridge::new(StubRequester::new(), Authenticator::new(USER, KEY));
        let body = request_campaign_body(KEY);
        let answer = bridge.answer(&post(&body));
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body, SUCCESS_REQUEST_CAMPAIGN);
        let calls = bridge.requester.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].leads()[0].to_string(), "IDNUM:7");

        // A wrong key: 20014, the requester not called.
        let body = request_campaign_body("wrong");
        let answer = bridge.answer(&post(&body));
        assert_eq!(answer.status, 500);
        assert!(
            answer.body.contains("<code>20014</code>"),
            "{}",
            answer.body
        );
        assert_eq!(bridge.requester.calls().len(), 1);
    }

    #[test]
    fn a_backend_of_unknown_outcome_is_a_may_have_run_fault() {
        let failing = StubRequester::failing(Error::Transport {
            delivery: Delivery::Unknown,
            message: "reset after sending".into(),
            source: None,
        });
        let bridge = Bridge::new(failing, Authenticator::new(USER, KEY));
        let body = request_campaign_body(KEY);
        let answer = bridge.answer(&post(&body));
        assert_eq!(answer.status, 500);
        assert!(
            answer.body.contains("<code>20011</code>"),
            "{}",
            answer.body
        );
        assert!(answer.body.contains("may have run"), "{}", answer.body);
        assert_eq!(bridge.requester.calls().len(), 1, "not repeated");
    }

    #[test]
    fn users_file_errors_never_quote_a_line() {
        let dir = std::env::temp_dir().join(format!("mc-bridge-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "# users\n\nuser1 key1\nuser2   key2\n").unwrap();
        let auth = authenticator_from_file(&good).unwrap();
        assert!(format!("{auth:?}").contains("user2"));
        assert!(!format!("{auth:?}").contains("key2"));
        let bad = dir.join("bad");
        std::fs::write(&bad, "user1 key1\nuser2 secret-key extra\n").unwrap();
        let err = authenticator_from_file(&bad).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("secret-key"), "{err}");
        let empty = dir.join("empty");
        std::fs::write(&empty, "# nobody\n").unwrap();
        assert!(authenticator_from_file(&empty).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn run_at_with_or_without_zone() {
        let with = parse_run_at("2026-08-01T10:00:00-07:00").unwrap();
        assert_eq!(with.to_rfc3339(), "2026-08-01T17:00:00+00:00");
        let without = parse_run_at("2026-08-01T10:00:00").unwrap();
        assert_eq!(without.to_rfc3339(), "2026-08-01T10:00:00+00:00");
        assert_eq!(
            parse_run_at("tomorrow").unwrap_err().code(),
            SoapCode::BadParameter
        );
    }
}
