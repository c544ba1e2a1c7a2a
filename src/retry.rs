//! Retries with exponential backoff and jitter, only where nothing ran.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use crate::error::{Action, Delivery, Error};

/// When and how often a client repeats a call that failed.
///
/// A call is repeated only when it certainly did not run, as
/// [`Error::classify`] decides (the one classification; the full table is
/// [`CLASSIFICATION`](crate::CLASSIFICATION)):
///
/// | answer | why it is safe |
/// |---|---|
/// | not sent (connection refused, DNS, connect timeout) | nothing reached the server |
/// | a failed token request or look-up (any failure but a refusal for good) | a GET cannot trigger a campaign |
/// | SOAP 20016 request expired | refused before running; repeated once, at once, signed afresh |
/// | SOAP 20023 rate, 20024 concurrency | refused before running |
/// | REST 606 rate, 615 concurrency | refused before running |
/// | Journey Optimizer HTTP 429 | refused before running; the wait is at least its `Retry-After` |
/// | REST 601/602 after a renewal | refused before running; repeated once, at once |
///
/// Never repeated (unless [`retry_unknown`](RetryPolicy::retry_unknown) is
/// set, because the campaign may then run twice): a trigger or schedule
/// whose outcome is unknown — timeout after sending, reset or cut answer,
/// unreadable answer, HTTP 502/503/504 with or without a body (a gateway
/// says so when its upstream failed, before or after running), a SOAP fault
/// that is not on HTTP 500, REST 604 (ran too long), 608, 611 (unhandled
/// exception).
///
/// Waits grow from `initial_backoff`, doubling up to `max_backoff`, each
/// with random jitter (between half and all of the step), and the whole call,
/// waits included, stays within `budget`.
///
/// ```
/// use std::time::Duration;
/// use marketo_campaign::RetryPolicy;
/// let policy = RetryPolicy::default()
///     .max_attempts(3)
///     .backoff(Duration::from_millis(100), Duration::from_secs(2))
///     .budget(Duration::from_secs(10));
/// assert_eq!(policy.attempts(), 3);
/// let never = RetryPolicy::never();
/// assert_eq!(never.attempts(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    budget: Duration,
    retry_unknown: bool,
}

impl Default for RetryPolicy {
    /// 5 attempts, backoff from 500 ms to 20 s, a 2-minute budget, unknown
    /// outcomes not repeated.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            budget: Duration::from_secs(120),
            retry_unknown: false,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Attempts in all, the first included (at least 1). Default: 5.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The first wait and the largest. Defaults: 500 ms and 20 s.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Time allowed for one call, all attempts and waits included; no retry
    /// starts whose wait would end past it. Default: 2 minutes.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Also repeat calls whose outcome is unknown. Default: off. With it on,
    /// a campaign may run twice for the leads of such a call.
    pub fn retry_unknown(mut self, on: bool) -> Self {
        self.retry_unknown = on;
        self
    }

    /// Attempts in all.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether `err` may be repeated under this policy: its
    /// [classification](Error::classify) says [`Action::Retry`] or
    /// [`Action::Renew`], or its outcome is unknown and the policy was told
    /// to [`retry_unknown`](RetryPolicy::retry_unknown).
    ///
    /// ```
    /// use marketo_campaign::{Error, RestCode, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// assert!(policy.is_retryable(&Error::Rest { code: RestCode::RateLimited, message: String::new() }));
    /// assert!(!policy.is_retryable(&Error::Rest { code: RestCode::CampaignNotFound, message: String::new() }));
    /// // 611 on a trigger: it may have run.
    /// assert!(!policy.is_retryable(&Error::Rest { code: RestCode::SystemError, message: String::new() }));
    /// ```
    pub fn is_retryable(&self, err: &Error) -> bool {
        let class = err.classify();
        match class.action {
            Action::Retry | Action::Renew => true,
            Action::FallBack | Action::Stop => {
                self.retry_unknown && class.delivery == Delivery::Unknown
            }
        }
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1).
    fn wait(&self, attempt: u32) -> Duration {
        let step = self
            .initial_backoff
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.max_backoff);
        let half = step / 2;
        half.saturating_add(half.mul_f64(jitter()))
    }

    /// Runs `call` (given the attempt number, from 1) until it succeeds, fails
    /// in a way that may not be repeated, or attempts or budget run out.
    pub(crate) fn run<T>(
        &self,
        what: &dyn std::fmt::Display,
        mut call: impl FnMut(u32) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let start = Instant::now();
        let mut attempt = 1;
        loop {
            let err = match call(attempt) {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if attempt >= self.max_attempts || !self.is_retryable(&err) {
                return Err(err);
            }
            // A fresh signature or token cures an expired one at once, or
            // never (a clock that is off stays off): one repeat, no wait.
            let renew = err.classify().action == Action::Renew;
            if renew && attempt > 1 {
                return Err(err);
            }
            // A server that names its wait (429 Retry-After) gets at least it.
            let wait = if renew {
                Duration::ZERO
            } else {
                self.wait(attempt)
                    .max(err.retry_after().unwrap_or_default())
            };
            if start.elapsed().saturating_add(wait) > self.budget {
                log::warn!("{what}: retry budget spent after {attempt} attempt(s): {err}");
                return Err(err);
            }
            log::info!("{what}: attempt {attempt} failed ({err}); retrying in {wait:?}");
            std::thread::sleep(wait);
            attempt += 1;
        }
    }
}

/// A uniform number in [0, 1), from std's randomly keyed hasher.
fn jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{RestCode, SoapCode};

    fn rest(code: RestCode) -> Error {
        Error::Rest {
            code,
            message: String::new(),
        }
    }

    #[test]
    fn retries_only_what_did_not_run() {
        let policy = RetryPolicy::default();
        for err in [
            rest(RestCode::RateLimited),
            rest(RestCode::ConcurrencyLimited),
            Error::ReadFailed {
                call: "lead look-up".into(),
                source: Box::new(rest(RestCode::SystemError)),
            },
            Error::ReadFailed {
                call: "lead look-up".into(),
                source: Box::new(Error::Transport {
                    delivery: Delivery::Unknown,
                    message: "reset".into(),
                    source: None,
                }),
            },
            Error::SoapFault {
                code: SoapCode::RequestExpired,
                message: String::new(),
            },
            Error::SoapFault {
                code: SoapCode::RateLimited,
                message: String::new(),
            },
            Error::SoapFault {
                code: SoapCode::ConcurrencyLimited,
                message: String::new(),
            },
            Error::Transport {
                delivery: Delivery::NotSent,
                message: String::new(),
                source: None,
            },
        ] {
            assert!(policy.is_retryable(&err), "{err}");
        }
        for err in [
            rest(RestCode::CampaignNotFound),
            rest(RestCode::DailyQuotaReached),
            // On a trigger these may have run (issue 8, defect 5).
            rest(RestCode::RequestTimedOut),
            rest(RestCode::TemporarilyUnavailable),
            rest(RestCode::SystemError),
            // A gateway's empty 502 does not prove nothing ran (defect 1).
            Error::Protocol {
                status: 502,
                reason: String::new(),
                body: String::new(),
            },
            Error::Protocol {
                status: 503,
                reason: String::new(),
                body: "<html>Service Unavailable</html>".into(),
            },
            Error::ReadFailed {
                call: "lead look-up".into(),
                source: Box::new(rest(RestCode::AccessDenied)),
            },
            Error::SoapFault {
                code: SoapCode::AuthenticationFailed,
                message: String::new(),
            },
            Error::Transport {
                delivery: Delivery::Unknown,
                message: String::new(),
                source: None,
            },
            Error::Protocol {
                status: 502,
                reason: String::new(),
                body: "Bad gateway".into(),
            },
            Error::Protocol {
                status: 200,
                reason: String::new(),
                body: String::new(),
            },
            Error::HttpStatus {
                status: 410,
                body: String::new(),
            },
        ] {
            assert!(!policy.is_retryable(&err), "{err}");
        }
        let unknown = Error::Transport {
            delivery: Delivery::Unknown,
            message: String::new(),
            source: None,
        };
        assert!(policy.clone().retry_unknown(true).is_retryable(&unknown));
    }

    #[test]
    fn waits_grow_with_jitter_and_stay_bounded() {
        let policy =
            RetryPolicy::default().backoff(Duration::from_millis(100), Duration::from_millis(800));
        for attempt in 1..=8 {
            let step = (100u64 << (attempt - 1)).min(800);
            let wait = policy.wait(attempt).as_millis() as u64;
            assert!(
                wait >= step / 2 && wait <= step,
                "attempt {attempt}: {wait} ms"
            );
        }
    }

    #[test]
    fn run_stops_at_attempts_and_budget() {
        let policy = RetryPolicy::default()
            .max_attempts(3)
            .backoff(Duration::from_millis(1), Duration::from_millis(2));
        let mut calls = 0;
        let result: Result<(), Error> = policy.run(&"test", |_| {
            calls += 1;
            Err(rest(RestCode::RateLimited))
        });
        assert!(result.is_err());
        assert_eq!(calls, 3);

        let mut calls = 0;
        let result = policy.run(&"test", |attempt| {
            calls += 1;
            if attempt < 2 {
                Err(rest(RestCode::RateLimited))
            } else {
                Ok(attempt)
            }
        });
        assert_eq!(result.unwrap(), 2);

        let mut calls = 0;
        let _ = policy.run(&"test", |_| -> Result<(), Error> {
            calls += 1;
            Err(Error::SoapFault {
                code: SoapCode::RequestExpired,
                message: String::new(),
            })
        });
        assert_eq!(calls, 2, "20016 is repeated once");

        let tight = RetryPolicy::default()
            .backoff(Duration::from_millis(50), Duration::from_millis(50))
            .budget(Duration::from_millis(10));
        let mut calls = 0;
        let _ = tight.run(&"test", |_| -> Result<(), Error> {
            calls += 1;
            Err(rest(RestCode::RateLimited))
        });
        assert_eq!(calls, 1, "no retry whose wait ends past the budget");
    }
}
