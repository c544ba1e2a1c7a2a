//! Fault injection: the public [`Fault`], [`FaultRule`], [`FaultEvent`]
//! and [`Api`] types, the plan that decides which call a fault strikes,
//! and the spoiled bodies. The sandbox's module documentation has the
//! table of faults; [`super::net`] applies them.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The APIs the sandbox serves, as fault rules and the fault log name them.
///
/// In JSON: `"soap"`, `"rest"`, `"identity"`, `"any"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Api {
    /// SOAP calls: any request to `/soap/mktows/2_9`.
    Soap,
    /// REST API calls: any request under `/rest/` (look-ups, triggers,
    /// schedules).
    Rest,
    /// The identity service: requests to `/identity/oauth/token`. Only
    /// rules for this API fault them.
    Identity,
    /// In a rule: SOAP and REST calls (not identity calls). In a
    /// [`FaultEvent`] of [`Fault::RefuseConnections`]: every port.
    Any,
}

impl Api {
    /// `soap`, `rest`, `identity` or `any`.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Soap => "soap",
            Api::Rest => "rest",
            Api::Identity => "identity",
            Api::Any => "any",
        }
    }

    /// Whether a rule for `self` matches a call to `call`.
    fn matches(self, call: Api) -> bool {
        match self {
            Api::Any => matches!(call, Api::Soap | Api::Rest),
            api => api == call,
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that goes wrong with a call, on purpose.
///
/// Each variant says whether the campaign runs when it strikes (see
/// [`Fault::runs`]) and what a client sees. In JSON (for
/// `POST /sandbox/faults`) a fault is an object with a `kind` in
/// snake case and the variant's fields; durations are whole milliseconds:
///
/// ```
/// use std::time::Duration;
/// use marketo_campaign::sandbox::Fault;
/// let fault: Fault = serde_json::from_str(r#"{"kind":"http_status","status":502,"body":false}"#)?;
/// assert_eq!(fault, Fault::HttpStatus { status: 502, body: false, runs: false });
/// let delay: Fault = serde_json::from_str(r#"{"kind":"delay","ms":1500}"#)?;
/// assert_eq!(delay, Fault::Delay(Duration::from_millis(1500)));
/// assert_eq!(serde_json::to_string(&Fault::SoapFault(20023))?, r#"{"kind":"soap_fault","code":20023}"#);
/// assert!(serde_json::from_str::<Fault>(r#"{"kind":"http_status","status":200}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "FaultRepr", into = "FaultRepr")]
#[non_exhaustive]
pub enum Fault {
    /// The port serving the rule's API stops listening: connection attempts
    /// are refused (`ECONNREFUSED`), and idle keep-alive connections on it
    /// are closed so that pooled clients reconnect and are refused too.
    /// Nothing runs. JSON: `{"kind":"refuse_connections"}`, optionally with
    /// `"ms"`.
    ///
    /// This fault strikes ports, not calls: the rule's schedule says when
    /// refusing starts, either at once (on call 1, the default) or once
    /// `n - 1` matching calls have been answered (on call `n`; the call
    /// before is answered with `Connection: close`). Refusing lasts
    /// `lasting`, or until the faults are cleared when `None`. The refused
    /// call counts as the rule's matching call; while refusing, the rule
    /// does not strike again, and after a timed refusal it strikes again
    /// as its schedule and [`times`](FaultRule::times) allow. The fault log
    /// records each refusal once, with call number 0.
    ///
    /// SOAP and REST share one port unless SOAP has its own
    /// ([`SandboxConfig::soap_listen`](super::SandboxConfig::soap_listen)),
    /// so refusing one refuses both (and the admin endpoints on that port:
    /// over HTTP, give a duration or use the other port).
    RefuseConnections {
        /// How long the port refuses; `None`: until the faults are cleared.
        lasting: Option<Duration>,
    },
    /// The sandbox reads the whole request, then closes the connection
    /// without answering. Nothing runs. The client sees the connection
    /// closed (end of stream) while waiting for the answer. JSON:
    /// `{"kind":"reset_after_request"}`.
    ResetAfterRequest,
    /// The call runs; the sandbox sends the status line and header fields
    /// (announcing the full `Content-Length`) and the first half of the
    /// body, then closes the connection. The client sees the connection
    /// closed mid-body. JSON: `{"kind":"reset_mid_response"}`.
    ResetMidResponse,
    /// The call runs; the sandbox waits this long, then sends the normal
    /// answer, so a client with a shorter timeout gives up after the
    /// campaign ran. JSON: `{"kind":"delay","ms":2000}`.
    Delay(Duration),
    /// The sandbox answers with this HTTP status (400 to 599), as a
    /// gateway or load balancer in front of Marketo would. JSON:
    /// `{"kind":"http_status","status":503,"body":true,"runs":false}`
    /// (`body` defaults to true, `runs` to false).
    HttpStatus {
        /// The status, from 400 to 599 (e.g. 500, 502, 503).
        status: u16,
        /// With a short `text/html` body (as a gateway's error page), or
        /// with an empty one.
        body: bool,
        /// Whether the call runs first (as when a gateway times out while
        /// Marketo goes on and runs the campaign), or is answered without
        /// running (as when a gateway finds no backend).
        runs: bool,
    },
    /// The call runs; the answer keeps its status and content type, but
    /// its body is complete yet not well-formed: the last end tag of an XML
    /// body is misspelled, the last closing bracket of a JSON body is the
    /// wrong one. JSON: `{"kind":"malformed_body"}`.
    MalformedBody,
    /// The call runs; the answer keeps its status and content type, but
    /// only the first half of its body is sent, with a `Content-Length`
    /// that matches (so the truncation shows only in the content). JSON:
    /// `{"kind":"truncated_body"}`.
    TruncatedBody,
    /// The call runs; the answer is HTTP 200 with an empty body. JSON:
    /// `{"kind":"empty_ok"}`.
    EmptyOk,
    /// The sandbox answers a SOAP fault with this Marketo code (HTTP 500,
    /// `mktServiceException`), as Marketo does when it refuses a call.
    /// Nothing runs. Strikes SOAP calls only. JSON:
    /// `{"kind":"soap_fault","code":20011}`.
    SoapFault(u32),
    /// The sandbox answers HTTP 200 with `success:false` and this Marketo
    /// error code, as Marketo does when it refuses a call. Nothing runs.
    /// Strikes REST API calls only. JSON: `{"kind":"rest_error","code":606}`.
    RestError(u32),
}

impl Fault {
    /// Whether the call runs (and, if the sandbox accepts it, is journaled)
    /// when this fault strikes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use marketo_campaign::sandbox::Fault;
    /// assert!(Fault::Delay(Duration::from_secs(2)).runs());
    /// assert!(Fault::ResetMidResponse.runs());
    /// assert!(!Fault::ResetAfterRequest.runs());
    /// assert!(!Fault::HttpStatus { status: 503, body: true, runs: false }.runs());
    /// assert!(Fault::HttpStatus { status: 504, body: true, runs: true }.runs());
    /// ```
    pub fn runs(&self) -> bool {
        match self {
            Fault::RefuseConnections { .. }
            | Fault::ResetAfterRequest
            | Fault::SoapFault(_)
            | Fault::RestError(_) => false,
            Fault::HttpStatus { runs, .. } => *runs,
            Fault::ResetMidResponse
            | Fault::Delay(_)
            | Fault::MalformedBody
            | Fault::TruncatedBody
            | Fault::EmptyOk => true,
        }
    }

    /// The API whose calls this fault can strike: [`Api::Soap`] for SOAP
    /// faults, [`Api::Rest`] for REST errors, [`Api::Any`] otherwise.
    pub fn api(&self) -> Api {
        match self {
            Fault::SoapFault(_) => Api::Soap,
            Fault::RestError(_) => Api::Rest,
            _ => Api::Any,
        }
    }

    /// Why this fault cannot be used, if it cannot.
    fn problem(&self) -> Option<String> {
        match self {
            Fault::HttpStatus { status, .. } if !(400..=599).contains(status) => Some(format!(
                "http_status needs a status from 400 to 599, not {status}"
            )),
            _ => None,
        }
    }
}

/// The JSON shape of a [`Fault`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FaultRepr {
    RefuseConnections {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ms: Option<u64>,
    },
    ResetAfterRequest {},
    ResetMidResponse {},
    Delay {
        ms: u64,
    },
    HttpStatus {
        status: u16,
        #[serde(default = "yes")]
        body: bool,
        #[serde(default)]
        runs: bool,
    },
    MalformedBody {},
    TruncatedBody {},
    EmptyOk {},
    SoapFault {
        code: u32,
    },
    RestError {
        code: u32,
    },
}

fn yes() -> bool {
    true
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl TryFrom<FaultRepr> for Fault {
    type Error = String;

    fn try_from(repr: FaultRepr) -> Result<Self, String> {
        let fault = match repr {
            FaultRepr::RefuseConnections { ms } => Fault::RefuseConnections {
                lasting: ms.map(Duration::from_millis),
            },
            FaultRepr::ResetAfterRequest {} => Fault::ResetAfterRequest,
            FaultRepr::ResetMidResponse {} => Fault::ResetMidResponse,
            FaultRepr::Delay { ms } => Fault::Delay(Duration::from_millis(ms)),
            FaultRepr::HttpStatus { status, body, runs } => {
                Fault::HttpStatus { status, body, runs }
            }
            FaultRepr::MalformedBody {} => Fault::MalformedBody,
            FaultRepr::TruncatedBody {} => Fault::TruncatedBody,
            FaultRepr::EmptyOk {} => Fault::EmptyOk,
            FaultRepr::SoapFault { code } => Fault::SoapFault(code),
            FaultRepr::RestError { code } => Fault::RestError(code),
        };
        match fault.problem() {
            Some(problem) => Err(problem),
            None => Ok(fault),
        }
    }
}

impl From<Fault> for FaultRepr {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::RefuseConnections { lasting } => FaultRepr::RefuseConnections {
                ms: lasting.map(millis),
            },
            Fault::ResetAfterRequest => FaultRepr::ResetAfterRequest {},
            Fault::ResetMidResponse => FaultRepr::ResetMidResponse {},
            Fault::Delay(duration) => FaultRepr::Delay {
                ms: millis(duration),
            },
            Fault::HttpStatus { status, body, runs } => {
                FaultRepr::HttpStatus { status, body, runs }
            }
            Fault::MalformedBody => FaultRepr::MalformedBody {},
            Fault::TruncatedBody => FaultRepr::TruncatedBody {},
            Fault::EmptyOk => FaultRepr::EmptyOk {},
            Fault::SoapFault(code) => FaultRepr::SoapFault { code },
            Fault::RestError(code) => FaultRepr::RestError { code },
        }
    }
}

/// Which of a rule's matching calls it strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Schedule {
    /// Every matching call.
    Always,
    /// Only the Nth matching call (1-based).
    OnCall(u64),
    /// Every Nth matching call: the Nth, the 2Nth, ...
    Every(u64),
}

impl Schedule {
    /// Whether the `seen`th matching call is struck.
    fn strikes(self, seen: u64) -> bool {
        match self {
            Schedule::Always => true,
            Schedule::OnCall(n) => seen == n,
            Schedule::Every(n) => n != 0 && seen % n == 0,
        }
    }
}

/// A fault and the calls it strikes.
///
/// Each rule counts the calls it matches (those of its [`Api`] that its
/// fault can strike), from 1, whether or not it strikes them. When several
/// rules strike the same call, the one added first applies; the others
/// count the call without using up a strike.
///
/// In JSON: `{"fault": <Fault>, "api": "soap", "on_call": 3}`, or
/// `"every": 2`, or neither (every call); `"times"` limits the strikes;
/// `"api"` defaults to [`Fault::api`].
///
/// ```
/// use marketo_campaign::sandbox::{Api, Fault, FaultRule, Schedule};
/// let rule = FaultRule::every(Fault::EmptyOk, 2).api(Api::Rest).times(3);
/// assert_eq!(rule.schedule(), Schedule::Every(2));
/// let json = serde_json::to_string(&rule)?;
/// assert_eq!(json, r#"{"fault":{"kind":"empty_ok"},"api":"rest","every":2,"times":3}"#);
/// assert_eq!(serde_json::from_str::<FaultRule>(&json)?, rule);
/// let rule: FaultRule = serde_json::from_str(r#"{"fault":{"kind":"soap_fault","code":20011},"on_call":1}"#)?;
/// assert_eq!(rule, FaultRule::on_call(Fault::SoapFault(20011), 1));
/// assert_eq!(rule.api_of(), Api::Soap);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RuleRepr", into = "RuleRepr")]
pub struct FaultRule {
    fault: Fault,
    api: Api,
    schedule: Schedule,
    times: Option<u32>,
}

impl FaultRule {
    /// Strikes every matching call.
    pub fn always(fault: Fault) -> Self {
        FaultRule::with(fault, Schedule::Always)
    }

    /// Strikes only the `n`th matching call (1-based).
    pub fn on_call(fault: Fault, n: u64) -> Self {
        FaultRule::with(fault, Schedule::OnCall(n))
    }

    /// Strikes every `n`th matching call.
    pub fn every(fault: Fault, n: u64) -> Self {
        FaultRule::with(fault, Schedule::Every(n))
    }

    fn with(fault: Fault, schedule: Schedule) -> Self {
        FaultRule {
            api: fault.api(),
            fault,
            schedule,
            times: None,
        }
    }

    /// Matches the calls of `api` only. Default: [`Fault::api`] (SOAP and
    /// REST calls for most faults). A SOAP fault strikes only SOAP calls
    /// and a REST error only REST calls, whatever this says.
    pub fn api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }

    /// Strikes at most `n` times. Default: no limit.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// The fault.
    pub fn fault(&self) -> &Fault {
        &self.fault
    }

    /// The API whose calls the rule matches.
    pub fn api_of(&self) -> Api {
        self.api
    }

    /// Which matching calls it strikes.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// The most strikes, if limited.
    pub fn max_strikes(&self) -> Option<u32> {
        self.times
    }

    /// Whether the rule matches a call to `api`.
    fn matches(&self, api: Api) -> bool {
        let fault_can = match self.fault {
            Fault::SoapFault(_) => api == Api::Soap,
            Fault::RestError(_) => api == Api::Rest,
            _ => true,
        };
        fault_can && self.api.matches(api)
    }

    /// Why the rule cannot be used, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        if let Some(problem) = self.fault.problem() {
            return Some(problem);
        }
        match self.schedule {
            Schedule::OnCall(0) | Schedule::Every(0) => {
                return Some("calls are counted from 1: use on_call or every with n >= 1".into())
            }
            _ => {}
        }
        if self.times == Some(0) {
            return Some("times must be at least 1".into());
        }
        let strikable = [Api::Soap, Api::Rest, Api::Identity]
            .into_iter()
            .any(|api| self.matches(api));
        if !strikable {
            return Some(format!(
                "a rule for {} calls can never strike with {}",
                self.api,
                match self.fault {
                    Fault::SoapFault(_) => "a SOAP fault (SOAP calls only)",
                    Fault::RestError(_) => "a REST error (REST calls only)",
                    _ => "this fault",
                }
            ));
        }
        None
    }
}

/// The JSON shape of a [`FaultRule`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRepr {
    fault: Fault,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api: Option<Api>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_call: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    every: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<u32>,
}

impl TryFrom<RuleRepr> for FaultRule {
    type Error = String;

    fn try_from(repr: RuleRepr) -> Result<Self, String> {
        let mut rule = match (repr.on_call, repr.every) {
            (Some(_), Some(_)) => return Err("give on_call or every, not both".into()),
            (Some(n), None) => FaultRule::on_call(repr.fault, n),
            (None, Some(n)) => FaultRule::every(repr.fault, n),
            (None, None) => FaultRule::always(repr.fault),
        };
        if let Some(api) = repr.api {
            rule = rule.api(api);
        }
        rule.times = repr.times;
        match rule.problem() {
            Some(problem) => Err(problem),
            None => Ok(rule),
        }
    }
}

impl From<FaultRule> for RuleRepr {
    fn from(rule: FaultRule) -> Self {
        let (on_call, every) = match rule.schedule {
            Schedule::Always => (None, None),
            Schedule::OnCall(n) => (Some(n), None),
            Schedule::Every(n) => (None, Some(n)),
        };
        RuleRepr {
            fault: rule.fault,
            api: Some(rule.api),
            on_call,
            every,
            times: rule.times,
        }
    }
}

/// A fault that struck, as [`Sandbox::fault_log`](super::Sandbox::fault_log)
/// and `GET /sandbox/faults/log` list it.
///
/// ```json
/// {"api":"soap","call":2,"path":"/soap/mktows/2_9","fault":{"kind":"delay","ms":2000},"ran":true}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FaultEvent {
    /// The API of the call struck ([`Api::Soap`], [`Api::Rest`] or
    /// [`Api::Identity`]); for [`Fault::RefuseConnections`], the rule's API.
    pub api: Api,
    /// Which call of that API it was, counted from 1 since the sandbox
    /// started (every call counts, faulted or not); 0 for
    /// [`Fault::RefuseConnections`], which strikes ports, not calls.
    pub call: u64,
    /// The request path (without the query); empty for
    /// [`Fault::RefuseConnections`].
    pub path: String,
    /// The fault.
    pub fault: Fault,
    /// Whether the campaign ran for that call: the call wrote a journal
    /// entry. Always false for faults that do not run; for faults that
    /// run, true only if the call itself succeeded and ran or scheduled a
    /// campaign (a look-up or a refused call writes nothing).
    pub ran: bool,
}

/// A port to refuse, as a refuse rule asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The rule's API, which says which port.
    pub(crate) api: Api,
    /// How long; `None`: until cleared.
    pub(crate) lasting: Option<Duration>,
}

/// A rule in force and its counts.
#[derive(Debug)]
struct Active {
    rule: FaultRule,
    /// Matching calls seen.
    seen: u64,
    /// Strikes so far.
    struck: u32,
    /// For a refuse rule that struck: until when its refusal lasts
    /// (`Some(None)`: until cleared).
    refusing: Option<Option<Instant>>,
}

impl Active {
    fn spent(&self) -> bool {
        self.rule.times.is_some_and(|max| self.struck >= max)
    }

    /// A refuse rule's refusal when it is due before the next matching call.
    fn refusal_due(&mut self) -> Option<Refusal> {
        let Fault::RefuseConnections { lasting } = self.rule.fault else {
            return None;
        };
        let now = Instant::now();
        let still_refusing = match self.refusing {
            Some(None) => true,
            Some(Some(until)) => now < until,
            None => false,
        };
        if still_refusing
            || self.spent()
            || !self.rule.schedule.strikes(self.seen.saturating_add(1))
        {
            return None;
        }
        self.refusing = Some(lasting.and_then(|d| now.checked_add(d)));
        self.struck = self.struck.saturating_add(1);
        // Refused connections carry no call to count: count the one this
        // refusal stands for, so an `on_call` rule refuses once.
        self.seen = self.seen.saturating_add(1);
        Some(Refusal {
            api: self.rule.api,
            lasting,
        })
    }
}

/// What the plan says about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Strike {
    /// The call's number among its API's calls, from 1.
    pub(crate) call: u64,
    /// The fault that strikes it, if any.
    pub(crate) fault: Option<Fault>,
}

#[derive(Debug, Default)]
struct Plan {
    rules: Vec<Active>,
    /// Calls seen per API: SOAP, REST, identity.
    calls: [u64; 3],
}

/// The rules in force, the per-API call counts and the fault log.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    plan: Mutex<Plan>,
    log: Mutex<Vec<FaultEvent>>,
}

fn api_index(api: Api) -> Option<usize> {
    match api {
        Api::Soap => Some(0),
        Api::Rest => Some(1),
        Api::Identity => Some(2),
        Api::Any => None,
    }
}

impl Faults {
    pub(crate) fn new(rules: impl IntoIterator<Item = FaultRule>) -> Self {
        let faults = Faults::default();
        for rule in rules {
            // Refusals due at start are taken by `refusals_due`.
            faults.lock().rules.push(Active {
                rule,
                seen: 0,
                struck: 0,
                refusing: None,
            });
        }
        faults
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a rule; returns the refusals now due.
    pub(crate) fn add(&self, rule: FaultRule) -> Vec<Refusal> {
        let mut plan = self.lock();
        plan.rules.push(Active {
            rule,
            seen: 0,
            struck: 0,
            refusing: None,
        });
        self.take_refusals(&mut plan)
    }

    /// Removes every rule.
    pub(crate) fn clear(&self) {
        self.lock().rules.clear();
    }

    /// The rules in force, in order.
    pub(crate) fn rules(&self) -> Vec<FaultRule> {
        self.lock().rules.iter().map(|a| a.rule.clone()).collect()
    }

    /// Counts a call to `api` and says which fault, if any, strikes it.
    pub(crate) fn on_call(&self, api: Api) -> Strike {
        let mut plan = self.lock();
        let call = match api_index(api) {
            Some(i) => {
                plan.calls[i] = plan.calls[i].saturating_add(1);
                plan.calls[i]
            }
            None => 0,
        };
        let mut fault = None;
        for active in plan.rules.iter_mut().filter(|a| a.rule.matches(api)) {
            active.seen = active.seen.saturating_add(1);
            if matches!(active.rule.fault, Fault::RefuseConnections { .. }) {
                continue;
            }
            if fault.is_none() && !active.spent() && active.rule.schedule.strikes(active.seen) {
                active.struck = active.struck.saturating_add(1);
                fault = Some(active.rule.fault.clone());
            }
        }
        Strike { call, fault }
    }

    /// The refusals due now (before the next matching call of some rule),
    /// each logged.
    pub(crate) fn refusals_due(&self) -> Vec<Refusal> {
        let mut plan = self.lock();
        self.take_refusals(&mut plan)
    }

    fn take_refusals(&self, plan: &mut Plan) -> Vec<Refusal> {
        let mut due = Vec::new();
        for active in &mut plan.rules {
            if let Some(refusal) = active.refusal_due() {
                self.record(FaultEvent {
                    api: refusal.api,
                    call: 0,
                    path: String::new(),
                    fault: active.rule.fault.clone(),
                    ran: false,
                });
                due.push(refusal);
            }
        }
        due
    }

    /// Logs a fault that struck.
    pub(crate) fn record(&self, event: FaultEvent) {
        log::debug!(
            "sandbox fault on {} call {}: {:?} (ran: {})",
            event.api,
            event.call,
            event.fault,
            event.ran
        );
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    /// Every fault that struck, in order.
    pub(crate) fn events(&self) -> Vec<FaultEvent> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Empties the fault log.
    pub(crate) fn clear_log(&self) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// `body` made not well-formed while keeping its length about the same:
/// the last end tag of XML gets a stray letter, the last closing bracket
/// of JSON becomes the other kind; anything else gets a stray `<` in front.
pub(crate) fn malformed(body: &[u8]) -> Vec<u8> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let mut out = body.to_vec();
    match first {
        Some(b'<') => {
            if let Some(at) = body.windows(2).rposition(|w| w == b"</") {
                out.insert(at + 2, b'x');
                return out;
            }
        }
        Some(b'{' | b'[') => {
            if let Some(at) = body.iter().rposition(|&b| b == b'}' || b == b']') {
                out[at] = if body[at] == b'}' { b']' } else { b'}' };
                return out;
            }
        }
        _ => {}
    }
    out.insert(0, b'<');
    out
}

/// The first half of `body`.
pub(crate) fn truncated(body: &[u8]) -> Vec<u8> {
    body[..body.len() / 2].to_vec()
}

/// The text Marketo gives with a SOAP fault code.
pub(crate) fn soap_fault_text(code: u32) -> &'static str {
    match code {
        20011 => "Internal error",
        20012 => "Request not understood",
        20013 => "Access denied",
        20014 => "Authentication failed",
        20015 => "Request limit exceeded",
        20016 => "Request expired",
        20017 => "Invalid request",
        20023 => "Rate limit exceeded",
        20024 => "Concurrent request limit exceeded",
        20101 => "Lead key required",
        20102 => "Bad lead key",
        20103 => "Lead not found",
        20109 => "Parameter required",
        20110 => "Bad parameter",
        20113 => "Campaign not found",
        _ => "Injected fault",
    }
}

/// The message Marketo gives with a REST error code.
pub(crate) fn rest_error_text(code: u32) -> &'static str {
    match code {
        601 => "Access token invalid",
        602 => "Access token expired",
        603 => "Access denied",
        604 => "Request timed out",
        606 => "Max rate limit '100' exceeded with in '20' secs",
        607 => "Daily quota reached",
        608 => "API Temporarily Unavailable",
        609 => "Invalid JSON",
        610 => "Requested resource not found",
        611 => "System error",
        612 => "Invalid Content Type",
        615 => "Concurrent access limit reached",
        1003 => "Invalid value",
        1004 => "Lead not found",
        1013 => "Campaign not found",
        _ => "Injected error",
    }
}

/// The short page a gateway answers with.
pub(crate) fn status_page(status: u16, reason: &str) -> String {
    format!(
        "<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1>\
         <p>injected by the marketo-campaign sandbox</p></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_count_per_rule() {
        let faults = Faults::new([
            FaultRule::on_call(Fault::EmptyOk, 2).api(Api::Soap),
            FaultRule::every(Fault::MalformedBody, 2)
                .api(Api::Rest)
                .times(2),
            FaultRule::always(Fault::TruncatedBody).api(Api::Identity),
        ]);
        let soap: Vec<_> = (0..4).map(|_| faults.on_call(Api::Soap)).collect();
        assert_eq!(
            soap.iter().map(|s| s.fault.is_some()).collect::<Vec<_>>(),
            [false, true, false, false]
        );
        assert_eq!(soap[3].call, 4);
        let rest: Vec<bool> = (0..8)
            .map(|_| faults.on_call(Api::Rest).fault.is_some())
            .collect();
        assert_eq!(rest, [false, true, false, true, false, false, false, false]);
        assert_eq!(
            faults.on_call(Api::Identity).fault,
            Some(Fault::TruncatedBody)
        );
    }

    #[test]
    fn first_rule_wins_and_others_keep_their_strikes() {
        let faults = Faults::new([
            FaultRule::on_call(Fault::EmptyOk, 1),
            FaultRule::always(Fault::MalformedBody).times(1),
        ]);
        assert_eq!(faults.on_call(Api::Rest).fault, Some(Fault::EmptyOk));
        assert_eq!(faults.on_call(Api::Rest).fault, Some(Fault::MalformedBody));
        assert_eq!(faults.on_call(Api::Rest).fault, None);
    }

    #[test]
    fn any_leaves_identity_alone_and_typed_faults_keep_to_their_api() {
        let faults = Faults::new([
            FaultRule::always(Fault::EmptyOk),
            FaultRule::always(Fault::SoapFault(20011)).api(Api::Any),
        ]);
        assert_eq!(faults.on_call(Api::Identity).fault, None);
        let faults = Faults::new([FaultRule::always(Fault::SoapFault(20011)).api(Api::Any)]);
        assert_eq!(faults.on_call(Api::Rest).fault, None);
        assert_eq!(
            faults.on_call(Api::Soap).fault,
            Some(Fault::SoapFault(20011))
        );
        assert!(FaultRule::always(Fault::RestError(606))
            .api(Api::Soap)
            .problem()
            .is_some());
        assert!(FaultRule::on_call(Fault::EmptyOk, 0).problem().is_some());
        assert!(FaultRule::always(Fault::EmptyOk)
            .times(0)
            .problem()
            .is_some());
    }

    #[test]
    fn refusals_come_before_their_call() {
        let refuse = Fault::RefuseConnections { lasting: None };
        let faults = Faults::new([FaultRule::on_call(refuse.clone(), 3).api(Api::Soap)]);
        assert!(faults.refusals_due().is_empty());
        faults.on_call(Api::Soap);
        assert!(faults.refusals_due().is_empty());
        faults.on_call(Api::Soap);
        assert_eq!(
            faults.refusals_due(),
            [Refusal {
                api: Api::Soap,
                lasting: None
            }]
        );
        assert!(faults.refusals_due().is_empty());
        assert_eq!(faults.events().len(), 1);
        let at_once = Faults::default();
        assert_eq!(at_once.add(FaultRule::always(refuse).times(1)).len(), 1);
        assert!(at_once.refusals_due().is_empty());
    }

    #[test]
    fn bodies() {
        let xml = br#"<?xml version="1.0"?><a><b>t</b></a>"#;
        assert_eq!(malformed(xml), br#"<?xml version="1.0"?><a><b>t</b></xa>"#);
        assert_eq!(malformed(br#"{"a":[1]}"#), br#"{"a":[1]]"#);
        assert_eq!(malformed(b"plain"), b"<plain");
        assert_eq!(malformed(b""), b"<");
        assert_eq!(truncated(b"abcdef"), b"abc");
        assert_eq!(truncated(b"a"), b"");
    }

    #[test]
    fn json_round_trips_and_refuses_nonsense() {
        for fault in [
            Fault::RefuseConnections { lasting: None },
            Fault::RefuseConnections {
                lasting: Some(Duration::from_millis(250)),
            },
            Fault::ResetAfterRequest,
            Fault::ResetMidResponse,
            Fault::Delay(Duration::from_millis(1200)),
            Fault::HttpStatus {
                status: 503,
                body: false,
                runs: true,
            },
            Fault::MalformedBody,
            Fault::TruncatedBody,
            Fault::EmptyOk,
            Fault::SoapFault(20016),
            Fault::RestError(602),
        ] {
            let json = serde_json::to_string(&fault).unwrap();
            assert_eq!(
                serde_json::from_str::<Fault>(&json).unwrap(),
                fault,
                "{json}"
            );
            let rule = FaultRule::on_call(fault, 2).times(1);
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(
                serde_json::from_str::<FaultRule>(&json).unwrap(),
                rule,
                "{json}"
            );
        }
        let status: Fault = serde_json::from_str(r#"{"kind":"http_status","status":500}"#).unwrap();
        assert_eq!(
            status,
            Fault::HttpStatus {
                status: 500,
                body: true,
                runs: false
            }
        );
        for bad in [
            r#"{"kind":"nope"}"#,
            r#"{"kind":"delay"}"#,
            r#"{"kind":"delay","ms":-1}"#,
            r#"{"kind":"empty_ok","extra":1}"#,
            r#"{"kind":"http_status","status":302}"#,
            r#"{"status":500}"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<Fault>(bad).is_err(), "{bad}");
        }
        for bad in [
            r#"{"fault":{"kind":"empty_ok"},"on_call":1,"every":2}"#,
            r#"{"fault":{"kind":"empty_ok"},"on_call":0}"#,
            r#"{"fault":{"kind":"empty_ok"},"times":0}"#,
            r#"{"fault":{"kind":"soap_fault","code":1},"api":"rest"}"#,
            r#"{"fault":{"kind":"empty_ok"},"api":"ftp"}"#,
            r#"{"fault":{"kind":"empty_ok"},"when":1}"#,
        ] {
            assert!(serde_json::from_str::<FaultRule>(bad).is_err(), "{bad}");
        }
    }
}
