//! Bulk runs: leads streamed from any source, sent in chunks of the
//! requester's size by several workers within the client's rate limit,
//! reported chunk by chunk.

use std::collections::HashSet;

use sha1::{Digest, Sha1};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::{Mutex, PoisonError};

use crate::error::{Delivery, Error, RestCode, SoapCode};
use crate::request::{CampaignRequest, CampaignTarget, LeadKey, Source};
use crate::requester::{failed_as_whole, CampaignRequester, ChunkReport, ChunkStatus, Outcome};

/// How a bulk run goes. Every setter documents its default.
///
/// ```
/// use marketo_campaign::BulkOptions;
/// let options = BulkOptions::new().workers(4).chunks_per_request(3).skip([0, 1]);
/// assert_eq!(options.worker_count(), 4);
/// ```
#[derive(Debug, Clone)]
pub struct BulkOptions {
    workers: usize,
    chunks_per_request: usize,
    skip: HashSet<usize>,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            workers: 10,
            chunks_per_request: 1,
            skip: HashSet::new(),
        }
    }
}

impl BulkOptions {
    /// Defaults: 10 workers (Marketo's concurrency limit; the client's rate
    /// limiter still decides how many calls are in flight), one chunk per
    /// request, nothing skipped.
    pub fn new() -> Self {
        BulkOptions::default()
    }

    /// Requests sent at once. Default: 10.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Chunks handed to the requester in one request (default one). Use 3
    /// with [`RestClient`](crate::RestClient): its lead look-ups take 300
    /// values, so one look-up serves three triggers of 100.
    pub fn chunks_per_request(mut self, chunks: usize) -> Self {
        self.chunks_per_request = chunks.max(1);
        self
    }

    /// Chunk indexes (from 0, in input order) not to send, e.g. those a
    /// previous run served. They are read from the input and passed over.
    pub fn skip(mut self, chunks: impl IntoIterator<Item = usize>) -> Self {
        self.skip.extend(chunks);
        self
    }

    /// Requests sent at once.
    pub fn worker_count(&self) -> usize {
        self.workers
    }
}

/// What a bulk run did, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkSummary {
    /// Leads read from the input.
    pub leads: usize,
    /// Chunks accepted.
    pub accepted: usize,
    /// Chunks that failed (each reported with its error).
    pub failed: usize,
    /// Chunks not sent because the run stopped after a failure.
    pub not_attempted: usize,
    /// Chunks passed over as asked ([`BulkOptions::skip`]).
    pub skipped: usize,
    /// Keys that matched no lead.
    pub unmatched: usize,
    /// The worst delivery among failed chunks: `Unknown` if any may have run.
    pub worst: Option<Delivery>,
}

impl BulkSummary {
    /// `true` when every chunk sent was accepted and every key matched.
    pub fn is_complete(&self) -> bool {
        self.failed == 0 && self.not_attempted == 0 && self.unmatched == 0
    }

    fn add(&mut self, report: &ChunkReport) {
        match report.status() {
            ChunkStatus::Accepted => self.accepted += 1,
            ChunkStatus::Failed(err) => {
                self.failed += 1;
                let delivery = err.delivery();
                self.worst = self.worst.max(Some(delivery));
            }
            _ => self.not_attempted += 1,
        }
        self.unmatched += report.unmatched().len();
    }
}

/// A failure that concerns some leads only: the run goes on after it.
fn lead_level(err: &Error) -> bool {
    matches!(
        err.soap_code(),
        Some(SoapCode::LeadKeyRequired | SoapCode::LeadKeyBad | SoapCode::LeadNotFound)
    ) || err.rest_code() == Some(RestCode::LeadNotFound)
}

/// One request's worth of chunks: their indexes and leads.
type Batch = Vec<(usize, Vec<LeadKey>)>;

/// Sends `leads` to `requester` for `target`, in chunks of the requester's
/// [`max_leads_per_call`](CampaignRequester::max_leads_per_call) (read once,
/// when the run starts).
///
/// Leads are read as they are needed: memory holds a few requests' worth,
/// however long the input. `on_chunk` is called once per chunk, in the order
/// chunks finish, with the chunk's index in the input (from 0). A failure
/// that concerns leads only (SOAP 20101–20103, REST 1004) is reported and the
/// run goes on; any other failure stops it: requests already queued are
/// reported not attempted and no more input is read. An error in the input
/// itself stops the run the same way and is returned, after the chunks sent
/// before it were reported.
///
/// To keep a record that survives a crash, use [`run_bulk_with`], which
/// also calls a hook before each chunk is sent.
///
/// ```
/// use marketo_campaign::{run_bulk, BulkOptions, CampaignTarget, LeadKey, Source, StubRequester};
/// let stub = StubRequester::new();
/// let leads = (1..=250).map(LeadKey::id);
/// let mut seen = Vec::new();
/// let summary = run_bulk(&stub, &CampaignTarget::id(4496), Source::Mktows, leads, &BulkOptions::new(),
///     |chunk| seen.push((chunk.index(), chunk.leads().len())))?;
/// assert_eq!(summary.accepted, 3);
/// seen.sort();
/// assert_eq!(seen, [(0, 100), (1, 100), (2, 50)]);
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
pub fn run_bulk<R, I, F>(
    requester: &R,
    target: &CampaignTarget,
    source: Source,
    leads: I,
    options: &BulkOptions,
    on_chunk: F,
) -> Result<BulkSummary, Error>
where
    R: CampaignRequester + ?Sized,
    I: IntoIterator<Item = Result<LeadKey, Error>>,
    F: FnMut(&ChunkReport) + Send,
{
    run_bulk_with(
        requester,
        target,
        source,
        leads,
        options,
        |_, _| Ok(()),
        on_chunk,
    )
}

/// [`run_bulk`], with a hook called before each chunk is sent: the way to
/// keep a write-ahead record of a run.
///
/// A requester whose outcome chunks a request differently than the run
/// did (a [`Fallback`](crate::Fallback) whose secondary has another size
/// and served part of it) is reported by the run's chunks: a chunk all of
/// whose leads were accepted is accepted, one none of whose leads was is
/// failed or not attempted as they were, and one only part of whose leads
/// were accepted is failed with a delivery of
/// [unknown](crate::Delivery::Unknown), so that it is never resent whole.
///
/// `before_send(index, leads)` is called for every chunk that is about to
/// be sent, with the chunk's index in the input (from 0) and its leads,
/// just before the request that carries it is handed to `requester`. When
/// a request carries several chunks ([`BulkOptions::chunks_per_request`]),
/// all of them are announced before that request is sent. Chunks passed
/// over ([`BulkOptions::skip`]) or not attempted are never announced. The
/// hook runs on the worker thread that sends the chunk, so from several
/// threads at once (it must be `Sync`; serialize writes yourself).
///
/// If the hook returns an error, the request is not sent: its chunks are
/// reported to `on_chunk` as [not attempted](ChunkStatus::NotAttempted),
/// no further request is sent (queued ones are reported not attempted and
/// no more input is read), requests already in flight finish and are
/// reported, and `run_bulk_with` returns the hook's first error.
///
/// Record-keeping that survives a crash: in the hook, write "chunk N is
/// being sent" (with [`chunk_digest`] of its leads) and sync it to stable
/// storage (a flush survives the process crashing, not a power cut:
/// [`std::fs::File::sync_data`] does), returning an error if that fails;
/// in `on_chunk`, write the
/// outcome. A chunk whose "sending" entry has no outcome after a crash was
/// possibly sent and possibly run: its delivery is
/// [unknown](crate::Delivery::Unknown), and it must not be resent blindly.
/// Keep the run's [`request_digest`] in the record too, and refuse to
/// resume a record of another request: its accepted chunks were accepted
/// for another campaign (or other tokens), and skipping them would leave
/// their leads without this one.
///
/// ```
/// use std::sync::Mutex;
/// use marketo_campaign::{
///     chunk_digest, run_bulk_with, BulkOptions, CampaignTarget, Error, LeadKey, Source, StubRequester,
/// };
/// let stub = StubRequester::new();
/// let record = Mutex::new(Vec::new());
/// let summary = run_bulk_with(
///     &stub,
///     &CampaignTarget::id(4496),
///     Source::Mktows,
///     (1..=250).map(LeadKey::id),
///     &BulkOptions::new().workers(1),
///     |index, leads| {
///         // Write and sync "sending" here; an error stops the run before the send.
///         let mut record = record.lock().map_err(|_| Error::Config("record lock poisoned".into()))?;
///         record.push(format!("sending {index} {}", chunk_digest(leads)));
///         Ok(())
///     },
///     |chunk| record.lock().unwrap().push(format!("done {}", chunk.index())),
/// )?;
/// assert_eq!(summary.accepted, 3);
/// let record = record.into_inner().unwrap();
/// assert_eq!(record.len(), 6);
/// assert!(record[0].starts_with("sending 0 "));
///
/// // A hook that fails stops the run: nothing more is sent.
/// let stub = StubRequester::new();
/// let err = run_bulk_with(
///     &stub,
///     &CampaignTarget::id(4496),
///     Source::Mktows,
///     (1..=250).map(LeadKey::id),
///     &BulkOptions::new().workers(1),
///     |index, _| if index == 1 { Err(Error::Config("disk full".into())) } else { Ok(()) },
///     |_| {},
/// )
/// .unwrap_err();
/// assert!(err.to_string().contains("disk full"));
/// assert_eq!(stub.requests().len(), 1); // chunk 0 only
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
pub fn run_bulk_with<R, I, B, F>(
    requester: &R,
    target: &CampaignTarget,
    source: Source,
    leads: I,
    options: &BulkOptions,
    before_send: B,
    on_chunk: F,
) -> Result<BulkSummary, Error>
where
    R: CampaignRequester + ?Sized,
    I: IntoIterator<Item = Result<LeadKey, Error>>,
    B: Fn(usize, &[LeadKey]) -> Result<(), Error> + Sync,
    F: FnMut(&ChunkReport) + Send,
{
    // Check the target once, before anything is read or sent.
    CampaignRequest::new(target.clone(), [LeadKey::id(1)?])?;
    let stop = AtomicBool::new(false);
    let hook_error: Mutex<Option<Error>> = Mutex::new(None);
    let (work_tx, work_rx) = sync_channel::<Batch>(options.workers);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = channel::<ChunkReport>();
    let mut summary = BulkSummary::default();
    let input = std::thread::scope(|s| {
        for _ in 0..options.workers {
            let done_tx = done_tx.clone();
            let worker_state = Worker {
                requester,
                target,
                source,
                work: &work_rx,
                stop: &stop,
                before_send: &before_send,
                hook_error: &hook_error,
            };
            s.spawn(move || worker_state.run(&done_tx));
        }
        drop(done_tx);
        let reporter = s.spawn(move || report(done_rx, on_chunk));
        let size = requester.max_leads_per_call().max(1);
        let input = produce(leads, size, options, &stop, &mut summary, |batch| {
            work_tx.send(batch).is_ok()
        });
        drop(work_tx);
        let reported = reporter.join();
        (input, reported)
    });
    let (input, reported) = input;
    match reported {
        Ok(reported) => {
            summary.accepted = reported.accepted;
            summary.failed = reported.failed;
            summary.not_attempted = reported.not_attempted;
            summary.unmatched = reported.unmatched;
            summary.worst = reported.worst;
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
    if let Some(err) = hook_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(err);
    }
    input.map(|()| summary)
}

/// A digest of a chunk's whole content: lowercase hex of SHA-1 over its
/// keys, in order (each key's type, then its value's length and bytes).
/// Two chunks have the same digest only if they hold the same keys in the
/// same order, so a record that keeps it can tell whether a leads file
/// changed since a chunk was sent.
///
/// ```
/// use marketo_campaign::{chunk_digest, LeadKey};
/// let a = [LeadKey::id(1)?, LeadKey::email("a@b.c")?];
/// let b = [LeadKey::id(1)?, LeadKey::email("a@b.d")?];
/// assert_eq!(chunk_digest(&a).len(), 40);
/// assert_ne!(chunk_digest(&a), chunk_digest(&b));
/// assert_eq!(chunk_digest(&a), chunk_digest(&a.clone()));
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
pub fn chunk_digest(leads: &[LeadKey]) -> String {
    let mut hasher = Sha1::new();
    for lead in leads {
        hasher.update(lead.key_type().as_str().as_bytes());
        hasher.update(b":");
        hasher.update((lead.value().len() as u64).to_be_bytes());
        hasher.update(lead.value().as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// A digest of what a bulk run asks for, apart from its leads: the
/// campaign (its id, or its name, its program's name and its program
/// tokens) and the source. Lowercase hex of SHA-1, like [`chunk_digest`].
///
/// Two requests have the same digest only if they run the same campaign
/// with the same tokens from the same source. Tokens are taken in name
/// order (a campaign target cannot hold a name twice), so the order they
/// were given in does not matter. A record that keeps it next to each
/// chunk's [`chunk_digest`] can tell, before resuming, whether the chunks
/// it says were accepted were accepted for *this* request: resuming a
/// record of another campaign would skip leads that never got this one.
///
/// ```
/// use marketo_campaign::{request_digest, CampaignTarget, ProgramToken, Source};
/// let a = ProgramToken::new("{{my.A}}", "1")?;
/// let b = ProgramToken::new("{{my.B}}", "2")?;
/// let ab = CampaignTarget::named("C", "P", [a.clone(), b.clone()]);
/// let ba = CampaignTarget::named("C", "P", [b, a]);
/// assert_eq!(request_digest(&ab, Source::Mktows), request_digest(&ba, Source::Mktows));
/// assert_ne!(request_digest(&ab, Source::Mktows), request_digest(&ab, Source::Sales));
/// assert_ne!(
///     request_digest(&CampaignTarget::id(1), Source::Mktows),
///     request_digest(&CampaignTarget::id(2), Source::Mktows),
/// );
/// assert_ne!(
///     request_digest(&CampaignTarget::id(1), Source::Mktows),
///     request_digest(&CampaignTarget::id_with_tokens(1, [ProgramToken::new("{{my.A}}", "1")?]), Source::Mktows),
/// );
/// // An AJO campaign is not the Marketo campaign of the same text.
/// assert_ne!(
///     request_digest(&CampaignTarget::ajo("1", []), Source::Mktows),
///     request_digest(&CampaignTarget::id(1), Source::Mktows),
/// );
/// assert_ne!(
///     request_digest(&CampaignTarget::ajo("a", []), Source::Mktows),
///     request_digest(&CampaignTarget::ajo("b", []), Source::Mktows),
/// );
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
pub fn request_digest(target: &CampaignTarget, source: Source) -> String {
    let mut hasher = Sha1::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(b"marketo-campaign request 1");
    match target {
        CampaignTarget::Id { id, .. } => {
            field(b"id");
            field(id.to_string().as_bytes());
        }
        CampaignTarget::Named {
            campaign, program, ..
        } => {
            field(b"named");
            field(campaign.as_bytes());
            field(program.as_bytes());
        }
        CampaignTarget::Ajo { campaign_id, .. } => {
            field(b"ajo");
            field(campaign_id.as_bytes());
        }
    }
    let mut tokens: Vec<_> = target.tokens().iter().collect();
    tokens.sort_by(|a, b| a.name().cmp(b.name()).then(a.value().cmp(b.value())));
    field(tokens.len().to_string().as_bytes());
    for token in tokens {
        field(token.name().as_bytes());
        field(token.value().as_bytes());
    }
    field(source.as_str().as_bytes());
    hex::encode(hasher.finalize())
}

/// Reads the input into batches of chunks of `size` leads and hands them
/// over; counts leads and skipped chunks. Stops at the first bad lead or
/// when told to.
fn produce<I>(
    leads: I,
    size: usize,
    options: &BulkOptions,
    stop: &AtomicBool,
    summary: &mut BulkSummary,
    mut send: impl FnMut(Batch) -> bool,
) -> Result<(), Error>
where
    I: IntoIterator<Item = Result<LeadKey, Error>>,
{
    let mut batch: Batch = Vec::with_capacity(options.chunks_per_request);
    let mut chunk: Vec<LeadKey> = Vec::with_capacity(size);
    let mut index = 0usize;
    let mut flush_chunk =
        |chunk: &mut Vec<LeadKey>, batch: &mut Batch, summary: &mut BulkSummary| {
            let leads = std::mem::replace(chunk, Vec::with_capacity(size));
            if options.skip.contains(&index) {
                summary.skipped += 1;
            } else {
                batch.push((index, leads));
            }
            index += 1;
        };
    for lead in leads {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        chunk.push(lead?);
        summary.leads += 1;
        if chunk.len() == size {
            flush_chunk(&mut chunk, &mut batch, summary);
            if batch.len() == options.chunks_per_request && !send(std::mem::take(&mut batch)) {
                return Ok(());
            }
        }
    }
    if !chunk.is_empty() {
        flush_chunk(&mut chunk, &mut batch, summary);
    }
    if !batch.is_empty() {
        send(batch);
    }
    Ok(())
}

/// What a worker thread shares with the run.
struct Worker<'a, R: ?Sized, B> {
    requester: &'a R,
    target: &'a CampaignTarget,
    source: Source,
    work: &'a Mutex<Receiver<Batch>>,
    stop: &'a AtomicBool,
    before_send: &'a B,
    hook_error: &'a Mutex<Option<Error>>,
}

impl<R, B> Worker<'_, R, B>
where
    R: CampaignRequester + ?Sized,
    B: Fn(usize, &[LeadKey]) -> Result<(), Error> + Sync,
{
    fn run(self, done: &std::sync::mpsc::Sender<ChunkReport>) {
        loop {
            let batch = match self
                .work
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv()
            {
                Ok(batch) => batch,
                Err(_) => return,
            };
            let indexes: Vec<usize> = batch.iter().map(|(index, _)| *index).collect();
            let reports = if self.stop.load(Ordering::SeqCst) {
                not_attempted(batch)
            } else if let Err(err) = self.announce(&batch) {
                self.stop.store(true, Ordering::SeqCst);
                self.hook_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(err);
                not_attempted(batch)
            } else {
                self.send(batch)
            };
            for (mut report, index) in reports.into_iter().zip(indexes) {
                report.index = index;
                if done.send(report).is_err() {
                    return;
                }
            }
        }
    }

    /// Calls the hook for every chunk of the batch; the first error stops.
    fn announce(&self, batch: &Batch) -> Result<(), Error> {
        batch
            .iter()
            .try_for_each(|(index, leads)| (self.before_send)(*index, leads))
    }

    fn send(&self, batch: Batch) -> Vec<ChunkReport> {
        let leads = batch.iter().flat_map(|(_, leads)| leads.iter().cloned());
        let result = CampaignRequest::new(self.target.clone(), leads)
            .map(|request| request.with_source(self.source))
            .and_then(|request| self.requester.request_campaign(&request));
        let reports = reports_of(result, batch);
        if reports.iter().any(|r| match r.status() {
            ChunkStatus::Failed(err) => !lead_level(err),
            _ => false,
        }) {
            self.stop.store(true, Ordering::SeqCst);
        }
        reports
    }
}

fn not_attempted(batch: Batch) -> Vec<ChunkReport> {
    batch
        .into_iter()
        .map(|(index, leads)| ChunkReport::not_attempted_at(index, leads))
        .collect()
}

/// One report per chunk of the batch, whatever the requester returned.
fn reports_of(result: Result<Outcome, Error>, batch: Batch) -> Vec<ChunkReport> {
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(Error::Incomplete(outcome)) => *outcome,
        Err(err) => return failed_as_whole(err, batch),
    };
    let aligned = outcome.chunks().len() == batch.len()
        && outcome
            .chunks()
            .iter()
            .zip(&batch)
            .all(|(chunk, (_, leads))| chunk.leads() == leads.as_slice());
    if aligned {
        return outcome.chunks().to_vec();
    }
    let sent: Vec<&LeadKey> = batch.iter().flat_map(|(_, leads)| leads).collect();
    let returned: Vec<&LeadKey> = outcome.chunks().iter().flat_map(|c| c.leads()).collect();
    if sent == returned {
        return regroup(&outcome, batch);
    }
    // A requester whose outcome does not hold the leads it was given, in
    // order: nothing can be said per chunk.
    let accepted = outcome.is_complete();
    let backend = outcome
        .chunks()
        .first()
        .map(|c| c.backend().to_owned())
        .unwrap_or_default();
    batch
        .into_iter()
        .map(|(index, leads)| ChunkReport {
            index,
            backend: backend.clone(),
            status: if accepted {
                ChunkStatus::Accepted
            } else {
                ChunkStatus::Failed(Error::Protocol {
                    status: 0,
                    reason: "the requester's outcome does not list the leads it was given".into(),
                    body: String::new(),
                })
            },
            ..ChunkReport::not_attempted(leads)
        })
        .collect()
}

/// The batch's chunks reported from an outcome that chunked the same leads
/// (in the same order) differently: each batch chunk takes the status of
/// the outcome chunks that hold its leads, and a chunk only part of whose
/// leads were accepted fails with an unknown delivery (it must not be sent
/// again whole). Each unmatched key goes to the first batch chunk that
/// holds it among the leads of its outcome chunk.
fn regroup(outcome: &Outcome, batch: Batch) -> Vec<ChunkReport> {
    // Where each outcome chunk starts among the leads.
    let mut spans = Vec::with_capacity(outcome.chunks().len());
    let mut at = 0;
    for chunk in outcome.chunks() {
        spans.push((at, at + chunk.leads().len(), chunk));
        at += chunk.leads().len();
    }
    let mut unmatched_taken: Vec<Vec<bool>> = outcome
        .chunks()
        .iter()
        .map(|c| vec![false; c.unmatched().len()])
        .collect();
    let mut ambiguous_taken: Vec<Vec<bool>> = outcome
        .chunks()
        .iter()
        .map(|c| vec![false; c.ambiguous().len()])
        .collect();
    let mut start = 0;
    let mut reports = Vec::with_capacity(batch.len());
    for (index, leads) in batch {
        let end = start + leads.len();
        let mut report = ChunkReport::not_attempted_at(index, leads);
        let overlapping: Vec<(usize, usize, usize, &ChunkReport)> = spans
            .iter()
            .enumerate()
            .filter(|(_, (s, e, _))| *s < end && start < *e)
            .map(|(i, (s, e, c))| (i, *s, *e, *c))
            .collect();
        let mut backends: Vec<&str> = Vec::new();
        for (_, _, _, chunk) in &overlapping {
            if !chunk.backend().is_empty() && !backends.contains(&chunk.backend()) {
                backends.push(chunk.backend());
            }
        }
        report.backend = backends.join("+");
        let accepted = overlapping.iter().filter(|(.., c)| c.is_accepted()).count();
        let failure = overlapping.iter().find_map(|(.., c)| match c.status() {
            ChunkStatus::Failed(err) => Some(err),
            _ => None,
        });
        if accepted == overlapping.len() {
            report.status = ChunkStatus::Accepted;
        } else if accepted > 0 {
            // This chunk's leads in the accepted parts.
            let served = overlapping
                .iter()
                .filter(|(.., c)| c.is_accepted())
                .flat_map(|(_, s, _, c)| {
                    let part = &c.leads()[start.saturating_sub(*s)..(end - s).min(c.leads().len())];
                    part.iter().cloned()
                })
                .collect();
            report.status = ChunkStatus::Failed(Error::PartlyServed {
                served,
                leads: end - start,
                parts: overlapping.len(),
                accepted,
                failure: failure.map(|err| Box::new(err.clone())),
            });
        } else if let Some(err) = failure {
            report.status = ChunkStatus::Failed(err.clone());
        }
        // Keys of the outcome that fall in this chunk's part of each
        // overlapping outcome chunk.
        for (i, s, _, chunk) in &overlapping {
            let part = &chunk.leads()[start.saturating_sub(*s)..(end - s).min(chunk.leads().len())];
            for (k, key) in chunk.unmatched().iter().enumerate() {
                if !unmatched_taken[*i][k] && part.contains(key) {
                    unmatched_taken[*i][k] = true;
                    report.unmatched.push(key.clone());
                }
            }
            for (k, key) in chunk.ambiguous().iter().enumerate() {
                if !ambiguous_taken[*i][k] && part.contains(key.key()) {
                    ambiguous_taken[*i][k] = true;
                    report.ambiguous.push(key.clone());
                }
            }
        }
        reports.push(report);
        start = end;
    }
    reports
}

fn report(done: Receiver<ChunkReport>, mut on_chunk: impl FnMut(&ChunkReport)) -> BulkSummary {
    let mut summary = BulkSummary::default();
    for report in done {
        summary.add(&report);
        on_chunk(&report);
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{ProgramToken, MAX_LEADS_PER_CALL};
    use crate::requester::StubRequester;

    fn ids(n: u32) -> impl Iterator<Item = Result<LeadKey, Error>> {
        (1..=n).map(LeadKey::id)
    }

    /// [`run_bulk`] of campaign 1 from MKTOWS.
    fn bulk<R: CampaignRequester + ?Sized>(
        requester: &R,
        leads: impl IntoIterator<Item = Result<LeadKey, Error>>,
        options: &BulkOptions,
        on_chunk: impl FnMut(&ChunkReport) + Send,
    ) -> Result<BulkSummary, Error> {
        let target = CampaignTarget::id(1);
        run_bulk(requester, &target, Source::Mktows, leads, options, on_chunk)
    }

    /// `workers` workers, `per_request` chunks a request.
    fn batching(workers: usize, per_request: usize) -> BulkOptions {
        BulkOptions::new()
            .workers(workers)
            .chunks_per_request(per_request)
    }

    /// [`run_bulk_with`] of campaign 1 from MKTOWS.
    fn bulk_with<R: CampaignRequester + ?Sized>(
        requester: &R,
        leads: impl IntoIterator<Item = Result<LeadKey, Error>>,
        options: &BulkOptions,
        before_send: impl Fn(usize, &[LeadKey]) -> Result<(), Error> + Sync,
        on_chunk: impl FnMut(&ChunkReport) + Send,
    ) -> Result<BulkSummary, Error> {
        let target = CampaignTarget::id(1);
        let source = Source::Mktows;
        run_bulk_with(
            requester,
            &target,
            source,
            leads,
            options,
            before_send,
            on_chunk,
        )
    }

    /// A fallback from a primary whose first call is not sent to a
    /// secondary of 20 leads a call whose call `refused_call` is refused;
    /// and the secondary.
    fn fallback_to_20(
        refused_call: usize,
    ) -> (crate::Fallback<StubRequester, StubRequester>, StubRequester) {
        let primary = StubRequester::new();
        primary.fail_call(1, not_sent());
        let secondary = StubRequester::new().with_max_leads_per_call(20);
        secondary.fail_call(refused_call, refused());
        (crate::Fallback::new(primary, secondary.clone()), secondary)
    }

    /// The summary and reports of a run of 100 leads with one worker.
    fn reports_of_100(requester: &impl CampaignRequester) -> (BulkSummary, Vec<ChunkReport>) {
        let mut reports = Vec::new();
        let options = BulkOptions::new().workers(1);
        let summary = bulk(requester, ids(100), &options, |c| reports.push(c.clone())).unwrap();
        (summary, reports)
    }

    #[test]
    fn every_chunk_is_reported_once_in_any_batching() {
        for per_request in [1, 3] {
            let stub = StubRequester::new();
            let mut seen = Vec::new();
            let summary = bulk(
                &stub,
                ids(1050),
                &batching(4, per_request).skip([2, 5]),
                |c| seen.push((c.index(), c.leads()[0].value().to_owned(), c.leads().len())),
            )
            .unwrap();
            seen.sort();
            let expected: Vec<(usize, String, usize)> = (0..11)
                .filter(|i| *i != 2 && *i != 5)
                .map(|i| (i, (i * 100 + 1).to_string(), if i == 10 { 50 } else { 100 }))
                .collect();
            assert_eq!(seen, expected);
            assert_eq!(summary.leads, 1050);
            assert_eq!(summary.skipped, 2);
            assert_eq!(summary.accepted, 9);
            assert!(summary.is_complete());
            let sent: usize = stub.requests().iter().map(|r| r.leads().len()).sum();
            assert_eq!(sent, 850);
        }
    }

    #[test]
    fn chunks_are_of_the_requesters_size() {
        for per_request in [1, 3] {
            let stub = StubRequester::new().with_max_leads_per_call(20);
            let mut seen = Vec::new();
            let summary = bulk(&stub, ids(250), &batching(3, per_request), |c| {
                seen.push((c.index(), c.leads().len(), c.is_accepted()))
            })
            .unwrap();
            seen.sort();
            let expected: Vec<(usize, usize, bool)> = (0..13)
                .map(|i| (i, if i == 12 { 10 } else { 20 }, true))
                .collect();
            assert_eq!(seen, expected);
            assert_eq!(summary.accepted, 13);
            assert!(stub.calls().iter().all(|c| c.leads().len() <= 20));
            let largest = stub.requests().iter().map(|r| r.leads().len()).max();
            assert_eq!(largest, Some(20 * per_request));
        }
    }

    fn refused() -> Error {
        Error::SoapFault {
            code: SoapCode::AccessDenied,
            message: "Access denied".into(),
        }
    }

    fn not_sent() -> Error {
        Error::Transport {
            delivery: Delivery::NotSent,
            message: "refused".into(),
            source: None,
        }
    }

    #[test]
    fn a_chunk_served_in_parts_by_a_fallback_is_never_reported_safe_to_resend() {
        // The primary (100) is not reachable for the first chunk; the
        // secondary (20) takes it in five calls, and refuses the third.
        let (fallback, secondary) = fallback_to_20(3);
        let (summary, reports) = reports_of_100(&fallback);
        assert_eq!(reports.len(), 1);
        let ChunkStatus::Failed(err) = reports[0].status() else {
            panic!("{:?}", reports[0]);
        };
        assert_eq!(
            err.delivery(),
            Delivery::Unknown,
            "40 of its leads ran: resending it whole would run them twice"
        );
        assert_eq!(reports[0].leads().len(), 100);
        assert_eq!(reports[0].backend(), "stub");
        assert_eq!(summary.worst, Some(Delivery::Unknown));
        let ran: usize = secondary
            .calls()
            .iter()
            .filter(|c| c.error().is_none())
            .map(|c| c.leads().len())
            .sum();
        assert_eq!(ran, 40);

        // Refused before any of its leads ran: reported as refused.
        let (fallback, _) = fallback_to_20(1);
        let (_, reports) = reports_of_100(&fallback);
        let ChunkStatus::Failed(err) = reports[0].status() else {
            panic!("{:?}", reports[0]);
        };
        assert_eq!(err.delivery(), Delivery::Refused);
    }

    /// A chunk served in parts, some accepted: its own error, which says
    /// which leads were served and why the rest were not, classified
    /// unknown (exit 4), never a protocol error of "HTTP 0".
    #[test]
    fn a_chunk_served_in_parts_says_what_was_served() {
        let primary = StubRequester::new();
        primary.fail_call(1, not_sent());
        let secondary = StubRequester::new().with_max_leads_per_call(20);
        secondary.fail_call(3, refused());
        let fallback = crate::Fallback::new(primary, secondary);
        let mut reports = Vec::new();
        run_bulk(
            &fallback,
            &CampaignTarget::id(1),
            Source::Mktows,
            ids(100),
            &BulkOptions::new().workers(1),
            |c| reports.push(c.clone()),
        )
        .unwrap();
        let ChunkStatus::Failed(err) = reports[0].status() else {
            panic!("{:?}", reports[0]);
        };
        let text = err.to_string();
        assert!(!text.contains("HTTP 0"), "{text}");
        assert!(
            text.contains("2 of 5 parts accepted") && text.contains("40 of its 100 leads"),
            "{text}"
        );
        assert!(
            text.contains("Access denied"),
            "the failed part's error: {text}"
        );
        let class = err.classify();
        assert_eq!(
            (class.delivery, class.action),
            (Delivery::Unknown, crate::Action::Stop)
        );
        assert!(class.reason.contains("accepted parts"), "{}", class.reason);
        assert_eq!(err.exit_code(), crate::exit::UNKNOWN);
        let json = serde_json::to_value(&reports[0]).unwrap();
        let served: Vec<String> = (1..=40).map(|i| format!("IDNUM:{i}")).collect();
        assert_eq!(json["served"], serde_json::json!(served), "{json}");
        assert_eq!(json["delivery"], "unknown");
        let Error::PartlyServed {
            served,
            leads,
            parts,
            accepted,
            failure,
        } = err
        else {
            panic!("{err:?}");
        };
        assert_eq!((served.len(), *leads, *parts, *accepted), (40, 100, 5, 2));
        assert_eq!(served.first(), Some(&LeadKey::id(1).unwrap()));
        assert_eq!(
            failure.as_deref().map(Error::delivery),
            Some(Delivery::Refused)
        );
    }

    #[test]
    fn chunks_a_secondary_serves_across_are_reported_by_the_runs_chunks() {
        // Primary of 20 (three chunks a request), unreachable on its second
        // call: the secondary (100) takes chunks 1 and 2 in one call.
        let primary = StubRequester::new().with_max_leads_per_call(20);
        primary.fail_call(2, not_sent());
        let secondary = StubRequester::new();
        let fallback = crate::Fallback::new(primary, secondary.clone());
        let mut seen = Vec::new();
        let summary = bulk(&fallback, ids(60), &batching(1, 3), |c| {
            seen.push((
                c.index(),
                c.leads()[0].value().to_owned(),
                c.leads().len(),
                c.is_accepted(),
            ))
        })
        .unwrap();
        seen.sort();
        assert_eq!(
            seen,
            [
                (0, "1".to_owned(), 20, true),
                (1, "21".to_owned(), 20, true),
                (2, "41".to_owned(), 20, true)
            ]
        );
        assert!(summary.is_complete());
        assert_eq!(secondary.calls().len(), 1);
        assert_eq!(secondary.calls()[0].leads().len(), 40);
    }

    #[test]
    fn unmatched_keys_follow_their_leads_when_regrouped() {
        let key = |i| LeadKey::id(i).unwrap();
        let outcome = Outcome::new([
            ChunkReport::accepted((1..=30).map(key).collect::<Vec<_>>(), "wide")
                .with_unmatched([key(5), key(25)]),
            ChunkReport::accepted((31..=40).map(key).collect::<Vec<_>>(), "wide")
                .with_unmatched([key(31)]),
        ]);
        let batch: Batch = vec![
            (7, (1..=20).map(key).collect()),
            (8, (21..=40).map(key).collect()),
        ];
        let reports = regroup(&outcome, batch);
        assert_eq!(reports[0].index(), 7);
        assert_eq!(reports[0].unmatched(), [key(5)]);
        assert_eq!(reports[1].unmatched(), [key(25), key(31)]);
        assert!(reports.iter().all(ChunkReport::is_accepted));
    }

    #[test]
    fn a_failure_stops_the_run_and_the_rest_is_reported() {
        let stub = StubRequester::failing(Error::SoapFault {
            code: SoapCode::AuthenticationFailed,
            message: "Authentication failed".into(),
        });
        let summary = bulk(&stub, ids(100_000), &BulkOptions::new().workers(2), |_| {}).unwrap();
        assert!(summary.failed >= 1);
        assert!(summary.leads < 100_000, "input is not read to the end");
        assert_eq!(summary.worst, Some(Delivery::Refused));
        assert!(stub.requests().len() <= 2 + 2);
    }

    /// A requester that checks every chunk it receives was announced first.
    #[derive(Debug, Default)]
    struct Checking {
        announced: Mutex<HashSet<String>>,
        stub: StubRequester,
        unannounced: std::sync::atomic::AtomicUsize,
    }

    impl std::fmt::Display for Checking {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("checking")
        }
    }

    impl CampaignRequester for Checking {
        fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
            let announced = self.announced.lock().unwrap().clone();
            for chunk in request.leads().chunks(MAX_LEADS_PER_CALL) {
                if !announced.contains(&chunk_digest(chunk)) {
                    self.unannounced.fetch_add(1, Ordering::SeqCst);
                }
            }
            self.stub.request_campaign(request)
        }
    }

    #[test]
    fn every_chunk_is_announced_before_it_is_sent() {
        for per_request in [1, 3] {
            let checking = Checking::default();
            let mut reported = Vec::new();
            let options = batching(4, per_request).skip([4]);
            let summary = bulk_with(
                &checking,
                ids(1050),
                &options,
                |_, leads| {
                    checking
                        .announced
                        .lock()
                        .unwrap()
                        .insert(chunk_digest(leads));
                    Ok(())
                },
                |c| reported.push(c.index()),
            )
            .unwrap();
            assert_eq!(summary.accepted, 10);
            assert_eq!(checking.unannounced.load(Ordering::SeqCst), 0);
            assert_eq!(
                checking.announced.lock().unwrap().len(),
                10,
                "skipped chunks are not announced"
            );
        }
    }

    #[test]
    fn a_hook_error_stops_the_run_before_the_send() {
        for (workers, per_request) in [(1, 1), (4, 1), (4, 3)] {
            let stub = StubRequester::new();
            let calls = std::sync::atomic::AtomicUsize::new(0);
            let mut reports: Vec<(usize, bool)> = Vec::new();
            let err = bulk_with(
                &stub,
                ids(100_000),
                &batching(workers, per_request),
                |_, _| {
                    // The fifth announcement fails, and so does every later one.
                    if calls.fetch_add(1, Ordering::SeqCst) >= 4 {
                        Err(Error::Config("disk full".into()))
                    } else {
                        Ok(())
                    }
                },
                |c| reports.push((c.index(), c.is_accepted())),
            )
            .unwrap_err();
            assert!(err.to_string().contains("disk full"), "{err}");
            let sent: usize = stub.requests().iter().map(|r| r.leads().len()).sum();
            let accepted = reports.iter().filter(|(_, ok)| *ok).count();
            assert!(sent <= 4 * MAX_LEADS_PER_CALL, "{sent} leads sent");
            assert_eq!(
                sent,
                accepted * MAX_LEADS_PER_CALL,
                "only announced chunks ran"
            );
            assert!(
                reports.len() < 40,
                "the input is not read to the end: {} reports",
                reports.len()
            );
            let hooked = calls.load(Ordering::SeqCst);
            assert!(
                hooked <= 4 + workers * per_request,
                "{hooked} announcements"
            );
        }
    }

    #[test]
    fn request_digests_tell_every_part_apart() {
        let token = |name: &str, value: &str| ProgramToken::new(name, value).unwrap();
        let named = |campaign: &str, program: &str, tokens: Vec<ProgramToken>| {
            request_digest(
                &CampaignTarget::named(campaign, program, tokens),
                Source::Mktows,
            )
        };
        let digests = [
            request_digest(&CampaignTarget::id(12), Source::Mktows),
            request_digest(&CampaignTarget::id(1), Source::Mktows),
            request_digest(&CampaignTarget::id(12), Source::Sales),
            named("ab", "c", vec![]),
            named("a", "bc", vec![]),
            named("12", "", vec![]),
            named("a", "b", vec![token("{{my.X}}", "1")]),
            named("a", "b", vec![token("{{my.X}}", "2")]),
            named("a", "b", vec![token("{{my.Y}}", "1")]),
            named(
                "a",
                "b",
                vec![token("{{my.X}}", "1"), token("{{my.Y}}", "")],
            ),
            named("a", "b", vec![token("{{my.X}}", "1{{my.Y}}")]),
        ];
        let distinct: HashSet<&String> = digests.iter().collect();
        assert_eq!(distinct.len(), digests.len(), "{digests:#?}");
        assert!(digests.iter().all(|d| d.len() == 40));
        assert_eq!(
            named(
                "a",
                "b",
                vec![token("{{my.X}}", "1"), token("{{my.Y}}", "2")]
            ),
            named(
                "a",
                "b",
                vec![token("{{my.Y}}", "2"), token("{{my.X}}", "1")]
            ),
            "token order does not matter"
        );
    }

    #[test]
    fn a_bad_lead_stops_reading_and_is_returned() {
        let stub = StubRequester::new();
        let leads = ids(250)
            .chain([Err(Error::invalid("line 251", "bad"))])
            .chain(ids(10));
        let mut reported = 0;
        let err = bulk(&stub, leads, &BulkOptions::new(), |_| reported += 1).unwrap_err();
        assert!(err.to_string().contains("line 251"));
        assert_eq!(
            reported, 2,
            "the two full chunks before the bad line were sent"
        );
    }
}
