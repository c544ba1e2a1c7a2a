//! Rate and concurrency limits, one [`Limiter`] per API.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// More than `calls` admitted calls in the sliding window.
    Rate,
    /// More than `max_concurrent` calls in flight.
    Concurrency,
}

/// A sliding window of admitted calls and a count of calls in flight.
#[derive(Debug)]
pub(crate) struct Limiter {
    calls: u32,
    window: Duration,
    max_concurrent: usize,
    admitted: Mutex<VecDeque<Instant>>,
    in_flight: AtomicUsize,
}

impl Limiter {
    pub(crate) fn new(calls: u32, window: Duration, max_concurrent: usize) -> Self {
        Limiter {
            calls,
            window,
            max_concurrent,
            admitted: Mutex::new(VecDeque::new()),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Admits a call, or says why not. The rate is checked first, then
    /// concurrency; only an admitted call counts toward the window. The call
    /// is in flight until the returned guard drops.
    pub(crate) fn admit(&self) -> Result<InFlight<'_>, Refused> {
        let now = Instant::now();
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        while admitted
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= self.window)
        {
            admitted.pop_front();
        }
        if admitted.len() >= self.calls as usize {
            return Err(Refused::Rate);
        }
        // Under the lock, so a refusal for concurrency never races another
        // call's admission.
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= self.max_concurrent {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(Refused::Concurrency);
        }
        admitted.push_back(now);
        Ok(InFlight(&self.in_flight))
    }

    /// The configured number of calls per window.
    pub(crate) fn calls(&self) -> u32 {
        self.calls
    }

    /// The configured window.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }
}

/// A call in flight; dropping it ends the call.
#[derive(Debug)]
pub(crate) struct InFlight<'l>(&'l AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_then_concurrency() {
        let limiter = Limiter::new(3, Duration::from_secs(60), 2);
        let a = limiter.admit().unwrap();
        let b = limiter.admit().unwrap();
        assert_eq!(limiter.admit().unwrap_err(), Refused::Concurrency);
        drop(a);
        let c = limiter.admit().unwrap();
        drop((b, c));
        // Three admitted calls fill the window; the refused one did not count.
        assert_eq!(limiter.admit().unwrap_err(), Refused::Rate);
    }

    #[test]
    fn window_slides() {
        let limiter = Limiter::new(1, Duration::from_millis(30), 5);
        drop(limiter.admit().unwrap());
        assert_eq!(limiter.admit().unwrap_err(), Refused::Rate);
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.admit().is_ok());
    }
}
