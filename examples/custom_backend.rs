//! A backend written outside the crate, proved with the crate's
//! conformance suite.
//!
//! `CsvBackend` "runs" a campaign by appending one `campaign,lead,call`
//! line per lead to a CSV log, 20 leads a call (the size of an Adobe
//! Journey Optimizer call), the way a toy HTTP backend would post them.
//! It knows leads by id; any other key, or an id it does not know, is
//! reported unmatched. Its calls can fail the four ways a network call
//! fails, and it says so with [`Error::backend`] and an honest
//! [`Delivery`].
//!
//! `CsvHarness` is what the suite needs to watch it: the leads that
//! exist, the log's lines grouped by call, and a way to make a call fail.
//!
//! ```text
//! cargo run --example custom_backend
//! ```
//!
//! `tests/conformance.rs` runs [`check`] in `cargo test`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use marketo_campaign::conformance::{self, Failure, Harness, Report, Violation};
use marketo_campaign::{
    send_in_chunks, CampaignRequest, CampaignRequester, CampaignTarget, ChunkAccepted, Delivery,
    Error, LeadKey, LeadKeyType, Outcome,
};

/// Leads 1 to `KNOWN_LEADS` exist.
const KNOWN_LEADS: u32 = 1000;

/// The service behind the backend: a CSV log of runs, and the calls it
/// has been told to fail.
#[derive(Debug, Default)]
struct CsvLog {
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    /// `campaign,lead,call` lines.
    lines: Vec<String>,
    /// Calls received so far.
    calls: usize,
    /// Planned failures, by call number (from 1).
    faults: BTreeMap<usize, Failure>,
}

/// Why a call to the log failed, as a network client would see it.
#[derive(Debug)]
enum CallError {
    ConnectionRefused,
    Rejected,
    AnswerLost,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallError::ConnectionRefused => "connection refused",
            CallError::Rejected => "the service rejected the call",
            CallError::AnswerLost => "the connection closed before the answer",
        })
    }
}

impl std::error::Error for CallError {}

impl CsvLog {
    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One call: runs `campaign` for `leads`, or fails as planned.
    fn call(&self, campaign: u32, leads: &[u32]) -> Result<(), CallError> {
        let mut state = self.state();
        state.calls += 1;
        let call = state.calls;
        let fault = state.faults.remove(&call);
        let runs = matches!(fault, None | Some(Failure::RunThenLost));
        if runs {
            for lead in leads {
                state.lines.push(format!("{campaign},{lead},{call}"));
            }
        }
        match fault {
            None => Ok(()),
            Some(Failure::NotSent) => Err(CallError::ConnectionRefused),
            Some(Failure::Refused) => Err(CallError::Rejected),
            Some(_) => Err(CallError::AnswerLost),
        }
    }
}

/// The backend: 20 leads a call to the CSV log.
#[derive(Debug, Clone)]
struct CsvBackend {
    log: Arc<CsvLog>,
}

impl fmt::Display for CsvBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Csv(in memory)")
    }
}

impl CampaignRequester for CsvBackend {
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        let CampaignTarget::Id { id, tokens } = request.target() else {
            return Err(Error::backend(
                "csv",
                Delivery::NotSent,
                "the CSV backend runs campaigns by id only",
            ));
        };
        if !tokens.is_empty() {
            return Err(Error::backend(
                "csv",
                Delivery::NotSent,
                "the CSV backend takes no tokens",
            ));
        }
        send_in_chunks(request, self.max_leads_per_call(), "csv", |_, leads| {
            let mut ids = Vec::with_capacity(leads.len());
            let mut unmatched = Vec::new();
            for key in leads {
                match known_id(key) {
                    Some(lead) if !ids.contains(&lead) => ids.push(lead),
                    Some(_) => {}
                    None => unmatched.push(key.clone()),
                }
            }
            if !ids.is_empty() {
                self.log.call(*id, &ids).map_err(|err| {
                    let delivery = match err {
                        CallError::ConnectionRefused => Delivery::NotSent,
                        CallError::Rejected => Delivery::Refused,
                        CallError::AnswerLost => Delivery::Unknown,
                    };
                    Error::backend("csv", delivery, err)
                })?;
            }
            Ok(ChunkAccepted::new().with_unmatched(unmatched))
        })
    }

    fn max_leads_per_call(&self) -> usize {
        20
    }
}

/// The lead a key names, if the service knows it.
fn known_id(key: &LeadKey) -> Option<u32> {
    if key.key_type() != LeadKeyType::Idnum {
        return None;
    }
    key.value()
        .parse()
        .ok()
        .filter(|id| (1..=KNOWN_LEADS).contains(id))
}

/// What the conformance suite needs to watch a `CsvBackend`.
#[derive(Debug)]
struct CsvHarness {
    log: Arc<CsvLog>,
}

impl Harness for CsvHarness {
    fn target(&self) -> CampaignTarget {
        CampaignTarget::id(4496)
    }

    fn leads(&self, count: usize) -> Vec<LeadKey> {
        (1..=KNOWN_LEADS)
            .take(count)
            .filter_map(|id| LeadKey::id(id).ok())
            .collect()
    }

    fn unknown_lead(&self) -> Option<LeadKey> {
        LeadKey::email("nobody@example.com").ok()
    }

    fn runs(&self) -> Vec<Vec<LeadKey>> {
        let mut calls: BTreeMap<usize, Vec<LeadKey>> = BTreeMap::new();
        for line in &self.log.state().lines {
            let mut fields = line.split(',').skip(1);
            let lead = fields.next().and_then(|id| id.parse().ok());
            let call = fields.next().and_then(|call| call.parse().ok());
            if let (Some(lead), Some(call)) = (lead, call) {
                if let Ok(key) = LeadKey::id(lead) {
                    calls.entry(call).or_default().push(key);
                }
            }
        }
        calls.into_values().collect()
    }

    fn reset(&self) {
        let mut state = self.log.state();
        state.lines.clear();
        state.faults.clear();
    }

    fn fail_call(&self, call: usize, failure: Failure) -> bool {
        let mut state = self.log.state();
        let at = state.calls + call;
        state.faults.insert(at, failure);
        true
    }
}

/// Runs the whole conformance suite against a fresh `CsvBackend`.
pub fn check() -> Result<Report, Violation> {
    let log = Arc::new(CsvLog::default());
    let backend = CsvBackend { log: log.clone() };
    let harness = CsvHarness { log };
    conformance::run_all(&backend, &harness)
}

fn main() -> Result<(), Violation> {
    let report = check()?;
    println!("Csv(in memory) keeps the contract: {report}");
    Ok(())
}
