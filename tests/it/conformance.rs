//! The public conformance suite (`marketo_campaign::conformance`) against
//! every backend of the crate — SoapClient, RestClient,
//! Fallback(SOAP → REST) and AjoClient on the sandbox, the recording stub at several
//! sizes, a Fallback between stubs of different sizes — and against the
//! user-written backend of `examples/custom_backend.rs`; then flawed
//! backends, to show each check fails when it should.
//!
//! `cargo test` builds the suite: the crate is its own dev-dependency with
//! the `conformance` feature (see Cargo.toml).
#![cfg(feature = "conformance")]

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use marketo_campaign::conformance::{self, Failure, Harness, StubHarness, Verdict, Violation};
use marketo_campaign::{
    send_in_chunks, CampaignRequest, CampaignRequester, CampaignTarget, ChunkAccepted, Delivery,
    Error, Fallback, LeadKey, Outcome, RetryPolicy, StubRequester,
};
use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig, SandboxData};

#[path = "../../examples/custom_backend.rs"]
#[allow(dead_code)]
mod custom_backend;

/// Leads 1 to 400 exist in the sandbox (a suite against a backend of 100
/// asks for at most 202).
const SANDBOX_LEADS: u32 = 400;

/// The sandbox, with SOAP on a port of its own so that SOAP can refuse
/// connections while REST answers.
fn sandbox() -> Sandbox {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    Sandbox::start_with(
        SandboxConfig::new()
            .data(SandboxData::default().with_generated_leads(1, SANDBOX_LEADS))
            .soap_listen(loopback),
    )
    .unwrap()
}

/// Retries as by default, with short waits (a refused connection is
/// retried before it is reported).
fn quick_retries() -> RetryPolicy {
    RetryPolicy::default().backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// What ran is the sandbox's journal; failures are sandbox faults on the
/// campaign calls of `api` (every SOAP call; REST trigger posts only).
struct SandboxHarness<'a> {
    sandbox: &'a Sandbox,
    api: Api,
}

impl Harness for SandboxHarness<'_> {
    fn target(&self) -> CampaignTarget {
        CampaignTarget::id(4496)
    }

    fn leads(&self, count: usize) -> Vec<LeadKey> {
        first_leads(count, |id| LeadKey::id(id).unwrap())
    }

    fn unknown_lead(&self) -> Option<LeadKey> {
        Some(LeadKey::id(99_999_999).unwrap())
    }

    fn runs(&self) -> Vec<Vec<LeadKey>> {
        self.sandbox
            .journal()
            .into_iter()
            .map(|entry| {
                assert_eq!(entry.campaign_id, 4496);
                entry
                    .lead_ids
                    .iter()
                    .map(|id| LeadKey::id(*id).unwrap())
                    .collect()
            })
            .collect()
    }

    fn reset(&self) {
        clear(self.sandbox);
    }

    fn fail_call(&self, call: usize, failure: Failure) -> bool {
        let call = call as u64;
        let rule = match (self.api, failure) {
            (Api::Soap, Failure::NotSent) => {
                FaultRule::on_call(Fault::RefuseConnections { lasting: None }, call).api(Api::Soap)
            }
            (Api::Soap, Failure::Refused) => FaultRule::on_call(Fault::SoapFault(20013), call),
            (Api::Soap, Failure::RunThenLost) => {
                FaultRule::on_call(Fault::ResetMidResponse, call).api(Api::Soap)
            }
            (Api::Soap, Failure::LostBeforeRun) => {
                FaultRule::on_call(Fault::ResetAfterRequest, call).api(Api::Soap)
            }
            // REST shares its port with look-ups and tokens: a refused
            // connection cannot be aimed at the n-th trigger.
            (Api::Rest, Failure::NotSent) => return false,
            (Api::Rest, failure) => {
                let fault = match failure {
                    Failure::Refused => Fault::RestError(603),
                    Failure::RunThenLost => Fault::ResetMidResponse,
                    _ => Fault::ResetAfterRequest,
                };
                FaultRule::on_call(fault, call)
                    .api(Api::Rest)
                    .method("POST")
                    .path_prefix("/rest/v1/campaigns/")
            }
            _ => return false,
        };
        self.sandbox.inject(rule).is_ok()
    }
}

/// The keys of the sandbox's first `count` leads (ids from 1), by `key`.
fn first_leads(count: usize, key: impl Fn(u32) -> LeadKey) -> Vec<LeadKey> {
    (1..=SANDBOX_LEADS).take(count).map(key).collect()
}

/// Clears the sandbox's faults, fault log and journal.
fn clear(sandbox: &Sandbox) {
    sandbox.clear_faults();
    sandbox.clear_fault_log();
    sandbox.clear_journal();
}

impl<'a> SandboxHarness<'a> {
    fn new(sandbox: &'a Sandbox, api: Api) -> Self {
        SandboxHarness { sandbox, api }
    }
}

/// A client of the sandbox that retries quickly.
macro_rules! quick {
    ($builder:expr) => {
        $builder.retry(quick_retries()).build().unwrap()
    };
}

/// The report of the whole suite, which `client` passes.
fn kept(
    client: &impl CampaignRequester,
    harness: &impl conformance::Harness,
) -> conformance::Report {
    conformance::run_all(client, harness).unwrap_or_else(|v| panic!("{v}"))
}

fn passed_all(report: &conformance::Report) {
    let skipped: Vec<_> = report.skipped().collect();
    assert!(skipped.is_empty(), "{report}");
    assert_eq!(report.checks().len(), 4, "{report}");
}

#[test]
fn soap_client_keeps_the_contract() {
    let sandbox = sandbox();
    let client = quick!(sandbox.soap_client_builder());
    passed_all(&kept(&client, &SandboxHarness::new(&sandbox, Api::Soap)));
}

#[test]
fn rest_client_keeps_the_contract() {
    let sandbox = sandbox();
    let client = quick!(sandbox.rest_client_builder());
    passed_all(&kept(&client, &SandboxHarness::new(&sandbox, Api::Rest)));
}

#[test]
fn fallback_from_soap_to_rest_keeps_the_contract() {
    let sandbox = sandbox();
    let client = Fallback::new(
        quick!(sandbox.soap_client_builder()),
        quick!(sandbox.rest_client_builder()),
    );
    let harness = SandboxHarness::new(&sandbox, Api::Soap);
    let report = kept(&client, &harness);
    passed_all(&report);
    // SOAP refusing connections part-way handed the rest to REST.
    harness.reset();
    assert!(harness.fail_call(2, Failure::NotSent));
    let request =
        CampaignRequest::new(harness.target(), harness.leads(201)).expect("a valid request");
    let outcome = client.request_campaign(&request).unwrap();
    let backends: Vec<&str> = outcome.chunks().iter().map(|c| c.backend()).collect();
    assert_eq!(backends, ["soap", "rest", "rest"]);
    let apis: Vec<String> = sandbox.journal().into_iter().map(|e| e.api).collect();
    assert_eq!(apis, ["soap", "rest", "rest"]);
}

/// What ran is the sandbox's journal of AJO executions (each recipient's
/// lead, found by its email); failures are sandbox faults on the AJO
/// calls. AJO does not say which recipients it found, so the harness names
/// no unknown lead (`unmatched_keys` is skipped).
struct AjoHarness<'a> {
    sandbox: &'a Sandbox,
}

impl Harness for AjoHarness<'_> {
    fn target(&self) -> CampaignTarget {
        // Marketo's campaign 4496, mapped to its AJO campaign.
        CampaignTarget::id(4496)
    }

    fn leads(&self, count: usize) -> Vec<LeadKey> {
        first_leads(count, |id| {
            LeadKey::email(format!("lead{id}@example.com")).unwrap()
        })
    }

    fn runs(&self) -> Vec<Vec<LeadKey>> {
        self.sandbox
            .journal()
            .into_iter()
            .map(|entry| {
                let execution = entry.ajo.expect("an AJO execution");
                assert_eq!(
                    execution.campaign_id,
                    "2a9f6e3d-4496-4c1b-b7e2-5d8c9a0f4496"
                );
                execution
                    .recipients
                    .iter()
                    .map(|r| {
                        assert_eq!(r.namespace, "email");
                        LeadKey::email(r.user_id.as_str()).unwrap()
                    })
                    .collect()
            })
            .collect()
    }

    fn reset(&self) {
        clear(self.sandbox);
    }

    fn fail_call(&self, call: usize, failure: Failure) -> bool {
        let fault = match failure {
            // The IMS token, asked on the first call, is cached by then:
            // from the n-th call on, the port refuses.
            Failure::NotSent => Fault::RefuseConnections { lasting: None },
            Failure::Refused => Fault::HttpStatus {
                status: 403,
                body: true,
                runs: false,
            },
            Failure::RunThenLost => Fault::ResetMidResponse,
            _ => Fault::ResetAfterRequest,
        };
        self.sandbox
            .inject(FaultRule::on_call(fault, call as u64).api(Api::Ajo))
            .is_ok()
    }
}

#[test]
fn ajo_client_keeps_the_contract() {
    let sandbox = sandbox();
    let client = quick!(sandbox.ajo_client_builder());
    let harness = AjoHarness { sandbox: &sandbox };
    let report = kept(&client, &harness);
    assert_eq!(report.checks().len(), 4, "{report}");
    let skipped: Vec<_> = report.skipped().map(|(name, _)| name).collect();
    assert_eq!(skipped, ["unmatched_keys"], "{report}");
    // The refused port did strike (a NotSent failure was tried).
    harness.reset();
    assert!(harness.fail_call(2, Failure::NotSent));
    let request = CampaignRequest::new(harness.target(), harness.leads(41)).unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
    assert_eq!(harness.runs().len(), 1);
    harness.reset();
}

#[test]
fn the_recording_stub_keeps_the_contract_at_any_size() {
    for size in [100, 20, 1] {
        let stub = StubRequester::new().with_max_leads_per_call(size);
        let report = conformance::run_all(&stub, &StubHarness::new(&stub))
            .unwrap_or_else(|v| panic!("size {size}: {v}"));
        // The stub knows no lead it could fail to match.
        let skipped: Vec<_> = report.skipped().map(|(name, _)| name).collect();
        assert_eq!(skipped, ["unmatched_keys"], "{report}");
        assert_eq!(conformance::recording_stub(&stub).unwrap(), Verdict::Passed);
        // A stub told to fail records what it was given too.
        stub.fail_call(stub.calls().len() + 2, Error::Config("planned".into()));
        assert_eq!(conformance::recording_stub(&stub).unwrap(), Verdict::Passed);
    }
    let failing = StubRequester::failing(Error::Config("offline".into()));
    assert_eq!(
        conformance::recording_stub(&failing).unwrap(),
        Verdict::Passed
    );
}

/// The runs of two stubs, with failures planned on the first.
struct TwoStubs {
    primary: StubHarness,
    secondary: StubHarness,
}

impl Harness for TwoStubs {
    fn target(&self) -> CampaignTarget {
        self.primary.target()
    }

    fn leads(&self, count: usize) -> Vec<LeadKey> {
        self.primary.leads(count)
    }

    fn runs(&self) -> Vec<Vec<LeadKey>> {
        let mut runs = self.primary.runs();
        runs.extend(self.secondary.runs());
        runs
    }

    fn reset(&self) {
        self.primary.reset();
        self.secondary.reset();
    }

    fn fail_call(&self, call: usize, failure: Failure) -> bool {
        self.primary.fail_call(call, failure)
    }
}

#[test]
fn fallback_between_backends_of_different_sizes_keeps_the_contract() {
    for (first, second) in [(20, 100), (100, 20), (100, 7)] {
        let primary = StubRequester::new().with_max_leads_per_call(first);
        let secondary = StubRequester::new().with_max_leads_per_call(second);
        let fallback = Fallback::new(primary.clone(), secondary.clone());
        let harness = TwoStubs {
            primary: StubHarness::new(&primary),
            secondary: StubHarness::new(&secondary),
        };
        conformance::run_all(&fallback, &harness)
            .unwrap_or_else(|v| panic!("{first} then {second}: {v}"));
        // The secondary served the rest of a part-way failure, re-chunked
        // by its size, and nothing was sent twice.
        harness.reset();
        harness.fail_call(2, Failure::NotSent);
        let request = CampaignRequest::new(harness.target(), harness.leads(2 * first + 1)).unwrap();
        let outcome = fallback.request_campaign(&request).unwrap();
        let sizes: Vec<usize> = outcome.chunks().iter().map(|c| c.leads().len()).collect();
        let mut expected = vec![first];
        expected.extend(request.leads()[first..].chunks(second).map(<[_]>::len));
        assert_eq!(sizes, expected, "{first} then {second}");
        conformance::check_consistent(&request, &Ok(outcome), &harness.runs()).unwrap();
    }
}

#[test]
fn the_custom_backend_example_keeps_the_contract() {
    let report = custom_backend::check().unwrap_or_else(|v| panic!("{v}"));
    passed_all(&report);
}

// ---- The suite fails when it should. ----

/// A toy service: leads 1 to 1000 exist; a log of runs; planned failures.
#[derive(Debug, Default)]
struct Toy {
    runs: Mutex<Vec<Vec<LeadKey>>>,
    calls: Mutex<usize>,
    faults: Mutex<BTreeMap<usize, Failure>>,
}

/// What a toy backend gets wrong.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Flaw {
    None,
    /// Declares 120 leads a call, while its service ignores keys past 100.
    IgnoresPast100,
    /// Runs known leads, says nothing of the others.
    DropsUnknownKeys,
    /// Calls a lost answer "not sent".
    LostIsNotSent,
    /// Calls every failure "unknown".
    EverythingUnknown,
    /// Tries a failed call once more, whatever the failure.
    RetriesBlindly,
    /// Returns a bare error when a request fails part-way.
    ForgetsAcceptedChunks,
}

#[derive(Debug)]
struct ToyBackend {
    toy: Arc<Toy>,
    flaw: Flaw,
}

impl fmt::Display for ToyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Toy({:?})", self.flaw)
    }
}

impl ToyBackend {
    fn call(&self, leads: &[LeadKey]) -> Result<(), Failure> {
        let n = {
            let mut calls = self.toy.calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        let fault = self.toy.faults.lock().unwrap().remove(&n);
        if matches!(fault, None | Some(Failure::RunThenLost)) {
            let served = if self.flaw == Flaw::IgnoresPast100 {
                &leads[..leads.len().min(100)]
            } else {
                leads
            };
            self.toy.runs.lock().unwrap().push(served.to_vec());
        }
        fault.map_or(Ok(()), Err)
    }
}

fn known(key: &LeadKey) -> bool {
    key.value()
        .parse::<u32>()
        .is_ok_and(|id| (1..=1000).contains(&id))
}

impl CampaignRequester for ToyBackend {
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        let result = send_in_chunks(request, self.max_leads_per_call(), "toy", |_, leads| {
            let (ids, unknown): (Vec<LeadKey>, Vec<LeadKey>) =
                leads.iter().cloned().partition(known);
            let mut result = self.call(&ids);
            if result.is_err() && self.flaw == Flaw::RetriesBlindly {
                result = self.call(&ids);
            }
            if let Err(failure) = result {
                let delivery = match (failure, self.flaw) {
                    (_, Flaw::EverythingUnknown) => Delivery::Unknown,
                    (Failure::NotSent, _) => Delivery::NotSent,
                    (Failure::Refused, _) => Delivery::Refused,
                    (_, Flaw::LostIsNotSent) => Delivery::NotSent,
                    _ => Delivery::Unknown,
                };
                return Err(Error::backend("toy", delivery, failure.to_string()));
            }
            Ok(if self.flaw == Flaw::DropsUnknownKeys {
                ChunkAccepted::new()
            } else {
                ChunkAccepted::new().with_unmatched(unknown)
            })
        });
        match result {
            Err(Error::Incomplete(outcome)) if self.flaw == Flaw::ForgetsAcceptedChunks => {
                Err(outcome.first_failure().unwrap().1.clone())
            }
            other => other,
        }
    }

    fn max_leads_per_call(&self) -> usize {
        if self.flaw == Flaw::IgnoresPast100 {
            120
        } else {
            20
        }
    }
}

struct ToyHarness(Arc<Toy>);

impl Harness for ToyHarness {
    fn target(&self) -> CampaignTarget {
        CampaignTarget::id(1)
    }

    fn leads(&self, count: usize) -> Vec<LeadKey> {
        (1..=count as u32)
            .map(|i| LeadKey::id(i).unwrap())
            .collect()
    }

    fn unknown_lead(&self) -> Option<LeadKey> {
        Some(LeadKey::id(5000).unwrap())
    }

    fn runs(&self) -> Vec<Vec<LeadKey>> {
        self.0.runs.lock().unwrap().clone()
    }

    fn reset(&self) {
        self.0.runs.lock().unwrap().clear();
        self.0.faults.lock().unwrap().clear();
    }

    fn fail_call(&self, call: usize, failure: Failure) -> bool {
        let at = *self.0.calls.lock().unwrap() + call;
        self.0.faults.lock().unwrap().insert(at, failure);
        true
    }
}

fn violation(flaw: Flaw) -> Result<conformance::Report, Violation> {
    let toy = Arc::new(Toy::default());
    let backend = ToyBackend {
        toy: toy.clone(),
        flaw,
    };
    conformance::run_all(&backend, &ToyHarness(toy))
}

#[test]
fn the_suite_fails_backends_that_break_the_contract() {
    passed_all(&violation(Flaw::None).unwrap_or_else(|v| panic!("{v}")));
    let cases = [
        (
            Flaw::IgnoresPast100,
            "chunking",
            "did not run for IDNUM:101",
        ),
        (Flaw::DropsUnknownKeys, "unmatched_keys", "dropped silently"),
        (
            Flaw::LostIsNotSent,
            "partway_failure",
            "failed with delivery not_sent",
        ),
        (
            Flaw::EverythingUnknown,
            "delivery_certainty",
            "the failure was not_sent, the backend says unknown",
        ),
        (Flaw::RetriesBlindly, "partway_failure", "ran 2 times"),
        (
            Flaw::ForgetsAcceptedChunks,
            "partway_failure",
            "failed as a whole",
        ),
    ];
    for (flaw, check, problem) in cases {
        let v = violation(flaw).expect_err(&format!("{flaw:?} passed the suite"));
        assert_eq!(v.check(), check, "{flaw:?}: {v}");
        assert!(v.problem().contains(problem), "{flaw:?}: {v}");
    }
}

#[test]
fn a_lost_answer_reported_as_not_sent_is_caught_even_when_nothing_ran() {
    let toy = Arc::new(Toy::default());
    let backend = ToyBackend {
        toy: toy.clone(),
        flaw: Flaw::LostIsNotSent,
    };
    let harness = ToyHarness(toy);
    // Only the answer-lost-before-running case: consistent with what ran,
    // yet a guess.
    struct OnlyLostBeforeRun<'a>(&'a ToyHarness);
    impl Harness for OnlyLostBeforeRun<'_> {
        fn target(&self) -> CampaignTarget {
            self.0.target()
        }
        fn leads(&self, count: usize) -> Vec<LeadKey> {
            self.0.leads(count)
        }
        fn runs(&self) -> Vec<Vec<LeadKey>> {
            self.0.runs()
        }
        fn reset(&self) {
            self.0.reset()
        }
        fn fail_call(&self, call: usize, failure: Failure) -> bool {
            failure == Failure::LostBeforeRun && self.0.fail_call(call, failure)
        }
    }
    let v = conformance::delivery_certainty(&backend, &OnlyLostBeforeRun(&harness)).unwrap_err();
    assert!(
        v.problem()
            .contains("the failure was lost_before_run, the backend says not_sent"),
        "{v}"
    );
}

#[test]
fn a_fallback_told_to_fall_back_on_unknown_outcomes_fails_the_suite() {
    // The opt-in its documentation warns of: a lost answer from SOAP is
    // handed to REST, and the campaign runs twice for those leads.
    let sandbox = sandbox();
    let client = Fallback::new(
        quick!(sandbox.soap_client_builder()),
        sandbox.rest_client_builder().build().unwrap(),
    )
    .fallback_on_unknown(true);
    let harness = SandboxHarness::new(&sandbox, Api::Soap);
    let v = conformance::partway_failure(&client, &harness).unwrap_err();
    assert!(v.scenario().contains("run_then_lost"), "{v}");
    assert!(v.problem().contains("ran 2 times"), "{v}");
}
