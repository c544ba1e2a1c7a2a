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
/// In JSON: `"soap"`, `"rest"`, `"identity"`, `"ajo"`, `"any"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Api {
    /// SOAP calls: any request to `/soap/mktows/2_9`.
    Soap,
    /// REST API calls: any request under `/rest/` (look-ups, triggers,
    /// schedules).
    Rest,
    /// The identity services: requests to `/identity/oauth/token` (Marketo)
    /// and `/ims/token/v3` (Adobe IMS). Only rules for this API fault them.
    Identity,
    /// Adobe Journey Optimizer calls: any request under `/ajo/`.
    Ajo,
    /// In a rule: SOAP, REST and AJO calls (not identity calls). In a
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
            Api::Ajo => "ajo",
            Api::Any => "any",
        }
    }

    /// Whether a rule for `self` matches a call to `call`.
    fn matches(self, call: Api) -> bool {
        match self {
            Api::Any => matches!(call, Api::Soap | Api::Rest | Api::Ajo),
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
/// use marketo_sandbox::{CutAt, Fault, FaultBody};
/// let fault: Fault = serde_json::from_str(r#"{"kind":"http_status","status":502,"body":false}"#)?;
/// assert_eq!(fault, Fault::HttpStatus { status: 502, body: false, runs: false });
/// let proxy: Fault = serde_json::from_str(r#"{"kind":"answer","status":503,"body":"soap_fault","code":20023,"runs":true}"#)?;
/// assert_eq!(proxy, Fault::Answer { status: 503, body: FaultBody::SoapFault(20023), runs: true });
/// let cut: Fault = serde_json::from_str(r#"{"kind":"cut","at":"mid_body"}"#)?;
/// assert_eq!(cut, Fault::Cut { at: CutAt::MidBody, runs: false });
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
    /// The sandbox answers with this status and body instead of its own,
    /// as a gateway, a load balancer or an ESB in front of Marketo does,
    /// either after the call ran (its upstream went on and ran the
    /// campaign, then the answer was lost) or without running it. Unlike
    /// [`Fault::HttpStatus`], any status from 200 to 599 and any
    /// [`FaultBody`], including Marketo's own SOAP fault or REST error
    /// format on a status Marketo does not use for them (a fault on HTTP
    /// 200 or 503, `success:false` after the call ran). JSON:
    /// `{"kind":"answer","status":502,"body":"html","runs":true}`,
    /// `{"kind":"answer","status":503,"body":"soap_fault","code":20023}`
    /// (`runs` defaults to false; `code` goes with `soap_fault` and
    /// `rest_error` only).
    ///
    /// Its default API follows the body (SOAP for a SOAP fault, REST for a
    /// REST error, SOAP and REST otherwise), but a rule may aim it at any
    /// API: a REST client can be sent a SOAP fault.
    Answer {
        /// The status, from 200 to 599.
        status: u16,
        /// What the body holds.
        body: FaultBody,
        /// Whether the call runs first.
        runs: bool,
    },
    /// The answer is cut short, after the call ran or without running it.
    /// With `runs`, the sandbox's own answer is cut; without, the call is
    /// not run and what is cut is a success answer of the call's shape
    /// (SOAP `successRequestCampaign` or `successScheduleCampaign`, REST
    /// `success:true`, an identity token), so the client sees the same
    /// bytes either way and only the journal tells. JSON:
    /// `{"kind":"cut","at":"mid_body","runs":false}` (`runs` defaults to
    /// false).
    ///
    /// `{"at":"before_answer","runs":false}` is
    /// [`ResetAfterRequest`](Fault::ResetAfterRequest),
    /// `{"at":"mid_body","runs":true}` is
    /// [`ResetMidResponse`](Fault::ResetMidResponse) and
    /// `{"at":"short_body","runs":true}` is
    /// [`TruncatedBody`](Fault::TruncatedBody).
    Cut {
        /// Where the answer stops.
        at: CutAt,
        /// Whether the call runs first.
        runs: bool,
    },
    /// The sandbox reads the request, holds it this long without running
    /// it, then closes the connection unanswered: a client with a shorter
    /// timeout gives up, and nothing ran (the counterpart of
    /// [`Fault::Delay`], after which the call has run). JSON:
    /// `{"kind":"stall","ms":2000}`.
    Stall(Duration),
}

/// What the body of a [`Fault::Answer`] holds.
///
/// In JSON, the `body` field of the fault: `"empty"`, `"text"`, `"html"`,
/// or `"soap_fault"` / `"rest_error"` with a `"code"` beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultBody {
    /// No body and no content type.
    Empty,
    /// One line of `text/plain`, as Envoy and other proxies send
    /// (`upstream request timeout` for 504, `no healthy upstream` for 503,
    /// `upstream connect error or disconnect/reset before headers...` for
    /// 502, the reason phrase otherwise).
    Text,
    /// nginx's error page (`text/html`), as nginx and load balancers such
    /// as AWS ELB send: `<html><head><title>502 Bad Gateway</title>...`.
    Html,
    /// Marketo's SOAP fault with this code (`text/xml`), exactly as
    /// [`Fault::SoapFault`] writes it, but on the fault's status.
    SoapFault(u32),
    /// Marketo's REST error with this code (`application/json`,
    /// `success:false`), exactly as [`Fault::RestError`] writes it, but on
    /// the fault's status.
    RestError(u32),
}

/// Where a [`Fault::Cut`] stops the answer. In JSON: `"before_answer"`,
/// `"mid_body"`, `"short_body"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CutAt {
    /// Nothing is answered: the connection closes once the request is read
    /// (and, with `runs`, served).
    BeforeAnswer,
    /// The status line and header fields (announcing the full
    /// `Content-Length`) and the first half of the body, then the
    /// connection closes: the client sees the connection closed mid-body.
    MidBody,
    /// The first half of the body with a `Content-Length` that matches:
    /// complete as HTTP, cut as content.
    ShortBody,
}

impl Fault {
    /// The faults where the call runs and then its answer is lost: cut
    /// mid-body, delayed by `delay` (give the client a shorter timeout),
    /// or replaced by a gateway's 502, 503 (without a body) or 504. The
    /// cells where a client that resends would run a call twice: a test
    /// matrix of writes holds them all.
    ///
    /// ```
    /// use std::time::Duration;
    /// use marketo_sandbox::Fault;
    /// let cells = Fault::ran_then_lost(Duration::from_secs(3));
    /// assert_eq!(cells.len(), 5);
    /// assert!(cells.iter().all(Fault::runs));
    /// ```
    pub fn ran_then_lost(delay: Duration) -> Vec<Fault> {
        let gateway = |status, body| Fault::HttpStatus {
            status,
            body,
            runs: true,
        };
        vec![
            Fault::ResetMidResponse,
            Fault::Delay(delay),
            gateway(502, true),
            gateway(503, false),
            gateway(504, true),
        ]
    }

    /// Whether the call runs (and, if the sandbox accepts it, is journaled)
    /// when this fault strikes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use marketo_sandbox::Fault;
    /// assert!(Fault::Delay(Duration::from_secs(2)).runs());
    /// assert!(Fault::ResetMidResponse.runs());
    /// assert!(!Fault::ResetAfterRequest.runs());
    /// assert!(!Fault::HttpStatus { status: 503, body: true, runs: false }.runs());
    /// assert!(Fault::HttpStatus { status: 504, body: true, runs: true }.runs());
    /// assert!(!Fault::Stall(Duration::from_secs(2)).runs());
    /// ```
    pub fn runs(&self) -> bool {
        match self {
            Fault::RefuseConnections { .. }
            | Fault::ResetAfterRequest
            | Fault::SoapFault(_)
            | Fault::RestError(_)
            | Fault::Stall(_) => false,
            Fault::HttpStatus { runs, .. }
            | Fault::Answer { runs, .. }
            | Fault::Cut { runs, .. } => *runs,
            Fault::ResetMidResponse
            | Fault::Delay(_)
            | Fault::MalformedBody
            | Fault::TruncatedBody
            | Fault::EmptyOk => true,
        }
    }

    /// The API whose calls this fault strikes by default: [`Api::Soap`]
    /// for SOAP faults (and answers holding one), [`Api::Rest`] for REST
    /// errors (and answers holding one), [`Api::Any`] otherwise.
    pub fn api(&self) -> Api {
        match self {
            Fault::SoapFault(_)
            | Fault::Answer {
                body: FaultBody::SoapFault(_),
                ..
            } => Api::Soap,
            Fault::RestError(_)
            | Fault::Answer {
                body: FaultBody::RestError(_),
                ..
            } => Api::Rest,
            _ => Api::Any,
        }
    }

    /// Why this fault cannot be used, if it cannot.
    fn problem(&self) -> Option<String> {
        match self {
            Fault::HttpStatus { status, .. } if !(400..=599).contains(status) => Some(format!(
                "http_status needs a status from 400 to 599, not {status}"
            )),
            Fault::Answer { status, .. } if !(200..=599).contains(status) => Some(format!(
                "answer needs a status from 200 to 599, not {status}"
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
    Answer {
        status: u16,
        body: BodyKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u32>,
        #[serde(default)]
        runs: bool,
    },
    Cut {
        at: CutAt,
        #[serde(default)]
        runs: bool,
    },
    Stall {
        ms: u64,
    },
}

/// The `body` of an `answer` in JSON; the code, if any, is beside it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BodyKind {
    Empty,
    Text,
    Html,
    SoapFault,
    RestError,
}

impl FaultBody {
    fn to_repr(self) -> (BodyKind, Option<u32>) {
        match self {
            FaultBody::Empty => (BodyKind::Empty, None),
            FaultBody::Text => (BodyKind::Text, None),
            FaultBody::Html => (BodyKind::Html, None),
            FaultBody::SoapFault(code) => (BodyKind::SoapFault, Some(code)),
            FaultBody::RestError(code) => (BodyKind::RestError, Some(code)),
        }
    }

    fn from_repr(kind: BodyKind, code: Option<u32>) -> Result<Self, String> {
        Ok(match (kind, code) {
            (BodyKind::Empty, None) => FaultBody::Empty,
            (BodyKind::Text, None) => FaultBody::Text,
            (BodyKind::Html, None) => FaultBody::Html,
            (BodyKind::SoapFault, Some(code)) => FaultBody::SoapFault(code),
            (BodyKind::RestError, Some(code)) => FaultBody::RestError(code),
            (BodyKind::SoapFault | BodyKind::RestError, None) => {
                return Err("an answer with a soap_fault or rest_error body needs a code".into())
            }
            (_, Some(_)) => {
                return Err(
                    "only an answer with a soap_fault or rest_error body takes a code".into(),
                )
            }
        })
    }
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
            FaultRepr::Answer {
                status,
                body,
                code,
                runs,
            } => Fault::Answer {
                status,
                body: FaultBody::from_repr(body, code)?,
                runs,
            },
            FaultRepr::Cut { at, runs } => Fault::Cut { at, runs },
            FaultRepr::Stall { ms } => Fault::Stall(Duration::from_millis(ms)),
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
            Fault::Answer { status, body, runs } => {
                let (body, code) = body.to_repr();
                FaultRepr::Answer {
                    status,
                    body,
                    code,
                    runs,
                }
            }
            Fault::Cut { at, runs } => FaultRepr::Cut { at, runs },
            Fault::Stall(duration) => FaultRepr::Stall {
                ms: millis(duration),
            },
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
/// A rule may also keep to calls of one HTTP method
/// ([`method`](FaultRule::method)) or whose path starts with a prefix
/// ([`path_prefix`](FaultRule::path_prefix)), for instance the REST
/// look-ups (`GET /rest/v1/leads.json`) but not the triggers; it then
/// counts only those calls.
///
/// In JSON: `{"fault": <Fault>, "api": "soap", "on_call": 3}`, or
/// `"every": 2`, or neither (every call); `"times"` limits the strikes;
/// `"api"` defaults to [`Fault::api`]; `"method": "GET"` and
/// `"path_prefix": "/rest/v1/leads.json"` narrow the calls matched.
///
/// ```
/// use marketo_sandbox::{Api, Fault, FaultRule, Schedule};
/// let lookups = FaultRule::always(Fault::ResetMidResponse)
///     .api(Api::Rest)
///     .method("GET")
///     .path_prefix("/rest/v1/leads.json");
/// assert_eq!(
///     serde_json::to_string(&lookups)?,
///     r#"{"fault":{"kind":"reset_mid_response"},"api":"rest","method":"GET","path_prefix":"/rest/v1/leads.json"}"#
/// );
/// assert_eq!(lookups.method_of(), Some("GET"));
/// assert_eq!(lookups.path_prefix_of(), Some("/rest/v1/leads.json"));
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
    method: Option<String>,
    path_prefix: Option<String>,
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
            method: None,
            path_prefix: None,
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

    /// Matches only calls with this HTTP method (`GET`, `POST`; compared
    /// without regard to case, kept in upper case). Default: any method.
    /// Not for [`Fault::RefuseConnections`], which strikes ports.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into().to_ascii_uppercase());
        self
    }

    /// Matches only calls whose path (without the query) starts with
    /// `prefix`, e.g. `/rest/v1/leads.json` or `/rest/v1/campaigns/`.
    /// Default: any path. Not for [`Fault::RefuseConnections`], which
    /// strikes ports.
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
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

    /// The HTTP method the rule keeps to, if any.
    pub fn method_of(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// The path prefix the rule keeps to, if any.
    pub fn path_prefix_of(&self) -> Option<&str> {
        self.path_prefix.as_deref()
    }

    /// Whether the rule matches a call to `api` (whatever its method and
    /// path).
    fn matches(&self, api: Api) -> bool {
        let fault_can = match self.fault {
            Fault::SoapFault(_) => api == Api::Soap,
            Fault::RestError(_) => api == Api::Rest,
            _ => true,
        };
        fault_can && self.api.matches(api)
    }

    /// Whether the rule matches this call.
    fn matches_call(&self, call: &Call<'_>) -> bool {
        self.matches(call.api)
            && self.method.as_deref().is_none_or(|m| m == call.method)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| call.path.starts_with(p))
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
        let narrowed = self.method.is_some() || self.path_prefix.is_some();
        if narrowed && matches!(self.fault, Fault::RefuseConnections { .. }) {
            return Some(
                "refuse_connections strikes ports, not calls: it takes no method or path_prefix"
                    .into(),
            );
        }
        if let Some(method) = &self.method {
            if method.is_empty()
                || method.len() > 16
                || !method.bytes().all(|b| b.is_ascii_uppercase())
            {
                return Some(format!(
                    "method must be an HTTP method such as GET or POST, not {method:?}"
                ));
            }
        }
        if let Some(prefix) = &self.path_prefix {
            if !prefix.starts_with('/') {
                return Some(format!("path_prefix must start with '/', not {prefix:?}"));
            }
        }
        let strikable = [Api::Soap, Api::Rest, Api::Identity, Api::Ajo]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_prefix: Option<String>,
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
        if let Some(method) = repr.method {
            rule = rule.method(method);
        }
        rule.path_prefix = repr.path_prefix;
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
            method: rule.method,
            path_prefix: rule.path_prefix,
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

/// A call, as fault rules match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Call<'a> {
    /// Its API.
    pub(crate) api: Api,
    /// Its HTTP method, as sent.
    pub(crate) method: &'a str,
    /// Its path, without the query.
    pub(crate) path: &'a str,
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
    /// Calls seen per API: SOAP, REST, identity, AJO.
    calls: [u64; 4],
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
        Api::Ajo => Some(3),
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

    /// Counts a call and says which fault, if any, strikes it.
    pub(crate) fn on_call(&self, call: &Call<'_>) -> Strike {
        let api = call.api;
        let mut plan = self.lock();
        let number = match api_index(api) {
            Some(i) => {
                plan.calls[i] = plan.calls[i].saturating_add(1);
                plan.calls[i]
            }
            None => 0,
        };
        let mut fault = None;
        for active in plan.rules.iter_mut().filter(|a| a.rule.matches_call(call)) {
            active.seen = active.seen.saturating_add(1);
            if matches!(active.rule.fault, Fault::RefuseConnections { .. }) {
                continue;
            }
            if fault.is_none() && !active.spent() && active.rule.schedule.strikes(active.seen) {
                active.struck = active.struck.saturating_add(1);
                fault = Some(active.rule.fault.clone());
            }
        }
        Strike {
            call: number,
            fault,
        }
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

/// nginx's error page, which load balancers (AWS ELB among them) copy.
pub(crate) fn nginx_page(status: u16, reason: &str) -> String {
    format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n\
         <center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n\
         </body>\r\n</html>\r\n"
    )
}

/// The one line a proxy such as Envoy answers with.
pub(crate) fn proxy_text(status: u16, reason: &str) -> String {
    match status {
        502 => "upstream connect error or disconnect/reset before headers. \
                reset reason: connection termination"
            .to_owned(),
        503 => "no healthy upstream".to_owned(),
        504 => "upstream request timeout".to_owned(),
        _ => reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call of `api`, as the plan sees it.
    fn call(api: Api) -> Call<'static> {
        Call {
            api,
            method: "POST",
            path: "/x",
        }
    }

    #[test]
    fn schedules_count_per_rule() {
        let faults = Faults::new([
            FaultRule::on_call(Fault::EmptyOk, 2).api(Api::Soap),
            FaultRule::every(Fault::MalformedBody, 2)
                .api(Api::Rest)
                .times(2),
            FaultRule::always(Fault::TruncatedBody).api(Api::Identity),
        ]);
        let soap: Vec<_> = (0..4).map(|_| faults.on_call(&call(Api::Soap))).collect();
        assert_eq!(
            soap.iter().map(|s| s.fault.is_some()).collect::<Vec<_>>(),
            [false, true, false, false]
        );
        assert_eq!(soap[3].call, 4);
        let rest: Vec<bool> = (0..8)
            .map(|_| faults.on_call(&call(Api::Rest)).fault.is_some())
            .collect();
        assert_eq!(rest, [false, true, false, true, false, false, false, false]);
        assert_eq!(
            faults.on_call(&call(Api::Identity)).fault,
            Some(Fault::TruncatedBody)
        );
    }

    #[test]
    fn first_rule_wins_and_others_keep_their_strikes() {
        let faults = Faults::new([
            FaultRule::on_call(Fault::EmptyOk, 1),
            FaultRule::always(Fault::MalformedBody).times(1),
        ]);
        assert_eq!(faults.on_call(&call(Api::Rest)).fault, Some(Fault::EmptyOk));
        assert_eq!(
            faults.on_call(&call(Api::Rest)).fault,
            Some(Fault::MalformedBody)
        );
        assert_eq!(faults.on_call(&call(Api::Rest)).fault, None);
    }

    #[test]
    fn any_leaves_identity_alone_and_typed_faults_keep_to_their_api() {
        let faults = Faults::new([
            FaultRule::always(Fault::EmptyOk),
            FaultRule::always(Fault::SoapFault(20011)).api(Api::Any),
        ]);
        assert_eq!(faults.on_call(&call(Api::Identity)).fault, None);
        let faults = Faults::new([FaultRule::always(Fault::SoapFault(20011)).api(Api::Any)]);
        assert_eq!(faults.on_call(&call(Api::Rest)).fault, None);
        assert_eq!(
            faults.on_call(&call(Api::Soap)).fault,
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
    fn method_and_path_narrow_what_a_rule_counts() {
        let faults = Faults::new([
            FaultRule::on_call(Fault::MalformedBody, 2)
                .api(Api::Rest)
                .method("GET")
                .path_prefix("/rest/v1/leads.json"),
            FaultRule::on_call(Fault::EmptyOk, 1).method("post"),
        ]);
        let at = |method: &'static str, path: &'static str| Call {
            api: Api::Rest,
            method,
            path,
        };
        let struck: Vec<Option<Fault>> = [
            at("GET", "/rest/v1/campaigns.json"),
            at("GET", "/rest/v1/leads.json"),
            at("POST", "/rest/v1/leads.json"),
            at("GET", "/rest/v1/leads.json"),
            at("POST", "/rest/v1/campaigns/1/trigger.json"),
        ]
        .iter()
        .map(|c| faults.on_call(c).fault)
        .collect();
        // The look-up rule counts only GET leads.json calls: the 2nd is the
        // 4th call; the POST rule's first match is the 3rd call.
        assert_eq!(
            struck,
            [
                None,
                None,
                Some(Fault::EmptyOk),
                Some(Fault::MalformedBody),
                None
            ]
        );
        assert_eq!(
            faults.on_call(&at("GET", "/rest/v1/leads.json")).call,
            6,
            "every call counts toward the API's numbering"
        );
        // Answers carrying Marketo's formats default to that API but may
        // strike any.
        let soap_in_rest = FaultRule::always(Fault::Answer {
            status: 200,
            body: FaultBody::SoapFault(20011),
            runs: true,
        });
        assert_eq!(soap_in_rest.api_of(), Api::Soap);
        let faults = Faults::new([soap_in_rest.api(Api::Rest)]);
        assert!(faults.on_call(&call(Api::Rest)).fault.is_some());
    }

    #[test]
    fn refusals_come_before_their_call() {
        let refuse = Fault::RefuseConnections { lasting: None };
        let faults = Faults::new([FaultRule::on_call(refuse.clone(), 3).api(Api::Soap)]);
        assert!(faults.refusals_due().is_empty());
        faults.on_call(&call(Api::Soap));
        assert!(faults.refusals_due().is_empty());
        faults.on_call(&call(Api::Soap));
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
            Fault::Answer {
                status: 200,
                body: FaultBody::SoapFault(20023),
                runs: true,
            },
            Fault::Answer {
                status: 504,
                body: FaultBody::RestError(611),
                runs: false,
            },
            Fault::Answer {
                status: 502,
                body: FaultBody::Html,
                runs: true,
            },
            Fault::Answer {
                status: 503,
                body: FaultBody::Text,
                runs: false,
            },
            Fault::Answer {
                status: 502,
                body: FaultBody::Empty,
                runs: true,
            },
            Fault::Cut {
                at: CutAt::BeforeAnswer,
                runs: true,
            },
            Fault::Cut {
                at: CutAt::MidBody,
                runs: false,
            },
            Fault::Cut {
                at: CutAt::ShortBody,
                runs: false,
            },
            Fault::Stall(Duration::from_millis(900)),
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
        let answer: Fault =
            serde_json::from_str(r#"{"kind":"answer","status":502,"body":"empty"}"#).unwrap();
        assert!(!answer.runs());
        assert_eq!(answer.api(), Api::Any);
        let rule: FaultRule = serde_json::from_str(
            r#"{"fault":{"kind":"malformed_body"},"api":"rest","method":"get","path_prefix":"/rest/v1/leads.json"}"#,
        )
        .unwrap();
        assert_eq!(rule.method_of(), Some("GET"));
        assert_eq!(
            serde_json::to_string(&rule).unwrap(),
            r#"{"fault":{"kind":"malformed_body"},"api":"rest","method":"GET","path_prefix":"/rest/v1/leads.json"}"#
        );
        for bad in [
            r#"{"kind":"nope"}"#,
            r#"{"kind":"delay"}"#,
            r#"{"kind":"delay","ms":-1}"#,
            r#"{"kind":"empty_ok","extra":1}"#,
            r#"{"kind":"http_status","status":302}"#,
            r#"{"status":500}"#,
            "[]",
            r#"{"kind":"answer","status":199,"body":"empty"}"#,
            r#"{"kind":"answer","status":600,"body":"empty"}"#,
            r#"{"kind":"answer","status":502}"#,
            r#"{"kind":"answer","status":502,"body":"soap_fault"}"#,
            r#"{"kind":"answer","status":502,"body":"html","code":20011}"#,
            r#"{"kind":"answer","status":502,"body":"xml"}"#,
            r#"{"kind":"cut"}"#,
            r#"{"kind":"cut","at":"middle"}"#,
            r#"{"kind":"stall"}"#,
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
            r#"{"fault":{"kind":"refuse_connections"},"method":"GET"}"#,
            r#"{"fault":{"kind":"refuse_connections"},"path_prefix":"/rest/"}"#,
            r#"{"fault":{"kind":"empty_ok"},"path_prefix":"rest/v1"}"#,
            r#"{"fault":{"kind":"empty_ok"},"method":"G ET"}"#,
            r#"{"fault":{"kind":"empty_ok"},"method":""}"#,
        ] {
            assert!(serde_json::from_str::<FaultRule>(bad).is_err(), "{bad}");
        }
    }
}
