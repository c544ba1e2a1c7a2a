//! What a request's result shows: the exit status the command line gives
//! it, and its JSON form (`Serialize` on [`Outcome`], [`ChunkReport`] and
//! [`Error`]). Both read [`Error::classify`], so a script, the CLI and a
//! library caller see one verdict.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::error::{Delivery, Error};
use crate::requester::{AmbiguousKey, ChunkReport, ChunkStatus, Outcome};

/// The command line's exit statuses.
pub mod exit {
    /// Every chunk accepted, every lead served.
    pub const OK: u8 = 0;
    /// Bad input or configuration; nothing was sent.
    pub const INVALID: u8 = 2;
    /// The server refused (some of) the request, or some keys matched no
    /// lead; the refused part did not run.
    pub const REFUSED: u8 = 3;
    /// The outcome of (some of) the request is unknown: it may have run. Do
    /// not resend blindly.
    pub const UNKNOWN: u8 = 4;
    /// Nothing was triggered: the server could not be reached, or a token
    /// request or look-up failed. Safe to run again.
    pub const NOT_SENT: u8 = 5;
}

impl Delivery {
    /// The exit status of a failure with this delivery: [`exit::NOT_SENT`],
    /// [`exit::REFUSED`] or [`exit::UNKNOWN`].
    ///
    /// ```
    /// use marketo_campaign::{exit, Delivery};
    /// assert_eq!(Delivery::Unknown.exit_code(), exit::UNKNOWN);
    /// ```
    pub fn exit_code(self) -> u8 {
        match self {
            Delivery::NotSent => exit::NOT_SENT,
            Delivery::Refused => exit::REFUSED,
            Delivery::Unknown => exit::UNKNOWN,
        }
    }
}

impl Error {
    /// The command line's exit status for this error: [`exit::INVALID`] for
    /// bad input or configuration, else its delivery's
    /// ([`Delivery::exit_code`]).
    ///
    /// ```
    /// use marketo_campaign::{exit, Error, RestCode};
    /// let err = Error::Rest { code: RestCode::SystemError, message: String::new() };
    /// assert_eq!(err.exit_code(), exit::UNKNOWN); // 611 on a trigger may have run
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidInput { .. } | Error::Config(_) => exit::INVALID,
            other => other.delivery().exit_code(),
        }
    }
}

impl Outcome {
    /// The command line's exit status for a request that returned this
    /// outcome: [`exit::OK`] when complete, else the worst failed chunk's
    /// ([`exit::UNKNOWN`] before [`exit::REFUSED`] before
    /// [`exit::NOT_SENT`]), else [`exit::REFUSED`] (keys that matched no
    /// lead).
    pub fn exit_code(&self) -> u8 {
        if self.is_complete() {
            return exit::OK;
        }
        let worst = self.chunks().iter().filter_map(ChunkReport::delivery).max();
        match worst {
            Some(Delivery::Unknown) => exit::UNKNOWN,
            Some(Delivery::NotSent) if self.accepted_chunks() == 0 => exit::NOT_SENT,
            _ => exit::REFUSED,
        }
    }
}

impl ChunkStatus {
    /// `accepted`, `failed` or `not_attempted`, as the JSON form writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChunkStatus::Accepted => "accepted",
            ChunkStatus::Failed(_) => "failed",
            ChunkStatus::NotAttempted => "not_attempted",
        }
    }
}

impl ChunkReport {
    /// Whether the campaign may have run for this chunk when it was not
    /// accepted: its error's delivery, or [`Delivery::NotSent`] when it was
    /// not attempted; `None` when it was accepted.
    pub fn delivery(&self) -> Option<Delivery> {
        match self.status() {
            ChunkStatus::Accepted => None,
            ChunkStatus::Failed(err) => Some(err.delivery()),
            ChunkStatus::NotAttempted => Some(Delivery::NotSent),
        }
    }
}

impl Serialize for AmbiguousKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("key", &self.key().to_string())?;
        map.serialize_entry("lead_ids", self.lead_ids())?;
        map.end()
    }
}

/// `{"index", "backend", "leads", "status", "error", "delivery",
/// "unmatched", "ambiguous"}`, and `"execution_id"` when the backend gave
/// one (AJO), `"served"` (the leads the campaign ran for) when the backend
/// served the chunk in parts ([`Error::PartlyServed`]); `error` and
/// `delivery` are `null` for an accepted chunk.
impl Serialize for ChunkReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let keys =
            |keys: &[crate::LeadKey]| keys.iter().map(ToString::to_string).collect::<Vec<_>>();
        let mut map = serializer.serialize_map(Some(8))?;
        map.serialize_entry("index", &self.index())?;
        map.serialize_entry("backend", self.backend())?;
        map.serialize_entry("leads", &keys(self.leads()))?;
        map.serialize_entry("status", self.status().as_str())?;
        let error = match self.status() {
            ChunkStatus::Failed(err) => Some(err.to_string()),
            _ => None,
        };
        map.serialize_entry("error", &error)?;
        map.serialize_entry("delivery", &self.delivery().map(Delivery::as_str))?;
        map.serialize_entry("unmatched", &keys(self.unmatched()))?;
        map.serialize_entry("ambiguous", self.ambiguous())?;
        if let Some(id) = self.execution_id() {
            map.serialize_entry("execution_id", id)?;
        }
        if let ChunkStatus::Failed(err) = self.status() {
            if let Some(served) = err.served() {
                map.serialize_entry("served", &keys(served))?;
            }
        }
        map.end()
    }
}

/// `{"complete", "exit_code", "chunks"}`.
impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("complete", &self.is_complete())?;
        map.serialize_entry("exit_code", &self.exit_code())?;
        map.serialize_entry("chunks", self.chunks())?;
        map.end()
    }
}

/// `{"complete": false, "exit_code", "error", "delivery", "action",
/// "reason", "soap_code", "rest_code", "chunks"}` (`chunks` lists the
/// outcome of a request that failed part-way, else is empty).
///
/// ```
/// use marketo_campaign::{Error, SoapCode};
/// let err = Error::SoapFault { code: SoapCode::LeadNotFound, message: "Lead not found".into() };
/// let json = serde_json::to_value(&err)?;
/// assert_eq!(json["delivery"], "refused");
/// assert_eq!(json["soap_code"], 20103);
/// assert_eq!(json["exit_code"], 3);
/// # Ok::<(), serde_json::Error>(())
/// ```
impl Serialize for Error {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let class = self.classify();
        let mut map = serializer.serialize_map(Some(9))?;
        map.serialize_entry("complete", &false)?;
        map.serialize_entry("exit_code", &self.exit_code())?;
        map.serialize_entry("error", &self.to_string())?;
        map.serialize_entry("delivery", class.delivery.as_str())?;
        map.serialize_entry("action", class.action.as_str())?;
        map.serialize_entry("reason", class.reason)?;
        let failure = match self {
            Error::Incomplete(outcome) => outcome.first_failure().map(|(_, e)| e),
            other => Some(other),
        };
        map.serialize_entry(
            "soap_code",
            &failure.and_then(Error::soap_code).map(|c| c.code()),
        )?;
        map.serialize_entry(
            "rest_code",
            &failure.and_then(Error::rest_code).map(|c| c.code()),
        )?;
        let chunks = self.outcome().map(Outcome::chunks).unwrap_or_default();
        map.serialize_entry("chunks", chunks)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, StubRequester};

    #[test]
    fn an_outcome_serializes_with_its_exit_code() {
        let request =
            CampaignRequest::new(CampaignTarget::id(1), [LeadKey::id(5).unwrap()]).unwrap();
        let outcome = StubRequester::new().request_campaign(&request).unwrap();
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["complete"], true);
        assert_eq!(json["exit_code"], 0);
        assert_eq!(json["chunks"][0]["status"], "accepted");
        assert_eq!(json["chunks"][0]["leads"], serde_json::json!(["IDNUM:5"]));
        assert_eq!(json["chunks"][0]["delivery"], serde_json::Value::Null);
    }

    #[test]
    fn exit_codes_follow_the_classification() {
        assert_eq!(Error::invalid("lead", "empty").exit_code(), exit::INVALID);
        let unknown = Error::Transport {
            delivery: Delivery::Unknown,
            message: "reset".into(),
            source: None,
        };
        assert_eq!(unknown.exit_code(), exit::UNKNOWN);
        let json = serde_json::to_value(&unknown).unwrap();
        assert_eq!(json["action"], "stop");
        assert_eq!(json["delivery"], "unknown");
    }
}
