//! One Marketo quota for many processes: the [`RateLimit`] kept in a Redis
//! server that every process pointed at the same instance shares (feature
//! `redis`).
//!
//! Each decision is one Lua script run atomically by Redis, on Redis's own
//! clock (`TIME`), so a process whose clock is off cannot break the window
//! for the others:
//!
//! - the rolling window: a sorted set of calls by time; a call holds its
//!   place from its start until `window` after its end;
//! - the calls in flight: a sorted set of *leases* that expire (the call's
//!   timeout plus a margin) and are released early on answer, so a process
//!   killed mid-call leaks no slot for longer than its lease;
//! - the daily count, keyed by Marketo's quota day.
//!
//! Keys are prefixed by the instance (its endpoint), so one Redis serves
//! several instances. If Redis cannot answer, nothing is sent on a guess:
//! the call fails with [`Error::LimiterUnavailable`] (not sent), unless
//! [`SharedLimiter::fallback_local`] was chosen. A Redis restarted mid-run
//! loses the window's history: processes may then send up to one more
//! window's worth of calls at once (Marketo would answer 606 / 20023 for
//! the excess, which the clients retry as refused-before-running).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::limiter::{quota_date, quota_reset, Limit, RateLimit};

const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local quota = tonumber(ARGV[6])
if quota >= 0 then
  local spent = tonumber(redis.call('GET', KEYS[3]) or '0')
  if spent >= quota then return {-2, now} end
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {-1, 20} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[5])
redis.call('PEXPIRE', KEYS[1], window + 60000)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) + 60000)
if quota >= 0 then
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], 259200)
end
return {1, now}
";

/// Releases a lease and moves the call's place in the window to its end.
/// The end is rounded *up* to the millisecond: Marketo received the call
/// before it answered, and a floored end could free the place up to 1 ms
/// before a window has passed since Marketo counted the call (a 606).
const RELEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 1
";

/// The longest one wait between two looks at Redis.
const MAX_POLL: Duration = Duration::from_millis(500);

/// A rate limiter kept in Redis, shared by every process that uses the
/// same Redis and instance key. Cheap to clone (one connection, shared).
/// Hand it to a client with `.shared_limiter(..)` on its builder (or
/// [`HttpConfig::shared_limiter`](crate::HttpConfig::shared_limiter)); the
/// client's [`RateLimit`] (calls per window, at once, daily quota) is what
/// all of them share.
///
/// ```no_run
/// use marketo_campaign::{RestClient, SharedLimiter};
/// let shared = SharedLimiter::new("redis://127.0.0.1:6379/0", "https://123-ABC-456.mktorest.com")?;
/// let client = RestClient::builder("https://123-ABC-456.mktorest.com", "id", "secret")
///     .shared_limiter(shared)
///     .build()?;
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Clone)]
pub struct SharedLimiter {
    inner: Arc<Inner>,
    fallback_local: bool,
}

struct Inner {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
    prefix: String,
    lease_margin: Duration,
    acquire: redis::Script,
    release: redis::Script,
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a Redis password: never shown.
        f.debug_struct("SharedLimiter")
            .field("prefix", &self.inner.prefix)
            .field("fallback_local", &self.fallback_local)
            .finish_non_exhaustive()
    }
}

/// A place in flight in the shared limiter; dropping it releases the lease.
pub(crate) struct SharedPermit {
    limiter: SharedLimiter,
    member: String,
}

impl Drop for SharedPermit {
    fn drop(&mut self) {
        let inner = &self.limiter.inner;
        let (window, in_flight) = (inner.key("window"), inner.key("inflight"));
        let released = inner.with_connection(|con| {
            inner
                .release
                .key(&window)
                .key(&in_flight)
                .arg(&self.member)
                .invoke::<i64>(con)
        });
        if let Err(err) = released {
            // The lease expires by itself.
            log::warn!("shared limiter: releasing a lease failed ({err}); it expires on its own");
        }
    }
}

/// What the shared limiter decided for one call.
pub(crate) enum Shared {
    /// The call has its place.
    Permit(SharedPermit),
    /// Redis could not answer and the fallback is local pacing.
    Local,
}

static MEMBERS: AtomicU64 = AtomicU64::new(0);

impl SharedLimiter {
    /// A limiter in the Redis at `url` (`redis://HOST:PORT/DB`, as
    /// `MARKETO_LIMITER_URL`), for the Marketo instance `instance` (its
    /// endpoint: processes that name the same one share one quota). Fails
    /// on a URL that is not one; the server is first reached by the first
    /// call.
    pub fn new(url: &str, instance: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|e| {
            Error::Config(format!(
                "the limiter URL is not a Redis URL ({:?})",
                e.kind()
            ))
        })?;
        Ok(SharedLimiter {
            inner: Arc::new(Inner {
                client,
                connection: Mutex::new(None),
                prefix: format!("marketo-campaign:{}", instance.trim_end_matches('/')),
                lease_margin: Duration::from_secs(10),
                acquire: redis::Script::new(ACQUIRE),
                release: redis::Script::new(RELEASE),
            }),
            fallback_local: false,
        })
    }

    /// When Redis cannot answer, pace this process alone instead of
    /// refusing the call (`--limiter-fallback local`). The instance's limits
    /// may then be exceeded by the processes together. Default: off (fail
    /// closed: not sent).
    pub fn fallback_local(mut self, fallback: bool) -> Self {
        self.fallback_local = fallback;
        self
    }

    /// Waits for a place under `limit` in Redis, for a call that may take
    /// `call_timeout` (its lease lasts that plus a margin).
    pub(crate) fn acquire(
        &self,
        limit: &RateLimit,
        call_timeout: Duration,
    ) -> Result<Shared, Error> {
        let inner = &self.inner;
        let deadline = limit
            .wait_budget()
            .and_then(|budget| Instant::now().checked_add(budget));
        let count = MEMBERS.fetch_add(1, Ordering::Relaxed);
        let (high, low) = crate::random::words(count);
        let member = format!("{}-{count}-{high:016x}{low:016x}", std::process::id());
        let lease = call_timeout.saturating_add(inner.lease_margin);
        let (window_key, in_flight_key) = (inner.key("window"), inner.key("inflight"));
        loop {
            let answer = inner.with_connection(|con| {
                let (quota, day_key) = match limit.quota() {
                    Some((quota, day)) => {
                        let (secs, micros): (i64, i64) = redis::cmd("TIME").query(con)?;
                        let now = DateTime::<Utc>::from_timestamp(
                            secs,
                            u32::try_from(micros * 1000).unwrap_or(0),
                        )
                        .unwrap_or_default();
                        (
                            i64::from(quota),
                            inner.key(&format!("day:{}", quota_date(now, day))),
                        )
                    }
                    None => (-1, inner.key("day:none")),
                };
                inner
                    .acquire
                    .key(&window_key)
                    .key(&in_flight_key)
                    .key(&day_key)
                    .arg(limit.calls())
                    .arg(millis(limit.window()))
                    .arg(limit.in_flight())
                    .arg(millis(lease))
                    .arg(&member)
                    .arg(quota)
                    .invoke::<(i64, i64)>(con)
            });
            let (code, value) = match answer {
                Ok(answer) => answer,
                Err(err) if self.fallback_local => {
                    log::warn!(
                        "shared limiter: Redis cannot answer ({err}); pacing this process alone"
                    );
                    return Ok(Shared::Local);
                }
                Err(err) => {
                    return Err(Error::LimiterUnavailable {
                        message: format!("the shared limiter (Redis) cannot answer: {err}"),
                    })
                }
            };
            match code {
                1 => {
                    return Ok(Shared::Permit(SharedPermit {
                        limiter: self.clone(),
                        member,
                    }))
                }
                -2 => {
                    let (quota, day) = limit.quota().unwrap_or_default();
                    let now = DateTime::<Utc>::from_timestamp_millis(value).unwrap_or_default();
                    return Err(Error::QuotaSpent {
                        quota,
                        resets_at: quota_reset(now, day)
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    });
                }
                _ => {
                    let held = if code == -1 {
                        Limit::Concurrency
                    } else {
                        Limit::Rate
                    };
                    let wait = Duration::from_millis(u64::try_from(value.max(1)).unwrap_or(1))
                        .min(MAX_POLL);
                    let wait = match deadline {
                        Some(deadline) => {
                            let left = deadline.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                return Err(Error::Throttled {
                                    limit: held,
                                    budget: limit.wait_budget().unwrap_or_default(),
                                });
                            }
                            wait.min(left)
                        }
                        None => wait,
                    };
                    std::thread::sleep(wait);
                }
            }
        }
    }
}

impl Inner {
    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// Runs `f` on the connection, connecting (again) when there is none
    /// or the last call failed.
    fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            let con = self
                .client
                .get_connection_with_timeout(Duration::from_secs(2))?;
            con.set_read_timeout(Some(Duration::from_secs(2)))?;
            con.set_write_timeout(Some(Duration::from_secs(2)))?;
            *slot = Some(con);
        }
        let Some(con) = slot.as_mut() else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no connection",
            )));
        };
        let result = f(con);
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2)
}
