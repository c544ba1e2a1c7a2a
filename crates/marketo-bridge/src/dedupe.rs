//! Resend protection (opt-in, [`Bridge::dedupe_window`](crate::Bridge::dedupe_window)):
//! legacy clients often resend a call that timed out on their side while
//! the bridge was still serving it, and the campaign then runs twice. A
//! `requestCampaign` or `scheduleCampaign` equal to one answered within the
//! window (same SOAP user, campaign, leads in order, tokens, source, run
//! time) gets that call's answer instead of running again; one still in
//! flight is waited for. Calls that provably ran nothing (refused, not
//! sent) are not remembered, so their retries run. The claims live in this
//! process's memory.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use marketo_campaign::soap::Fault;
use marketo_campaign::SoapCode;

/// A call's answer, as the bridge gives it.
pub(crate) type Reply = Result<String, Fault>;

/// One remembered call: in flight (`None`) or answered, and when.
struct Entry {
    answered_at: Option<Instant>,
    reply: Option<Reply>,
}

/// The calls of the window, by key.
#[derive(Default)]
pub(crate) struct Dedupe {
    window: Duration,
    calls: Mutex<HashMap<String, Entry>>,
    changed: Condvar,
}

impl std::fmt::Debug for Dedupe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedupe")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// What a caller may do with its call.
pub(crate) enum Claim<'d> {
    /// Run it, then [`Running::finish`].
    Run(Running<'d>),
    /// Answer this: an equal call's answer.
    Answered(Reply),
}

/// A claimed call in flight; dropped unfinished, it is forgotten (its
/// waiters then run their own).
pub(crate) struct Running<'d> {
    dedupe: &'d Dedupe,
    key: Option<String>,
}

impl Dedupe {
    pub(crate) fn new(window: Duration) -> Self {
        Dedupe {
            window,
            calls: Mutex::default(),
            changed: Condvar::new(),
        }
    }

    /// Claims the call `key`: [`Claim::Run`] when no equal call was
    /// answered within the window or is in flight; else that call's answer
    /// (waiting at most `wait` for one in flight: past it, fault 20011
    /// saying this call was not run).
    pub(crate) fn claim(&self, key: String, wait: Duration) -> Claim<'_> {
        let deadline = Instant::now() + wait;
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.window;
        calls.retain(|_, e| e.answered_at.is_none_or(|at| at.elapsed() < window));
        loop {
            match calls.get(&key) {
                None => {
                    calls.insert(
                        key.clone(),
                        Entry {
                            answered_at: None,
                            reply: None,
                        },
                    );
                    return Claim::Run(Running {
                        dedupe: self,
                        key: Some(key),
                    });
                }
                Some(Entry {
                    reply: Some(reply), ..
                }) => return Claim::Answered(reply.clone()),
                Some(_) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Claim::Answered(Err(Fault::new(
                            SoapCode::InternalError,
                            "an identical call is still being served; this one was not run: read the outcome before sending it again",
                        )));
                    }
                    calls = self
                        .changed
                        .wait_timeout(calls, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
}

impl Running<'_> {
    /// Records the call's answer for the window when `may_have_run`, else
    /// forgets the call (a retry of a call that ran nothing must run), and
    /// wakes its waiters.
    pub(crate) fn finish(mut self, reply: &Reply, may_have_run: bool) {
        let Some(key) = self.key.take() else { return };
        let mut calls = self
            .dedupe
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if may_have_run {
            calls.insert(
                key,
                Entry {
                    answered_at: Some(Instant::now()),
                    reply: Some(reply.clone()),
                },
            );
        } else {
            calls.remove(&key);
        }
        self.dedupe.changed.notify_all();
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.dedupe
                .calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            self.dedupe.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_equal_call_gets_the_first_answer_until_the_window_passes() {
        let dedupe = Dedupe::new(Duration::from_millis(200));
        let Claim::Run(running) = dedupe.claim("k".into(), Duration::ZERO) else {
            panic!("the first call runs")
        };
        running.finish(&Ok("ran".into()), true);
        let Claim::Answered(Ok(answer)) = dedupe.claim("k".into(), Duration::ZERO) else {
            panic!("the second gets the first's answer")
        };
        assert_eq!(answer, "ran");
        assert!(matches!(
            dedupe.claim("other".into(), Duration::ZERO),
            Claim::Run(_)
        ));
        std::thread::sleep(Duration::from_millis(250));
        assert!(matches!(
            dedupe.claim("k".into(), Duration::ZERO),
            Claim::Run(_)
        ));
    }

    #[test]
    fn a_call_that_ran_nothing_is_forgotten() {
        let dedupe = Dedupe::new(Duration::from_secs(60));
        let Claim::Run(running) = dedupe.claim("k".into(), Duration::ZERO) else {
            panic!()
        };
        running.finish(&Err(Fault::new(SoapCode::RateLimited, "not sent")), false);
        assert!(matches!(
            dedupe.claim("k".into(), Duration::ZERO),
            Claim::Run(_)
        ));
    }

    #[test]
    fn a_call_in_flight_is_waited_for() {
        let dedupe = std::sync::Arc::new(Dedupe::new(Duration::from_secs(60)));
        let Claim::Run(running) = dedupe.claim("k".into(), Duration::ZERO) else {
            panic!()
        };
        let waiter = {
            let dedupe = std::sync::Arc::clone(&dedupe);
            std::thread::spawn(
                move || match dedupe.claim("k".into(), Duration::from_secs(10)) {
                    Claim::Answered(reply) => reply,
                    Claim::Run(_) => Err(Fault::new(SoapCode::InternalError, "ran again")),
                },
            )
        };
        std::thread::sleep(Duration::from_millis(100));
        running.finish(&Ok("first".into()), true);
        assert_eq!(waiter.join().unwrap().unwrap(), "first");
        // Waiting past the limit: not run, a fault that says so.
        let Claim::Run(_held) = dedupe.claim("slow".into(), Duration::ZERO) else {
            panic!()
        };
        let Claim::Answered(Err(fault)) = dedupe.claim("slow".into(), Duration::from_millis(50))
        else {
            panic!()
        };
        assert!(fault.message().contains("was not run"));
    }
}
