//! The crate's one error type, and what each error says about delivery.
//!
//! Every [`Error`] answers the question a caller of a campaign API cares about
//! most: *may the campaign have run?* See [`Delivery`].

use std::fmt;

use crate::requester::Outcome;

/// What an error says about whether the campaign may have been triggered.
///
/// Retries and fallback act only on [`Delivery::NotSent`] and on
/// [`Delivery::Refused`] answers that are known to be safe to repeat; never on
/// [`Delivery::Unknown`] unless the caller opts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Nothing reached the server: bad input, bad configuration, DNS failure,
    /// connection refused. The campaign certainly did not run.
    NotSent,
    /// The server answered and did not run the campaign (SOAP fault, REST
    /// `success:false`, HTTP 4xx).
    Refused,
    /// The request may have been processed: timeout after sending, connection
    /// reset mid-response, an answer that could not be understood.
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
    /// 20109: parameter required.
    ParameterRequired,
    /// 20110: bad parameter (for requestCampaign: an illegal mix of targets).
    BadParameter,
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
            20109 => SoapCode::ParameterRequired,
            20110 => SoapCode::BadParameter,
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
            SoapCode::ParameterRequired => 20109,
            SoapCode::BadParameter => 20110,
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
    },
    /// Marketo answered with a SOAP fault. The campaign did not run.
    #[error("SOAP fault {}: {message}", code.code())]
    SoapFault {
        /// The Marketo code, from `detail` or, failing that, the fault string.
        code: SoapCode,
        /// The fault's message.
        message: String,
    },
    /// Marketo's REST API answered `success:false`. The campaign did not run.
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
    /// request without running it (for example 404 or 410 from a retired SOAP
    /// endpoint).
    #[error("HTTP {status} from the server: {body:?} (the campaign did not run)")]
    HttpStatus {
        /// The HTTP status.
        status: u16,
        /// The start of the body, at most 512 bytes.
        body: String,
    },
    /// A request of several chunks failed part-way: the outcome tells which
    /// chunks were accepted, which one failed (with its error) and which were
    /// not attempted.
    #[error("request incomplete: {}", incomplete_summary(.0))]
    Incomplete(Box<Outcome>),
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
    /// Whether the campaign may have run because of the failed call.
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
        match self {
            Error::InvalidInput { .. } | Error::Config(_) => Delivery::NotSent,
            Error::Transport { delivery, .. } => *delivery,
            Error::Auth(_) => Delivery::NotSent,
            Error::SoapFault { .. }
            | Error::HttpStatus { .. }
            | Error::Rest { .. }
            | Error::Lookup(_) => Delivery::Refused,
            Error::Protocol { .. } => Delivery::Unknown,
            Error::Incomplete(outcome) => outcome
                .first_failure()
                .map(|(_, err)| err.delivery())
                .unwrap_or(Delivery::Unknown),
        }
    }

    /// The SOAP code, when this is a SOAP fault.
    pub fn soap_code(&self) -> Option<SoapCode> {
        match self {
            Error::SoapFault { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The REST code, when this is a REST error.
    pub fn rest_code(&self) -> Option<RestCode> {
        match self {
            Error::Rest { code, .. } => Some(*code),
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

    #[test]
    fn excerpt_cuts_at_char_boundary() {
        assert_eq!(excerpt("ééé".as_bytes(), 3), "é…");
        assert_eq!(excerpt(b"abc", 10), "abc");
    }
}
