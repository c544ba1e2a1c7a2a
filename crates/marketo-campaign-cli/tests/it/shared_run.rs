//! One Marketo quota for many processes (issue 19): three `bridge`
//! processes and two bulk `request` runs against one sandbox at Marketo's
//! limits scaled down (100 calls / 2 s, 10 at once), all sharing one Redis
//! through `--limiter`. The sandbox refuses nothing with 606 / 615, every
//! lead runs exactly once, and the run takes no more than 5% over the least
//! time the limit allows for the calls the sandbox saw.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, RetryPolicy, SoapClient,
};
use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig, SandboxData};
use test_support::redis_server::RedisServer;

use crate::common::{start_line, BIN};

const USER: &str = "bridgeUser_1";
const KEY: &str = "bridgeKey0123456789";

/// `marketo-campaign ARGS` with the sandbox's REST credentials and the
/// bridge's SOAP user in the environment.
fn command(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("MARKETO_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("MARKETO_REST_ENDPOINT", sandbox.rest_endpoint())
        .env("MARKETO_CLIENT_ID", sandbox.client_id())
        .env("MARKETO_CLIENT_SECRET", sandbox.client_secret())
        .env("MARKETO_SOAP_USER_ID", USER)
        .env("MARKETO_SOAP_ENCRYPTION_KEY", KEY);
    command
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn three_bridges_and_two_bulk_runs_share_one_quota() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let window = Duration::from_secs(2);
    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .data(SandboxData::default().with_generated_leads(1, 3000))
            .rate_limit(100, window)
            .max_concurrent(10)
            // Logs every REST call in the fault log, changing nothing.
            .faults([FaultRule::always(Fault::Delay(Duration::ZERO)).api(Api::Rest)]),
    )
    .unwrap();
    let url = redis.url();
    let limiter = ["--limiter", url.as_str()];
    // Scaled down like the sandbox: 100 calls per 2 s, 10 at once.
    let rate = ["--rate-limit", "100/2/10"];

    let mut bridges = Vec::new();
    for _ in 0..3 {
        let mut child = command(
            &sandbox,
            &["bridge", "--listen", "127.0.0.1:0", "--wait-budget", "120"],
        )
        .args(limiter)
        .args(rate)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let start = start_line(&mut child);
        bridges.push((
            Killed(child),
            start["bridge_endpoint"].as_str().unwrap().to_owned(),
        ));
    }
    let dir = std::env::temp_dir().join(format!("mc-shared-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Bulk runs: leads 1..=1000 and 1001..=2000, by id.
    let files: Vec<_> = [(1, 1000), (1001, 2000)]
        .into_iter()
        .map(|(from, to)| {
            let path = dir.join(format!("leads-{from}.txt"));
            let text: String = (from..=to).map(|id| format!("IDNUM:{id}\n")).collect();
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();

    let started = Instant::now();
    let bulk: Vec<Child> = files
        .iter()
        .map(|file| {
            command(
                &sandbox,
                &[
                    "request",
                    "--backend",
                    "rest",
                    "--campaign-id",
                    "4496",
                    "--leads-file",
                ],
            )
            .arg(file)
            .args(limiter)
            .args(rate)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    // SOAP clients: two per bridge, 20 calls each of one lead (2001..=2240).
    let soap_results: Vec<bool> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (b, (_, endpoint)) in bridges.iter().enumerate() {
            for t in 0..2 {
                let endpoint = endpoint.clone();
                handles.push(scope.spawn(move || {
                    let client = SoapClient::builder(endpoint, USER, KEY)
                        .retry(RetryPolicy::never())
                        .rate_limit(None)
                        .timeout(Duration::from_secs(120))
                        .build()
                        .unwrap();
                    (0..20)
                        .map(|i| {
                            let id = 2001 + (b * 2 + t) * 20 + i;
                            let request = CampaignRequest::new(
                                CampaignTarget::id(4496),
                                [LeadKey::id(id as u32).unwrap()],
                            )
                            .unwrap();
                            client.request_campaign(&request).is_ok()
                        })
                        .collect::<Vec<_>>()
                }));
            }
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let bulk_codes: Vec<Option<i32>> = bulk
        .into_iter()
        .map(|mut child| child.wait().unwrap().code())
        .collect();
    let wall = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);

    assert!(soap_results.iter().all(|ok| *ok), "a SOAP call failed");
    assert_eq!(bulk_codes, [Some(0), Some(0)]);
    // Every lead ran exactly once.
    let mut seen = BTreeSet::new();
    for entry in sandbox.journal() {
        for id in entry.lead_ids {
            assert!(seen.insert(id), "lead {id} ran twice");
        }
    }
    assert_eq!(seen.len(), 2000 + 120);
    // No 606 / 615: a refused trigger is retried, adding to the triggers,
    // so the sandbox saw exactly one per SOAP call (120) and one per bulk
    // chunk of 100 leads (2 × 10). A bulk run hands a worker up to three
    // ready chunks per look-up (300 ids), so its look-ups vary from 4 to
    // 10 with how the workers race; the SOAP calls need one each.
    let log = sandbox.fault_log();
    let count = |path: &str| log.iter().filter(|e| e.path == path).count();
    let triggers = count("/rest/v1/campaigns/4496/trigger.json");
    let lookups = count("/rest/v1/leads.json");
    assert_eq!(triggers, 120 + 2 * 10);
    assert!(
        (120 + 2 * 4..=120 + 2 * 10).contains(&lookups),
        "{lookups} look-ups"
    );
    assert_eq!(log.len(), triggers + lookups, "only look-ups and triggers");
    let calls = log.len() as f64;
    let floor = ((calls / 100.0).ceil() - 1.0) * window.as_secs_f64();
    assert!(
        wall.as_secs_f64() <= floor * 1.05 + 1.0,
        "{calls} REST calls in {wall:?}; the limit allows them in {floor} s"
    );
    eprintln!(
        "shared run: {calls} REST calls in {:.1} s (floor {floor:.1} s)",
        wall.as_secs_f64()
    );
}

/// A `request` process killed (SIGKILL) mid-call leaves its place in
/// flight as a lease in Redis that ends with the call's timeout (60 s)
/// plus the 10 s margin, by Redis's clock; the library test
/// `a_leaked_slot_expires` shows an ended lease no longer holds the slot.
#[test]
fn a_process_killed_mid_call_leaks_its_slot_only_for_its_lease() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .data(SandboxData::default().with_generated_leads(1, 10))
            // Every REST call hangs: the process is killed during one.
            .faults([FaultRule::always(Fault::Delay(Duration::from_secs(30))).api(Api::Rest)]),
    )
    .unwrap();
    let port = redis.port().to_string();
    let redis_cli = |args: &[&str]| -> String {
        let output = Command::new("redis-cli")
            .args(["-p", port.as_str()])
            .args(args)
            .output()
            .expect("redis-cli (Debian's redis-tools) runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let key = format!("marketo-campaign:{}:inflight", sandbox.rest_endpoint());
    let url = redis.url();
    let child = command(
        &sandbox,
        &[
            "request",
            "--backend",
            "rest",
            "--campaign-id",
            "4496",
            "--lead",
            "IDNUM:5",
            "--limiter",
            url.as_str(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut child = Killed(child);
    let started = Instant::now();
    while redis_cli(&["ZCARD", &key]).trim() != "1" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no lease in {key}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.0.kill().unwrap(); // SIGKILL: no release on answer.
    child.0.wait().unwrap();
    let lease = redis_cli(&["ZRANGE", &key, "0", "-1", "WITHSCORES"]);
    let expires: u64 = lease.lines().nth(1).unwrap().trim().parse().unwrap();
    let time = redis_cli(&["TIME"]);
    let mut parts = time.lines();
    let secs: u64 = parts.next().unwrap().trim().parse().unwrap();
    let micros: u64 = parts.next().unwrap().trim().parse().unwrap();
    let now = secs * 1000 + micros / 1000;
    let left = expires.saturating_sub(now);
    assert!(
        (60_000..=70_000).contains(&left),
        "the killed process's slot is held {left} ms more; its lease is 70 s"
    );
    assert!(sandbox.journal().is_empty());
}
