//! The harness of the recording stub.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use super::{Failure, Harness};
use crate::error::{Delivery, Error};
use crate::request::{CampaignTarget, LeadKey};
use crate::requester::StubRequester;

/// A [`Harness`] for a [`StubRequester`]: what ran is the calls the stub
/// accepted ([`StubRequester::calls`]), and failures are planned with
/// [`StubRequester::fail_call`]. Leads are `IDNUM:1`, `IDNUM:2`, …; the
/// stub knows no lead it could fail to match, so
/// [`unmatched_keys`](super::unmatched_keys) is skipped.
///
/// Also a model for your own harness: the state it keeps is where the
/// current scenario starts in the stub's record, and which failed calls
/// still count as run.
#[derive(Debug)]
pub struct StubHarness {
    stub: StubRequester,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The stub's call count at the last reset.
    start: usize,
    /// Calls (numbered as the stub numbers them) that failed after running.
    ran_anyway: HashSet<usize>,
}

impl StubHarness {
    /// The harness of `stub` (a clone sharing its record).
    pub fn new(stub: &StubRequester) -> Self {
        StubHarness {
            stub: stub.clone(),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Harness for StubHarness {
    fn target(&self) -> CampaignTarget {
        CampaignTarget::id(1)
    }

    fn leads(&self, count: usize) -> Vec<LeadKey> {
        (1..=count)
            .map_while(|i| u32::try_from(i).ok())
            .filter_map(|i| LeadKey::id(i).ok())
            .collect()
    }

    fn runs(&self) -> Vec<Vec<LeadKey>> {
        let state = self.state();
        self.stub
            .calls()
            .iter()
            .enumerate()
            .skip(state.start)
            .filter(|(i, call)| call.error().is_none() || state.ran_anyway.contains(&(i + 1)))
            .map(|(_, call)| call.leads().to_vec())
            .collect()
    }

    fn reset(&self) {
        let mut state = self.state();
        self.stub.clear_failures();
        state.start = self.stub.calls().len();
        state.ran_anyway.clear();
    }

    fn fail_call(&self, call: usize, failure: Failure) -> bool {
        let n = self.stub.calls().len() + call;
        let (delivery, what) = match failure {
            Failure::NotSent => (Delivery::NotSent, "connection refused"),
            Failure::Refused => (Delivery::Refused, "refused"),
            Failure::RunThenLost => (Delivery::Unknown, "answer lost after the run"),
            Failure::LostBeforeRun => (Delivery::Unknown, "answer lost"),
        };
        if failure == Failure::RunThenLost {
            self.state().ran_anyway.insert(n);
        }
        self.stub.fail_call(
            n,
            Error::backend("stub", delivery, format!("{what} (planned by the harness)")),
        );
        true
    }
}
