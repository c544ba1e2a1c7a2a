//! Client-side pacing and retries against the sandbox's enforced limits.

use std::time::{Duration, Instant};

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, RateLimit, RestCode, RetryPolicy,
    SoapCode,
};
use marketo_sandbox::{Sandbox, SandboxConfig, SandboxData};

fn request(first: u32, count: u32) -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::id(4496),
        (first..first + count).map(|i| LeadKey::id(i).unwrap()),
    )
    .unwrap()
}

fn strict_sandbox() -> Sandbox {
    Sandbox::start_with(
        SandboxConfig::new()
            .data(SandboxData::default().with_generated_leads(1, 4000))
            .rate_limit(5, Duration::from_millis(500))
            .max_concurrent(2)
            .latency(Duration::from_millis(30)),
    )
    .unwrap()
}

fn served(sandbox: &Sandbox) -> Vec<u32> {
    let mut ids: Vec<u32> = sandbox
        .journal()
        .iter()
        .flat_map(|e| e.lead_ids.clone())
        .collect();
    ids.sort_unstable();
    ids
}

/// A client of `$builder` that never retries, paced by `$limit`.
macro_rules! unretried {
    ($builder:expr, $limit:expr) => {
        $builder
            .retry(RetryPolicy::never())
            .rate_limit($limit)
            .build()
            .unwrap()
    };
}

#[test]
fn a_paced_client_never_sees_rate_or_concurrency_refusals() {
    let sandbox = strict_sandbox();
    let limit = RateLimit::new(5, Duration::from_millis(500), 2);
    // No retries: a single 606/615 or 20023/20024 would fail the test.
    let soap = unretried!(sandbox.soap_client_builder(), Some(limit));
    let rest = unretried!(sandbox.rest_client_builder(), Some(limit));
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let (soap, rest) = (soap.clone(), rest.clone());
            s.spawn(move || {
                soap.request_campaign(&request(1 + t * 500, 300)).unwrap();
                rest.request_campaign(&request(2001 + t * 500, 300))
                    .unwrap();
            });
        }
    });
    // 12 calls per API at 5 per 500 ms: at least two full windows.
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(sandbox.journal().len(), 24);
    let mut expected: Vec<u32> = (0..4u32)
        .flat_map(|t| (1 + t * 500..301 + t * 500).chain(2001 + t * 500..2301 + t * 500))
        .collect();
    expected.sort_unstable();
    assert_eq!(served(&sandbox), expected);
}

#[test]
fn an_unpaced_client_is_refused_and_says_so() {
    let sandbox = strict_sandbox();
    let rest = unretried!(sandbox.rest_client_builder(), None);
    let err = rest.request_campaign(&request(1, 800)).unwrap_err();
    let outcome = err.outcome().unwrap();
    let (_, failure) = outcome.first_failure().unwrap();
    assert_eq!(failure.rest_code(), Some(RestCode::RateLimited));
    // What ran is exactly what the outcome says was accepted.
    let accepted: usize = outcome
        .chunks()
        .iter()
        .filter(|c| c.is_accepted())
        .map(|c| c.leads().len())
        .sum();
    assert_eq!(served(&sandbox).len(), accepted);

    let soap = unretried!(sandbox.soap_client_builder(), None);
    let err = soap.request_campaign(&request(1001, 800)).unwrap_err();
    let (_, failure) = err.outcome().unwrap().first_failure().unwrap();
    assert_eq!(failure.soap_code(), Some(SoapCode::RateLimited));
}

#[test]
fn retries_carry_an_unpaced_client_through_refusals_exactly_once() {
    let sandbox = strict_sandbox();
    let policy = RetryPolicy::default()
        .max_attempts(10)
        .backoff(Duration::from_millis(100), Duration::from_millis(500));
    let rest = sandbox
        .rest_client_builder()
        .retry(policy.clone())
        .rate_limit(None)
        .build()
        .unwrap();
    let soap = sandbox
        .soap_client_builder()
        .retry(policy)
        .rate_limit(None)
        .build()
        .unwrap();
    std::thread::scope(|s| {
        s.spawn(|| rest.request_campaign(&request(1, 1000)).unwrap());
        s.spawn(|| soap.request_campaign(&request(2001, 1000)).unwrap());
    });
    let expected: Vec<u32> = (1..=1000).chain(2001..=3000).collect();
    assert_eq!(served(&sandbox), expected, "every lead once");
}
