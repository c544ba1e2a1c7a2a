//! The shared trait, what a request's outcome reports, and a recording stub.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::Error;
use crate::request::{CampaignRequest, LeadKey, MAX_LEADS_PER_CALL};

/// Anything that can request a Smart Campaign: [`SoapClient`](crate::SoapClient),
/// [`StubRequester`], and your own types.
///
/// Calls block. Implementations are `Send + Sync`, so one client can be shared
/// by many threads. `Display` names the backend, so a log line or an error
/// says which path was taken.
///
/// ## Contract
///
/// - `Ok(outcome)`: every chunk was accepted. Keys the backend could not
///   match to exactly one Marketo lead are listed in [`Outcome::unmatched`],
///   never dropped; those that matched several are also in
///   [`Outcome::ambiguous`], with the leads they matched.
/// - `Err(e)` for a request of one chunk: that chunk failed; `e.delivery()`
///   says whether the campaign may have run.
/// - `Err(Error::Incomplete(outcome))` for a request of several chunks: the
///   outcome lists the accepted chunks, the failed one with its error, and the
///   ones not attempted.
///
/// ```
/// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, StubRequester};
///
/// fn notify(client: &dyn CampaignRequester, email: &str) -> Result<(), marketo_campaign::Error> {
///     let request = CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::email(email)?])?;
///     client.request_campaign(&request)?;
///     Ok(())
/// }
///
/// let stub = StubRequester::new();
/// notify(&stub, "lead@company.com")?;
/// assert_eq!(stub.requests()[0].leads()[0].value(), "lead@company.com");
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
pub trait CampaignRequester: Send + Sync + fmt::Debug + fmt::Display {
    /// Runs the request's campaign for its leads, in chunks of at most
    /// [`MAX_LEADS_PER_CALL`](crate::MAX_LEADS_PER_CALL).
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error>;
}

impl<T: CampaignRequester + ?Sized> CampaignRequester for &T {
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        (**self).request_campaign(request)
    }
}

impl<T: CampaignRequester + ?Sized> CampaignRequester for Box<T> {
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        (**self).request_campaign(request)
    }
}

impl<T: CampaignRequester + ?Sized> CampaignRequester for Arc<T> {
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        (**self).request_campaign(request)
    }
}

/// What happened to one chunk of a request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ChunkStatus {
    /// The backend accepted the chunk: the campaign runs for its leads
    /// (except those in [`ChunkReport::unmatched`], which include the
    /// [`ambiguous`](ChunkReport::ambiguous) ones).
    Accepted,
    /// The call for this chunk failed; the error's
    /// [`delivery`](Error::delivery) says whether it may have run.
    Failed(Error),
    /// Not sent, because an earlier chunk failed.
    NotAttempted,
}

/// A lead key that matched several Marketo leads, and their ids.
///
/// SOAP names one lead per key; REST finds every lead that holds the value
/// (two leads sharing an email, an account id shared by a company's
/// contacts). [`RestClient`](crate::RestClient) does not guess which one was
/// meant: it runs the campaign for none of them and reports the key here
/// (and in [`ChunkReport::unmatched`]). Request those leads by `IDNUM` to
/// run the campaign for the ones you mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmbiguousKey {
    pub(crate) key: LeadKey,
    pub(crate) lead_ids: Vec<u32>,
}

impl AmbiguousKey {
    /// The key, as given in the request.
    pub fn key(&self) -> &LeadKey {
        &self.key
    }

    /// The ids of the leads it matched, lowest first (at least two). The
    /// campaign ran for none of them because of this key.
    pub fn lead_ids(&self) -> &[u32] {
        &self.lead_ids
    }
}

impl fmt::Display for AmbiguousKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} matches leads ", self.key)?;
        for (i, id) in self.lead_ids.iter().enumerate() {
            write!(f, "{}{id}", if i == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}

/// One chunk of a request: its leads, the backend that handled it, and what
/// happened.
#[derive(Debug, Clone)]
pub struct ChunkReport {
    pub(crate) index: usize,
    pub(crate) leads: Vec<LeadKey>,
    pub(crate) backend: String,
    pub(crate) status: ChunkStatus,
    pub(crate) unmatched: Vec<LeadKey>,
    pub(crate) ambiguous: Vec<AmbiguousKey>,
}

impl ChunkReport {
    /// The chunk's position in the request, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The chunk's leads, in request order.
    pub fn leads(&self) -> &[LeadKey] {
        &self.leads
    }

    /// The backend that handled the chunk, e.g. `soap` or `rest` (empty when
    /// not attempted).
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// What happened.
    pub fn status(&self) -> &ChunkStatus {
        &self.status
    }

    /// Keys of this chunk the campaign did not run for because they name
    /// no single Marketo lead: they matched no lead, or several (those are
    /// also in [`ambiguous`](ChunkReport::ambiguous), with the leads).
    pub fn unmatched(&self) -> &[LeadKey] {
        &self.unmatched
    }

    /// Keys of this chunk that matched several Marketo leads, each with the
    /// ids of those leads. The campaign ran for none of them because of
    /// such a key (a lead also named by another key of the request that
    /// matched it alone still ran). Empty over SOAP, where Marketo names
    /// one lead per key.
    ///
    /// ```
    /// use marketo_campaign::sandbox::{Sandbox, SandboxConfig, SandboxData};
    /// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey};
    ///
    /// // The default leads 1002200 and 1002201 share their lead owner's
    /// // Salesforce id.
    /// let sandbox = Sandbox::start()?;
    /// let key: LeadKey = "SFDCLEADOWNERID:0055000000KlMnOAAV".parse()?;
    /// let request = CampaignRequest::new(CampaignTarget::id(4496), [key.clone()])?;
    /// let outcome = sandbox.rest_client()?.request_campaign(&request)?;
    /// let ambiguous = &outcome.chunks()[0].ambiguous()[0];
    /// assert_eq!(ambiguous.key(), &key);
    /// assert_eq!(ambiguous.lead_ids(), [1002200, 1002201]);
    /// assert!(!outcome.is_complete());
    /// assert!(sandbox.journal().is_empty());
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn ambiguous(&self) -> &[AmbiguousKey] {
        &self.ambiguous
    }

    /// `true` when the chunk was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self.status, ChunkStatus::Accepted)
    }
}

impl ChunkReport {
    /// A chunk not (yet) sent.
    pub(crate) fn not_attempted(index: usize, leads: Vec<LeadKey>) -> Self {
        ChunkReport {
            index,
            leads,
            backend: String::new(),
            status: ChunkStatus::NotAttempted,
            unmatched: Vec::new(),
            ambiguous: Vec::new(),
        }
    }
}

/// The reports of a request that failed as a whole (one chunk, or before
/// any chunk was sent): the first chunk carries the error, the others were
/// not sent.
pub(crate) fn failed_as_whole(
    err: Error,
    chunks: impl IntoIterator<Item = (usize, Vec<LeadKey>)>,
) -> Vec<ChunkReport> {
    let mut err = Some(err);
    chunks
        .into_iter()
        .map(|(index, leads)| {
            let mut report = ChunkReport::not_attempted(index, leads);
            if let Some(err) = err.take() {
                report.status = ChunkStatus::Failed(err);
            }
            report
        })
        .collect()
}

/// The outcome of a request: one report per chunk, in order.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    chunks: Vec<ChunkReport>,
}

impl Outcome {
    /// The chunk reports, in request order.
    pub fn chunks(&self) -> &[ChunkReport] {
        &self.chunks
    }

    /// How many chunks were accepted.
    pub fn accepted_chunks(&self) -> usize {
        self.chunks.iter().filter(|c| c.is_accepted()).count()
    }

    /// `true` when every chunk was accepted and every key matched exactly
    /// one lead.
    pub fn is_complete(&self) -> bool {
        self.chunks
            .iter()
            .all(|c| c.is_accepted() && c.unmatched.is_empty())
    }

    /// The first failed chunk's index and error.
    pub fn first_failure(&self) -> Option<(usize, &Error)> {
        self.chunks.iter().find_map(|c| match &c.status {
            ChunkStatus::Failed(err) => Some((c.index, err)),
            _ => None,
        })
    }

    /// Every key that named no single lead (none, or several), across
    /// chunks: the campaign did not run for them.
    pub fn unmatched(&self) -> impl Iterator<Item = &LeadKey> {
        self.chunks.iter().flat_map(|c| c.unmatched.iter())
    }

    /// Every key that matched several leads, across chunks, with their ids
    /// (see [`ChunkReport::ambiguous`]).
    pub fn ambiguous(&self) -> impl Iterator<Item = &AmbiguousKey> {
        self.chunks.iter().flat_map(|c| c.ambiguous.iter())
    }

    /// Leads of chunks that were not attempted: certainly not served, safe to
    /// send again.
    pub fn not_attempted(&self) -> impl Iterator<Item = &LeadKey> {
        self.chunks
            .iter()
            .filter(|c| matches!(c.status, ChunkStatus::NotAttempted))
            .flat_map(|c| c.leads.iter())
    }

    pub(crate) fn push(&mut self, report: ChunkReport) {
        self.chunks.push(report);
    }
}

/// What a backend learned from sending one chunk successfully.
#[derive(Debug, Default)]
pub(crate) struct ChunkAccepted {
    /// Keys that named no single lead (the ambiguous ones included).
    pub(crate) unmatched: Vec<LeadKey>,
    /// Keys that matched several leads.
    pub(crate) ambiguous: Vec<AmbiguousKey>,
}

/// Sends `request` chunk by chunk through `send` (given each chunk's offset
/// in the request and its leads), stopping at the first failure, and builds
/// the outcome according to the trait's contract.
pub(crate) fn send_in_chunks(
    request: &CampaignRequest,
    backend: &str,
    mut send: impl FnMut(usize, &[LeadKey]) -> Result<ChunkAccepted, Error>,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    let mut failed = false;
    let total = request.chunks().len();
    for (index, leads) in request.chunks().enumerate() {
        let mut report = ChunkReport::not_attempted(index, leads.to_vec());
        if !failed {
            report.backend = backend.to_owned();
            match send(index * MAX_LEADS_PER_CALL, leads) {
                Ok(accepted) => {
                    report.status = ChunkStatus::Accepted;
                    report.unmatched = accepted.unmatched;
                    report.ambiguous = accepted.ambiguous;
                }
                Err(err) => {
                    if total == 1 {
                        return Err(err);
                    }
                    log::warn!("{backend}: chunk {index} of {total} failed: {err}");
                    failed = true;
                    report.status = ChunkStatus::Failed(err);
                }
            }
        }
        outcome.push(report);
    }
    if failed {
        Err(Error::Incomplete(Box::new(outcome)))
    } else {
        Ok(outcome)
    }
}

/// A requester that records every request and sends nothing: use it to test
/// your own code without a server.
///
/// By default every chunk is accepted. [`StubRequester::failing`] makes every
/// call fail with a given error instead.
///
/// ```
/// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, Error, LeadKey, StubRequester};
///
/// let stub = StubRequester::failing(Error::Config("offline".into()));
/// let request = CampaignRequest::new(CampaignTarget::id(1), [LeadKey::id(7)?])?;
/// assert!(stub.request_campaign(&request).is_err());
/// assert_eq!(stub.requests().len(), 1);
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct StubRequester {
    requests: Arc<Mutex<Vec<CampaignRequest>>>,
    failure: Option<Error>,
}

impl StubRequester {
    /// A stub that accepts everything.
    pub fn new() -> Self {
        StubRequester::default()
    }

    /// A stub whose every call fails with `error`.
    pub fn failing(error: Error) -> Self {
        StubRequester {
            failure: Some(error),
            ..StubRequester::default()
        }
    }

    /// The requests received so far, in order. Clones share the record.
    pub fn requests(&self) -> Vec<CampaignRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Display for StubRequester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stub")
    }
}

impl CampaignRequester for StubRequester {
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.clone());
        send_in_chunks(request, "stub", |_, _| match &self.failure {
            Some(err) => Err(err.clone()),
            None => Ok(ChunkAccepted::default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Delivery;
    use crate::request::CampaignTarget;

    fn request(n: u32) -> CampaignRequest {
        CampaignRequest::new(
            CampaignTarget::id(1),
            (1..=n).map(|i| LeadKey::id(i).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn failure_midway_reports_every_chunk() {
        let mut calls = 0;
        let err = send_in_chunks(&request(350), "test", |_, _| {
            calls += 1;
            if calls == 2 {
                Err(Error::Transport {
                    delivery: Delivery::Unknown,
                    message: "reset".into(),
                })
            } else {
                Ok(ChunkAccepted::default())
            }
        })
        .unwrap_err();
        assert_eq!(calls, 2);
        assert_eq!(err.delivery(), Delivery::Unknown);
        let outcome = err.outcome().unwrap();
        assert_eq!(outcome.chunks().len(), 4);
        assert_eq!(outcome.accepted_chunks(), 1);
        assert_eq!(outcome.first_failure().unwrap().0, 1);
        assert_eq!(outcome.not_attempted().count(), 150);
        assert_eq!(outcome.chunks()[3].backend(), "");
    }

    #[test]
    fn single_chunk_failure_is_the_plain_error() {
        let err =
            send_in_chunks(&request(3), "test", |_, _| Err(Error::Config("x".into()))).unwrap_err();
        assert!(matches!(err, Error::Config(_)));
    }
}
