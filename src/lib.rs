//! Request Marketo Smart Campaigns, over SOAP (`requestCampaign`), REST or
//! Adobe Journey Optimizer.
//!
//! Legacy integrations call Marketo's SOAP `requestCampaign`. This crate
//! speaks that protocol byte for byte, and puts every backend behind one
//! blocking trait, [`CampaignRequester`], so the same [`CampaignRequest`] can
//! go to any of them.
//!
//! - [`CampaignRequest`]: a validated request. Its [`CampaignTarget`] is either
//!   a campaign id or a campaign name + program name + tokens, SOAP's two
//!   legal parameter sets; no other mix can be built.
//! - [`SoapClient`]: signs (HMAC-SHA1) and posts `paramsRequestCampaign`
//!   envelopes, 100 leads a call. [`soap`] also holds the server-side codec
//!   (read, verify, write) that servers of SOAP calls use.
//! - [`RestClient`]: the same request over Marketo's REST API: campaign
//!   names and lead keys looked up, every key that names no single lead
//!   reported, `trigger.json` / `schedule.json`. Its lead API (describe,
//!   read, sync, cookies, static lists, activities; see [`rest`]) serves
//!   integrations migrating off SOAP's `syncLead`, `getLead`,
//!   `listOperation`, `getLeadActivity`.
//! - [`AjoClient`]: the same request as unitary executions of an Adobe
//!   Journey Optimizer campaign ([`ajo::CampaignMap`] maps Marketo campaigns
//!   to AJO ones).
//! - [`Fallback`]: SOAP first, REST when SOAP provably ran nothing; never a
//!   campaign twice.
//! - [`run_bulk`]: streamed bulk runs with a write-ahead record, resumable
//!   without sending a chunk twice; [`RateLimit`] paces every client at
//!   Marketo's limits.
//! - [`webhook`]: renders the request a Call Webhook flow step sends.
//! - [`StubRequester`]: records requests, for your own tests; `conformance`
//!   (feature `conformance`) proves your own backend keeps the contract.
//! - [`Error`]: every failure says whether the campaign may have run
//!   ([`Delivery`]).
//!
//! # The workspace
//!
//! This crate is the client only. Its siblings, each depending on it
//! through its public API only:
//!
//! - `marketo-sandbox`: an offline Marketo on loopback (SOAP, REST, AJO,
//!   webhook flows, faults, a journal of every run); a dev-dependency for
//!   tests, as in the example below.
//! - `marketo-bridge`: a SOAP server that serves unchanged legacy
//!   integrations over REST or AJO (hyper on tokio).
//! - `marketo-campaign-cli`: the `marketo-campaign` command (clap), over
//!   the library, the sandbox and the bridge.
//!
//! This crate depends on none of them (nor on any server or CLI crate).
//!
//! ```
//! use marketo_sandbox::Sandbox;
//! use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey};
//!
//! let sandbox = Sandbox::start()?;
//! let client = sandbox.soap_client()?;
//! let request = CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::email("lead@company.com")?])?;
//! let outcome = client.request_campaign(&request)?;
//! assert!(outcome.is_complete());
//! assert_eq!(sandbox.journal()[0].lead_ids, [1002200]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ajo;
mod bulk;
mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod fallback;
mod lead_fields;
mod limiter;
pub mod metrics;
mod plan;
mod random;
mod redact;
mod report;
mod request;
mod requester;
pub mod rest;
mod retry;
mod schedule;
mod secret;
#[cfg(feature = "redis")]
mod shared_limiter;
pub mod soap;
mod transport;
pub mod webhook;

pub use ajo::{AjoClient, AjoClientBuilder};
pub use bulk::{chunk_digest, request_digest, run_bulk, run_bulk_with, BulkOptions, BulkSummary};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{
    Action, Classification, Delivery, Error, RestCode, Rule, SoapCode, CLASSIFICATION,
};
pub use fallback::Fallback;
pub use limiter::{Limit, QuotaDay, RateLimit};
pub use plan::PlannedRequest;
pub use report::exit;
pub use request::{
    CampaignRequest, CampaignTarget, LeadKey, LeadKeyType, ProgramToken, Source, MAX_LEADS_PER_CALL,
};
pub use requester::{
    send_in_chunks, AmbiguousKey, CampaignRequester, ChunkAccepted, ChunkReport, ChunkStatus,
    Outcome, StubCall, StubRequester,
};
pub use rest::{RestClient, RestClientBuilder};
pub use retry::RetryPolicy;
pub use schedule::{CampaignScheduler, ScheduleRequest, Scheduled};
pub use secret::Secret;
#[cfg(feature = "redis")]
pub use shared_limiter::SharedLimiter;
pub use soap::{SoapClient, SoapClientBuilder};
pub use transport::HttpConfig;

/// Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`); not a
/// public API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// The SOAP response reader on an arbitrary answer.
    pub fn soap_response(status: u16, body: &[u8]) -> Result<(), crate::Error> {
        crate::soap::response::read_response(status, body, "successRequestCampaign")
    }

    /// The identity answer reader on an arbitrary answer: the token's life.
    pub fn identity_answer(status: u16, body: &[u8]) -> Result<std::time::Duration, crate::Error> {
        crate::rest::read_token_answer(status, body, "client-secret").map(|(_, life)| life)
    }

    /// The REST response reader on an arbitrary answer.
    pub fn rest_response(status: u16, body: &[u8]) -> Result<usize, crate::Error> {
        crate::rest::wire::read::<serde_json::Value>(status, body).map(|page| page.result.len())
    }

    /// The AJO execution answer reader on an arbitrary answer (status,
    /// body, `Retry-After`): the execution id.
    pub fn ajo_answer(
        status: u16,
        body: &[u8],
        retry_after: Option<&str>,
    ) -> Result<String, crate::Error> {
        crate::ajo::read_answer_for_fuzzing(status, body, retry_after)
    }
}

/// The README's Rust examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
