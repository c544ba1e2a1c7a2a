//! How close a bulk run gets to Marketo's rate limit, against the sandbox
//! with a short window: calls per window as a fraction of the limit, and the
//! rate-limit refusals seen (no retries, so each would be a failed chunk).
//!
//! ```text
//! cargo run --release --example bulk_pacing -- [CALLS_PER_WINDOW WINDOW_MS WINDOWS]
//! ```
//! Defaults: 100 calls per 2,000 ms, 6 windows' worth of calls, for SOAP and
//! for REST (with email look-ups, 300 values a call).

use std::time::{Duration, Instant};

use marketo_campaign::{
    run_bulk, BulkOptions, CampaignRequester, CampaignTarget, ChunkStatus, LeadKey, RateLimit,
    RestCode, RetryPolicy, SoapCode, Source,
};
use marketo_sandbox::{Sandbox, SandboxConfig, SandboxData};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let calls = *args.first().unwrap_or(&100) as u32;
    let window = Duration::from_millis(*args.get(1).unwrap_or(&2000));
    let windows = *args.get(2).unwrap_or(&6) as u32;
    let leads = calls * windows * 100;

    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .data(SandboxData::default().with_generated_leads(1, leads))
            .rate_limit(calls, window)
            .max_concurrent(10)
            .latency(Duration::from_millis(20)),
    )?;
    let limit = RateLimit::new(calls, window, 10);
    let soap = sandbox
        .soap_client_builder()
        .rate_limit(Some(limit))
        .retry(RetryPolicy::never())
        .build()?;
    let rest = sandbox
        .rest_client_builder()
        .rate_limit(Some(limit))
        .retry(RetryPolicy::never())
        .build()?;
    println!(
        "limit: {calls} calls per {window:?}, 10 concurrent; {leads} leads; sandbox latency 20 ms"
    );
    println!("| API | leads | calls | elapsed | windows | calls per window | of the limit | rate-limit refusals | served |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let keys = |email: bool| {
        (1..=leads).map(move |id| {
            if email {
                LeadKey::email(format!("lead{id}@example.com"))
            } else {
                LeadKey::id(id)
            }
        })
    };
    for (name, requester, email, per_request) in [
        ("SOAP", &soap as &dyn CampaignRequester, false, 1),
        ("REST", &rest as &dyn CampaignRequester, true, 3),
    ] {
        sandbox.clear_journal();
        let mut refusals = 0;
        let start = Instant::now();
        let summary = run_bulk(
            requester,
            &CampaignTarget::id(4496),
            Source::Mktows,
            keys(email),
            &BulkOptions::new()
                .workers(10)
                .chunks_per_request(per_request),
            |chunk| {
                if let ChunkStatus::Failed(err) = chunk.status() {
                    if matches!(
                        err.rest_code(),
                        Some(RestCode::RateLimited | RestCode::ConcurrencyLimited)
                    ) || matches!(
                        err.soap_code(),
                        Some(SoapCode::RateLimited | SoapCode::ConcurrencyLimited)
                    ) {
                        refusals += 1;
                    }
                }
            },
        )?;
        let elapsed = start.elapsed();
        // Look-ups are API calls too (one per 300 emails).
        let api_calls = summary.accepted
            + if email {
                (leads as usize).div_ceil(300)
            } else {
                0
            };
        // The first window's calls go at once; each later window adds `calls`.
        // Minimum time for N calls: (ceil(N / calls) - 1) windows.
        let full_windows = elapsed.as_secs_f64() / window.as_secs_f64();
        let per_window = api_calls as f64 / (full_windows + 1.0);
        let served: usize = sandbox.journal().iter().map(|e| e.lead_ids.len()).sum();
        println!(
            "| {name} | {leads} | {api_calls} | {:.2} s | {:.2} | {:.1} | {:.1}% | {refusals} | {served} |",
            elapsed.as_secs_f64(),
            full_windows,
            per_window,
            100.0 * per_window / calls as f64,
        );
        assert!(summary.is_complete(), "{summary:?}");
    }
    Ok(())
}
