//! A load run through the SOAP→REST bridge (issue 10, item 8): many
//! concurrent SOAP clients, one bridge, one shared `RestClient`, the
//! sandbox's REST side at a scaled-down Marketo limit. Exits non-zero when
//! an invariant fails, so it is a check, not only a measurement.
//!
//! ```text
//! cargo run --release --example bridge_load -- [CALLS CLIENTS LIMIT WINDOW_MS LATENCY_MS]
//! ```
//! Defaults: 1,000 `requestCampaign` calls of one lead each (by email, a
//! different lead per call), 50 clients (threads, each its own
//! `SoapClient`, retries off, no client-side pacing), the sandbox and the
//! bridge's `RestClient` both at 100 calls per 2,000 ms and 10 at once (a
//! tenth of Marketo's 20 s window, so the run takes about 40 s instead of
//! 400 s), and 20 ms of sandbox latency per REST call (about the same
//! fraction of the window as Marketo's ~200 ms of its 20 s).
//!
//! Invariants checked:
//! - every call is answered: successes + faults + errors = CALLS, and the
//!   bridge's `/metrics` counts the same number of `requestCampaign` calls;
//! - the sandbox journal holds exactly one run per success, for exactly the
//!   leads of the successful calls (no lead run twice, none run for a
//!   faulted call);
//! - the sandbox refused no REST call with 606 or 615 (its `sandbox REST
//!   error` log lines, counted by a logger installed here);
//! - the REST calls the sandbox saw (every REST call, from its fault log:
//!   a zero-delay fault rule logs each one) = 2 per SOAP call (a lead
//!   look-up, then a trigger);
//! - wall time ≤ 105% of the minimum the rate limit allows for those REST
//!   calls: `(ceil(rest_calls / LIMIT) - 1) × WINDOW`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use marketo_bridge::Bridge;
use marketo_campaign::soap::Authenticator;
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Error, LeadKey, RateLimit, RetryPolicy,
    SoapClient,
};
use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig, SandboxData};

const CAMPAIGN: u32 = 4496;

/// Counts the sandbox's REST errors by code, from its debug log lines
/// (`sandbox REST error 606: …`).
struct RestErrorCounter {
    codes: Mutex<BTreeMap<String, u64>>,
}

static REST_ERRORS: RestErrorCounter = RestErrorCounter {
    codes: Mutex::new(BTreeMap::new()),
};

const SANDBOX_REST_TARGET: &str = "marketo_sandbox::rest";

impl log::Log for RestErrorCounter {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == SANDBOX_REST_TARGET
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        if let Some(rest) = text.strip_prefix("sandbox REST error ") {
            let code = rest.split(':').next().unwrap_or("?").to_owned();
            *self
                .codes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(code)
                .or_default() += 1;
        }
    }

    fn flush(&self) {}
}

/// What one SOAP call came back with.
#[derive(Debug)]
enum Outcome {
    Success,
    Fault(u32),
    Error(String),
}

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let calls = *args.first().unwrap_or(&1000) as usize;
    let clients = *args.get(1).unwrap_or(&50) as usize;
    let limit_calls = *args.get(2).unwrap_or(&100) as u32;
    let window = Duration::from_millis(*args.get(3).unwrap_or(&2000));
    let latency = Duration::from_millis(*args.get(4).unwrap_or(&20));

    log::set_logger(&REST_ERRORS).map_err(|e| e.to_string())?;
    log::set_max_level(log::LevelFilter::Debug);

    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .data(SandboxData::default().with_generated_leads(1, calls as u32))
            .rate_limit(limit_calls, window)
            .max_concurrent(10)
            .latency(latency)
            // Logs every REST call in the fault log, changing nothing.
            .faults([FaultRule::always(Fault::Delay(Duration::ZERO)).api(Api::Rest)]),
    )?;
    let rest = sandbox
        .rest_client_builder()
        .rate_limit(Some(RateLimit::new(limit_calls, window, 10)))
        .retry(RetryPolicy::never())
        .build()?;
    let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    let server = Bridge::rest(rest, auth).serve("127.0.0.1:0".parse()?, false)?;
    let endpoint = server.endpoint();

    println!(
        "sandbox REST limit (scaled down): {limit_calls} calls per {window:?}, 10 at once, \
         {latency:?} latency; bridge RestClient paced at the same limit, no retries"
    );
    println!(
        "{calls} requestCampaign calls (1 lead each, by email) from {clients} SOAP clients \
         (threads, retries off) through {endpoint}"
    );

    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(clients + 1));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let client = SoapClient::builder(
                endpoint.clone(),
                sandbox.soap_user_id(),
                sandbox.soap_encryption_key(),
            )
            .retry(RetryPolicy::never())
            .rate_limit(None)
            .timeout(Duration::from_secs(120))
            .build()?;
            let next = Arc::clone(&next);
            let barrier = Arc::clone(&barrier);
            Ok(std::thread::spawn(move || {
                barrier.wait();
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= calls {
                        return done;
                    }
                    let lead = i as u32 + 1;
                    let request = LeadKey::email(format!("lead{lead}@example.com"))
                        .and_then(|key| CampaignRequest::new(CampaignTarget::id(CAMPAIGN), [key]));
                    let started = Instant::now();
                    let outcome = match request.and_then(|r| client.request_campaign(&r)) {
                        Ok(_) => Outcome::Success,
                        Err(Error::SoapFault { code, .. }) => Outcome::Fault(code.code()),
                        Err(err) => Outcome::Error(format!("{:?}: {err}", err.delivery())),
                    };
                    done.push((lead, outcome, started.elapsed()));
                }
            }))
        })
        .collect::<Result<_, Error>>()?;
    barrier.wait();
    let start = Instant::now();
    let mut results = Vec::with_capacity(calls);
    for worker in workers {
        results.extend(worker.join().map_err(|_| "a client thread panicked")?);
    }
    let wall = start.elapsed();

    // What the clients saw.
    let mut successes = 0usize;
    let mut faults: BTreeMap<u32, usize> = BTreeMap::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut succeeded = vec![false; calls + 1];
    let mut latencies: Vec<Duration> = Vec::with_capacity(calls);
    for (lead, outcome, elapsed) in &results {
        latencies.push(*elapsed);
        match outcome {
            Outcome::Success => {
                successes += 1;
                succeeded[*lead as usize] = true;
            }
            Outcome::Fault(code) => *faults.entry(*code).or_default() += 1,
            Outcome::Error(what) => *errors.entry(what.clone()).or_default() += 1,
        }
    }
    latencies.sort();
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];

    // What the bridge counted.
    let metrics = ureq::get(&format!("http://{}/metrics", server.addr()))
        .call()?
        .body_mut()
        .read_to_string()?;
    let bridge_counted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("marketo_bridge_calls_total{operation=\"requestCampaign\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    drop(server);

    // What the sandbox ran and saw.
    let journal = sandbox.journal();
    let mut runs_per_lead = vec![0usize; calls + 1];
    let mut foreign_runs = 0usize;
    for entry in &journal {
        if entry.api != "rest" || entry.campaign_id != CAMPAIGN {
            foreign_runs += 1;
        }
        for &id in &entry.lead_ids {
            match runs_per_lead.get_mut(id as usize) {
                Some(n) if id > 0 => *n += 1,
                _ => foreign_runs += 1,
            }
        }
    }
    let journaled_leads: usize = runs_per_lead.iter().sum();
    let run_twice = runs_per_lead.iter().filter(|&&n| n > 1).count();
    let run_for_a_fault = (1..=calls)
        .filter(|&l| runs_per_lead[l] > 0 && !succeeded[l])
        .count();
    let success_not_run = (1..=calls)
        .filter(|&l| succeeded[l] && runs_per_lead[l] == 0)
        .count();
    let rest_events: Vec<_> = sandbox
        .fault_log()
        .into_iter()
        .filter(|e| e.api == Api::Rest)
        .collect();
    let rest_calls = rest_events.len();
    let lookups = rest_events
        .iter()
        .filter(|e| e.path.ends_with("/leads.json"))
        .count();
    let triggers = rest_events
        .iter()
        .filter(|e| e.path.ends_with("/trigger.json"))
        .count();
    let rest_errors = REST_ERRORS
        .codes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let refusals: u64 = ["606", "615"]
        .iter()
        .filter_map(|c| rest_errors.get(*c))
        .sum();

    let per_window = limit_calls as usize;
    let minimum = window * (rest_calls.div_ceil(per_window).saturating_sub(1) as u32);
    let ratio = wall.as_secs_f64() / minimum.as_secs_f64();

    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| SOAP calls made | {} |", results.len());
    println!("| answered success | {successes} |");
    println!("| answered fault, by code | {faults:?} |");
    println!("| transport errors | {errors:?} |");
    println!("| requestCampaign calls in the bridge's /metrics | {bridge_counted} |");
    println!(
        "| campaign runs in the sandbox journal (leads) | {} ({journaled_leads}) |",
        journal.len()
    );
    println!("| leads run twice / run for a faulted call / success not run | {run_twice} / {run_for_a_fault} / {success_not_run} |");
    println!("| REST calls the sandbox saw (look-ups + triggers) | {rest_calls} ({lookups} + {triggers}) |");
    println!(
        "| REST calls per SOAP call | {:.2} |",
        rest_calls as f64 / calls as f64
    );
    println!("| REST errors the sandbox answered, by code | {rest_errors:?} |");
    println!("| 606/615 answered by the sandbox | {refusals} |");
    println!(
        "| wall time / minimum the rate limit allows | {:.2} s / {:.2} s = {:.1}% |",
        wall.as_secs_f64(),
        minimum.as_secs_f64(),
        100.0 * ratio
    );
    println!(
        "| SOAP call latency p50 / p99 / max | {:.0} / {:.0} / {:.0} ms |",
        quantile(0.5).as_secs_f64() * 1e3,
        quantile(0.99).as_secs_f64() * 1e3,
        quantile(1.0).as_secs_f64() * 1e3
    );

    let answered = successes + faults.values().sum::<usize>() + errors.values().sum::<usize>();
    let checks = [
        (
            "every call answered",
            answered == calls && results.len() == calls,
        ),
        (
            "the bridge counted every call",
            bridge_counted == calls as u64,
        ),
        (
            "one journal run per success",
            journal.len() == successes && journaled_leads == successes,
        ),
        ("no lead run twice", run_twice == 0),
        (
            "nothing run for a faulted call",
            run_for_a_fault == 0 && foreign_runs == 0,
        ),
        ("every success ran", success_not_run == 0),
        ("no 606/615 at the sandbox", refusals == 0),
        (
            "2 REST calls per SOAP call",
            lookups == calls && triggers == successes && rest_calls == lookups + triggers,
        ),
        ("wall time within 5% of the minimum", ratio <= 1.05),
    ];
    let mut failed = false;
    println!();
    for (what, ok) in checks {
        println!("{} {what}", if ok { "ok  " } else { "FAIL" });
        failed |= !ok;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
