//! The fault matrix: every fault the sandbox can inject, against the SOAP
//! client, the REST client and Fallback(SOAP → REST). For each cell the test
//! checks the client's result and delivery certainty against the table
//! below, and the journal: no lead served twice, every lead either served or
//! reported back, and no chunk that ran reported as "did not run".

use std::collections::HashMap;
use std::time::Duration;

use marketo_campaign::sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig, SandboxData};
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, ChunkStatus, Delivery, Error, Fallback,
    LeadKey, Outcome, RestClient, RetryPolicy, SoapClient,
};

const LEADS: u32 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Soap,
    Rest,
    Fallback,
}

/// What a cell must give: every lead served, or the failed chunk's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Served,
    Failed(Delivery),
}

use Delivery::{NotSent, Refused, Unknown};
use Expect::{Failed, Served};

/// One row: a name, the fault for SOAP calls, the fault for REST calls, and
/// the expectation for SOAP, REST and Fallback (whose faults strike SOAP).
type Row = (&'static str, Fault, Fault, [Expect; 3]);

fn http(status: u16, body: bool, runs: bool) -> Fault {
    Fault::HttpStatus { status, body, runs }
}

fn matrix() -> Vec<Row> {
    let refuse = |ms: Option<u64>| Fault::RefuseConnections {
        lasting: ms.map(Duration::from_millis),
    };
    vec![
        // Nothing reached the server: retried until the port is back.
        (
            "refuse 300 ms",
            refuse(Some(300)),
            refuse(Some(300)),
            [Served, Served, Served],
        ),
        // Nothing reached the server, for good: Fallback moves to REST.
        (
            "refuse",
            refuse(None),
            refuse(None),
            [Failed(NotSent), Failed(NotSent), Served],
        ),
        // The request arrived, no answer: may have run (it did not).
        (
            "reset after request",
            Fault::ResetAfterRequest,
            Fault::ResetAfterRequest,
            [Failed(Unknown); 3],
        ),
        // It ran; the answer was cut.
        (
            "reset mid-response",
            Fault::ResetMidResponse,
            Fault::ResetMidResponse,
            [Failed(Unknown); 3],
        ),
        (
            "delay past timeout",
            Fault::Delay(Duration::from_millis(1500)),
            Fault::Delay(Duration::from_millis(1500)),
            [Failed(Unknown); 3],
        ),
        (
            "500 with body",
            http(500, true, false),
            http(500, true, false),
            [Failed(Unknown); 3],
        ),
        (
            "500 empty",
            http(500, false, false),
            http(500, false, false),
            [Failed(Unknown); 3],
        ),
        // A gateway that reached nothing: retried.
        (
            "502 empty",
            http(502, false, false),
            http(502, false, false),
            [Served; 3],
        ),
        (
            "502 with body",
            http(502, true, false),
            http(502, true, false),
            [Failed(Unknown); 3],
        ),
        (
            "503 with body",
            http(503, true, false),
            http(503, true, false),
            [Failed(Unknown); 3],
        ),
        (
            "503 empty",
            http(503, false, false),
            http(503, false, false),
            [Failed(Unknown); 3],
        ),
        (
            "504 after running",
            http(504, true, true),
            http(504, true, true),
            [Failed(Unknown); 3],
        ),
        (
            "malformed body",
            Fault::MalformedBody,
            Fault::MalformedBody,
            [Failed(Unknown); 3],
        ),
        (
            "truncated body",
            Fault::TruncatedBody,
            Fault::TruncatedBody,
            [Failed(Unknown); 3],
        ),
        (
            "200 empty",
            Fault::EmptyOk,
            Fault::EmptyOk,
            [Failed(Unknown); 3],
        ),
        // The API is gone: refused; Fallback moves to REST.
        (
            "404",
            http(404, true, false),
            http(404, true, false),
            [Failed(Refused), Failed(Refused), Served],
        ),
        (
            "410 empty",
            http(410, false, false),
            http(410, false, false),
            [Failed(Refused), Failed(Refused), Served],
        ),
        // Rate and concurrency refusals: retried.
        (
            "rate limit",
            Fault::SoapFault(20023),
            Fault::RestError(606),
            [Served; 3],
        ),
        (
            "concurrency limit",
            Fault::SoapFault(20024),
            Fault::RestError(615),
            [Served; 3],
        ),
        // Marketo's own errors.
        (
            "system error",
            Fault::SoapFault(20011),
            Fault::RestError(611),
            [Failed(Refused), Served, Failed(Refused)],
        ),
        (
            "expired",
            Fault::SoapFault(20016),
            Fault::RestError(602),
            [Served; 3],
        ),
        (
            "denied",
            Fault::SoapFault(20013),
            Fault::RestError(603),
            [Failed(Refused); 3],
        ),
        (
            "daily quota",
            Fault::SoapFault(20015),
            Fault::RestError(607),
            [Failed(Refused); 3],
        ),
        (
            "unavailable",
            Fault::SoapFault(20011),
            Fault::RestError(608),
            [Failed(Refused), Served, Failed(Refused)],
        ),
    ]
}

fn sandbox() -> Sandbox {
    Sandbox::start_with(
        SandboxConfig::new()
            .data(SandboxData::default().with_generated_leads(1, 2_000))
            .soap_listen("127.0.0.1:0".parse().unwrap())
            .rate_limit(100_000, Duration::from_secs(1))
            .max_concurrent(100),
    )
    .unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(5)
        // At least 375 ms of waits in all: longer than a 150 ms refusal.
        .backoff(Duration::from_millis(50), Duration::from_millis(400))
}

fn soap(sandbox: &Sandbox) -> SoapClient {
    sandbox
        .soap_client_builder()
        .timeout(Duration::from_millis(700))
        .retry(policy())
        .rate_limit(None)
        .build()
        .unwrap()
}

fn rest(sandbox: &Sandbox) -> RestClient {
    sandbox
        .rest_client_builder()
        .timeout(Duration::from_millis(700))
        .retry(policy())
        .rate_limit(None)
        .build()
        .unwrap()
}

fn request(first: u32, count: u32) -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::Id(4496),
        (first..first + count).map(|i| LeadKey::id(i).unwrap()),
    )
    .unwrap()
}

/// The journal as lead id → times served.
fn served(sandbox: &Sandbox) -> HashMap<u32, usize> {
    let mut counts = HashMap::new();
    for entry in sandbox.journal() {
        for id in entry.lead_ids {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

/// Checks the invariants of one run and returns what it gave.
fn check(sandbox: &Sandbox, result: &Result<Outcome, Error>, first: u32, count: u32) -> Expect {
    let served = served(sandbox);
    assert!(
        served.values().all(|n| *n == 1),
        "a lead was served twice: {served:?}"
    );
    let outcome = match result {
        Ok(outcome) => {
            assert_eq!(served.len(), count as usize, "accepted, so every lead ran");
            assert!(outcome.is_complete());
            return Served;
        }
        Err(Error::Incomplete(outcome)) => outcome,
        Err(other) => panic!("a 3-chunk request fails as Incomplete, not {other}"),
    };
    let (_, failure) = outcome.first_failure().expect("a failed chunk");
    let delivery = failure.delivery();
    for chunk in outcome.chunks() {
        let ran: Vec<bool> = chunk
            .leads()
            .iter()
            .map(|k| served.contains_key(&k.value().parse::<u32>().unwrap()))
            .collect();
        match chunk.status() {
            ChunkStatus::Accepted => assert!(ran.iter().all(|r| *r), "accepted but not run"),
            // Every lead is accounted for: if the chunk says it did not run,
            // it did not.
            ChunkStatus::Failed(err) if err.delivery() != Unknown => {
                assert!(
                    ran.iter().all(|r| !r),
                    "reported {} but ran",
                    err.delivery()
                )
            }
            ChunkStatus::Failed(_) => {}
            _ => assert!(ran.iter().all(|r| !r), "not attempted but ran"),
        }
    }
    let reported: usize = outcome.chunks().iter().map(|c| c.leads().len()).sum();
    assert_eq!(reported, count as usize, "every lead is in a chunk report");
    for id in first..first + count {
        let in_report = outcome
            .chunks()
            .iter()
            .any(|c| !c.is_accepted() && c.leads().iter().any(|k| k.value() == id.to_string()));
        assert!(served.contains_key(&id) || in_report, "lead {id} lost");
    }
    Failed(delivery)
}

#[test]
fn fault_matrix() {
    let rows = matrix();
    let mut cells = 0;
    let mut leads_sent = 0;
    let mut failures = Vec::new();
    for (name, soap_fault, rest_fault, expected) in &rows {
        for (column, client) in [Client::Soap, Client::Rest, Client::Fallback]
            .into_iter()
            .enumerate()
        {
            let sandbox = sandbox();
            let (fault, api) = match client {
                Client::Soap | Client::Fallback => (soap_fault.clone(), Api::Soap),
                Client::Rest => (rest_fault.clone(), Api::Rest),
            };
            // The second call of the request (its second chunk) is struck.
            sandbox
                .inject(FaultRule::on_call(fault.clone(), 2).api(api))
                .unwrap();
            let request = request(1, LEADS);
            let result = match client {
                Client::Soap => soap(&sandbox).request_campaign(&request),
                Client::Rest => rest(&sandbox).request_campaign(&request),
                Client::Fallback => {
                    Fallback::new(soap(&sandbox), rest(&sandbox)).request_campaign(&request)
                }
            };
            let got = check(&sandbox, &result, 1, LEADS);
            // A chunk the fault log says ran must never be reported as not run.
            for event in sandbox.fault_log() {
                if event.ran {
                    assert_ne!(got, Failed(Refused), "{name}/{client:?}: ran but refused");
                    assert_ne!(got, Failed(NotSent), "{name}/{client:?}: ran but not sent");
                }
            }
            if got != expected[column] {
                failures.push(format!(
                    "{name} / {client:?}: expected {:?}, got {got:?} ({:?})",
                    expected[column],
                    result.as_ref().err().map(ToString::to_string)
                ));
            }
            if client == Client::Fallback && got == Served {
                // Each chunk says who served it.
                let outcome = result.as_ref().unwrap();
                assert!(outcome
                    .chunks()
                    .iter()
                    .all(|c| c.backend() == "soap" || c.backend() == "rest"));
            }
            cells += 1;
            leads_sent += LEADS;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("fault matrix: {} faults x 3 clients = {cells} cells, {leads_sent} leads, 0 duplicates, 0 lost", rows.len());
}

#[test]
fn many_chunks_with_faults_sprinkled_in() {
    // 1,500 leads (15 chunks) per client, with retryable refusals every few
    // calls and one fault whose outcome is unknown. Failed chunks that
    // certainly did not run are sent again (as a caller would, from the
    // outcome); the unknown one is not.
    for client in [Client::Soap, Client::Rest, Client::Fallback] {
        let sandbox = sandbox();
        let api = if client == Client::Rest {
            Api::Rest
        } else {
            Api::Soap
        };
        let (rate, concurrency) = if client == Client::Rest {
            (Fault::RestError(606), Fault::RestError(615))
        } else {
            (Fault::SoapFault(20023), Fault::SoapFault(20024))
        };
        for rule in [
            FaultRule::every(rate, 3).api(api),
            FaultRule::every(concurrency, 7).api(api),
            FaultRule::every(http(502, false, false), 5).api(api),
            // Calls 8 and 11 are struck by nothing else (rules added first win).
            FaultRule::on_call(Fault::ResetMidResponse, 8).api(api),
            FaultRule::on_call(http(500, true, false), 11).api(api),
        ] {
            sandbox.inject(rule).unwrap();
        }
        let requester: Box<dyn CampaignRequester> = match client {
            Client::Soap => Box::new(soap(&sandbox)),
            Client::Rest => Box::new(rest(&sandbox)),
            Client::Fallback => Box::new(Fallback::new(soap(&sandbox), rest(&sandbox))),
        };
        let total = 1_500u32;
        let mut pending: Vec<LeadKey> = (1..=total).map(|i| LeadKey::id(i).unwrap()).collect();
        let mut unknown: Vec<LeadKey> = Vec::new();
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            assert!(rounds < 10, "{client:?}: no progress");
            let request = CampaignRequest::new(CampaignTarget::Id(4496), pending.clone()).unwrap();
            pending = match requester.request_campaign(&request) {
                Ok(_) => Vec::new(),
                Err(err) => {
                    let outcome = match &err {
                        Error::Incomplete(outcome) => outcome.as_ref().clone(),
                        other if other.delivery() == Unknown => {
                            unknown.extend(request.leads().iter().cloned());
                            break;
                        }
                        _ => {
                            let mut again = request.leads().to_vec();
                            again.sort_by_key(|k| k.value().parse::<u32>().unwrap());
                            pending = again;
                            continue;
                        }
                    };
                    let mut again = Vec::new();
                    for chunk in outcome.chunks() {
                        match chunk.status() {
                            ChunkStatus::Accepted => {}
                            ChunkStatus::Failed(e) if e.delivery() == Unknown => {
                                unknown.extend(chunk.leads().iter().cloned())
                            }
                            _ => again.extend(chunk.leads().iter().cloned()),
                        }
                    }
                    again
                }
            };
        }
        let served = served(&sandbox);
        assert!(
            served.values().all(|n| *n == 1),
            "{client:?}: a lead was served twice"
        );
        for id in 1..=total {
            let reported = unknown.iter().any(|k| k.value() == id.to_string());
            assert!(
                served.contains_key(&id) || reported,
                "{client:?}: lead {id} lost"
            );
        }
        assert!(
            !unknown.is_empty(),
            "{client:?}: the unknown outcomes were reported"
        );
        let struck = sandbox.fault_log().len();
        assert!(struck >= 5, "{client:?}: faults struck {struck}");
        eprintln!(
            "{client:?}: {total} leads, {struck} faults struck, {} served once, {} reported unknown (of which {} ran), 0 duplicates, 0 lost, {rounds} rounds",
            served.len(),
            unknown.len(),
            unknown.iter().filter(|k| served.contains_key(&k.value().parse::<u32>().unwrap())).count()
        );
    }
}
