//! The crate's one error type, and what each error says about delivery.
//!
//! Every [`Error`] answers the question a caller of a campaign API cares about
//! most: *may the campaign have run?* See [`Delivery`].

use std::fmt;

use crate::request::LeadKey;
use crate::requester::Outcome;

/// What an error says about whether the campaign may have been triggered.
///
/// Decided once, by [`Error::classify`]. Retries and fallback act only on
/// [`Delivery::NotSent`] and on [`Delivery::Refused`] answers that are known
/// to be safe to repeat; never on [`Delivery::Unknown`] unless the caller
/// opts in.
///
/// Ordered by how much may have happened: `NotSent < Refused < Unknown`, so
/// the worst of several is their `max`.
///
/// ```
/// use marketo_campaign::Delivery;
/// let worst = [Delivery::Refused, Delivery::Unknown, Delivery::NotSent].into_iter().max();
/// assert_eq!(worst, Some(Delivery::Unknown));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Delivery {
    /// No trigger reached a server: bad input, bad configuration, DNS
    /// failure, connection refused, or a failed read-only call (token,
    /// look-up). The campaign certainly did not run.
    NotSent,
    /// The server answered in a way that proves the campaign did not run:
    /// Marketo's SOAP fault on HTTP 500, a REST `success:false` code
    /// documented as rejected before processing, an HTTP 4xx.
    Refused,
    /// The request may have been processed: timeout after sending, connection
    /// reset mid-response, a gateway's 502/503/504, REST 604/611, an answer
    /// that could not be understood.
    Unknown,
}

impl Delivery {
    /// `true` unless the campaign certainly did not run.
    ///
    /// ```
    /// use marketo_campaign::Delivery;
    /// assert!(Delivery::Unknown.may_have_run());
    /// assert!(!Delivery::Refused.may_have_run());
    /// ```
    pub fn may_have_run(self) -> bool {
        matches!(self, Delivery::Unknown)
    }

    /// A short lowercase name: `not_sent`, `refused` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::NotSent => "not_sent",
            Delivery::Refused => "refused",
            Delivery::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Delivery::NotSent => "nothing was sent",
            Delivery::Refused => "the server refused it; the campaign did not run",
            Delivery::Unknown => "the campaign may or may not have run",
        })
    }
}

/// What may be done about a failed call, by [`Error::classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Send again after a wait: nothing ran and the cause passes (a
    /// connection refused, a rate or concurrency limit, a failed look-up).
    Retry,
    /// Send again at once with fresh credentials: SOAP 20016 (sign anew),
    /// REST 601/602 (renew the token). Once.
    Renew,
    /// This backend is gone (HTTP 404, 405, 410, 501): nothing ran; send
    /// through another one.
    FallBack,
    /// Do not send again: the request is wrong or refused for good, or it
    /// may have run.
    Stop,
}

impl Action {
    /// A short lowercase name: `retry`, `renew`, `fall_back` or `stop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Renew => "renew",
            Action::FallBack => "fall_back",
            Action::Stop => "stop",
        }
    }
}

/// An error's delivery and what may be done about it; see
/// [`Error::classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Classification {
    /// Whether the campaign may have run.
    pub delivery: Delivery,
    /// What may be done.
    pub action: Action,
    /// Why, in one sentence (the row of [`CLASSIFICATION`] that applied).
    pub reason: &'static str,
}

/// One row of [`CLASSIFICATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rule {
    /// The failure, as a caller sees it.
    pub failure: &'static str,
    /// Its delivery.
    pub delivery: Delivery,
    /// What may be done.
    pub action: Action,
    /// Why.
    pub reason: &'static str,
}

const fn rule(
    failure: &'static str,
    delivery: Delivery,
    action: Action,
    reason: &'static str,
) -> Rule {
    Rule {
        failure,
        delivery,
        action,
        reason,
    }
}

/// The classification table [`Error::classify`] applies, row by row, for
/// documentation (README's Reliability section prints it).
pub const CLASSIFICATION: &[Rule] = RULES;

const RULES: &[Rule] = &[
    rule("invalid input", Delivery::NotSent, Action::Stop, "refused before sending: nothing left this process"),
    rule("configuration error", Delivery::NotSent, Action::Stop, "refused before sending: nothing left this process"),
    rule("DNS failure, connection refused, connect timeout, TLS set-up", Delivery::NotSent, Action::Retry, "the request never left: no server saw it"),
    rule("trigger/schedule: timeout after sending, reset or cut answer, answer over the size cap", Delivery::Unknown, Action::Stop, "the server may have read the request and run it"),
    rule("identity refused the client credentials", Delivery::NotSent, Action::Stop, "no token, so no trigger was sent; repeating cannot fix credentials"),
    rule("campaign name + program match no campaign or several", Delivery::Refused, Action::Stop, "found before any trigger: nothing ran"),
    rule("token or look-up GET refused for good (603, 1xxx, 4xx)", Delivery::NotSent, Action::Stop, "a GET cannot trigger a campaign; the same GET gets the same answer"),
    rule("token or look-up GET failed (reset, cut, timeout, 5xx, unreadable, 604/606/608/611/615)", Delivery::NotSent, Action::Retry, "a GET cannot trigger a campaign: asking again is safe"),
    rule("SOAP fault 20016 (request expired) on HTTP 500", Delivery::Refused, Action::Renew, "Marketo's fault: refused before running; a fresh signature cures it"),
    rule("SOAP fault 20023/20024 (rate, concurrency) on HTTP 500", Delivery::Refused, Action::Retry, "Marketo's fault: refused before running; the limit passes"),
    rule("any other SOAP fault on HTTP 500", Delivery::Refused, Action::Stop, "Marketo's own fault format on HTTP 500: the call did not run"),
    rule("HTTP 404, 405, 410, 501", Delivery::Refused, Action::FallBack, "no such API (SOAP removed): nothing ran; another backend may serve it"),
    rule("any other HTTP 4xx, with or without a body", Delivery::Refused, Action::Stop, "refused by the API or the layer in front of it before running"),
    rule("trigger/schedule: HTTP 200 that is not a success (a fault on 200, success false/missing, not SOAP/JSON)", Delivery::Unknown, Action::Stop, "not Marketo's refusal format: nothing proves the call did not run"),
    rule("trigger/schedule: HTTP 502/503/504 or any 5xx without Marketo's fault (empty, text, HTML, a fault inside a gateway answer)", Delivery::Unknown, Action::Stop, "a gateway answers so when its upstream fails, before or after running"),
    rule("REST 601/602 (token invalid, expired)", Delivery::Refused, Action::Renew, "refused before processing; a new token cures it"),
    rule("REST 606/615 (rate, concurrency)", Delivery::Refused, Action::Retry, "refused before processing; the limit passes"),
    rule("REST 603, 605, 607, 609, 610, 612, 614, 616, and 1xxx (1003, 1004, 1013, ...)", Delivery::Refused, Action::Stop, "documented as rejected before processing"),
    rule("trigger/schedule: REST 604, 608, 611 and undocumented codes", Delivery::Unknown, Action::Stop, "a request that ran too long, an outage, an unhandled exception: Marketo does not say nothing ran"),
    rule("several chunks, none reported failed", Delivery::Unknown, Action::Stop, "nothing proves which part ran"),
    rule("a backend of your own: not sent", Delivery::NotSent, Action::Stop, "as the backend states; only a backend knows whether its failure passes"),
    rule("a backend of your own: refused", Delivery::Refused, Action::Stop, "as the backend states"),
    rule("a backend of your own: unknown", Delivery::Unknown, Action::Stop, "as the backend states"),
    rule("Journey Optimizer: HTTP 429 (rate limited), with or without Retry-After", Delivery::Refused, Action::Retry, "refused before running; the limit passes: wait at least its Retry-After"),
    rule("this client's own rate limiter: the wait budget passed (`RateLimit::max_wait`)", Delivery::NotSent, Action::Stop, "never sent; the caller chooses when to try again"),
    rule("a chunk served in parts: some parts accepted, the others failed or not attempted", Delivery::Unknown, Action::Stop, "the campaign ran for the accepted parts' leads: the chunk must not be sent again whole"),
    rule("this client's own daily quota is spent (`RateLimit::daily_quota`)", Delivery::NotSent, Action::Stop, "never sent; it can be sent when the quota day resets"),
    rule("the shared limiter (Redis) cannot answer", Delivery::NotSent, Action::Stop, "never sent on a guess: the instance's limits could not be checked"),
];

/// A Marketo SOAP service exception code (`detail/serviceException/code`).
///
/// Known codes have variants; any other code is kept in [`SoapCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SoapCode {
    /// 20011: internal error.
    InternalError,
    /// 20012: request not understood.
    RequestNotUnderstood,
    /// 20013: access denied.
    AccessDenied,
    /// 20014: authentication failed (wrong user id or encryption key).
    AuthenticationFailed,
    /// 20015: daily request quota reached.
    RequestLimitExceeded,
    /// 20016: request expired (stale timestamp); re-sign and retry.
    RequestExpired,
    /// 20017: invalid request.
    InvalidRequest,
    /// 20023: more than 100 calls in 20 seconds.
    RateLimited,
    /// 20024: more than 10 concurrent calls.
    ConcurrencyLimited,
    /// 20101: lead key required.
    LeadKeyRequired,
    /// 20102: bad lead key.
    LeadKeyBad,
    /// 20103: lead not found.
    LeadNotFound,
    /// 20105: unknown lead field (an `attrName` the instance has no field for).
    UnknownField,
    /// 20109: parameter required.
    ParameterRequired,
    /// 20110: bad parameter (for requestCampaign: an illegal mix of targets).
    BadParameter,
    /// 20111: static list not found.
    ListNotFound,
    /// 20113: campaign not found (or not requestable).
    CampaignNotFound,
    /// Any other code, kept as sent.
    Other(u32),
}

impl SoapCode {
    /// The code for a number.
    ///
    /// ```
    /// use marketo_campaign::SoapCode;
    /// assert_eq!(SoapCode::from_code(20014), SoapCode::AuthenticationFailed);
    /// assert_eq!(SoapCode::from_code(29999).code(), 29999);
    /// ```
    pub fn from_code(code: u32) -> Self {
        match code {
            20011 => SoapCode::InternalError,
            20012 => SoapCode::RequestNotUnderstood,
            20013 => SoapCode::AccessDenied,
            20014 => SoapCode::AuthenticationFailed,
            20015 => SoapCode::RequestLimitExceeded,
            20016 => SoapCode::RequestExpired,
            20017 => SoapCode::InvalidRequest,
            20023 => SoapCode::RateLimited,
            20024 => SoapCode::ConcurrencyLimited,
            20101 => SoapCode::LeadKeyRequired,
            20102 => SoapCode::LeadKeyBad,
            20103 => SoapCode::LeadNotFound,
            20105 => SoapCode::UnknownField,
            20109 => SoapCode::ParameterRequired,
            20110 => SoapCode::BadParameter,
            20111 => SoapCode::ListNotFound,
            20113 => SoapCode::CampaignNotFound,
            other => SoapCode::Other(other),
        }
    }

    /// The numeric code.
    pub fn code(self) -> u32 {
        match self {
            SoapCode::InternalError => 20011,
            SoapCode::RequestNotUnderstood => 20012,
            SoapCode::AccessDenied => 20013,
            SoapCode::AuthenticationFailed => 20014,
            SoapCode::RequestLimitExceeded => 20015,
            SoapCode::RequestExpired => 20016,
            SoapCode::InvalidRequest => 20017,
            SoapCode::RateLimited => 20023,
            SoapCode::ConcurrencyLimited => 20024,
            SoapCode::LeadKeyRequired => 20101,
            SoapCode::LeadKeyBad => 20102,
            SoapCode::LeadNotFound => 20103,
            SoapCode::UnknownField => 20105,
            SoapCode::ParameterRequired => 20109,
            SoapCode::BadParameter => 20110,
            SoapCode::ListNotFound => 20111,
            SoapCode::CampaignNotFound => 20113,
            SoapCode::Other(code) => code,
        }
    }
}

/// A Marketo REST error code (`errors[].code`).
///
/// Known codes have variants; any other code is kept in [`RestCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RestCode {
    /// 601: access token invalid.
    TokenInvalid,
    /// 602: access token expired.
    TokenExpired,
    /// 603: access denied.
    AccessDenied,
    /// 604: request timed out.
    RequestTimedOut,
    /// 606: more than 100 calls in 20 seconds.
    RateLimited,
    /// 607: daily quota reached.
    DailyQuotaReached,
    /// 608: API temporarily unavailable.
    TemporarilyUnavailable,
    /// 609: invalid JSON.
    InvalidJson,
    /// 610: requested resource not found.
    NotFound,
    /// 611: system error.
    SystemError,
    /// 612: invalid content type.
    InvalidContentType,
    /// 615: more than 10 concurrent calls.
    ConcurrencyLimited,
    /// 1003: invalid value (for trigger.json: a batch campaign, too many leads).
    InvalidValue,
    /// 1004: lead not found.
    LeadNotFound,
    /// 1013: campaign (or other object) not found.
    CampaignNotFound,
    /// Any other code, kept as sent (0 when it was not a number).
    Other(u32),
}

impl RestCode {
    /// The code for a number.
    ///
    /// ```
    /// use marketo_campaign::RestCode;
    /// assert_eq!(RestCode::from_code(606), RestCode::RateLimited);
    /// assert_eq!(RestCode::from_code(1029).code(), 1029);
    /// ```
    pub fn from_code(code: u32) -> Self {
        match code {
            601 => RestCode::TokenInvalid,
            602 => RestCode::TokenExpired,
            603 => RestCode::AccessDenied,
            604 => RestCode::RequestTimedOut,
            606 => RestCode::RateLimited,
            607 => RestCode::DailyQuotaReached,
            608 => RestCode::TemporarilyUnavailable,
            609 => RestCode::InvalidJson,
            610 => RestCode::NotFound,
            611 => RestCode::SystemError,
            612 => RestCode::InvalidContentType,
            615 => RestCode::ConcurrencyLimited,
            1003 => RestCode::InvalidValue,
            1004 => RestCode::LeadNotFound,
            1013 => RestCode::CampaignNotFound,
            other => RestCode::Other(other),
        }
    }

    /// The numeric code.
    pub fn code(self) -> u32 {
        match self {
            RestCode::TokenInvalid => 601,
            RestCode::TokenExpired => 602,
            RestCode::AccessDenied => 603,
            RestCode::RequestTimedOut => 604,
            RestCode::RateLimited => 606,
            RestCode::DailyQuotaReached => 607,
            RestCode::TemporarilyUnavailable => 608,
            RestCode::InvalidJson => 609,
            RestCode::NotFound => 610,
            RestCode::SystemError => 611,
            RestCode::InvalidContentType => 612,
            RestCode::ConcurrencyLimited => 615,
            RestCode::InvalidValue => 1003,
            RestCode::LeadNotFound => 1004,
            RestCode::CampaignNotFound => 1013,
            RestCode::Other(code) => code,
        }
    }
}

/// The crate's error type.
///
/// Each variant knows its [`Delivery`]: call [`Error::delivery`] before
/// deciding to retry anything.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request was refused before sending: a field is empty, malformed,
    /// or holds characters XML 1.0 cannot carry. Nothing was sent.
    #[error("invalid {field}: {reason} (nothing was sent)")]
    InvalidInput {
        /// Which part of the request is wrong, e.g. `lead key 3`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The client is misconfigured (missing endpoint, credentials, bad time
    /// zone). Nothing was sent.
    #[error("configuration error: {0} (nothing was sent)")]
    Config(String),
    /// The HTTP exchange failed.
    #[error("transport error: {message} ({delivery})")]
    Transport {
        /// Whether the request may have been processed.
        delivery: Delivery,
        /// What failed, without secrets.
        message: String,
        /// The HTTP stack's own error (a `ureq::Error`), when there is one:
        /// [`std::error::Error::source`] returns it.
        source: Option<Cause>,
    },
    /// Marketo answered with its SOAP fault on HTTP 500 (or an HTTP 4xx).
    /// The campaign did not run. (A fault on another status, such as one a
    /// gateway wraps in a 502, is an [`Error::Protocol`].)
    #[error("SOAP fault {}: {message}", code.code())]
    SoapFault {
        /// The Marketo code, from `detail` or, failing that, the fault string.
        code: SoapCode,
        /// The fault's message.
        message: String,
    },
    /// Marketo's REST API answered `success:false`. Whether the campaign
    /// may have run depends on the code: see [`Error::classify`].
    #[error("REST error {}: {message}", code.code())]
    Rest {
        /// The Marketo code.
        code: RestCode,
        /// The error's message.
        message: String,
    },
    /// The identity service refused the client credentials (or answered
    /// without a token). Nothing was triggered.
    #[error("authentication failed: {0} (nothing was triggered)")]
    Auth(String),
    /// A look-up needed to express the request over REST failed: no campaign
    /// or several campaigns match the name and program. Nothing was triggered.
    #[error("look-up failed: {0} (nothing was triggered)")]
    Lookup(String),
    /// A read-only call failed: the identity token request or a REST look-up
    /// (`campaigns.json`, `leads.json`). A GET cannot trigger a campaign, so
    /// nothing ran, whatever happened to the call: see
    /// [`Error::classify`] for when it is repeated.
    #[error("{call} failed: {} (nothing was triggered)", bare(.source))]
    ReadFailed {
        /// Which call failed, e.g. `lead look-up`.
        call: String,
        /// How it failed.
        source: Box<Error>,
    },
    /// The server answered something this client cannot interpret; the
    /// request may have been processed. The body is kept (truncated).
    #[error("unexpected answer (HTTP {status}): {reason}; body: {body:?} (the campaign may or may not have run)")]
    Protocol {
        /// The HTTP status.
        status: u16,
        /// Why the answer was not understood.
        reason: String,
        /// The start of the body, at most 512 bytes.
        body: String,
    },
    /// The server answered with an HTTP status that means it refused the
    /// request without running it: a 4xx (for example 404 or 410 from a
    /// retired SOAP endpoint) or 501.
    #[error("HTTP {status} from the server: {body:?} (the campaign did not run)")]
    HttpStatus {
        /// The HTTP status.
        status: u16,
        /// The start of the body, at most 512 bytes.
        body: String,
    },
    /// This client's own rate limiter would have kept the call waiting
    /// longer than its budget ([`RateLimit::max_wait`](crate::RateLimit::max_wait)):
    /// the call was not sent and nothing ran. `limit` says which limit held
    /// it (the bridge answers 20023 for the rate, 20024 for concurrency).
    #[error("not sent: this client's {limit} limit kept the call waiting over {budget:?} (nothing was triggered)")]
    Throttled {
        /// The limit that held the call.
        limit: crate::limiter::Limit,
        /// The budget that passed.
        budget: std::time::Duration,
    },
    /// This client's daily quota ([`RateLimit::daily_quota`](crate::RateLimit::daily_quota))
    /// is spent: the call was not sent and nothing ran; it can be sent
    /// after `resets_at` (RFC 3339, UTC). The bridge answers 20015.
    #[error("not sent: this client's daily quota of {quota} calls is spent until {resets_at} (nothing was triggered)")]
    QuotaSpent {
        /// The daily quota.
        quota: u32,
        /// When the next quota day starts (RFC 3339, UTC).
        resets_at: String,
    },
    /// The shared limiter (Redis, `SharedLimiter`) could not answer: the
    /// call was not sent on a guess and nothing ran. The bridge answers
    /// 20023 ("not sent"); the command line exits 5.
    #[error("not sent: {message} (nothing was triggered)")]
    LimiterUnavailable {
        /// What failed.
        message: String,
    },
    /// A backend of your own (a [`CampaignRequester`](crate::CampaignRequester)
    /// you wrote) failed: its error is kept as the [`source`](std::error::Error::source),
    /// with the delivery the backend states. Build it with
    /// [`Error::backend`].
    #[error("{backend}: {source} ({delivery})")]
    Backend {
        /// The backend's name, as its chunk reports give it.
        backend: String,
        /// Whether the campaign may have run, as the backend knows it.
        delivery: Delivery,
        /// The backend's own error.
        source: Cause,
    },
    /// The API refused the call for its rate limit (Adobe Journey
    /// Optimizer's HTTP 429): the campaign did not run, and the call may be
    /// repeated once `retry_after` (its `Retry-After` header, when it had
    /// one) has passed. [`RetryPolicy`](crate::RetryPolicy) waits at least
    /// that long.
    #[error("rate limited (HTTP 429){}: {body:?} (the campaign did not run)", retry_after_text(*.retry_after))]
    RateLimited {
        /// How long the server asked to wait (`Retry-After`), if it said.
        retry_after: Option<std::time::Duration>,
        /// The start of the body, at most 512 bytes, redacted.
        body: String,
    },
    /// A request of several chunks failed part-way: the outcome tells which
    /// chunks were accepted, which one failed (with its error) and which were
    /// not attempted.
    #[error("request incomplete: {}", incomplete_summary(.0))]
    Incomplete(Box<Outcome>),
    /// A bulk run's chunk that the backend served in parts (its calls are
    /// smaller than the run's chunks, as when a [`Fallback`](crate::Fallback)
    /// hands a chunk to a backend of smaller calls), some parts accepted and
    /// some not: the campaign ran for the leads of the accepted parts
    /// (`served`), not for the others. Its delivery is unknown: the chunk
    /// must not be sent again whole.
    #[error("{}", partly_served_text(.served, *.leads, *.parts, *.accepted, .failure.as_deref()))]
    PartlyServed {
        /// The leads of the accepted parts, in order: the campaign ran for
        /// them.
        served: Vec<LeadKey>,
        /// The chunk's leads, in all.
        leads: usize,
        /// The parts the backend served the chunk in.
        parts: usize,
        /// The parts accepted.
        accepted: usize,
        /// The error of the first part that failed; `None` when the other
        /// parts were not attempted.
        failure: Option<Box<Error>>,
    },
}

/// The error that caused an [`Error`], shared so that `Error` stays
/// `Clone`. [`std::error::Error::source`] returns the error itself (it
/// derefs to it), so `downcast_ref` finds its type.
///
/// ```
/// use marketo_campaign::{Delivery, Error};
/// let io = std::io::Error::new(std::io::ErrorKind::Other, "disk full");
/// let err = Error::backend("csv-log", Delivery::NotSent, io);
/// let cause = std::error::Error::source(&err).unwrap();
/// assert!(cause.downcast_ref::<std::io::Error>().is_some());
/// ```
#[derive(Clone)]
pub struct Cause(pub(crate) std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    /// Wraps an error.
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(std::sync::Arc::new(err))
    }
}

impl std::ops::Deref for Cause {
    type Target = dyn std::error::Error + Send + Sync;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

/// An error's description without the delivery its `Display` states (for
/// a wrapper that knows better).
fn bare(err: &Error) -> String {
    match err {
        Error::Transport { message, .. } => format!("transport error: {message}"),
        Error::Protocol {
            status,
            reason,
            body,
        } => format!("unexpected answer (HTTP {status}): {reason}; body: {body:?}"),
        Error::HttpStatus { status, body } => format!("HTTP {status}: {body:?}"),
        other => other.to_string(),
    }
}

fn partly_served_text(
    served: &[LeadKey],
    leads: usize,
    parts: usize,
    accepted: usize,
    failure: Option<&Error>,
) -> String {
    format!(
        "served in parts: {accepted} of {parts} parts accepted, so the campaign ran for {} of its \
         {leads} leads{}; the other parts {}; do not send the chunk again whole (the campaign may \
         have run)",
        served.len(),
        match (served.first(), served.last()) {
            (Some(first), Some(last)) if served.len() > 1 => format!(" ({first} to {last})"),
            (Some(first), _) => format!(" ({first})"),
            _ => String::new(),
        },
        match failure {
            Some(err) => format!("failed: {err}"),
            None => "were not attempted".to_owned(),
        }
    )
}

fn retry_after_text(wait: Option<std::time::Duration>) -> String {
    wait.map(|w| format!(", retry after {} s", w.as_secs_f64()))
        .unwrap_or_default()
}

fn incomplete_summary(outcome: &Outcome) -> String {
    let failed = outcome.first_failure();
    format!(
        "{} of {} chunks accepted; {}",
        outcome.accepted_chunks(),
        outcome.chunks().len(),
        match failed {
            Some((index, err)) => format!("chunk {index} failed: {err}"),
            None => "no chunk failed".to_owned(),
        }
    )
}

impl Error {
    /// Whether the campaign may have run because of the failed call:
    /// [`classify`](Error::classify)'s delivery.
    ///
    /// For [`Error::Incomplete`] this is the delivery of the failed chunk;
    /// the chunks before it were accepted.
    ///
    /// ```
    /// use marketo_campaign::{Delivery, Error, SoapCode};
    /// let err = Error::SoapFault { code: SoapCode::AuthenticationFailed, message: "Authentication failed".into() };
    /// assert_eq!(err.delivery(), Delivery::Refused);
    /// ```
    pub fn delivery(&self) -> Delivery {
        self.classify().delivery
    }

    /// The one classification of an error: whether the campaign may have
    /// run, and what may be done about it. Retries, [`Fallback`](crate::Fallback),
    /// bulk runs and the command line's exit status all read it; none reads
    /// a message.
    ///
    /// The decision rests on the call's phase and on evidence, never on
    /// guesses: a read-only call (token, look-up) cannot trigger anything; a
    /// trigger or schedule call that may have reached a server is
    /// [`Delivery::Unknown`] unless its answer proves the campaign did not
    /// run. The whole table, with a reason for each row, is
    /// [`CLASSIFICATION`].
    ///
    /// ```
    /// use marketo_campaign::{Action, Delivery, Error, RestCode};
    /// let rate = Error::Rest { code: RestCode::RateLimited, message: String::new() };
    /// assert_eq!(rate.classify().delivery, Delivery::Refused);
    /// assert_eq!(rate.classify().action, Action::Retry);
    /// // 611 "system error" on a trigger: Marketo does not say it did not run.
    /// let system = Error::Rest { code: RestCode::SystemError, message: String::new() };
    /// assert_eq!(system.classify().delivery, Delivery::Unknown);
    /// assert_eq!(system.classify().action, Action::Stop);
    /// // The same answer to a look-up: a GET triggers nothing; ask again.
    /// let lookup = Error::ReadFailed { call: "lead look-up".into(), source: Box::new(system) };
    /// assert_eq!(lookup.classify().delivery, Delivery::NotSent);
    /// assert_eq!(lookup.classify().action, Action::Retry);
    /// ```
    pub fn classify(&self) -> Classification {
        // Each arm picks a row of the table; the row holds the answer, so
        // the table and the decision cannot disagree.
        let c = |row: usize| {
            let rule = &RULES[row];
            Classification {
                delivery: rule.delivery,
                action: rule.action,
                reason: rule.reason,
            }
        };
        match self {
            Error::InvalidInput { .. } => c(0),
            Error::Config(_) => c(1),
            Error::Transport {
                delivery: Delivery::NotSent,
                ..
            } => c(2),
            Error::Transport { .. } => c(3),
            Error::Auth(_) => c(4),
            Error::Lookup(_) => c(5),
            Error::ReadFailed { source, .. } => {
                let inner = source.classify();
                match (inner.delivery, inner.action) {
                    (Delivery::NotSent | Delivery::Refused, Action::Stop | Action::FallBack) => {
                        c(6)
                    }
                    _ => c(7),
                }
            }
            Error::SoapFault { code, .. } => match code {
                SoapCode::RequestExpired => c(8),
                SoapCode::RateLimited | SoapCode::ConcurrencyLimited => c(9),
                _ => c(10),
            },
            Error::HttpStatus { status, .. } => match status {
                404 | 405 | 410 | 501 => c(11),
                400..=499 => c(12),
                // Only 4xx and 501 are built as `HttpStatus` by this crate;
                // another status built by hand proves nothing.
                _ => c(14),
            },
            Error::Rest { code, .. } => match code.code() {
                601 | 602 => c(15),
                606 | 615 => c(16),
                603 | 605 | 607 | 609 | 610 | 612 | 614 | 616 | 1000..=1999 => c(17),
                _ => c(18),
            },
            Error::Protocol { status, .. } => match status {
                500..=599 => c(14),
                _ => c(13),
            },
            Error::Incomplete(outcome) => match outcome.first_failure() {
                Some((_, err)) => err.classify(),
                None => c(19),
            },
            Error::Backend { delivery, .. } => match delivery {
                Delivery::NotSent => c(20),
                Delivery::Refused => c(21),
                Delivery::Unknown => c(22),
            },
            Error::RateLimited { .. } => c(23),
            Error::Throttled { .. } => c(24),
            Error::PartlyServed { .. } => c(25),
            Error::QuotaSpent { .. } => c(26),
            Error::LimiterUnavailable { .. } => c(27),
        }
    }

    /// The leads a chunk served in parts was served for
    /// ([`Error::PartlyServed`]): the campaign ran for them.
    ///
    /// ```
    /// use marketo_campaign::{Delivery, Error, LeadKey};
    /// let err = Error::PartlyServed {
    ///     served: vec![LeadKey::id(1)?, LeadKey::id(2)?],
    ///     leads: 4,
    ///     parts: 2,
    ///     accepted: 1,
    ///     failure: None,
    /// };
    /// assert_eq!(err.served().map(<[LeadKey]>::len), Some(2));
    /// assert_eq!(err.delivery(), Delivery::Unknown);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn served(&self) -> Option<&[LeadKey]> {
        match self {
            Error::PartlyServed { served, .. } => Some(served),
            _ => None,
        }
    }

    /// How long the server asked to wait before the call is repeated (an
    /// [`Error::RateLimited`] with a `Retry-After`), if it said.
    ///
    /// ```
    /// use std::time::Duration;
    /// use marketo_campaign::{Action, Error};
    /// let err = Error::RateLimited { retry_after: Some(Duration::from_secs(2)), body: String::new() };
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    /// assert_eq!(err.classify().action, Action::Retry);
    /// ```
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The SOAP code, when this is a SOAP fault.
    pub fn soap_code(&self) -> Option<SoapCode> {
        match self {
            Error::SoapFault { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The REST code, when this is a REST error, or a read-only call
    /// ([`Error::ReadFailed`]) that failed with one.
    ///
    /// ```
    /// use marketo_campaign::{Error, RestCode};
    /// let rate = Error::Rest { code: RestCode::RateLimited, message: String::new() };
    /// let look_up = Error::ReadFailed { call: "lead look-up".into(), source: Box::new(rate) };
    /// assert_eq!(look_up.rest_code(), Some(RestCode::RateLimited));
    /// ```
    pub fn rest_code(&self) -> Option<RestCode> {
        match self {
            Error::Rest { code, .. } => Some(*code),
            Error::ReadFailed { source, .. } => source.rest_code(),
            _ => None,
        }
    }

    /// The outcome of a request that failed part-way, if this is one.
    pub fn outcome(&self) -> Option<&Outcome> {
        match self {
            Error::Incomplete(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// The error of a backend of your own: `source` is kept (see
    /// [`std::error::Error::source`]); `delivery` is what the backend knows
    /// of the call — say [`Delivery::Unknown`] whenever the request may have
    /// reached a server that runs campaigns.
    ///
    /// ```
    /// use marketo_campaign::{Delivery, Error};
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    /// let err = Error::backend("my-crm", Delivery::NotSent, io);
    /// assert_eq!(err.delivery(), Delivery::NotSent);
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn backend(
        backend: impl Into<String>,
        delivery: Delivery,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            backend: backend.into(),
            delivery,
            source: Cause(std::sync::Arc::from(source.into())),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Keep at most `max` bytes of `body`, cut at a character boundary.
pub(crate) fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() <= max {
        return text.into_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in [
            20011, 20012, 20013, 20014, 20015, 20016, 20017, 20023, 20024, 20101, 20102, 20103,
            20109, 20110, 20113, 12345,
        ] {
            assert_eq!(SoapCode::from_code(code).code(), code);
        }
        assert_eq!(SoapCode::from_code(12345), SoapCode::Other(12345));
        for code in [
            601, 602, 603, 604, 606, 607, 608, 609, 610, 611, 612, 615, 1003, 1004, 1013, 1029,
        ] {
            assert_eq!(RestCode::from_code(code).code(), code);
        }
    }

    fn protocol(status: u16, body: &str) -> Error {
        Error::Protocol {
            status,
            reason: String::new(),
            body: body.into(),
        }
    }

    fn rest(code: u32) -> Error {
        Error::Rest {
            code: RestCode::from_code(code),
            message: String::new(),
        }
    }

    /// One example of each row of the table, classified as the row says.
    #[test]
    fn every_row_is_reached_and_agrees() {
        use Action::*;
        use Delivery::*;
        let fault = |code| Error::SoapFault {
            code: SoapCode::from_code(code),
            message: String::new(),
        };
        let status = |status| Error::HttpStatus {
            status,
            body: String::new(),
        };
        let transport = |delivery| Error::Transport {
            delivery,
            message: String::new(),
            source: None,
        };
        let read = |source| Error::ReadFailed {
            call: "lead look-up".into(),
            source: Box::new(source),
        };
        let cases: Vec<(Error, usize, Delivery, Action)> = vec![
            (Error::invalid("lead", "empty"), 0, NotSent, Stop),
            (Error::Config("no endpoint".into()), 1, NotSent, Stop),
            (transport(NotSent), 2, NotSent, Retry),
            (transport(Unknown), 3, Unknown, Stop),
            (Error::Auth("invalid_client".into()), 4, NotSent, Stop),
            (Error::Lookup("no campaign".into()), 5, Refused, Stop),
            (read(rest(603)), 6, NotSent, Stop),
            (read(status(404)), 6, NotSent, Stop),
            (read(transport(Unknown)), 7, NotSent, Retry),
            (read(protocol(502, "")), 7, NotSent, Retry),
            (read(rest(611)), 7, NotSent, Retry),
            (read(rest(606)), 7, NotSent, Retry),
            (fault(20016), 8, Refused, Renew),
            (fault(20023), 9, Refused, Retry),
            (fault(20024), 9, Refused, Retry),
            (fault(20103), 10, Refused, Stop),
            (fault(20011), 10, Refused, Stop),
            (status(404), 11, Refused, FallBack),
            (status(410), 11, Refused, FallBack),
            (status(501), 11, Refused, FallBack),
            (status(403), 12, Refused, Stop),
            (status(429), 12, Refused, Stop),
            (protocol(200, ""), 13, Unknown, Stop),
            (protocol(502, ""), 14, Unknown, Stop),
            (
                protocol(503, "<html>Service Unavailable</html>"),
                14,
                Unknown,
                Stop,
            ),
            (protocol(504, ""), 14, Unknown, Stop),
            (protocol(500, "not a fault"), 14, Unknown, Stop),
            (rest(601), 15, Refused, Renew),
            (rest(602), 15, Refused, Renew),
            (rest(606), 16, Refused, Retry),
            (rest(615), 16, Refused, Retry),
            (rest(1003), 17, Refused, Stop),
            (rest(1004), 17, Refused, Stop),
            (rest(1013), 17, Refused, Stop),
            (rest(607), 17, Refused, Stop),
            (rest(604), 18, Unknown, Stop),
            (rest(608), 18, Unknown, Stop),
            (rest(611), 18, Unknown, Stop),
            (rest(0), 18, Unknown, Stop),
            (Error::Incomplete(Box::default()), 19, Unknown, Stop),
            (Error::backend("b", NotSent, "x"), 20, NotSent, Stop),
            (Error::backend("b", Refused, "x"), 21, Refused, Stop),
            (Error::backend("b", Unknown, "x"), 22, Unknown, Stop),
            (
                Error::RateLimited {
                    retry_after: Some(std::time::Duration::from_secs(1)),
                    body: String::new(),
                },
                23,
                Refused,
                Retry,
            ),
            (
                Error::Throttled {
                    limit: crate::Limit::Rate,
                    budget: std::time::Duration::from_secs(30),
                },
                24,
                NotSent,
                Stop,
            ),
            (
                read(Error::Throttled {
                    limit: crate::Limit::Concurrency,
                    budget: std::time::Duration::from_secs(30),
                }),
                6,
                NotSent,
                Stop,
            ),
            (
                Error::PartlyServed {
                    served: vec![LeadKey::id(1).unwrap()],
                    leads: 2,
                    parts: 2,
                    accepted: 1,
                    failure: Some(Box::new(fault(20013))),
                },
                25,
                Unknown,
                Stop,
            ),
            (
                Error::QuotaSpent {
                    quota: 50_000,
                    resets_at: "2026-12-06T06:00:00Z".into(),
                },
                26,
                NotSent,
                Stop,
            ),
            (
                Error::LimiterUnavailable {
                    message: "connection refused".into(),
                },
                27,
                NotSent,
                Stop,
            ),
        ];
        let mut reached = vec![false; RULES.len()];
        for (err, row, delivery, action) in cases {
            let class = err.classify();
            assert_eq!(
                (class.delivery, class.action, class.reason),
                (delivery, action, RULES[row].reason),
                "{err:?}"
            );
            assert_eq!((RULES[row].delivery, RULES[row].action), (delivery, action));
            assert_eq!(err.delivery(), delivery);
            reached[row] = true;
        }
        assert!(
            reached.iter().all(|r| *r),
            "a row no error reaches: {reached:?}"
        );
    }

    /// README's Reliability section prints the table; it must say what the
    /// code does, row for row.
    #[test]
    fn readme_shows_the_table() {
        let readme = include_str!("../README.md");
        let printed: Vec<&str> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| failure | delivery | action | why |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let expected: Vec<String> = RULES
            .iter()
            .map(|r| {
                let delivery = match r.delivery {
                    Delivery::NotSent => "not sent",
                    Delivery::Refused => "refused",
                    Delivery::Unknown => "**unknown**",
                };
                let action = match r.action {
                    Action::Retry => "retry",
                    Action::Renew => "renew, then retry once",
                    Action::FallBack => "fall back",
                    Action::Stop => "stop",
                };
                format!("| {} | {delivery} | {action} | {} |", r.failure, r.reason)
            })
            .collect();
        assert_eq!(printed, expected);
    }

    #[test]
    fn read_failures_say_nothing_was_triggered() {
        let err = Error::ReadFailed {
            call: "lead look-up".into(),
            source: Box::new(Error::Transport {
                delivery: Delivery::Unknown,
                message: "connection reset".into(),
                source: None,
            }),
        };
        let shown = err.to_string();
        assert!(shown.contains("nothing was triggered"), "{shown}");
        assert!(!shown.contains("may or may not"), "{shown}");
    }

    #[test]
    fn excerpt_cuts_at_char_boundary() {
        assert_eq!(excerpt("ééé".as_bytes(), 3), "é…");
        assert_eq!(excerpt(b"abc", 10), "abc");
    }
}
