//! `SharedLimiter`: one Marketo quota for many processes, kept in a real
//! Redis server started by the test (no persistence, a free loopback port).
//! Two clients with limiters of their own stand for two processes.
//! Without `redis-server` the tests fail when `MC_REQUIRE_CLIENTS=1` (CI)
//! and are skipped with a notice otherwise.

use std::process::Command;
use std::time::{Duration, Instant};

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Delivery, Error, LeadKey, RateLimit,
    RestClient, RetryPolicy, SharedLimiter,
};
use marketo_sandbox::{Sandbox, SandboxConfig};
use test_support::redis_server::{free_port, RedisServer};

fn redis() -> Option<RedisServer> {
    RedisServer::start()
}

fn request() -> CampaignRequest {
    CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(1002200).unwrap()]).unwrap()
}

/// A client of `sandbox` paced by `limit`, shared through `shared` when
/// given, never retrying (a 606 shows).
fn client(sandbox: &Sandbox, limit: RateLimit, shared: Option<SharedLimiter>) -> RestClient {
    let mut builder = sandbox
        .rest_client_builder()
        .rate_limit(Some(limit))
        .retry(RetryPolicy::never());
    if let Some(shared) = shared {
        builder = builder.shared_limiter(shared);
    }
    builder.build().unwrap()
}

/// Two "processes" of 8 calls each (4 requests: a look-up and a trigger)
/// at an instance allowing 6 calls a second: sharing Redis, they keep to
/// it together (no 606, about 2 s); each pacing alone, they exceed it.
#[test]
fn two_processes_share_one_window() {
    let Some(redis) = redis() else { return };
    let sandbox =
        Sandbox::start_with(SandboxConfig::new().rate_limit(6, Duration::from_secs(1))).unwrap();
    let limit = RateLimit::new(6, Duration::from_secs(1), 10);
    let run = |shared: bool| {
        let clients: Vec<RestClient> = (0..2)
            .map(|_| {
                let shared = shared
                    .then(|| SharedLimiter::new(&redis.url(), &sandbox.rest_endpoint()).unwrap());
                client(&sandbox, limit, shared)
            })
            .collect();
        let started = Instant::now();
        let results: Vec<Result<_, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = clients
                .iter()
                .map(|c| {
                    scope.spawn(move || {
                        (0..4)
                            .map(|_| c.request_campaign(&request()))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        (results, started.elapsed())
    };
    let (shared, elapsed) = run(true);
    let refused: Vec<_> = shared.iter().filter(|r| r.is_err()).collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let (alone, _) = run(false);
    assert!(
        alone.iter().any(|r| r
            .as_ref()
            .err()
            .and_then(Error::rest_code)
            .is_some_and(|c| c.code() == 606)),
        "pacing alone kept to the instance's limit: the test proves nothing"
    );
}

/// A lease not released (a process killed mid-call) frees its slot when
/// it expires: here a crashed process's lease, written as it would have
/// left it, holds the only slot for 1.5 s of Redis's clock.
#[test]
fn a_leaked_slot_expires() {
    let Some(redis) = redis() else { return };
    let sandbox = Sandbox::start().unwrap();
    let port = redis.port().to_string();
    let port = port.as_str();
    let cli = |args: &[&str]| {
        let output = Command::new("redis-cli")
            .args(["-p", port])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let time = cli(&["TIME"]);
    let mut parts = time.lines();
    let secs: u64 = parts.next().unwrap().trim().parse().unwrap();
    let micros: u64 = parts.next().unwrap().trim().parse().unwrap();
    let expires = secs * 1000 + micros / 1000 + 1500;
    let key = "marketo-campaign:https://leak.example:inflight";
    assert_eq!(
        cli(&["ZADD", key, &expires.to_string(), "crashed-process"]).trim(),
        "1"
    );
    let one_at_a_time = RateLimit::new(100, Duration::from_secs(20), 1);
    let shared = SharedLimiter::new(&redis.url(), "https://leak.example").unwrap();
    let started = Instant::now();
    client(&sandbox, one_at_a_time, Some(shared))
        .request_campaign(&request())
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1300),
        "{waited:?}: the leaked slot was not held"
    );
    assert!(
        waited < Duration::from_secs(5),
        "{waited:?}: the leaked slot did not expire"
    );
}

/// Redis unreachable: nothing is sent on a guess (not sent, naming the
/// limiter), unless the fallback is local pacing.
#[test]
fn an_unreachable_redis_fails_closed_or_falls_back_when_asked() {
    let sandbox = Sandbox::start().unwrap();
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let closed = client(
        &sandbox,
        RateLimit::default(),
        Some(SharedLimiter::new(&url, "x").unwrap()),
    );
    let err = closed.request_campaign(&request()).unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
    assert!(matches!(err, Error::LimiterUnavailable { .. }), "{err:?}");
    assert!(sandbox.journal().is_empty());
    let fallback = SharedLimiter::new(&url, "x").unwrap().fallback_local(true);
    client(&sandbox, RateLimit::default(), Some(fallback))
        .request_campaign(&request())
        .unwrap();
    assert_eq!(sandbox.journal().len(), 1);
    assert!(SharedLimiter::new("not a url", "x").is_err());
}

/// The daily quota is shared too: 4 calls between two processes, and
/// exactly 4 reach the sandbox.
#[test]
fn the_daily_quota_is_shared() {
    use marketo_sandbox::{Api, Fault, FaultRule};

    let Some(redis) = redis() else { return };
    // The fault log records every REST call, changing nothing.
    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .faults([FaultRule::always(Fault::Delay(Duration::ZERO)).api(Api::Rest)]),
    )
    .unwrap();
    let limit = RateLimit::default().daily_quota(4);
    let a = client(
        &sandbox,
        limit,
        Some(SharedLimiter::new(&redis.url(), "https://quota.example").unwrap()),
    );
    let b = client(
        &sandbox,
        limit,
        Some(SharedLimiter::new(&redis.url(), "https://quota.example").unwrap()),
    );
    a.request_campaign(&request()).unwrap();
    b.request_campaign(&request()).unwrap();
    let err = a.request_campaign(&request()).unwrap_err();
    assert!(matches!(err, Error::QuotaSpent { quota: 4, .. }), "{err:?}");
    assert_eq!(sandbox.journal().len(), 2);
    // A quota of 4 sends exactly 4 calls: two look-ups and two triggers.
    assert_eq!(sandbox.fault_log().len(), 4);
}

/// Redis stopped mid-run: four "processes" send 15 one-lead requests each
/// while the test stops Redis after the first ten have run. Every request
/// either ran (its lead is in the journal once) or failed *not sent*
/// naming the limiter (its lead is not in the journal); none ran twice,
/// and after the stop nothing more is sent.
#[test]
fn redis_stopped_mid_run_leaves_calls_not_sent() {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};

    use marketo_sandbox::SandboxData;

    let Some(redis) = redis() else { return };
    let sandbox = Sandbox::start_with(
        SandboxConfig::new().data(SandboxData::default().with_generated_leads(1, 60)),
    )
    .unwrap();
    let url = redis.url();
    let stopped = AtomicBool::new(false);
    let outcomes: Vec<(u32, Result<(), Error>, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u32)
            .map(|process| {
                let client = client(
                    &sandbox,
                    RateLimit::default(),
                    Some(SharedLimiter::new(&url, "mid-run").unwrap()),
                );
                let stopped = &stopped;
                scope.spawn(move || {
                    (1..=15u32)
                        .map(|i| {
                            let id = process * 15 + i;
                            let after_stop = stopped.load(Ordering::SeqCst);
                            let request = CampaignRequest::new(
                                CampaignTarget::id(4496),
                                [LeadKey::id(id).unwrap()],
                            )
                            .unwrap();
                            let result = client.request_campaign(&request).map(|_| ());
                            std::thread::sleep(Duration::from_millis(20));
                            (id, result, after_stop)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let started = Instant::now();
        while sandbox.journal().len() < 10 {
            assert!(started.elapsed() < Duration::from_secs(20), "no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(redis);
        stopped.store(true, Ordering::SeqCst);
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut runs = BTreeMap::<u32, usize>::new();
    for entry in sandbox.journal() {
        for id in entry.lead_ids {
            *runs.entry(id).or_default() += 1;
        }
    }
    assert!(runs.values().all(|n| *n == 1), "a lead ran twice: {runs:?}");
    let mut not_sent = 0;
    for (id, result, after_stop) in &outcomes {
        match result {
            Ok(()) => {
                assert!(!after_stop, "lead {id} was sent after Redis stopped");
                assert_eq!(runs.get(id), Some(&1), "lead {id}: Ok but not run");
            }
            Err(err) => {
                assert!(matches!(err, Error::LimiterUnavailable { .. }), "{err:?}");
                assert_eq!(err.delivery(), Delivery::NotSent);
                assert_eq!(runs.get(id), None, "lead {id}: not sent but ran");
                not_sent += 1;
            }
        }
    }
    assert!(runs.len() >= 10, "{} ran before the stop", runs.len());
    assert!(
        not_sent >= 4,
        "each process saw the stop: {not_sent} not sent"
    );
    assert_eq!(runs.len() + not_sent, 60);
}
