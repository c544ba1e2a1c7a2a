//! Client-side pacing: calls per window and calls in flight.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};

use crate::clock::Clock;

/// How fast a client may call Marketo: at most `calls` per `window` and at
/// most `in_flight` at once. Marketo's limits are 100 calls per 20 s and 10
/// concurrent calls per instance (for each API); a client paced at them
/// never sees 606/615 (REST) or 20023/20024 (SOAP) from its own traffic.
///
/// A call occupies its place in the window from the moment it starts until
/// `window` after it ends, so the client's count is never below the
/// server's, whatever the network delay.
///
/// ```
/// use std::time::Duration;
/// use marketo_campaign::RateLimit;
/// let limit = RateLimit::new(100, Duration::from_secs(20), 10);
/// assert_eq!(limit, RateLimit::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    calls: u32,
    window: Duration,
    in_flight: usize,
    max_wait: Option<Duration>,
    daily_quota: Option<u32>,
    quota_day: QuotaDay,
}

/// When Marketo's daily quota resets. Marketo documents "12:00 AM CST";
/// read literally that is UTC−6 all year ([`QuotaDay::FixedCst`], the
/// default), but an instance may follow US Central time with daylight
/// saving ([`QuotaDay::Central`], UTC−5 in summer): choose what your
/// instance's quota shows.
///
/// ```
/// use marketo_campaign::{QuotaDay, RateLimit};
/// let limit = RateLimit::default().daily_quota(50_000).quota_day(QuotaDay::Central);
/// assert_eq!(limit.quota(), Some((50_000, QuotaDay::Central)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum QuotaDay {
    /// Days start at midnight UTC−6, all year.
    #[default]
    FixedCst,
    /// Days start at midnight in `America/Chicago` (CST, or CDT in summer).
    Central,
}

/// Which of a [`RateLimit`]'s limits kept a call waiting (see
/// [`RateLimit::max_wait`] and [`Error::Throttled`](crate::Error::Throttled)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Calls per window (Marketo's 606 / 20023).
    Rate,
    /// Calls at once (Marketo's 615 / 20024).
    Concurrency,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::Rate => "rate",
            Limit::Concurrency => "concurrency",
        })
    }
}

impl Default for RateLimit {
    /// Marketo's limits: 100 calls per 20 s, 10 in flight.
    fn default() -> Self {
        RateLimit::new(100, Duration::from_secs(20), 10)
    }
}

impl RateLimit {
    /// At most `calls` per `window`, `in_flight` at once (each at least 1).
    /// Any window is accepted, up to [`Duration::MAX`] (a window that never
    /// ends: after `calls` calls, callers wait for good).
    pub fn new(calls: u32, window: Duration, in_flight: usize) -> Self {
        RateLimit {
            calls: calls.max(1),
            window,
            in_flight: in_flight.max(1),
            max_wait: None,
            daily_quota: None,
            quota_day: QuotaDay::FixedCst,
        }
    }

    /// At most `calls` a day (Marketo's daily quota: most subscriptions
    /// 50,000), counted by this client's limiter in Marketo's quota day
    /// ([`quota_day`](RateLimit::quota_day)). When it is spent, calls are
    /// not sent: they fail at once with
    /// [`Error::QuotaSpent`](crate::Error::QuotaSpent), naming when the
    /// quota resets, instead of burning 607s. Default: none. The count
    /// belongs to this client (and its clones): other processes' calls to
    /// the same instance are not counted.
    ///
    /// ```
    /// use marketo_campaign::RateLimit;
    /// let limit = RateLimit::default().daily_quota(50_000);
    /// assert!(limit.quota().is_some());
    /// ```
    pub fn daily_quota(mut self, calls: u32) -> Self {
        self.daily_quota = Some(calls);
        self
    }

    /// When the daily quota's day starts. Default: [`QuotaDay::FixedCst`].
    pub fn quota_day(mut self, day: QuotaDay) -> Self {
        self.quota_day = day;
        self
    }

    /// The daily quota and its day, if one is set.
    pub fn quota(&self) -> Option<(u32, QuotaDay)> {
        self.daily_quota.map(|calls| (calls, self.quota_day))
    }

    /// Longest a call may wait for its place; a call that would wait longer
    /// is not sent and fails with [`Error::Throttled`](crate::Error::Throttled)
    /// (nothing ran), naming the limit that held it. Default: no budget,
    /// callers wait as long as the limit requires. A server that serves
    /// many callers through one client (the bridge) sets one, so that its
    /// callers get a prompt "try later" instead of a queue.
    ///
    /// ```
    /// use std::time::Duration;
    /// use marketo_campaign::RateLimit;
    /// let limit = RateLimit::default().max_wait(Duration::from_secs(30));
    /// assert_eq!(limit.wait_budget(), Some(Duration::from_secs(30)));
    /// ```
    pub fn max_wait(mut self, budget: Duration) -> Self {
        self.max_wait = Some(budget);
        self
    }

    /// The budget set by [`max_wait`](RateLimit::max_wait), if any.
    pub fn wait_budget(&self) -> Option<Duration> {
        self.max_wait
    }

    /// Calls per window.
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Calls at once.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

/// The longest a waiting caller sleeps before looking again. The window
/// can be any [`Duration`], up to [`Duration::MAX`]; nothing here adds it to
/// an [`Instant`] (that overflows and panics): the time left is the window
/// minus the time elapsed, saturating at zero.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Counts {
    /// When recent calls ended, oldest first.
    ended: VecDeque<Instant>,
    in_flight: usize,
    /// The quota day being counted, and the calls sent in it.
    day: Option<NaiveDate>,
    spent: u32,
}

/// Why a call could not have its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// The wait budget passed while this limit held it.
    Limit(Limit),
    /// The daily quota is spent until this time.
    Quota {
        quota: u32,
        resets_at: DateTime<Utc>,
    },
}

/// The quota day `now` falls in.
pub(crate) fn quota_date(now: DateTime<Utc>, day: QuotaDay) -> NaiveDate {
    match day {
        QuotaDay::FixedCst => (now - chrono::Duration::hours(6)).date_naive(),
        QuotaDay::Central => now.with_timezone(&chrono_tz::America::Chicago).date_naive(),
    }
}

/// When the quota day after `now`'s starts.
pub(crate) fn quota_reset(now: DateTime<Utc>, day: QuotaDay) -> DateTime<Utc> {
    let next = quota_date(now, day)
        .succ_opt()
        .unwrap_or(NaiveDate::MAX)
        .and_time(chrono::NaiveTime::MIN);
    match day {
        QuotaDay::FixedCst => next.and_utc() + chrono::Duration::hours(6),
        QuotaDay::Central => next
            .and_local_timezone(chrono_tz::America::Chicago)
            .earliest()
            .map_or_else(
                || next.and_utc() + chrono::Duration::hours(6),
                |t| t.to_utc(),
            ),
    }
}

/// The shared pacing state of one client and its clones.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    counts: Mutex<Counts>,
    freed: Condvar,
}

/// A place in flight; dropping it ends the call.
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut counts = self.limiter.lock();
        counts.in_flight = counts.in_flight.saturating_sub(1);
        counts.ended.push_back(Instant::now());
        drop(counts);
        self.limiter.freed.notify_all();
    }
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Limiter {
            limit,
            counts: Mutex::new(Counts::default()),
            freed: Condvar::new(),
        }
    }

    /// The wait budget, if the limit has one.
    pub(crate) fn budget(&self) -> Option<Duration> {
        self.limit.max_wait
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a place, then takes it; gives up when the limit's
    /// [`max_wait`](RateLimit::max_wait) passes first, saying which limit
    /// held the call.
    pub(crate) fn acquire(&self) -> Result<Permit<'_>, Held> {
        // A budget too long to add to now is no budget.
        let deadline = self
            .limit
            .max_wait
            .and_then(|budget| Instant::now().checked_add(budget));
        let mut counts = self.lock();
        loop {
            if let Some(quota) = self.limit.daily_quota {
                let wall = crate::clock::SystemClock.now();
                let today = quota_date(wall, self.limit.quota_day);
                if counts.day != Some(today) {
                    counts.day = Some(today);
                    counts.spent = 0;
                }
                if counts.spent >= quota {
                    return Err(Held::Quota {
                        quota,
                        resets_at: quota_reset(wall, self.limit.quota_day),
                    });
                }
            }
            let now = Instant::now();
            while counts
                .ended
                .front()
                .is_some_and(|ended| now.saturating_duration_since(*ended) >= self.limit.window)
            {
                counts.ended.pop_front();
            }
            let in_window = counts.ended.len() + counts.in_flight;
            let concurrency_full = counts.in_flight >= self.limit.in_flight;
            if !concurrency_full && in_window < self.limit.calls as usize {
                counts.in_flight += 1;
                counts.spent = counts.spent.saturating_add(1);
                return Ok(Permit { limiter: self });
            }
            let left = match deadline {
                Some(deadline) if deadline <= now => {
                    return Err(Held::Limit(if concurrency_full {
                        Limit::Concurrency
                    } else {
                        Limit::Rate
                    }))
                }
                Some(deadline) => deadline.saturating_duration_since(now),
                None => MAX_WAIT,
            };
            // Wake when a call ends, or when the oldest leaves the window.
            let wait = match counts.ended.front() {
                Some(oldest) if !concurrency_full => self
                    .limit
                    .window
                    .saturating_sub(now.saturating_duration_since(*oldest)),
                _ => Duration::from_millis(100),
            };
            counts = self
                .freed
                .wait_timeout(
                    counts,
                    wait.clamp(Duration::from_millis(1), MAX_WAIT).min(left),
                )
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn the_quota_day_starts_at_midnight_cst_or_central_time() {
        // 05:59 UTC is still the day before at UTC-6; 06:00 starts it.
        let before = utc("2026-07-15T05:59:00Z");
        let after = utc("2026-07-15T06:00:00Z");
        assert_eq!(
            quota_date(before, QuotaDay::FixedCst).to_string(),
            "2026-07-14"
        );
        assert_eq!(
            quota_date(after, QuotaDay::FixedCst).to_string(),
            "2026-07-15"
        );
        assert_eq!(
            quota_reset(before, QuotaDay::FixedCst),
            utc("2026-07-15T06:00:00Z")
        );
        // In July, Central time is CDT (UTC-5): the day started at 05:00.
        assert_eq!(
            quota_date(before, QuotaDay::Central).to_string(),
            "2026-07-15"
        );
        assert_eq!(
            quota_reset(before, QuotaDay::Central),
            utc("2026-07-16T05:00:00Z")
        );
        // In January both agree (CST).
        let winter = utc("2026-01-15T12:00:00Z");
        assert_eq!(
            quota_reset(winter, QuotaDay::Central),
            utc("2026-01-16T06:00:00Z")
        );
        assert_eq!(
            quota_reset(winter, QuotaDay::FixedCst),
            utc("2026-01-16T06:00:00Z")
        );
    }

    #[test]
    fn a_spent_daily_quota_refuses_at_once_and_names_the_reset() {
        let limiter = Limiter::new(RateLimit::default().daily_quota(2));
        drop(limiter.acquire());
        drop(limiter.acquire());
        let started = Instant::now();
        let Err(Held::Quota { quota, resets_at }) = limiter.acquire().map(drop) else {
            panic!("the third call got a place")
        };
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(quota, 2);
        assert!(resets_at > crate::clock::SystemClock.now());
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn paces_calls_per_window() {
        let limiter = Limiter::new(RateLimit::new(5, Duration::from_millis(200), 10));
        let start = Instant::now();
        for _ in 0..10 {
            drop(limiter.acquire());
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(600), "{elapsed:?}");
    }

    /// A window too long to add to an [`Instant`] (old code: `oldest +
    /// window` overflowed and panicked as soon as a caller had to wait for
    /// the window).
    #[test]
    fn huge_windows_make_callers_wait_without_panicking() {
        for window in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
            // Room left in the window: no wait at all.
            let roomy = Limiter::new(RateLimit::new(1000, window, 10));
            for _ in 0..50 {
                drop(roomy.acquire());
            }
            // The window is full: the next caller waits, for good.
            let full = Arc::new(Limiter::new(RateLimit::new(2, window, 10)));
            drop(full.acquire());
            drop(full.acquire());
            let waiter = {
                let full = full.clone();
                std::thread::spawn(move || drop(full.acquire()))
            };
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                !waiter.is_finished(),
                "{window:?}: the third call neither waited nor survived"
            );
            // The waiter stays parked (it re-checks every MAX_WAIT) until the
            // test process exits.
        }
        // Full in flight, then the window: both wait branches.
        let one = Arc::new(Limiter::new(RateLimit::new(1, Duration::MAX, 1)));
        let held = one.acquire();
        let waiter = {
            let one = one.clone();
            std::thread::spawn(move || drop(one.acquire()))
        };
        std::thread::sleep(Duration::from_millis(150));
        drop(held);
        std::thread::sleep(Duration::from_millis(300));
        assert!(!waiter.is_finished(), "the waiter panicked or got through");
    }

    #[test]
    fn caps_calls_in_flight() {
        let limiter = Arc::new(Limiter::new(RateLimit::new(
            1000,
            Duration::from_secs(1),
            3,
        )));
        let current = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (limiter, current, peak) = (limiter.clone(), current.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let _permit = limiter.acquire();
                        let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(2));
                        current.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    /// Past the budget a caller gets no place, and learns which limit held
    /// it; within it, it gets one as soon as the limit allows.
    #[test]
    fn a_wait_budget_gives_up_naming_the_limit() {
        let budget = Duration::from_millis(100);
        // The window is full.
        let rate = Limiter::new(RateLimit::new(2, Duration::from_secs(60), 10).max_wait(budget));
        let (a, b) = (rate.acquire(), rate.acquire());
        assert!(a.is_ok() && b.is_ok());
        drop((a, b));
        let start = Instant::now();
        assert_eq!(rate.acquire().err(), Some(Held::Limit(Limit::Rate)));
        let waited = start.elapsed();
        assert!(waited >= budget && waited < budget * 5, "{waited:?}");
        // Every place in flight is taken.
        let busy = Limiter::new(RateLimit::new(1000, Duration::from_secs(1), 1).max_wait(budget));
        let held = busy.acquire();
        assert!(held.is_ok());
        assert_eq!(busy.acquire().err(), Some(Held::Limit(Limit::Concurrency)));
        // A place freed within the budget is taken.
        std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                drop(held);
            });
            assert!(busy.acquire().is_ok());
        });
        // A budget too long to add to now waits as if there were none.
        let endless = RateLimit::new(1, Duration::from_millis(50), 1).max_wait(Duration::MAX);
        let endless = Limiter::new(endless);
        drop(endless.acquire());
        assert!(endless.acquire().is_ok());
    }
}
