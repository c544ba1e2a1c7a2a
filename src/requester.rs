//! The shared trait, what a request's outcome reports, and a recording stub.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::Error;
use crate::request::{CampaignRequest, LeadKey, MAX_LEADS_PER_CALL};

/// Anything that can request a Smart Campaign: [`SoapClient`](crate::SoapClient),
/// [`RestClient`](crate::RestClient), [`Fallback`](crate::Fallback),
/// [`StubRequester`], and your own types.
///
/// Calls block. Implementations are `Send + Sync`, so one client can be shared
/// by many threads. `Display` names the backend, so a log line or an error
/// says which path was taken.
///
/// ## Contract
///
/// A backend sends a request's leads in chunks of at most
/// [`max_leads_per_call`](CampaignRequester::max_leads_per_call), in order,
/// and stops at the first chunk that fails:
///
/// - `Ok(outcome)`: every chunk was accepted. Keys the backend could not
///   match to exactly one lead are listed in [`Outcome::unmatched`],
///   never dropped, and the campaign did not run for them; those that
///   matched several are also in [`Outcome::ambiguous`], with the leads
///   they matched.
/// - `Err(e)` for a request of one chunk, or for a request that failed as a
///   whole before any chunk was sent (a look-up, a request the backend
///   cannot express): `e.delivery()` says whether the campaign may have run.
/// - `Err(Error::Incomplete(outcome))` for a request of several chunks: the
///   outcome lists the accepted chunks, the failed one with its error, and the
///   ones not attempted.
///
/// In every case: the outcome's chunks hold the request's leads, in order,
/// each once; an accepted chunk ran for each of its leads but the unmatched
/// ones; a chunk not attempted, or failed with a [`Delivery`](crate::Delivery)
/// of `NotSent` or `Refused`, ran for none; and no lead runs twice because
/// of one request. [`send_in_chunks`] builds such results for you, and the
/// `conformance` module (feature `conformance`) checks a backend keeps to
/// all of this.
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
    /// [`max_leads_per_call`](CampaignRequester::max_leads_per_call).
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error>;

    /// The most leads one call of this backend carries: it splits larger
    /// requests into chunks of this size, and bulk runs
    /// ([`run_bulk`](crate::run_bulk)) form their chunks with it. Default:
    /// [`MAX_LEADS_PER_CALL`] (100, Marketo's limit); Adobe Journey
    /// Optimizer takes 20 recipients a call. At least 1.
    fn max_leads_per_call(&self) -> usize {
        MAX_LEADS_PER_CALL
    }
}

#[deny(clippy::missing_trait_methods)]
impl<T: CampaignRequester + ?Sized> CampaignRequester for &T {
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        (**self).request_campaign(request)
    }

    fn max_leads_per_call(&self) -> usize {
        (**self).max_leads_per_call()
    }
}

#[deny(clippy::missing_trait_methods)]
impl<T: CampaignRequester + ?Sized> CampaignRequester for Box<T> {
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        (**self).request_campaign(request)
    }

    fn max_leads_per_call(&self) -> usize {
        (**self).max_leads_per_call()
    }
}

#[deny(clippy::missing_trait_methods)]
impl<T: CampaignRequester + ?Sized> CampaignRequester for Arc<T> {
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        (**self).request_campaign(request)
    }

    fn max_leads_per_call(&self) -> usize {
        (**self).max_leads_per_call()
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
    /// `key`, which matched the leads `lead_ids` (sorted, each once; a key
    /// is ambiguous when it matched at least two).
    ///
    /// ```
    /// use marketo_campaign::{AmbiguousKey, LeadKey};
    /// let key = AmbiguousKey::new(LeadKey::email("shared@company.com")?, [1002201, 1002200]);
    /// assert_eq!(key.lead_ids(), [1002200, 1002201]);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn new(key: LeadKey, lead_ids: impl IntoIterator<Item = u32>) -> Self {
        let mut lead_ids: Vec<u32> = lead_ids.into_iter().collect();
        lead_ids.sort_unstable();
        lead_ids.dedup();
        AmbiguousKey { key, lead_ids }
    }

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

/// A chunk's leads: a list of its own, or a range of its request's (no
/// copy of the keys). Shown (`Debug`) as the chunk's keys only.
#[derive(Clone)]
pub(crate) enum ChunkLeads {
    Own(Vec<LeadKey>),
    Shared {
        all: Arc<[LeadKey]>,
        range: std::ops::Range<usize>,
    },
}

impl fmt::Debug for ChunkLeads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl ChunkLeads {
    fn as_slice(&self) -> &[LeadKey] {
        match self {
            ChunkLeads::Own(leads) => leads,
            ChunkLeads::Shared { all, range } => all.get(range.clone()).unwrap_or_default(),
        }
    }
}

/// One chunk of a request: its leads, the backend that handled it, and what
/// happened.
///
/// Your own backend builds them with [`accepted`](ChunkReport::accepted),
/// [`failed`](ChunkReport::failed) and
/// [`not_attempted`](ChunkReport::not_attempted), and collects them into an
/// [`Outcome`], which numbers them in order (or lets [`send_in_chunks`] do
/// all of it).
#[derive(Debug, Clone)]
pub struct ChunkReport {
    pub(crate) index: usize,
    pub(crate) leads: ChunkLeads,
    pub(crate) backend: String,
    pub(crate) status: ChunkStatus,
    pub(crate) unmatched: Vec<LeadKey>,
    pub(crate) ambiguous: Vec<AmbiguousKey>,
    pub(crate) execution_id: Option<String>,
}

impl ChunkReport {
    /// A chunk `backend` (a short name such as `soap`, `rest`, `csv`)
    /// accepted: the campaign runs for each of `leads` but those given to
    /// [`with_unmatched`](ChunkReport::with_unmatched).
    ///
    /// ```
    /// use marketo_campaign::{ChunkReport, LeadKey, Outcome};
    /// let known = LeadKey::id(1002200)?;
    /// let unknown = LeadKey::email("nobody@company.com")?;
    /// let chunk = ChunkReport::accepted([known, unknown.clone()], "csv").with_unmatched([unknown]);
    /// let outcome = Outcome::new([chunk]);
    /// assert_eq!(outcome.chunks()[0].index(), 0);
    /// assert_eq!(outcome.unmatched().count(), 1);
    /// assert!(!outcome.is_complete());
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn accepted(leads: impl Into<Vec<LeadKey>>, backend: impl Into<String>) -> Self {
        ChunkReport {
            backend: backend.into(),
            status: ChunkStatus::Accepted,
            ..ChunkReport::not_attempted(leads)
        }
    }

    /// A chunk whose call to `backend` failed with `error`; the error's
    /// [`delivery`](Error::delivery) says whether the campaign may have run
    /// for its leads.
    pub fn failed(
        leads: impl Into<Vec<LeadKey>>,
        backend: impl Into<String>,
        error: Error,
    ) -> Self {
        ChunkReport {
            backend: backend.into(),
            status: ChunkStatus::Failed(error),
            ..ChunkReport::not_attempted(leads)
        }
    }

    /// A chunk not sent (because an earlier one failed): the campaign did
    /// not run for its leads, which are safe to send again.
    pub fn not_attempted(leads: impl Into<Vec<LeadKey>>) -> Self {
        ChunkReport {
            index: 0,
            leads: ChunkLeads::Own(leads.into()),
            backend: String::new(),
            status: ChunkStatus::NotAttempted,
            unmatched: Vec::new(),
            ambiguous: Vec::new(),
            execution_id: None,
        }
    }

    /// The same report with `keys` added to its
    /// [`unmatched`](ChunkReport::unmatched) ones: keys of this chunk
    /// (each one of its [`leads`](ChunkReport::leads)) that named no single
    /// lead, for which the campaign did not run.
    pub fn with_unmatched(mut self, keys: impl IntoIterator<Item = LeadKey>) -> Self {
        add_unmatched(&mut self.unmatched, keys);
        self
    }

    /// The same report with `keys` added to its
    /// [`ambiguous`](ChunkReport::ambiguous) ones, and their keys to its
    /// [`unmatched`](ChunkReport::unmatched) ones (an ambiguous key is an
    /// unmatched one).
    pub fn with_ambiguous(mut self, keys: impl IntoIterator<Item = AmbiguousKey>) -> Self {
        add_ambiguous(&mut self.unmatched, &mut self.ambiguous, keys);
        self
    }

    /// The same report with the id the backend gave the accepted call
    /// (see [`execution_id`](ChunkReport::execution_id)).
    pub fn with_execution_id(mut self, id: impl Into<String>) -> Self {
        self.execution_id = Some(id.into());
        self
    }

    /// The id the backend gave the call that carried this chunk, when it
    /// gives one: Adobe Journey Optimizer's `executionId`. `None` for SOAP
    /// and REST, whose trigger answers name no run.
    ///
    /// ```
    /// use marketo_campaign::{ChunkReport, LeadKey};
    /// let chunk = ChunkReport::accepted([LeadKey::email("a@b.c")?], "ajo").with_execution_id("HUMA-1");
    /// assert_eq!(chunk.execution_id(), Some("HUMA-1"));
    /// assert_eq!(ChunkReport::accepted([LeadKey::id(1)?], "rest").execution_id(), None);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn execution_id(&self) -> Option<&str> {
        self.execution_id.as_deref()
    }

    /// The chunk's position in the request, from 0 (in a bulk run, in the
    /// whole input). A report's position in an [`Outcome`] is its index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The chunk's leads, in request order.
    pub fn leads(&self) -> &[LeadKey] {
        self.leads.as_slice()
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
    /// use marketo_sandbox::{Sandbox, SandboxConfig, SandboxData};
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
    /// A chunk not (yet) sent, at `index`.
    pub(crate) fn not_attempted_at(index: usize, leads: Vec<LeadKey>) -> Self {
        ChunkReport {
            index,
            ..ChunkReport::not_attempted(leads)
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
            let mut report = ChunkReport::not_attempted_at(index, leads);
            if let Some(err) = err.take() {
                report.status = ChunkStatus::Failed(err);
            }
            report
        })
        .collect()
}

/// The outcome of a request: one report per chunk, in order.
///
/// Built from chunk reports with [`Outcome::new`] (or `collect()`), which
/// numbers them from 0 in the order given, so their indexes are always in
/// order.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    chunks: Vec<ChunkReport>,
}

impl FromIterator<ChunkReport> for Outcome {
    fn from_iter<I: IntoIterator<Item = ChunkReport>>(chunks: I) -> Self {
        let mut outcome = Outcome::default();
        for chunk in chunks {
            outcome.push(chunk);
        }
        outcome
    }
}

impl Outcome {
    /// The outcome made of `chunks`, in request order: each report's
    /// [`index`](ChunkReport::index) becomes its position.
    pub fn new(chunks: impl IntoIterator<Item = ChunkReport>) -> Self {
        chunks.into_iter().collect()
    }

    /// The result a [`CampaignRequester`] returns for this outcome, as its
    /// contract says: `Ok` when no chunk failed; the failed chunk's own
    /// error when the outcome is that one chunk; otherwise
    /// [`Error::Incomplete`].
    ///
    /// ```
    /// use marketo_campaign::{ChunkReport, Error, LeadKey, Outcome};
    /// let one = Outcome::new([ChunkReport::failed([LeadKey::id(1)?], "csv", Error::Config("disk full".into()))]);
    /// assert!(matches!(one.into_result(), Err(Error::Config(_))));
    /// let two = Outcome::new([
    ///     ChunkReport::accepted([LeadKey::id(1)?], "csv"),
    ///     ChunkReport::failed([LeadKey::id(2)?], "csv", Error::Config("disk full".into())),
    /// ]);
    /// let err = two.into_result().unwrap_err();
    /// assert_eq!(err.outcome().map(|o| o.accepted_chunks()), Some(1));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn into_result(mut self) -> Result<Outcome, Error> {
        if self.first_failure().is_none() {
            return Ok(self);
        }
        if self.chunks.len() == 1 {
            if let Some(ChunkReport {
                status: ChunkStatus::Failed(err),
                ..
            }) = self.chunks.pop()
            {
                return Err(err);
            }
        }
        Err(Error::Incomplete(Box::new(self)))
    }

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
            .flat_map(|c| c.leads().iter())
    }

    /// Appends `report`, numbered by its position.
    pub(crate) fn push(&mut self, mut report: ChunkReport) {
        report.index = self.chunks.len();
        self.chunks.push(report);
    }
}

/// What a backend learned from a chunk it sent and had accepted: the keys
/// of the chunk that named no single lead. The success value of
/// [`send_in_chunks`]' closure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkAccepted {
    /// Keys that named no single lead (the ambiguous ones included).
    pub(crate) unmatched: Vec<LeadKey>,
    /// Keys that matched several leads.
    pub(crate) ambiguous: Vec<AmbiguousKey>,
    /// The backend's id for the call (AJO's `executionId`).
    pub(crate) execution_id: Option<String>,
}

impl ChunkAccepted {
    /// Every key of the chunk named one lead (and the campaign ran for each).
    pub fn new() -> Self {
        ChunkAccepted::default()
    }

    /// The same, with `keys` named no lead (see
    /// [`ChunkReport::with_unmatched`]).
    pub fn with_unmatched(mut self, keys: impl IntoIterator<Item = LeadKey>) -> Self {
        add_unmatched(&mut self.unmatched, keys);
        self
    }

    /// The same, with `keys` matched several leads (see
    /// [`ChunkReport::with_ambiguous`]); they count as unmatched too.
    pub fn with_ambiguous(mut self, keys: impl IntoIterator<Item = AmbiguousKey>) -> Self {
        add_ambiguous(&mut self.unmatched, &mut self.ambiguous, keys);
        self
    }

    /// The same, with the id the backend gave the call (see
    /// [`ChunkReport::execution_id`]).
    ///
    /// ```
    /// use marketo_campaign::{send_in_chunks, CampaignRequest, CampaignTarget, ChunkAccepted, LeadKey};
    /// let request = CampaignRequest::new(CampaignTarget::ajo("c1", []), [LeadKey::email("a@b.c")?])?;
    /// let outcome = send_in_chunks(&request, 20, "toy", |index, _| {
    ///     Ok(ChunkAccepted::new().with_execution_id(format!("EXEC-{index}")))
    /// })?;
    /// assert_eq!(outcome.chunks()[0].execution_id(), Some("EXEC-0"));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn with_execution_id(mut self, id: impl Into<String>) -> Self {
        self.execution_id = Some(id.into());
        self
    }
}

/// Sends `request` in chunks of at most `max_leads_per_call` leads (taken
/// as 1 when 0), one call of `send` per chunk, in order, and builds the
/// result exactly as the crate's own backends do (see the
/// [contract](CampaignRequester#contract)).
///
/// `send(index, leads)` gets the chunk's index (from 0) and its leads, and
/// returns what it learned, or the call's error. The first error stops the
/// request: the chunk is reported failed with it (under `backend`, e.g.
/// `ajo`), the chunks after it not attempted, and the whole comes back as
/// [`Error::Incomplete`] (or as the error itself when the request was one
/// chunk). Log lines name `backend`.
///
/// ```
/// use marketo_campaign::{
///     send_in_chunks, CampaignRequest, CampaignTarget, ChunkAccepted, Delivery, Error, LeadKey,
/// };
/// let request = CampaignRequest::new(CampaignTarget::id(7), (1..=45).map(|i| LeadKey::id(i).unwrap()))?;
/// let mut sent = Vec::new();
/// let err = send_in_chunks(&request, 20, "toy", |index, leads| {
///     if index == 1 {
///         return Err(Error::Transport { delivery: Delivery::NotSent, message: "refused".into(), source: None });
///     }
///     sent.extend_from_slice(leads);
///     Ok(ChunkAccepted::new())
/// })
/// .unwrap_err();
/// let outcome = err.outcome().expect("part-way");
/// assert_eq!(sent.len(), 20);
/// assert_eq!(outcome.chunks().len(), 3);
/// assert_eq!(outcome.chunks()[0].backend(), "toy");
/// assert_eq!(outcome.not_attempted().count(), 5);
/// assert_eq!(err.delivery(), Delivery::NotSent);
/// # Ok::<(), Error>(())
/// ```
pub fn send_in_chunks(
    request: &CampaignRequest,
    max_leads_per_call: usize,
    backend: &str,
    mut send: impl FnMut(usize, &[LeadKey]) -> Result<ChunkAccepted, Error>,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    let mut failed = false;
    let total = request.chunks_of(max_leads_per_call).len();
    let mut start = 0;
    for (index, leads) in request.chunks_of(max_leads_per_call).enumerate() {
        let shared = ChunkLeads::Shared {
            all: Arc::clone(request.shared_leads()),
            range: start..start + leads.len(),
        };
        start += leads.len();
        let (backend, status, accepted) = if failed {
            (String::new(), ChunkStatus::NotAttempted, None)
        } else {
            match send(index, leads) {
                Ok(accepted) => (backend.to_owned(), ChunkStatus::Accepted, Some(accepted)),
                Err(err) => {
                    if total == 1 {
                        return Err(err);
                    }
                    log::warn!("{backend}: chunk {index} of {total} failed: {err}");
                    failed = true;
                    (backend.to_owned(), ChunkStatus::Failed(err), None)
                }
            }
        };
        let accepted = accepted.unwrap_or_default();
        outcome.push(ChunkReport {
            index,
            leads: shared,
            backend,
            status,
            unmatched: accepted.unmatched,
            ambiguous: accepted.ambiguous,
            execution_id: accepted.execution_id,
        });
    }
    outcome.into_result()
}

/// A requester that records every request and sends nothing: use it to test
/// your own code without a server.
///
/// By default every chunk is accepted. [`StubRequester::failing`] makes every
/// call fail with a given error instead; [`fail_call`](StubRequester::fail_call)
/// makes one call fail. It splits requests into chunks of 100 leads, or of
/// the size given to
/// [`with_max_leads_per_call`](StubRequester::with_max_leads_per_call), and
/// records each chunk's call ([`calls`](StubRequester::calls)).
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
#[derive(Debug, Clone)]
pub struct StubRequester {
    state: Arc<Mutex<StubState>>,
    failure: Option<Error>,
    max_leads: usize,
}

/// What a stub and its clones share.
#[derive(Debug, Default)]
struct StubState {
    requests: Vec<CampaignRequest>,
    calls: Vec<StubCall>,
    /// Planned failures, by call number (from 1).
    planned: BTreeMap<usize, Error>,
}

/// One call a [`StubRequester`] received: one chunk of a request.
#[derive(Debug, Clone)]
pub struct StubCall {
    leads: Vec<LeadKey>,
    error: Option<Error>,
}

impl StubCall {
    /// The chunk's leads, in request order.
    pub fn leads(&self) -> &[LeadKey] {
        &self.leads
    }

    /// The error the call failed with, or `None` when it was accepted.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
}

impl Default for StubRequester {
    fn default() -> Self {
        StubRequester {
            state: Arc::default(),
            failure: None,
            max_leads: MAX_LEADS_PER_CALL,
        }
    }
}

impl StubRequester {
    /// A stub that accepts everything, in chunks of 100 leads.
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

    /// The same stub, splitting requests into chunks of at most `max`
    /// leads (at least 1) and declaring that size
    /// ([`CampaignRequester::max_leads_per_call`]). Default: 100.
    ///
    /// ```
    /// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, StubRequester};
    /// let ajo_like = StubRequester::new().with_max_leads_per_call(20);
    /// let request = CampaignRequest::new(CampaignTarget::id(1), (1..=45).map(|i| LeadKey::id(i).unwrap()))?;
    /// let outcome = ajo_like.request_campaign(&request)?;
    /// assert_eq!(outcome.chunks().len(), 3);
    /// assert_eq!(ajo_like.calls()[2].leads().len(), 5);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn with_max_leads_per_call(mut self, max: usize) -> Self {
        self.max_leads = max.max(1);
        self
    }

    /// Makes the `n`th call (counted from 1 over the life of this stub and
    /// its clones, as [`calls`](StubRequester::calls) lists them) fail with
    /// `error`.
    ///
    /// ```
    /// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, Delivery, Error, LeadKey, StubRequester};
    /// let stub = StubRequester::new();
    /// stub.fail_call(2, Error::Transport { delivery: Delivery::Unknown, message: "reset".into(), source: None });
    /// let request = CampaignRequest::new(CampaignTarget::id(1), (1..=250).map(|i| LeadKey::id(i).unwrap()))?;
    /// let err = stub.request_campaign(&request).unwrap_err();
    /// assert_eq!(err.outcome().map(|o| o.accepted_chunks()), Some(1));
    /// assert_eq!(stub.calls().len(), 2, "the third chunk was not attempted");
    /// assert!(stub.calls()[1].error().is_some());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn fail_call(&self, n: usize, error: Error) {
        self.state().planned.insert(n, error);
    }

    /// Forgets the failures planned with
    /// [`fail_call`](StubRequester::fail_call) that have not struck yet.
    pub fn clear_failures(&self) {
        self.state().planned.clear();
    }

    /// The requests received so far, in order. Clones share the record.
    pub fn requests(&self) -> Vec<CampaignRequest> {
        self.state().requests.clone()
    }

    /// The calls made so far, one per chunk sent, in order. Clones share
    /// the record.
    pub fn calls(&self) -> Vec<StubCall> {
        self.state().calls.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Display for StubRequester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stub")
    }
}

impl CampaignRequester for StubRequester {
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        self.state().requests.push(request.clone());
        send_in_chunks(request, self.max_leads, "stub", |_, leads| {
            let mut state = self.state();
            let n = state.calls.len() + 1;
            let error = state.planned.remove(&n).or_else(|| self.failure.clone());
            state.calls.push(StubCall {
                leads: leads.to_vec(),
                error: error.clone(),
            });
            match error {
                Some(err) => Err(err),
                None => Ok(ChunkAccepted::default()),
            }
        })
    }

    fn max_leads_per_call(&self) -> usize {
        self.max_leads
    }
}

/// Adds `keys` to `unmatched`, each once.
fn add_unmatched(unmatched: &mut Vec<LeadKey>, keys: impl IntoIterator<Item = LeadKey>) {
    for key in keys {
        if !unmatched.contains(&key) {
            unmatched.push(key);
        }
    }
}

/// Adds `keys` to `ambiguous`, and their keys to `unmatched` (an ambiguous
/// key is an unmatched one).
fn add_ambiguous(
    unmatched: &mut Vec<LeadKey>,
    ambiguous: &mut Vec<AmbiguousKey>,
    keys: impl IntoIterator<Item = AmbiguousKey>,
) {
    for key in keys {
        add_unmatched(unmatched, [key.key.clone()]);
        ambiguous.push(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_report_shows_its_own_leads_only() {
        let request = CampaignRequest::new(
            crate::CampaignTarget::id(1),
            (1..=250).map(|i| LeadKey::id(i).unwrap()),
        )
        .unwrap();
        let outcome =
            send_in_chunks(&request, 100, "stub", |_, _| Ok(ChunkAccepted::default())).unwrap();
        let third = &outcome.chunks()[2];
        assert_eq!(third.leads(), &request.leads()[200..]);
        let shown = format!("{third:?}");
        assert_eq!(shown.matches("LeadKey").count(), 50, "{shown}");
        assert!(shown.contains("\"250\""), "{shown}");
    }
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
        let err = send_in_chunks(&request(350), MAX_LEADS_PER_CALL, "test", |_, _| {
            calls += 1;
            if calls == 2 {
                Err(Error::Transport {
                    delivery: Delivery::Unknown,
                    message: "reset".into(),
                    source: None,
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
    fn an_outcome_numbers_its_chunks_in_order() {
        let key = |i| LeadKey::id(i).unwrap();
        let outcome: Outcome = [
            ChunkReport::accepted([key(1)], "toy"),
            ChunkReport::failed([key(2)], "toy", Error::Config("x".into())),
            ChunkReport::not_attempted([key(3)]),
        ]
        .into_iter()
        .collect();
        let indexes: Vec<usize> = outcome.chunks().iter().map(ChunkReport::index).collect();
        assert_eq!(indexes, [0, 1, 2]);
        assert_eq!(outcome.first_failure().map(|(i, _)| i), Some(1));
        assert_eq!(outcome.chunks()[2].backend(), "");
        let err = outcome.into_result().unwrap_err();
        assert_eq!(err.outcome().unwrap().not_attempted().count(), 1);
        let ok = Outcome::new([ChunkReport::accepted([key(1)], "toy")]);
        assert!(ok.into_result().unwrap().is_complete());
    }

    #[test]
    fn an_ambiguous_key_is_unmatched_too_and_listed_once() {
        let shared = LeadKey::email("shared@company.com").unwrap();
        let chunk = ChunkReport::accepted([shared.clone(), LeadKey::id(1).unwrap()], "toy")
            .with_unmatched([shared.clone()])
            .with_ambiguous([AmbiguousKey::new(shared.clone(), [9, 3, 9])]);
        assert_eq!(chunk.unmatched(), std::slice::from_ref(&shared));
        assert_eq!(chunk.ambiguous()[0].lead_ids(), [3, 9]);
        let accepted =
            ChunkAccepted::new().with_ambiguous([AmbiguousKey::new(shared.clone(), [1, 2])]);
        assert_eq!(accepted.unmatched, [shared]);
    }

    #[test]
    fn the_stub_chunks_by_its_size_and_fails_the_calls_it_is_told_to() {
        let stub = StubRequester::new().with_max_leads_per_call(20);
        assert_eq!(stub.max_leads_per_call(), 20);
        assert_eq!(
            <&StubRequester as CampaignRequester>::max_leads_per_call(&&stub),
            20,
            "references forward the size"
        );
        assert_eq!(Arc::new(stub.clone()).max_leads_per_call(), 20);
        let boxed: Box<dyn CampaignRequester> = Box::new(stub.clone());
        assert_eq!(boxed.max_leads_per_call(), 20);
        assert_eq!(
            StubRequester::new()
                .with_max_leads_per_call(0)
                .max_leads_per_call(),
            1
        );
        let outcome = stub.request_campaign(&request(45)).unwrap();
        let sizes: Vec<usize> = outcome.chunks().iter().map(|c| c.leads().len()).collect();
        assert_eq!(sizes, [20, 20, 5]);
        stub.fail_call(5, Error::Config("x".into()));
        let err = stub.request_campaign(&request(45)).unwrap_err();
        let outcome = err.outcome().unwrap();
        assert_eq!(outcome.accepted_chunks(), 1);
        assert_eq!(outcome.first_failure().unwrap().0, 1);
        let calls = stub.calls();
        assert_eq!(calls.len(), 5);
        assert!(calls[4].error().is_some() && calls[3].error().is_none());
        assert_eq!(calls[4].leads(), &request(45).leads()[20..40]);
        assert_eq!(stub.requests().len(), 2);
    }

    #[test]
    fn single_chunk_failure_is_the_plain_error() {
        let err = send_in_chunks(&request(3), MAX_LEADS_PER_CALL, "test", |_, _| {
            Err(Error::Config("x".into()))
        })
        .unwrap_err();
        assert!(matches!(err, Error::Config(_)));
    }
}
