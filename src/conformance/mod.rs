//! The backend contract as code: checks any [`CampaignRequester`] can be
//! run through (feature `conformance`).
//!
//! A trait that outsiders can implement but not verify is half a contract.
//! Like `object_store`'s `integration` module, this suite is public: the
//! crate runs it against [`SoapClient`](crate::SoapClient),
//! [`RestClient`](crate::RestClient), [`AjoClient`](crate::AjoClient),
//! [`Fallback`](crate::Fallback) and [`StubRequester`] in its own tests,
//! and you run it against your backend.
//!
//! The suite sends requests and compares what the backend *reports* with
//! what *ran*. It learns what ran from a [`Harness`] you write next to your
//! backend: the leads each campaign call ran for (your service's log, a
//! test server's journal, the rows a fake wrote), a few leads that exist
//! and one that does not, and, if you can, a way to make a given call
//! fail ([`Failure`]). The checks:
//!
//! - [`chunking`]: requests of 1, *n*, *n* + 1 and 2*n* + 1 leads, where
//!   *n* is the backend's
//!   [`max_leads_per_call`](CampaignRequester::max_leads_per_call), come
//!   back in chunks of *n* (the last holding the rest), every lead runs
//!   once, and no call runs for more than *n* leads: none is dropped past
//!   the limit.
//! - [`unmatched_keys`]: a key that names no lead is reported by key in its
//!   chunk's [`unmatched`](crate::ChunkReport::unmatched) (or its chunk is
//!   refused), never run, and the other leads run.
//! - [`partway_failure`]: when the second call of a three-chunk request
//!   fails, the result says which chunks were accepted, which failed and
//!   which were not attempted, consistently with what ran.
//! - [`delivery_certainty`]: an error that says the campaign did not run
//!   (delivery `NotSent` or `Refused`) is true, and a lost answer is
//!   reported as `Unknown`.
//! - [`recording_stub`]: the [`StubRequester`] records what it was given.
//!
//! Every result the suite sees also goes through [`check_consistent`]: the
//! outcome holds the request's leads in order, each once; accepted chunks
//! ran (but their unmatched keys), chunks not attempted or refused did not,
//! and no lead ran twice.
//!
//! ```
//! use marketo_campaign::conformance::{self, StubHarness};
//! use marketo_campaign::StubRequester;
//!
//! let stub = StubRequester::new().with_max_leads_per_call(20);
//! let report = conformance::run_all(&stub, &StubHarness::new(&stub))?;
//! assert!(report.to_string().contains("chunking: passed"));
//! conformance::recording_stub(&stub)?;
//! # Ok::<(), conformance::Violation>(())
//! ```
//!
//! `examples/custom_backend.rs` is a backend written from outside the crate
//! (chunks of 20, a log of what ran) with its harness, passing the suite.

mod stub;

use std::collections::HashMap;
use std::fmt;

use crate::error::{Delivery, Error};
use crate::request::{CampaignRequest, CampaignTarget, LeadKey, ProgramToken, Source};
use crate::requester::{CampaignRequester, ChunkStatus, Outcome, StubRequester};

pub use stub::StubHarness;

/// What the suite needs besides the backend: a campaign and leads it can
/// run, the record of what ran, and, optionally, a way to make calls fail.
///
/// The harness and the backend share the world they act on (a server, a
/// log, a fake): whatever the backend runs must show in
/// [`runs`](Harness::runs).
pub trait Harness {
    /// A campaign the backend can run for [`leads`](Harness::leads).
    fn target(&self) -> CampaignTarget;

    /// `count` keys of distinct leads that exist, each named once. The
    /// suite asks for at most twice the backend's size plus two.
    fn leads(&self, count: usize) -> Vec<LeadKey>;

    /// A key that names no lead, or `None` to skip [`unmatched_keys`].
    /// Default: `None`.
    fn unknown_lead(&self) -> Option<LeadKey> {
        None
    }

    /// The campaign calls that ran since the last
    /// [`reset`](Harness::reset), in order, each with the leads it ran for,
    /// named as [`leads`](Harness::leads) names them. A call that ran but
    /// whose answer was lost is listed; one that did not run is not.
    fn runs(&self) -> Vec<Vec<LeadKey>>;

    /// Forgets what ran and any failure still planned. The suite calls it
    /// before each request it sends.
    fn reset(&self);

    /// Makes the `call`th campaign call from now on (counted from 1) fail
    /// as `failure` says; `false` when the harness cannot (the checks that
    /// need it are then skipped). Default: `false`.
    fn fail_call(&self, call: usize, failure: Failure) -> bool {
        let _ = (call, failure);
        false
    }
}

/// How a call the [`Harness`] makes fail fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// The call never reaches the service (a refused connection): nothing
    /// runs. The backend should say `NotSent` (or `Refused`).
    NotSent,
    /// The service refuses the call and runs nothing (a 4xx, a fault, a
    /// `success:false` that says so). The backend should say `Refused` (or
    /// `NotSent`).
    Refused,
    /// The call runs, then its answer is lost (the connection drops
    /// mid-answer). The backend must not say the campaign did not run.
    RunThenLost,
    /// The call does not run, and no answer comes (the connection drops
    /// once the request is read). The backend cannot know it did not run:
    /// it must say `Unknown`, or find out and say so by its result.
    LostBeforeRun,
}

impl Failure {
    /// Every kind, in order.
    pub const ALL: [Failure; 4] = [
        Failure::NotSent,
        Failure::Refused,
        Failure::RunThenLost,
        Failure::LostBeforeRun,
    ];

    /// `not_sent`, `refused`, `run_then_lost`, `lost_before_run`.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::NotSent => "not_sent",
            Failure::Refused => "refused",
            Failure::RunThenLost => "run_then_lost",
            Failure::LostBeforeRun => "lost_before_run",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A check that passed, or why it was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Every scenario of the check ran and held.
    Passed,
    /// The check could not run: the harness lacks what it needs.
    Skipped(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Passed => f.write_str("passed"),
            Verdict::Skipped(why) => write!(f, "skipped ({why})"),
        }
    }
}

/// A breach of the contract: which check, in which scenario, and what was
/// wrong.
#[derive(Debug, Clone)]
pub struct Violation {
    check: &'static str,
    scenario: String,
    problem: String,
}

impl Violation {
    fn new(check: &'static str, scenario: impl Into<String>, problem: impl Into<String>) -> Self {
        Violation {
            check,
            scenario: scenario.into(),
            problem: problem.into(),
        }
    }

    /// The check, e.g. `chunking`.
    pub fn check(&self) -> &str {
        self.check
    }

    /// The scenario, e.g. `201 leads, 100 a call`.
    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    /// What was wrong.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.check, self.scenario, self.problem)
    }
}

impl std::error::Error for Violation {}

/// What [`run_all`] found: each check and its verdict.
#[derive(Debug, Clone, Default)]
pub struct Report {
    checks: Vec<(&'static str, Verdict)>,
}

impl Report {
    /// Each check, by name, with its verdict, in the order they ran.
    pub fn checks(&self) -> &[(&'static str, Verdict)] {
        &self.checks
    }

    /// The checks that were skipped, with why.
    pub fn skipped(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.checks
            .iter()
            .filter_map(|(name, verdict)| match verdict {
                Verdict::Skipped(why) => Some((*name, why.as_str())),
                Verdict::Passed => None,
            })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, verdict)) in self.checks.iter().enumerate() {
            write!(f, "{}{name}: {verdict}", if i == 0 { "" } else { "; " })?;
        }
        Ok(())
    }
}

/// Runs [`chunking`], [`unmatched_keys`], [`partway_failure`] and
/// [`delivery_certainty`] against `backend`, stopping at the first
/// violation.
pub fn run_all<B, H>(backend: &B, harness: &H) -> Result<Report, Violation>
where
    B: CampaignRequester + ?Sized,
    H: Harness + ?Sized,
{
    let mut report = Report::default();
    report
        .checks
        .push(("chunking", chunking(backend, harness)?));
    report
        .checks
        .push(("unmatched_keys", unmatched_keys(backend, harness)?));
    report
        .checks
        .push(("partway_failure", partway_failure(backend, harness)?));
    report
        .checks
        .push(("delivery_certainty", delivery_certainty(backend, harness)?));
    harness.reset();
    Ok(report)
}

/// The declared size, checked.
fn size_of<B: CampaignRequester + ?Sized>(
    backend: &B,
    check: &'static str,
) -> Result<usize, Violation> {
    let size = backend.max_leads_per_call();
    if size == 0 {
        return Err(Violation::new(
            check,
            "max_leads_per_call",
            format!("{backend} declares 0 leads a call; at least 1"),
        ));
    }
    Ok(size)
}

/// `count` leads from the harness, checked.
fn leads_from<H: Harness + ?Sized>(
    harness: &H,
    count: usize,
    check: &'static str,
) -> Result<Vec<LeadKey>, Violation> {
    let leads = harness.leads(count);
    if leads.len() != count {
        return Err(Violation::new(
            check,
            "harness",
            format!("asked for {count} leads, the harness gave {}", leads.len()),
        ));
    }
    let mut seen = HashMap::with_capacity(count);
    for key in &leads {
        if seen.insert(key, ()).is_some() {
            return Err(Violation::new(
                check,
                "harness",
                format!("the harness named {key} twice"),
            ));
        }
    }
    Ok(leads)
}

fn request_for<H: Harness + ?Sized>(
    harness: &H,
    leads: Vec<LeadKey>,
    check: &'static str,
) -> Result<CampaignRequest, Violation> {
    CampaignRequest::new(harness.target(), leads)
        .map_err(|err| Violation::new(check, "harness", format!("the request is invalid: {err}")))
}

/// A backend's result, and what ran.
type Sent = (Result<Outcome, Error>, Vec<Vec<LeadKey>>);

/// Sends `request` and checks the result is consistent with what ran.
/// Returns both.
fn send<B, H>(
    backend: &B,
    harness: &H,
    request: &CampaignRequest,
    check: &'static str,
    scenario: &str,
) -> Result<Sent, Violation>
where
    B: CampaignRequester + ?Sized,
    H: Harness + ?Sized,
{
    let result = backend.request_campaign(request);
    let runs = harness.runs();
    check_consistent(request, &result, &runs)
        .map_err(|v| Violation::new(check, scenario, v.problem))?;
    Ok((result, runs))
}

/// Requests of 1, *n*, *n* + 1 and 2*n* + 1 leads come back in chunks of
/// *n* = [`max_leads_per_call`](CampaignRequester::max_leads_per_call) (the
/// last holding the rest), all accepted; every lead runs once, and no call
/// runs for more than *n* leads. Also checks that `Display` names the
/// backend and that each chunk names the backend that served it.
pub fn chunking<B, H>(backend: &B, harness: &H) -> Result<Verdict, Violation>
where
    B: CampaignRequester + ?Sized,
    H: Harness + ?Sized,
{
    const CHECK: &str = "chunking";
    if backend.to_string().trim().is_empty() {
        return Err(Violation::new(
            CHECK,
            "Display",
            "the backend's Display is empty: it must name the backend",
        ));
    }
    let size = size_of(backend, CHECK)?;
    let mut counts = vec![1, size, size + 1, 2 * size + 1];
    counts.dedup();
    for count in counts {
        let scenario = format!("{count} leads, {size} a call");
        harness.reset();
        let request = request_for(harness, leads_from(harness, count, CHECK)?, CHECK)?;
        let (result, runs) = send(backend, harness, &request, CHECK, &scenario)?;
        let outcome = result.map_err(|err| {
            Violation::new(CHECK, &scenario, format!("the request failed: {err}"))
        })?;
        let expected: Vec<&[LeadKey]> = request.chunks_of(size).collect();
        let got: Vec<usize> = outcome.chunks().iter().map(|c| c.leads().len()).collect();
        let want: Vec<usize> = expected.iter().map(|c| c.len()).collect();
        if got != want {
            return Err(Violation::new(
                CHECK,
                &scenario,
                format!("chunks of {got:?} leads, expected {want:?}"),
            ));
        }
        if let Some(chunk) = outcome.chunks().iter().find(|c| !c.unmatched().is_empty()) {
            return Err(Violation::new(
                CHECK,
                &scenario,
                format!(
                    "chunk {} reports {} as unmatched, but every lead exists",
                    chunk.index(),
                    shown(chunk.unmatched())
                ),
            ));
        }
        if let Some(run) = runs.iter().find(|run| run.len() > size) {
            return Err(Violation::new(
                CHECK,
                &scenario,
                format!(
                    "one call ran for {} leads, more than the {size} the backend declares",
                    run.len()
                ),
            ));
        }
    }
    harness.reset();
    Ok(Verdict::Passed)
}

/// A key that names no lead ([`Harness::unknown_lead`]) is reported by key
/// in its chunk's [`unmatched`](crate::ChunkReport::unmatched) ones while
/// the chunk's other leads run, or its chunk is refused as a whole; either
/// way it never runs, and it is never dropped silently. Tried alone, in a
/// chunk with others, and at the start of a request's second chunk.
pub fn unmatched_keys<B, H>(backend: &B, harness: &H) -> Result<Verdict, Violation>
where
    B: CampaignRequester + ?Sized,
    H: Harness + ?Sized,
{
    const CHECK: &str = "unmatched_keys";
    let Some(unknown) = harness.unknown_lead() else {
        return Ok(Verdict::Skipped("the harness names no unknown lead".into()));
    };
    let size = size_of(backend, CHECK)?;
    // One chunk with the unknown key among known ones; then a request whose
    // second chunk starts with it.
    let one = size.min(3);
    let scenarios = [
        (1, 0, format!("{unknown} alone")),
        (
            one,
            one / 2,
            format!("{unknown} among {} known leads", one - 1),
        ),
        (
            size + 2,
            size,
            format!("{unknown} opening the second chunk of {}", size + 2),
        ),
    ];
    for (count, at, scenario) in scenarios {
        harness.reset();
        let mut leads = leads_from(harness, count - 1, CHECK)?;
        if leads.contains(&unknown) {
            return Err(Violation::new(
                CHECK,
                "harness",
                format!("the unknown lead {unknown} is also among the known ones"),
            ));
        }
        leads.insert(at, unknown.clone());
        let request = request_for(harness, leads, CHECK)?;
        let result = backend.request_campaign(&request);
        let runs = harness.runs();
        if runs.iter().flatten().any(|key| *key == unknown) {
            return Err(Violation::new(
                CHECK,
                &scenario,
                format!("the campaign ran for {unknown}, which names no lead"),
            ));
        }
        let outcome = match &result {
            Ok(outcome) => outcome,
            Err(Error::Incomplete(outcome)) => outcome,
            // Refused as a whole: nothing to list.
            Err(_) => {
                check_consistent(&request, &result, &runs)
                    .map_err(|v| Violation::new(CHECK, &scenario, v.problem))?;
                continue;
            }
        };
        let holder = outcome
            .chunks()
            .iter()
            .find(|c| c.leads().contains(&unknown));
        if let Some(chunk) = holder {
            if chunk.is_accepted() && !chunk.unmatched().contains(&unknown) {
                return Err(Violation::new(
                    CHECK,
                    &scenario,
                    format!(
                        "chunk {} was accepted and does not list {unknown} as unmatched: the key was dropped silently",
                        chunk.index()
                    ),
                ));
            }
        }
        if let Some(chunk) = outcome
            .chunks()
            .iter()
            .find(|c| c.unmatched().iter().any(|k| *k != unknown))
        {
            return Err(Violation::new(
                CHECK,
                &scenario,
                format!(
                    "chunk {} reports known leads as unmatched: {}",
                    chunk.index(),
                    shown(chunk.unmatched())
                ),
            ));
        }
        check_consistent(&request, &result, &runs)
            .map_err(|v| Violation::new(CHECK, &scenario, v.problem))?;
    }
    harness.reset();
    Ok(Verdict::Passed)
}

/// The second call of a request of three chunks fails, in each way the
/// harness can make it fail: the result is consistent with what ran (see
/// [`check_consistent`]), and, since the first chunk ran, it is not a bare
/// error but `Ok` (a fallback served the rest) or
/// [`Error::Incomplete`] listing what was accepted.
pub fn partway_failure<B, H>(backend: &B, harness: &H) -> Result<Verdict, Violation>
where
    B: CampaignRequester + ?Sized,
    H: Harness + ?Sized,
{
    const CHECK: &str = "partway_failure";
    let size = size_of(backend, CHECK)?;
    let mut tried = 0;
    for failure in Failure::ALL {
        harness.reset();
        if !harness.fail_call(2, failure) {
            continue;
        }
        tried += 1;
        let scenario = format!("{} leads, call 2 {failure}", 2 * size + 1);
        let request = request_for(harness, leads_from(harness, 2 * size + 1, CHECK)?, CHECK)?;
        let result = backend.request_campaign(&request);
        let runs = harness.runs();
        match &result {
            Err(Error::Incomplete(_)) | Ok(_) => {}
            Err(err) if !runs.is_empty() => {
                return Err(Violation::new(
                    CHECK,
                    &scenario,
                    format!(
                        "the campaign ran for some leads, yet the request failed as a whole ({err}): a request of several chunks reports what was accepted in Error::Incomplete"
                    ),
                ))
            }
            Err(_) => {}
        }
        check_consistent(&request, &result, &runs)
            .map_err(|v| Violation::new(CHECK, &scenario, v.problem))?;
    }
    harness.reset();
    if tried == 0 {
        return Ok(Verdict::Skipped(
            "the harness cannot make calls fail".into(),
        ));
    }
    Ok(Verdict::Passed)
}

/// The first call of a one-chunk request fails, in each way the harness
/// can make it fail. Whatever the backend says must be true: an error (or
/// a failed chunk) whose delivery is `NotSent` or `Refused` ran nothing
/// (see [`check_consistent`]). And it must be as precise as the evidence
/// allows: a call that never left or was refused is not reported
/// `Unknown`, and a lost answer is not reported `NotSent` or `Refused`.
pub fn delivery_certainty<B, H>(backend: &B, harness: &H) -> Result<Verdict, Violation>
where
    B: CampaignRequester + ?Sized,
    H: Harness + ?Sized,
{
    const CHECK: &str = "delivery_certainty";
    let size = size_of(backend, CHECK)?;
    let count = size.min(3);
    let mut tried = 0;
    for failure in Failure::ALL {
        harness.reset();
        if !harness.fail_call(1, failure) {
            continue;
        }
        tried += 1;
        let scenario = format!("{count} lead(s), call 1 {failure}");
        let request = request_for(harness, leads_from(harness, count, CHECK)?, CHECK)?;
        let (result, _) = send(backend, harness, &request, CHECK, &scenario)?;
        let delivery = match &result {
            Ok(outcome) => match outcome.first_failure() {
                Some((_, err)) => err.delivery(),
                None => continue,
            },
            Err(err) => err.delivery(),
        };
        let wrong = match failure {
            Failure::NotSent | Failure::Refused => delivery == Delivery::Unknown,
            Failure::RunThenLost | Failure::LostBeforeRun => delivery != Delivery::Unknown,
        };
        if wrong {
            return Err(Violation::new(
                CHECK,
                &scenario,
                format!(
                    "the failure was {failure}, the backend says {}: {}",
                    delivery.as_str(),
                    match failure {
                        Failure::NotSent | Failure::Refused =>
                            "a call that provably did not run is reported as possibly run, so it can never be retried or handed to a fallback",
                        _ => "a lost answer proves nothing: only Unknown is true",
                    }
                ),
            ));
        }
    }
    harness.reset();
    if tried == 0 {
        return Ok(Verdict::Skipped(
            "the harness cannot make calls fail".into(),
        ));
    }
    Ok(Verdict::Passed)
}

/// The [`StubRequester`] records what it was given: one request of 2*n* +
/// 1 leads (*n* its size) with tokens and source `SALES` is listed by
/// [`requests`](StubRequester::requests) exactly as sent, and
/// [`calls`](StubRequester::calls) lists its chunks, in order, of at most
/// *n* leads each, up to the first that failed.
pub fn recording_stub(stub: &StubRequester) -> Result<Verdict, Violation> {
    const CHECK: &str = "recording_stub";
    let size = size_of(stub, CHECK)?;
    let count = 2 * size + 1;
    let scenario = format!("{count} leads, {size} a call");
    let problem = |p: String| Violation::new(CHECK, &scenario, p);
    let leads: Vec<LeadKey> = (1..=count)
        .map(|i| {
            u32::try_from(i)
                .map_err(|e| e.to_string())
                .and_then(|i| LeadKey::id(i).map_err(|e| e.to_string()))
        })
        .collect::<Result<_, _>>()
        .map_err(problem)?;
    let token = ProgramToken::new("{{my.Recorded}}", "as given <&>")
        .map_err(|e| Violation::new(CHECK, &scenario, e.to_string()))?;
    let request = CampaignRequest::new(
        CampaignTarget::named("Recorded Campaign", "Recorded Program", [token]),
        leads,
    )
    .map_err(|e| Violation::new(CHECK, &scenario, e.to_string()))?
    .with_source(Source::Sales);
    let (requests_before, calls_before) = (stub.requests().len(), stub.calls().len());
    let result = stub.request_campaign(&request);
    let requests = stub.requests();
    if requests.len() != requests_before + 1 || requests.last() != Some(&request) {
        return Err(problem(format!(
            "{} request(s) recorded, the last {}",
            requests.len() - requests_before,
            if requests.last() == Some(&request) {
                "as sent"
            } else {
                "not as sent"
            }
        )));
    }
    let calls = stub.calls();
    let calls = &calls[calls_before.min(calls.len())..];
    let sent: Vec<LeadKey> = calls.iter().flat_map(|c| c.leads().to_vec()).collect();
    let expected: Vec<&[LeadKey]> = request.chunks_of(size).collect();
    let shapes_match = calls
        .iter()
        .zip(&expected)
        .all(|(call, chunk)| call.leads() == *chunk);
    if !shapes_match || !request.leads().starts_with(&sent) {
        return Err(problem(
            "the recorded calls are not the request's chunks, in order".into(),
        ));
    }
    let failed_at = calls.iter().position(|c| c.error().is_some());
    let complete = match failed_at {
        Some(at) => at + 1 == calls.len(),
        None => calls.len() == expected.len(),
    };
    if !complete || failed_at.is_some() != result.is_err() {
        return Err(problem(format!(
            "{} call(s) recorded for {} chunks, the first failure at {failed_at:?}, and the request {}",
            calls.len(),
            expected.len(),
            if result.is_ok() { "succeeded" } else { "failed" }
        )));
    }
    Ok(Verdict::Passed)
}

/// Checks a backend's `result` for `request` against `runs`, what ran (as
/// [`Harness::runs`] lists it), by the contract of [`CampaignRequester`]:
///
/// - no lead outside the request runs, and none runs twice;
/// - an error other than [`Error::Incomplete`] whose delivery is `NotSent`
///   or `Refused` ran nothing;
/// - an outcome's chunks are numbered 0, 1, … and hold the request's
///   leads, in order, each once, none empty; an attempted chunk names its
///   backend; unmatched keys are leads of their chunk and ambiguous keys
///   are unmatched; `Ok` has no failed chunk and `Incomplete` has one,
///   after which every chunk is not attempted;
/// - an accepted chunk ran for each of its leads but the unmatched ones,
///   which did not run; a chunk not attempted ran nothing, nor did a chunk
///   failed with delivery `NotSent` or `Refused`.
pub fn check_consistent(
    request: &CampaignRequest,
    result: &Result<Outcome, Error>,
    runs: &[Vec<LeadKey>],
) -> Result<(), Violation> {
    let fail = |problem: String| Err(Violation::new("consistency", "", problem));
    let mut ran: HashMap<&LeadKey, usize> = HashMap::new();
    for key in runs.iter().flatten() {
        *ran.entry(key).or_default() += 1;
    }
    let mut outside: Vec<LeadKey> = Vec::new();
    for (key, times) in &ran {
        if !request.leads().contains(key) {
            outside.push((*key).clone());
        } else if *times > 1 {
            return fail(format!("the campaign ran {times} times for {key}"));
        }
    }
    if !outside.is_empty() {
        return fail(format!(
            "the campaign ran for leads not in the request: {}",
            shown(&outside)
        ));
    }
    let ran_any = |keys: &[LeadKey]| -> Vec<LeadKey> {
        keys.iter()
            .filter(|k| ran.contains_key(k))
            .cloned()
            .collect()
    };
    let (outcome, incomplete) = match result {
        Ok(outcome) => (outcome, false),
        Err(Error::Incomplete(outcome)) => (&**outcome, true),
        Err(err) => {
            let delivery = err.delivery();
            let wrongly_ran = ran_any(request.leads());
            if delivery != Delivery::Unknown && !wrongly_ran.is_empty() {
                return fail(format!(
                    "the request failed with delivery {} ({err}), but the campaign ran for {}",
                    delivery.as_str(),
                    shown(&wrongly_ran)
                ));
            }
            return Ok(());
        }
    };
    let failed = outcome.first_failure().is_some();
    if incomplete && !failed {
        return fail("Error::Incomplete with no failed chunk".into());
    }
    if !incomplete && failed {
        return fail("Ok with a failed chunk: a failure is returned as an error".into());
    }
    let mut position = 0;
    let mut after_failure = false;
    for (i, chunk) in outcome.chunks().iter().enumerate() {
        if chunk.index() != i {
            return fail(format!("chunk {i} is numbered {}", chunk.index()));
        }
        if after_failure && !matches!(chunk.status(), ChunkStatus::NotAttempted) {
            return fail(format!(
                "chunk {i} was attempted after a failed chunk: a backend stops at the first failure"
            ));
        }
        after_failure |= matches!(chunk.status(), ChunkStatus::Failed(_));
        let leads = chunk.leads();
        let end = position + leads.len();
        if leads.is_empty() || request.leads().get(position..end) != Some(leads) {
            return fail(format!(
                "chunk {i} does not hold the request's next leads (its {} lead(s) from position {position}): the chunks must hold the request's leads, in order, each once",
                leads.len()
            ));
        }
        position = end;
        if let Some(key) = chunk.unmatched().iter().find(|k| !leads.contains(k)) {
            return fail(format!(
                "chunk {i} lists {key} as unmatched, which is not one of its leads"
            ));
        }
        if let Some(key) = chunk
            .ambiguous()
            .iter()
            .find(|a| !chunk.unmatched().contains(a.key()))
        {
            return fail(format!(
                "chunk {i} lists {} as ambiguous but not as unmatched",
                key.key()
            ));
        }
        let attempted = !matches!(chunk.status(), ChunkStatus::NotAttempted);
        if attempted && chunk.backend().trim().is_empty() {
            return fail(format!(
                "chunk {i} does not name the backend that served it"
            ));
        }
        match chunk.status() {
            ChunkStatus::Accepted => {
                let missing: Vec<LeadKey> = leads
                    .iter()
                    .filter(|k| !chunk.unmatched().contains(k) && !ran.contains_key(k))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    return fail(format!(
                        "chunk {i} was accepted, but the campaign did not run for {} (not listed unmatched)",
                        shown(&missing)
                    ));
                }
                let unmatched_ran = ran_any(chunk.unmatched());
                if !unmatched_ran.is_empty() {
                    return fail(format!(
                        "chunk {i} lists {} as unmatched, but the campaign ran for them",
                        shown(&unmatched_ran)
                    ));
                }
            }
            ChunkStatus::Failed(err) => {
                let delivery = err.delivery();
                let wrongly_ran = ran_any(leads);
                if delivery != Delivery::Unknown && !wrongly_ran.is_empty() {
                    return fail(format!(
                        "chunk {i} failed with delivery {} ({err}), but the campaign ran for {}",
                        delivery.as_str(),
                        shown(&wrongly_ran)
                    ));
                }
            }
            _ => {
                let wrongly_ran = ran_any(leads);
                if !wrongly_ran.is_empty() {
                    return fail(format!(
                        "chunk {i} was not attempted, but the campaign ran for {}",
                        shown(&wrongly_ran)
                    ));
                }
                if !chunk.unmatched().is_empty() {
                    return fail(format!(
                        "chunk {i} was not attempted but lists unmatched keys"
                    ));
                }
            }
        }
    }
    if position != request.leads().len() {
        return fail(format!(
            "the chunks hold {position} of the request's {} leads",
            request.leads().len()
        ));
    }
    Ok(())
}

/// Keys for a message: the first five, and how many more.
fn shown(keys: &[LeadKey]) -> String {
    let mut text = keys
        .iter()
        .take(5)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > 5 {
        text.push_str(&format!(" and {} more", keys.len() - 5));
    }
    text
}
