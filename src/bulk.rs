//! Bulk runs: leads streamed from any source, sent in chunks of 100 by
//! several workers within the client's rate limit, reported chunk by chunk.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::{Mutex, PoisonError};

use crate::error::{Delivery, Error, RestCode, SoapCode};
use crate::request::{CampaignRequest, CampaignTarget, LeadKey, Source, MAX_LEADS_PER_CALL};
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

    /// Chunks of 100 leads handed to the requester in one request (default
    /// one). Use 3 with [`RestClient`](crate::RestClient): its lead look-ups
    /// take 300 values, so one look-up serves three triggers.
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
                self.worst = Some(match (self.worst, delivery) {
                    (Some(Delivery::Unknown), _) | (_, Delivery::Unknown) => Delivery::Unknown,
                    (Some(Delivery::Refused), _) | (_, Delivery::Refused) => Delivery::Refused,
                    _ => Delivery::NotSent,
                });
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

/// Sends `leads` to `requester` for `target`, in chunks of 100.
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
/// ```
/// use marketo_campaign::{run_bulk, BulkOptions, CampaignTarget, LeadKey, Source, StubRequester};
/// let stub = StubRequester::new();
/// let leads = (1..=250).map(LeadKey::id);
/// let mut seen = Vec::new();
/// let summary = run_bulk(&stub, &CampaignTarget::Id(4496), Source::Mktows, leads, &BulkOptions::new(),
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
    // Check the target once, before anything is read or sent.
    CampaignRequest::new(target.clone(), [LeadKey::id(1)?])?;
    let stop = AtomicBool::new(false);
    let (work_tx, work_rx) = sync_channel::<Batch>(options.workers);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = channel::<ChunkReport>();
    let mut summary = BulkSummary::default();
    let input = std::thread::scope(|s| {
        for _ in 0..options.workers {
            let done_tx = done_tx.clone();
            let (work_rx, stop) = (&work_rx, &stop);
            s.spawn(move || worker(requester, target, source, work_rx, stop, &done_tx));
        }
        drop(done_tx);
        let reporter = s.spawn(move || report(done_rx, on_chunk));
        let input = produce(leads, options, &stop, &mut summary, |batch| {
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
    input.map(|()| summary)
}

/// Reads the input into batches and hands them over; counts leads and
/// skipped chunks. Stops at the first bad lead or when told to.
fn produce<I>(
    leads: I,
    options: &BulkOptions,
    stop: &AtomicBool,
    summary: &mut BulkSummary,
    mut send: impl FnMut(Batch) -> bool,
) -> Result<(), Error>
where
    I: IntoIterator<Item = Result<LeadKey, Error>>,
{
    let mut batch: Batch = Vec::with_capacity(options.chunks_per_request);
    let mut chunk: Vec<LeadKey> = Vec::with_capacity(MAX_LEADS_PER_CALL);
    let mut index = 0usize;
    let mut flush_chunk =
        |chunk: &mut Vec<LeadKey>, batch: &mut Batch, summary: &mut BulkSummary| {
            let leads = std::mem::replace(chunk, Vec::with_capacity(MAX_LEADS_PER_CALL));
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
        if chunk.len() == MAX_LEADS_PER_CALL {
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

fn worker<R: CampaignRequester + ?Sized>(
    requester: &R,
    target: &CampaignTarget,
    source: Source,
    work: &Mutex<Receiver<Batch>>,
    stop: &AtomicBool,
    done: &std::sync::mpsc::Sender<ChunkReport>,
) {
    loop {
        let batch = match work.lock().unwrap_or_else(PoisonError::into_inner).recv() {
            Ok(batch) => batch,
            Err(_) => return,
        };
        let indexes: Vec<usize> = batch.iter().map(|(index, _)| *index).collect();
        let reports = if stop.load(Ordering::SeqCst) {
            not_attempted(batch)
        } else {
            let leads = batch.iter().flat_map(|(_, leads)| leads.iter().cloned());
            let result = CampaignRequest::new(target.clone(), leads)
                .map(|request| request.with_source(source))
                .and_then(|request| requester.request_campaign(&request));
            let reports = reports_of(result, batch);
            if reports.iter().any(|r| match r.status() {
                ChunkStatus::Failed(err) => !lead_level(err),
                _ => false,
            }) {
                stop.store(true, Ordering::SeqCst);
            }
            reports
        };
        for (mut report, index) in reports.into_iter().zip(indexes) {
            report.index = index;
            if done.send(report).is_err() {
                return;
            }
        }
    }
}

fn not_attempted(batch: Batch) -> Vec<ChunkReport> {
    batch
        .into_iter()
        .map(|(index, leads)| ChunkReport::not_attempted(index, leads))
        .collect()
}

/// One report per chunk of the batch, whatever the requester returned.
fn reports_of(result: Result<Outcome, Error>, batch: Batch) -> Vec<ChunkReport> {
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(Error::Incomplete(outcome)) => *outcome,
        Err(err) => return failed_as_whole(err, batch),
    };
    if outcome.chunks().len() == batch.len() {
        outcome.chunks().to_vec()
    } else {
        // A requester that chunked differently: report the batch as a whole.
        let accepted = outcome.is_complete();
        batch
            .into_iter()
            .map(|(index, leads)| ChunkReport {
                index,
                leads,
                backend: outcome
                    .chunks()
                    .first()
                    .map(|c| c.backend().to_owned())
                    .unwrap_or_default(),
                status: if accepted {
                    ChunkStatus::Accepted
                } else {
                    ChunkStatus::Failed(Error::Protocol {
                        status: 0,
                        reason: "the requester chunked the batch differently".into(),
                        body: String::new(),
                    })
                },
                unmatched: Vec::new(),
            })
            .collect()
    }
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
    use crate::requester::StubRequester;

    fn ids(n: u32) -> impl Iterator<Item = Result<LeadKey, Error>> {
        (1..=n).map(LeadKey::id)
    }

    #[test]
    fn every_chunk_is_reported_once_in_any_batching() {
        for per_request in [1, 3] {
            let stub = StubRequester::new();
            let mut seen = Vec::new();
            let summary = run_bulk(
                &stub,
                &CampaignTarget::Id(1),
                Source::Mktows,
                ids(1050),
                &BulkOptions::new()
                    .workers(4)
                    .chunks_per_request(per_request)
                    .skip([2, 5]),
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
    fn a_failure_stops_the_run_and_the_rest_is_reported() {
        let stub = StubRequester::failing(Error::SoapFault {
            code: SoapCode::AuthenticationFailed,
            message: "Authentication failed".into(),
        });
        let summary = run_bulk(
            &stub,
            &CampaignTarget::Id(1),
            Source::Mktows,
            ids(100_000),
            &BulkOptions::new().workers(2),
            |_| {},
        )
        .unwrap();
        assert!(summary.failed >= 1);
        assert!(summary.leads < 100_000, "input is not read to the end");
        assert_eq!(summary.worst, Some(Delivery::Refused));
        assert!(stub.requests().len() <= 2 + 2);
    }

    #[test]
    fn a_bad_lead_stops_reading_and_is_returned() {
        let stub = StubRequester::new();
        let leads = ids(250)
            .chain([Err(Error::invalid("line 251", "bad"))])
            .chain(ids(10));
        let mut reported = 0;
        let err = run_bulk(
            &stub,
            &CampaignTarget::Id(1),
            Source::Mktows,
            leads,
            &BulkOptions::new(),
            |_| reported += 1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 251"));
        assert_eq!(
            reported, 2,
            "the two full chunks before the bad line were sent"
        );
    }
}
