//! Resend protection (opt-in, [`Bridge::dedupe_window`](crate::Bridge::dedupe_window)):
//! legacy clients often resend a call that timed out on their side while
//! the bridge was still serving it, and the campaign then runs twice. A
//! `requestCampaign` or `scheduleCampaign` equal to one answered within the
//! window (same SOAP user, campaign, leads in order, tokens, source, run
//! time) gets that call's answer instead of running again; one still in
//! flight is waited for. Calls that provably ran nothing (refused, not
//! sent) are not remembered, so their retries run. The claims live in this
//! process's memory, or in Redis ([`Dedupe::in_redis`]) so that they hold
//! across bridges: there a claim is one `SET NX` of a pending marker that
//! expires, replaced by the answer for the window.

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
    /// The claims' home when they are shared across bridges.
    redis: Option<Redis>,
}

/// Claims in Redis: the client and one connection.
struct Redis {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
}

/// A pending claim's marker in Redis.
const PENDING: &str = "pending";

/// A reply as stored in Redis: `ok:` and the answer, or `fault:CODE:` and
/// the message.
fn encode(reply: &Reply) -> String {
    match reply {
        Ok(body) => format!("ok:{body}"),
        Err(fault) => format!("fault:{}:{}", fault.code().code(), fault.message()),
    }
}

fn decode(text: &str) -> Option<Reply> {
    if let Some(body) = text.strip_prefix("ok:") {
        return Some(Ok(body.to_owned()));
    }
    let (code, message) = text.strip_prefix("fault:")?.split_once(':')?;
    Some(Err(Fault::new(
        SoapCode::from_code(code.parse().ok()?),
        message,
    )))
}

impl Redis {
    fn run<T>(
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
            redis: None,
        }
    }

    /// Claims kept in the Redis at `url`, shared by every bridge pointed at
    /// it. Fails on a URL that is not a Redis URL.
    pub(crate) fn in_redis(window: Duration, url: &str) -> Result<Self, marketo_campaign::Error> {
        let client = redis::Client::open(url).map_err(|e| {
            marketo_campaign::Error::Config(format!(
                "the dedupe store URL is not a Redis URL ({:?})",
                e.kind()
            ))
        })?;
        Ok(Dedupe {
            redis: Some(Redis {
                client,
                connection: Mutex::new(None),
            }),
            ..Dedupe::new(window)
        })
    }

    /// [`claim`](Dedupe::claim) in Redis: `SET key pending NX` (expiring
    /// after the wait plus the window); a taken key is read until it holds
    /// an answer. Redis failing: fault 20011 saying this call was not run.
    fn claim_in_redis<'d>(&'d self, redis: &Redis, key: String, wait: Duration) -> Claim<'d> {
        let not_run = |why: &str| {
            Claim::Answered(Err(Fault::new(
                SoapCode::InternalError,
                format!("the resend protection's store cannot answer ({why}); this call was not run: try again later"),
            )))
        };
        let key = format!("marketo-bridge:dedupe:{key}");
        let ttl = millis(wait.saturating_add(self.window));
        let deadline = Instant::now() + wait;
        loop {
            let taken: redis::RedisResult<Option<String>> = redis.run(|con| {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(PENDING)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query(con)
            });
            match taken {
                Err(err) => return not_run(&err.to_string()),
                Ok(Some(_)) => {
                    return Claim::Run(Running {
                        dedupe: self,
                        key: Some(key),
                    })
                }
                Ok(None) => {}
            }
            let value: redis::RedisResult<Option<String>> =
                redis.run(|con| redis::cmd("GET").arg(&key).query(con));
            match value {
                Err(err) => return not_run(&err.to_string()),
                Ok(Some(text)) if text != PENDING => {
                    if let Some(reply) = decode(&text) {
                        return Claim::Answered(reply);
                    }
                }
                // Pending, or gone meanwhile: look again.
                Ok(_) => {}
            }
            if Instant::now() >= deadline {
                return Claim::Answered(Err(Fault::new(
                    SoapCode::InternalError,
                    "an identical call is still being served; this one was not run: read the outcome before sending it again",
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Claims the call `key`: [`Claim::Run`] when no equal call was
    /// answered within the window or is in flight; else that call's answer
    /// (waiting at most `wait` for one in flight: past it, fault 20011
    /// saying this call was not run).
    pub(crate) fn claim(&self, key: String, wait: Duration) -> Claim<'_> {
        if let Some(redis) = &self.redis {
            return self.claim_in_redis(redis, key, wait);
        }
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
        if let Some(redis) = &self.dedupe.redis {
            let stored = redis.run(|con| {
                if may_have_run {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(encode(reply))
                        .arg("PX")
                        .arg(millis(self.dedupe.window))
                        .query::<()>(con)
                } else {
                    redis::cmd("DEL").arg(&key).query::<()>(con)
                }
            });
            if let Err(err) = stored {
                log::warn!("resend protection: storing an answer failed ({err}); its pending marker expires on its own");
            }
            return;
        }
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
        if let (Some(key), Some(redis)) = (self.key.as_ref(), &self.dedupe.redis) {
            let _ = redis.run(|con| redis::cmd("DEL").arg(key).query::<()>(con));
            self.key = None;
            return;
        }
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

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2)
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
