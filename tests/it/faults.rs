//! The fault matrix: faults the sandbox injects, against the SOAP client,
//! the REST client, Fallback(SOAP → REST) and the Journey Optimizer client
//! (AJO), each cell in a sandbox of its own. [`fault_matrix`] runs three
//! groups of cells (AJO: [`ajo_cells`], on its executions and IMS tokens):
//!
//! - trigger: a request of 300 leads (3 chunks) with a fault on its 2nd
//!   trigger call (SOAP `requestCampaign`, REST `trigger.json`; for
//!   Fallback, on SOAP). Every "the server ran it, then the answer failed"
//!   cell comes twice, with the call run and not run: the client must give
//!   the same answer both times, since the wire is the same;
//! - look-up: the same request by email and campaign name, with faults on
//!   the read-only GETs only (identity token, `campaigns.json`,
//!   `leads.json`), once (transient) or on every call (persistent);
//! - schedule: the same answers on `scheduleCampaign` / `schedule.json`.
//!
//! [`many_chunks_with_faults_sprinkled_in`] sends 1,500 leads per client
//! (AJO included, in chunks of 20) with faults every few calls, re-sending
//! what certainly did not run.
//!
//! Every cell checks the client's result against the table (served, or the
//! failed chunk's delivery) and the sandbox's journal: no lead served twice,
//! none lost (every lead served or in a chunk reported failed or not
//! attempted), every accepted chunk served by the backend it names, nothing
//! that ran reported as refused, not sent or not attempted, and the fault
//! struck. The expected deliveries follow the classification in
//! `Error::classify`: an answer that does not prove the campaign did not run
//! (gateway 5xx with or without a body, a fault inside one, a fault on 200,
//! REST 604/608/611, a reset, a cut answer, a timeout) is `Unknown` and is
//! neither repeated nor sent again through Fallback's secondary.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignScheduler, CampaignTarget, ChunkStatus, Delivery,
    Error, Fallback, LeadKey, LeadKeyType, Outcome, RestClient, RetryPolicy, ScheduleRequest,
    SoapClient,
};
use marketo_sandbox::{
    Api, CutAt, Fault, FaultBody, FaultRule, Sandbox, SandboxConfig, SandboxData,
};

/// Leads per cell.
const LEADS: u32 = 300;
/// The clients' timeout.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Longer than the timeout: how late a late answer is.
const LATE: Duration = Duration::from_secs(4);
/// Cells run at once (each has its own sandbox; most of their time is
/// spent waiting).
const THREADS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Client {
    Soap,
    Rest,
    Fallback,
    Ajo,
}

const CLIENTS: [Client; 3] = [Client::Soap, Client::Rest, Client::Fallback];

/// What a cell must give: every lead served, or the failed chunk's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Served,
    Failed(Delivery),
}

use Delivery::{NotSent, Refused, Unknown};
use Expect::{Failed, Served};

const UNKNOWN: [Expect; 3] = [Failed(Unknown); 3];

// ---------------------------------------------------------------------------
// Clients and sandboxes

fn config() -> SandboxConfig {
    SandboxConfig::new()
        .data(SandboxData::default().with_generated_leads(1, 2_000))
        .soap_listen("127.0.0.1:0".parse().unwrap())
        .rate_limit(100_000, Duration::from_secs(1))
        .max_concurrent(100)
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(5)
        // At least 375 ms of waits in all: longer than a 300 ms refusal.
        .backoff(Duration::from_millis(50), Duration::from_millis(400))
}

fn soap(sandbox: &Sandbox) -> SoapClient {
    sandbox
        .soap_client_builder()
        .timeout(TIMEOUT)
        .retry(policy())
        .rate_limit(None)
        .build()
        .unwrap()
}

fn rest(sandbox: &Sandbox) -> RestClient {
    sandbox
        .rest_client_builder()
        .timeout(TIMEOUT)
        .retry(policy())
        .rate_limit(None)
        .build()
        .unwrap()
}

fn ajo(sandbox: &Sandbox) -> marketo_campaign::AjoClient {
    sandbox
        .ajo_client_builder()
        .timeout(TIMEOUT)
        .retry(policy())
        .rate_limit(None)
        .build()
        .unwrap()
}

/// Sends `request` with `client`.
fn send(sandbox: &Sandbox, client: Client, request: &CampaignRequest) -> Result<Outcome, Error> {
    match client {
        Client::Soap => soap(sandbox).request_campaign(request),
        Client::Rest => rest(sandbox).request_campaign(request),
        Client::Fallback => Fallback::new(soap(sandbox), rest(sandbox)).request_campaign(request),
        Client::Ajo => ajo(sandbox).request_campaign(request),
    }
}

/// Leads `first..first + count` by id, for campaign 4496.
fn by_id(first: u32, count: u32) -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::id(4496),
        (first..first + count).map(|i| LeadKey::id(i).unwrap()),
    )
    .unwrap()
}

/// Leads `first..first + count` by email, for campaign 4496 by name: over
/// REST this takes a token, a campaign look-up and a lead look-up.
fn by_email(first: u32, count: u32) -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::named("Request Campaign Demo", "Demo Program", []),
        (first..first + count).map(|i| LeadKey::email(format!("lead{i}@example.com")).unwrap()),
    )
    .unwrap()
}

/// The sandbox lead id a key names (generated leads: id `i`, email
/// `lead{i}@example.com`).
fn lead_id(key: &LeadKey) -> u32 {
    let id = match key.key_type() {
        LeadKeyType::Idnum => key.value().parse().ok(),
        LeadKeyType::Email => key
            .value()
            .strip_prefix("lead")
            .and_then(|v| v.strip_suffix("@example.com"))
            .and_then(|v| v.parse().ok()),
        _ => None,
    };
    id.unwrap_or_else(|| panic!("not a generated lead: {key}"))
}

/// The journal as lead id → the APIs that served it, in order.
fn served(sandbox: &Sandbox) -> HashMap<u32, Vec<String>> {
    let mut served: HashMap<u32, Vec<String>> = HashMap::new();
    for entry in sandbox.journal() {
        for id in entry.lead_ids {
            served.entry(id).or_default().push(entry.api.clone());
        }
    }
    served
}

/// Leads that ran more than once, in one line; `None` when none did.
fn duplicates(served: &HashMap<u32, Vec<String>>) -> Option<String> {
    let mut twice: Vec<(u32, &Vec<String>)> = served
        .iter()
        .filter(|(_, apis)| apis.len() > 1)
        .map(|(id, apis)| (*id, apis))
        .collect();
    twice.sort_unstable();
    let ((first, apis), (last, _)) = (twice.first()?, twice.last()?);
    Some(format!(
        "{} leads ran more than once (ids {first} to {last}; lead {first}: {apis:?})",
        twice.len()
    ))
}

// ---------------------------------------------------------------------------
// One cell

/// What a cell sends.
enum Job {
    Request(CampaignRequest),
    Schedule(ScheduleRequest),
}

/// The part of the matrix a cell belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Trigger,
    Lookup,
    Schedule,
}

/// A cell: a request sent by a client to a sandbox with these rules.
struct Cell {
    group: Group,
    row: String,
    client: Client,
    rules: Vec<FaultRule>,
    job: Job,
    expect: Expect,
}

/// What a cell gave.
struct Ran {
    group: Group,
    row: String,
    client: Client,
    leads: usize,
    expect: Expect,
    got: Expect,
    /// Broken invariants (duplicates, lost leads, a chunk that ran reported
    /// as not run, ...): must be none, whatever the expectation.
    broken: Vec<String>,
    error: Option<String>,
}

impl Ran {
    fn ok(&self) -> bool {
        self.broken.is_empty() && self.got == self.expect
    }
}

fn run_cell(cell: &Cell) -> Ran {
    let sandbox = Sandbox::start_with(config()).unwrap();
    for rule in &cell.rules {
        sandbox.inject(rule.clone()).unwrap();
    }
    let (got, mut broken, error, leads) = match &cell.job {
        Job::Request(request) => {
            let result = send(&sandbox, cell.client, request);
            let (got, broken) = check(&sandbox, &result, request);
            (got, broken, result.err(), request.leads().len())
        }
        Job::Schedule(request) => {
            let result = match cell.client {
                Client::Soap => soap(&sandbox).schedule_campaign(request),
                Client::Rest => rest(&sandbox).schedule_campaign(request),
                Client::Fallback => {
                    Fallback::new(soap(&sandbox), rest(&sandbox)).schedule_campaign(request)
                }
                Client::Ajo => ajo(&sandbox).schedule_campaign(request),
            };
            let got = match &result {
                Ok(_) => Served,
                Err(err) => Failed(err.delivery()),
            };
            // Whatever the answer said, the campaign was scheduled once:
            // by the call that ran, or by the retry of one that did not.
            let runs = sandbox.journal().len();
            let mut broken = Vec::new();
            if runs != 1 {
                broken.push(format!("scheduled {runs} times"));
            }
            (got, broken, result.err(), 0)
        }
    };
    if sandbox.fault_log().is_empty() {
        broken.push("the fault never struck".into());
    }
    Ran {
        group: cell.group,
        row: cell.row.clone(),
        client: cell.client,
        leads,
        expect: cell.expect,
        got,
        broken,
        error: error.map(|e| e.to_string()),
    }
}

/// Checks a result against the journal: returns what it gave and the
/// invariants it broke.
fn check(
    sandbox: &Sandbox,
    result: &Result<Outcome, Error>,
    request: &CampaignRequest,
) -> (Expect, Vec<String>) {
    let served = served(sandbox);
    let mut broken: Vec<String> = duplicates(&served).into_iter().collect();
    let ids: Vec<u32> = request.leads().iter().map(lead_id).collect();
    let ran = |id: &u32| served.contains_key(id);
    let (got, outcome) = match result {
        Ok(outcome) => (Served, Some(outcome)),
        Err(Error::Incomplete(outcome)) => match outcome.first_failure() {
            Some((_, err)) => (Failed(err.delivery()), Some(outcome.as_ref())),
            None => {
                broken.push("incomplete without a failed chunk".into());
                (Failed(Unknown), Some(outcome.as_ref()))
            }
        },
        // The request failed as a whole (before any chunk, or its only one).
        Err(err) => (Failed(err.delivery()), None),
    };
    match outcome {
        Some(outcome) => {
            let mut reported: Vec<u32> = Vec::new();
            for chunk in outcome.chunks() {
                let leads: Vec<u32> = chunk.leads().iter().map(lead_id).collect();
                let run = leads.iter().filter(|id| ran(id)).count();
                reported.extend(&leads);
                let what = match chunk.status() {
                    ChunkStatus::Accepted => {
                        if run != leads.len() {
                            broken.push(format!(
                                "chunk {} accepted, but {} of its leads did not run",
                                chunk.index(),
                                leads.len() - run
                            ));
                        }
                        for id in &leads {
                            if let Some(apis) = served.get(id) {
                                if apis.iter().any(|api| api != chunk.backend()) {
                                    broken.push(format!(
                                        "chunk {} says {} served it, the journal says {apis:?}",
                                        chunk.index(),
                                        chunk.backend()
                                    ));
                                    break;
                                }
                            }
                        }
                        continue;
                    }
                    ChunkStatus::Failed(err) if err.delivery() == Unknown => {
                        // A call runs for all its leads or none.
                        if run != 0 && run != leads.len() {
                            broken.push(format!(
                                "chunk {} ran for {run} of {} leads",
                                chunk.index(),
                                leads.len()
                            ));
                        }
                        continue;
                    }
                    ChunkStatus::Failed(err) => format!("reported {}", err.delivery().as_str()),
                    _ => "not attempted".to_owned(),
                };
                if run != 0 {
                    broken.push(format!(
                        "chunk {} {what}, but {run} of its leads ran",
                        chunk.index()
                    ));
                }
            }
            let mut expected = ids.clone();
            expected.sort_unstable();
            reported.sort_unstable();
            if reported != expected {
                broken.push(format!(
                    "the chunk reports hold {} leads, not the request's {}: lost or invented",
                    reported.len(),
                    expected.len()
                ));
            }
        }
        None => {
            let run = ids.iter().filter(|id| ran(id)).count();
            if got != Failed(Unknown) && run != 0 {
                broken.push(format!("reported {got:?}, but {run} leads ran"));
            }
        }
    }
    if got == Served && result.as_ref().is_ok_and(|o| !o.is_complete()) {
        broken.push("accepted, but not complete".into());
    }
    (got, broken)
}

/// Runs the cells, [`THREADS`] at a time, in order of their results.
fn run_all(cells: &[Cell]) -> Vec<Ran> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Ran)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(cell) = cells.get(index) else {
                    break;
                };
                let ran = run_cell(cell);
                results.lock().unwrap().push((index, ran));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, ran)| ran).collect()
}

/// Per client: cells (per group), leads, and how many cells gave each
/// result.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    cells: BTreeMap<Group, usize>,
    leads: usize,
    results: BTreeMap<&'static str, usize>,
}

fn tally(ran: &[Ran]) -> BTreeMap<Client, Tally> {
    let mut tallies: BTreeMap<Client, Tally> = BTreeMap::new();
    for r in ran {
        let tally = tallies.entry(r.client).or_default();
        *tally.cells.entry(r.group).or_default() += 1;
        tally.leads += r.leads;
        let result = match r.got {
            Served => "served",
            Failed(delivery) => delivery.as_str(),
        };
        *tally.results.entry(result).or_default() += 1;
    }
    tallies
}

/// Asserts every cell kept the invariants and gave what the table says,
/// listing every cell that did not.
fn assert_cells(ran: &[Ran]) {
    let differ: Vec<String> = ran
        .iter()
        .filter(|r| !r.ok())
        .map(|r| {
            format!(
                "{:?}: {} / {:?}: expected {:?}, got {:?}{}{}",
                r.group,
                r.row,
                r.client,
                r.expect,
                r.got,
                if r.broken.is_empty() {
                    String::new()
                } else {
                    format!("; BROKEN: {}", r.broken.join("; "))
                },
                r.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} cells differ:\n{}",
        differ.len(),
        ran.len(),
        differ.join("\n")
    );
}

/// The README line of a client's tally. Every figure in it is asserted:
/// the cell counts against [`fault_matrix`]'s, the invariants and the
/// results by [`assert_cells`] (every cell kept them and gave what the
/// table says).
fn summary(client: Client, tally: &Tally) -> String {
    let cells: usize = tally.cells.values().sum();
    let groups: Vec<String> = tally
        .cells
        .iter()
        .map(|(group, n)| format!("{n} {}", format!("{group:?}").to_lowercase()))
        .collect();
    let results: Vec<String> = tally
        .results
        .iter()
        .map(|(result, n)| format!("{n} {result}"))
        .collect();
    format!(
        "fault matrix {client:?}: {cells} cells ({}), {} leads, 0 run twice, 0 lost, 0 that ran reported as not run; results: {}",
        groups.join(", "),
        tally.leads,
        results.join(", ")
    )
}

// ---------------------------------------------------------------------------
// Trigger faults

fn http(status: u16, body: bool, runs: bool) -> Fault {
    Fault::HttpStatus { status, body, runs }
}

fn answer(status: u16, body: FaultBody, runs: bool) -> Fault {
    Fault::Answer { status, body, runs }
}

fn ran(runs: bool) -> &'static str {
    if runs {
        "ran"
    } else {
        "did not run"
    }
}

/// One row of the trigger matrix: the fault for SOAP calls (the SOAP column
/// and Fallback's primary) and for REST trigger calls, `None` where the
/// row has no such cell; the expectations for SOAP, REST and Fallback.
struct Row {
    name: String,
    soap: Option<Fault>,
    rest: Option<Fault>,
    expect: [Expect; 3],
}

fn row(name: impl Into<String>, soap: Fault, rest: Fault, expect: [Expect; 3]) -> Row {
    Row {
        name: name.into(),
        soap: Some(soap),
        rest: Some(rest),
        expect,
    }
}

fn both(name: impl Into<String>, fault: Fault, expect: [Expect; 3]) -> Row {
    row(name, fault.clone(), fault, expect)
}

/// Marketo's refusal: SOAP fault `soap` on HTTP 500, REST error `rest`.
fn refusal(name: &str, soap: u32, rest: u32, expect: [Expect; 3]) -> Row {
    row(name, Fault::SoapFault(soap), Fault::RestError(rest), expect)
}

fn rest_only(name: impl Into<String>, fault: Fault, expect: Expect) -> Row {
    Row {
        name: name.into(),
        soap: None,
        rest: Some(fault),
        expect: [expect; 3],
    }
}

fn soap_only(name: impl Into<String>, fault: Fault, expect: [Expect; 3]) -> Row {
    Row {
        name: name.into(),
        soap: Some(fault),
        rest: None,
        expect,
    }
}

fn trigger_rows() -> Vec<Row> {
    let refuse = |ms: Option<u64>| Fault::RefuseConnections {
        lasting: ms.map(Duration::from_millis),
    };
    let mut rows = vec![
        // Nothing reached the server: retried until the port is back.
        both("refuse 300 ms", refuse(Some(300)), [Served; 3]),
        // Nothing reached the server, for good: Fallback moves to REST.
        both(
            "refuse",
            refuse(None),
            [Failed(NotSent), Failed(NotSent), Served],
        ),
    ];
    // The request arrived; then no answer, a cut one or a late one, after
    // the call ran or not. The client cannot tell whether it ran.
    let cut = |at, runs| Fault::Cut { at, runs };
    rows.extend([
        both("no answer, did not run", Fault::ResetAfterRequest, UNKNOWN),
        both("no answer, ran", cut(CutAt::BeforeAnswer, true), UNKNOWN),
        both("reset mid-answer, ran", Fault::ResetMidResponse, UNKNOWN),
        both(
            "reset mid-answer, did not run",
            cut(CutAt::MidBody, false),
            UNKNOWN,
        ),
        both("cut answer, ran", Fault::TruncatedBody, UNKNOWN),
        both(
            "cut answer, did not run",
            cut(CutAt::ShortBody, false),
            UNKNOWN,
        ),
        both("timeout, ran", Fault::Delay(LATE), UNKNOWN),
        both("timeout, did not run", Fault::Stall(LATE), UNKNOWN),
        both("malformed body, ran", Fault::MalformedBody, UNKNOWN),
        both("200 empty, ran", Fault::EmptyOk, UNKNOWN),
    ]);
    // Gateways: any 5xx, with or without a body, ran or not.
    for status in [500, 502, 503, 504] {
        for (body, with) in [
            (FaultBody::Empty, "empty"),
            (FaultBody::Text, "text"),
            (FaultBody::Html, "nginx HTML"),
        ] {
            for runs in [false, true] {
                rows.push(both(
                    format!("{status} {with}, {}", ran(runs)),
                    answer(status, body, runs),
                    UNKNOWN,
                ));
            }
        }
    }
    for runs in [false, true] {
        let r = ran(runs);
        rows.push(both(
            format!("500 sandbox page, {r}"),
            http(500, true, runs),
            UNKNOWN,
        ));
        // Marketo's own formats inside a gateway's answer: a proxy or ESB
        // wraps an upstream timeout; the codes say "retry" and must not be
        // believed.
        for (status, fault, error) in [(502, 20023, 606), (503, 20024, 615), (504, 20016, 602)] {
            rows.push(row(
                format!("{status} wrapping fault {fault} / error {error}, {r}"),
                answer(status, FaultBody::SoapFault(fault), runs),
                answer(status, FaultBody::RestError(error), runs),
                UNKNOWN,
            ));
        }
        rows.extend([
            rest_only(
                format!("500 wrapping error 606, {r}"),
                answer(500, FaultBody::RestError(606), runs),
                Failed(Unknown),
            ),
            // Marketo's fault on HTTP 200 is not Marketo's refusal.
            both(
                format!("fault 20023 on 200, {r}"),
                answer(200, FaultBody::SoapFault(20023), runs),
                UNKNOWN,
            ),
        ]);
        // REST errors that do not say the call did not run.
        for (code, meaning) in [
            (604, "timed out"),
            (608, "unavailable"),
            (611, "system error"),
        ] {
            rows.push(rest_only(
                format!("REST {code} {meaning}, {r}"),
                answer(200, FaultBody::RestError(code), runs),
                Failed(Unknown),
            ));
        }
    }
    rows.extend([
        // The API is gone: refused; Fallback moves to REST.
        both(
            "404 page",
            http(404, true, false),
            [Failed(Refused), Failed(Refused), Served],
        ),
        both(
            "410 empty",
            http(410, false, false),
            [Failed(Refused), Failed(Refused), Served],
        ),
        // Other 4xx: refused, not retried, no fallback.
        both(
            "403 nginx HTML",
            answer(403, FaultBody::Html, false),
            [Failed(Refused); 3],
        ),
        both(
            "429 text",
            answer(429, FaultBody::Text, false),
            [Failed(Refused); 3],
        ),
        // Marketo's refusals: SOAP faults on HTTP 500, documented REST codes.
        refusal("rate limit", 20023, 606, [Served; 3]),
        refusal("concurrency limit", 20024, 615, [Served; 3]),
        refusal("expired", 20016, 602, [Served; 3]),
        refusal("denied", 20013, 603, [Failed(Refused); 3]),
        refusal("daily quota", 20015, 607, [Failed(Refused); 3]),
        refusal("campaign not found", 20113, 1013, [Failed(Refused); 3]),
        soap_only(
            "fault 20011 internal error on 500",
            Fault::SoapFault(20011),
            [Failed(Refused); 3],
        ),
    ]);
    rows
}

/// The rule that strikes the 2nd trigger call of `client`.
fn second_trigger(fault: &Fault, client: Client) -> FaultRule {
    let rule = FaultRule::on_call(fault.clone(), 2);
    match (client, fault) {
        (Client::Soap | Client::Fallback, _) => rule.api(Api::Soap),
        (Client::Ajo, _) => rule.api(Api::Ajo),
        // Refusals strike ports, not calls.
        (Client::Rest, Fault::RefuseConnections { .. }) => rule.api(Api::Rest),
        (Client::Rest, _) => rule
            .api(Api::Rest)
            .method("POST")
            .path_prefix("/rest/v1/campaigns/"),
    }
}

/// Each row's cells: a fault on the 2nd trigger call.
fn trigger_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for row in trigger_rows() {
        for (column, client) in CLIENTS.into_iter().enumerate() {
            let fault = match client {
                Client::Soap | Client::Fallback => &row.soap,
                Client::Rest | Client::Ajo => &row.rest,
            };
            let Some(fault) = fault else { continue };
            cells.push(Cell {
                group: Group::Trigger,
                row: row.name.clone(),
                client,
                rules: vec![second_trigger(fault, client)],
                job: Job::Request(by_id(1, LEADS)),
                expect: row.expect[column],
            });
        }
    }
    cells
}

// ---------------------------------------------------------------------------
// Look-up and token faults

#[derive(Debug, Clone, Copy)]
enum Read {
    Token,
    Campaigns,
    Leads,
}

impl Read {
    fn rule(self, fault: Fault, persistent: bool) -> FaultRule {
        let rule = if persistent {
            FaultRule::always(fault)
        } else {
            FaultRule::on_call(fault, 1)
        };
        match self {
            Read::Token => rule.api(Api::Identity),
            Read::Campaigns => rule
                .api(Api::Rest)
                .method("GET")
                .path_prefix("/rest/v1/campaigns.json"),
            Read::Leads => rule
                .api(Api::Rest)
                .method("GET")
                .path_prefix("/rest/v1/leads.json"),
        }
    }
}

/// The faults of a read-only call.
fn read_faults(read: Read) -> Vec<(&'static str, Fault)> {
    let mut faults = vec![
        ("reset mid-answer", Fault::ResetMidResponse),
        ("cut", Fault::TruncatedBody),
        ("no answer", Fault::ResetAfterRequest),
        ("502 empty", answer(502, FaultBody::Empty, false)),
        ("503 nginx HTML", answer(503, FaultBody::Html, false)),
        ("unreadable", Fault::MalformedBody),
    ];
    if !matches!(read, Read::Token) {
        faults.extend([
            ("REST 604", Fault::RestError(604)),
            ("REST 611", Fault::RestError(611)),
        ]);
    }
    faults
}

/// Faults on the read-only calls of a request over REST, once or always.
fn lookup_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for read in [Read::Token, Read::Campaigns, Read::Leads] {
        for (name, fault) in read_faults(read) {
            for persistent in [false, true] {
                // A GET cannot trigger anything: a failed one is retried,
                // and if it keeps failing, nothing was sent.
                let expect = if persistent { Failed(NotSent) } else { Served };
                let row = format!(
                    "{read:?} {name}, {}",
                    if persistent { "every time" } else { "once" }
                );
                // REST alone, and Fallback whose SOAP side is gone (HTTP
                // 410) from its 2nd call: chunk 1 over SOAP, the rest over
                // REST.
                cells.push(Cell {
                    group: Group::Lookup,
                    row: row.clone(),
                    client: Client::Rest,
                    rules: vec![read.rule(fault.clone(), persistent)],
                    job: Job::Request(by_email(1, LEADS)),
                    expect,
                });
                cells.push(Cell {
                    group: Group::Lookup,
                    row,
                    client: Client::Fallback,
                    rules: vec![
                        FaultRule::on_call(http(410, false, false), 2).api(Api::Soap),
                        read.rule(fault.clone(), persistent),
                    ],
                    job: Job::Request(by_email(1, LEADS)),
                    expect,
                });
            }
        }
    }
    cells
}

// ---------------------------------------------------------------------------
// Schedules

/// Answers of a schedule call that ran (never scheduled twice), and a
/// rate refusal (retried).
fn schedule_cells() -> Vec<Cell> {
    // The same fault for both APIs.
    let same = |name, fault: Fault, expect| (name, fault.clone(), fault, expect);
    let faults: Vec<(&str, Fault, Fault, Expect)> = vec![
        same(
            "502 empty, ran",
            answer(502, FaultBody::Empty, true),
            Failed(Unknown),
        ),
        (
            "503 wrapping 20023 / 606, ran",
            answer(503, FaultBody::SoapFault(20023), true),
            answer(503, FaultBody::RestError(606), true),
            Failed(Unknown),
        ),
        same(
            "reset mid-answer, ran",
            Fault::ResetMidResponse,
            Failed(Unknown),
        ),
        (
            "fault 20011 on 200 / REST 604, ran",
            answer(200, FaultBody::SoapFault(20011), true),
            answer(200, FaultBody::RestError(604), true),
            Failed(Unknown),
        ),
        (
            "rate limit",
            Fault::SoapFault(20023),
            Fault::RestError(606),
            Served,
        ),
    ];
    let mut cells = Vec::new();
    for (name, soap_fault, rest_fault, expect) in faults {
        for client in CLIENTS.into_iter().chain([Client::Ajo]) {
            let rule = match client {
                // An audience execution; AJO's rate limit is a 429.
                Client::Ajo => {
                    let fault = match &rest_fault {
                        Fault::RestError(606) => answer(429, FaultBody::Text, false),
                        other => other.clone(),
                    };
                    FaultRule::on_call(fault, 1).api(Api::Ajo)
                }
                // After the campaign look-up (a GET).
                Client::Rest => FaultRule::on_call(rest_fault.clone(), 1)
                    .api(Api::Rest)
                    .method("POST")
                    .path_prefix("/rest/v1/campaigns/"),
                _ => FaultRule::on_call(soap_fault.clone(), 1).api(Api::Soap),
            };
            cells.push(Cell {
                group: Group::Schedule,
                row: name.to_owned(),
                client,
                rules: vec![rule],
                job: Job::Schedule(
                    ScheduleRequest::new(
                        CampaignTarget::named("Monthly Newsletter", "Newsletters", []),
                        None,
                    )
                    .unwrap(),
                ),
                expect,
            });
        }
    }
    cells
}

// ---------------------------------------------------------------------------
// Journey Optimizer

/// AJO's cells: the trigger faults on the 2nd execution of 300 leads by
/// email (15 executions of 20), and the IMS token faults, once or on every
/// call. Same wire, same answers: whatever may have run is unknown and not
/// repeated; a 429 (rate limited) and a 401 (token renewed) are refusals
/// the client repeats; other 4xx are refusals.
fn ajo_cells() -> Vec<Cell> {
    let request = || {
        CampaignRequest::new(
            CampaignTarget::id(4496),
            (1..=LEADS).map(|i| LeadKey::email(format!("lead{i}@example.com")).unwrap()),
        )
        .unwrap()
    };
    let mut rows: Vec<(String, Fault, Expect)> = Vec::new();
    for row in trigger_rows() {
        // Marketo's own formats (SOAP faults, REST errors) are not AJO's:
        // the rows that are only one of them are left out; a gateway's
        // answer wrapping one is kept (a body AJO never sends).
        let Some(fault) = row.rest.or(row.soap) else {
            continue;
        };
        let expect = match &fault {
            Fault::SoapFault(_) | Fault::RestError(_) => continue,
            Fault::Answer {
                status: 200,
                body: FaultBody::RestError(_) | FaultBody::SoapFault(_),
                ..
            } => continue,
            // AJO's rate limit: refused, repeated after the wait.
            Fault::Answer { status: 429, .. } => Served,
            // The API is gone: refused (AJO has no fallback of its own).
            Fault::HttpStatus {
                status: 404 | 410, ..
            } => Failed(Refused),
            _ => row.expect[1],
        };
        rows.push((row.name, fault, expect));
    }
    rows.extend([
        (
            "401 once (token renewed)".to_owned(),
            answer(401, FaultBody::Text, false),
            Served,
        ),
        (
            "400 empty".to_owned(),
            http(400, false, false),
            Failed(Refused),
        ),
        (
            "403 page".to_owned(),
            http(403, true, false),
            Failed(Refused),
        ),
    ]);
    let mut cells: Vec<Cell> = rows
        .into_iter()
        .map(|(row, fault, expect)| Cell {
            group: Group::Trigger,
            row,
            client: Client::Ajo,
            rules: vec![second_trigger(&fault, Client::Ajo)],
            job: Job::Request(request()),
            expect,
        })
        .collect();
    for (name, fault) in read_faults(Read::Token) {
        for persistent in [false, true] {
            cells.push(Cell {
                group: Group::Lookup,
                row: format!(
                    "IMS token {name}, {}",
                    if persistent { "every time" } else { "once" }
                ),
                client: Client::Ajo,
                rules: vec![Read::Token.rule(fault.clone(), persistent)],
                job: Job::Request(request()),
                expect: if persistent { Failed(NotSent) } else { Served },
            });
        }
    }
    cells
}

#[test]
fn fault_matrix() {
    let cells: Vec<Cell> = [
        trigger_cells(),
        lookup_cells(),
        schedule_cells(),
        ajo_cells(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let ran = run_all(&cells);
    let tallies = tally(&ran);
    // The cell counts README quotes, per client and group.
    let counts: Vec<Vec<(Group, usize)>> = tallies
        .values()
        .map(|t| t.cells.iter().map(|(g, n)| (*g, *n)).collect())
        .collect();
    assert_eq!(
        counts,
        [
            vec![(Group::Trigger, 57), (Group::Schedule, 5)],
            vec![
                (Group::Trigger, 64),
                (Group::Lookup, 44),
                (Group::Schedule, 5)
            ],
            vec![
                (Group::Trigger, 57),
                (Group::Lookup, 44),
                (Group::Schedule, 5)
            ],
            vec![
                (Group::Trigger, 53),
                (Group::Lookup, 12),
                (Group::Schedule, 5)
            ],
        ],
        "cells per client (SOAP, REST, Fallback, AJO) and group"
    );
    assert_cells(&ran);
    for (client, tally) in &tallies {
        let requests: usize = tally
            .cells
            .iter()
            .filter(|(g, _)| **g != Group::Schedule)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(tally.leads, requests * LEADS as usize);
        eprintln!("{}", summary(*client, tally));
    }
}

// ---------------------------------------------------------------------------
// The long run

/// What a fault sprinkled into the long run must lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Refused before running, repeated by the client: nothing to see.
    Retried,
    /// The chunk is reported unknown (and not repeated).
    Unknown,
    /// The chunk is reported refused; the caller sends it again.
    Refused,
    /// SOAP's port refuses: Fallback moves the rest to REST.
    FallsBack,
}

/// The long run's rules for one client's trigger calls, and each fault's
/// effect. Rules added first win when several strike a call.
fn sprinkled(client: Client) -> Vec<(FaultRule, Effect)> {
    let rest = client == Client::Rest;
    let on = |fault: Fault, rule: fn(Fault, u64) -> FaultRule, n: u64| {
        let rule = rule(fault, n);
        match client {
            Client::Rest => rule
                .api(Api::Rest)
                .method("POST")
                .path_prefix("/rest/v1/campaigns/"),
            Client::Ajo => rule.api(Api::Ajo),
            _ => rule.api(Api::Soap),
        }
    };
    let (rate, concurrency, denied) = if client == Client::Ajo {
        // AJO's limits are 429s; its refusals 4xx.
        (
            answer(429, FaultBody::Text, false),
            answer(429, FaultBody::Empty, false),
            http(403, true, false),
        )
    } else if rest {
        (
            Fault::RestError(606),
            Fault::RestError(615),
            Fault::RestError(603),
        )
    } else {
        (
            Fault::SoapFault(20023),
            Fault::SoapFault(20024),
            Fault::SoapFault(20013),
        )
    };
    let (wrapped, on_200) = if client == Client::Ajo {
        // A gateway's text, and a 200 that is not AJO's answer.
        (FaultBody::Text, FaultBody::RestError(611))
    } else if rest {
        (FaultBody::RestError(606), FaultBody::RestError(611))
    } else {
        (FaultBody::SoapFault(20023), FaultBody::SoapFault(20011))
    };
    let mut rules = vec![
        (
            on(answer(502, FaultBody::Empty, true), FaultRule::on_call, 5),
            Effect::Unknown,
        ),
        (
            on(Fault::ResetMidResponse, FaultRule::on_call, 8),
            Effect::Unknown,
        ),
        (
            on(answer(503, wrapped, true), FaultRule::on_call, 11),
            Effect::Unknown,
        ),
        (
            on(
                Fault::Cut {
                    at: CutAt::MidBody,
                    runs: false,
                },
                FaultRule::on_call,
                13,
            ),
            Effect::Unknown,
        ),
        (on(denied, FaultRule::on_call, 16), Effect::Refused),
        (
            on(answer(200, on_200, true), FaultRule::on_call, 19),
            Effect::Unknown,
        ),
        (on(rate, FaultRule::every, 3), Effect::Retried),
        (on(concurrency, FaultRule::every, 7), Effect::Retried),
    ];
    if client == Client::Fallback {
        rules.insert(
            0,
            (
                FaultRule::on_call(Fault::RefuseConnections { lasting: None }, 21).api(Api::Soap),
                Effect::FallsBack,
            ),
        );
        // REST, once Fallback moves there, has its own faults.
        rules.push((
            FaultRule::every(Fault::RestError(606), 4)
                .api(Api::Rest)
                .method("POST"),
            Effect::Retried,
        ));
        rules.push((
            FaultRule::on_call(answer(504, FaultBody::Html, true), 3)
                .api(Api::Rest)
                .method("POST"),
            Effect::Unknown,
        ));
    }
    rules
}

#[test]
fn many_chunks_with_faults_sprinkled_in() {
    // 1,500 leads (15 chunks; 75 for AJO) per client. After each request the caller
    // sends again every chunk that certainly did not run (refused, not
    // sent, not attempted), never one whose outcome is unknown.
    const TOTAL: u32 = 1_500;
    let mut lines = Vec::new();
    let mut broken = Vec::new();
    for client in CLIENTS.into_iter().chain([Client::Ajo]) {
        let sandbox = Sandbox::start_with(config()).unwrap();
        let rules = sprinkled(client);
        for (rule, _) in &rules {
            sandbox.inject(rule.clone()).unwrap();
        }
        let requester: Box<dyn CampaignRequester> = match client {
            Client::Soap => Box::new(soap(&sandbox)),
            Client::Rest => Box::new(rest(&sandbox)),
            Client::Fallback => Box::new(Fallback::new(soap(&sandbox), rest(&sandbox))),
            Client::Ajo => Box::new(ajo(&sandbox)),
        };
        // Chunks of the requester's size: 100, or AJO's 20 (by email).
        let size = requester.max_leads_per_call();
        let mut pending: Vec<LeadKey> = (1..=TOTAL)
            .map(|i| match client {
                Client::Ajo => LeadKey::email(format!("lead{i}@example.com")).unwrap(),
                _ => LeadKey::id(i).unwrap(),
            })
            .collect();
        let mut unknown_chunks: Vec<Vec<u32>> = Vec::new();
        let mut refused_chunks = 0;
        let mut rounds = 0;
        while !pending.is_empty() && rounds < 30 {
            rounds += 1;
            let request = CampaignRequest::new(CampaignTarget::id(4496), pending.clone()).unwrap();
            let result = requester.request_campaign(&request);
            // Duplicates are counted once, at the end.
            let (_, problems) = check(&sandbox, &result, &request);
            broken.extend(
                problems
                    .into_iter()
                    .filter(|p| !p.contains("more than once"))
                    .map(|p| format!("{client:?} round {rounds}: {p}")),
            );
            pending = Vec::new();
            let chunks: Vec<(Vec<LeadKey>, Option<Delivery>)> = match &result {
                Ok(outcome) => outcome
                    .chunks()
                    .iter()
                    .map(|c| (c.leads().to_vec(), None))
                    .collect(),
                Err(Error::Incomplete(outcome)) => outcome
                    .chunks()
                    .iter()
                    .map(|c| {
                        let delivery = match c.status() {
                            ChunkStatus::Accepted => None,
                            ChunkStatus::Failed(err) => Some(err.delivery()),
                            _ => Some(NotSent),
                        };
                        (c.leads().to_vec(), delivery)
                    })
                    .collect(),
                Err(err) => vec![(request.leads().to_vec(), Some(err.delivery()))],
            };
            for (leads, delivery) in chunks {
                if leads.len() != size {
                    broken.push(format!("{client:?}: a chunk of {} leads", leads.len()));
                }
                match delivery {
                    None => {}
                    Some(Unknown) => unknown_chunks.push(leads.iter().map(lead_id).collect()),
                    Some(Refused) => {
                        refused_chunks += 1;
                        pending.extend(leads);
                    }
                    Some(_) => pending.extend(leads),
                }
            }
        }
        // The figures, each checked against the journal and the fault log.
        let served = served(&sandbox);
        let twice = served.values().filter(|apis| apis.len() > 1).count();
        let unknown: Vec<u32> = unknown_chunks.iter().flatten().copied().collect();
        let lost = (1..=TOTAL)
            .filter(|id| !served.contains_key(id) && !unknown.contains(id))
            .count();
        let unknown_ran: Vec<&Vec<u32>> = unknown_chunks
            .iter()
            .filter(|c| c.iter().all(|id| served.contains_key(id)))
            .collect();
        let log = sandbox.fault_log();
        let effect = |fault: &Fault| {
            rules
                .iter()
                .find(|(rule, _)| rule.fault() == fault)
                .map(|(_, effect)| *effect)
        };
        let events = |wanted: Effect| log.iter().filter(move |e| effect(&e.fault) == Some(wanted));
        let unknown_events = events(Effect::Unknown).count();
        let unknown_events_ran = events(Effect::Unknown).filter(|e| e.ran).count();
        let figures = vec![
            ("leads run more than once", twice, 0),
            ("lost", lost, 0),
            ("leads still pending", pending.len(), 0),
            // Each fault that leaves the outcome unknown gives one unknown
            // chunk, which ran exactly when the fault log says it ran.
            ("unknown chunks", unknown_chunks.len(), unknown_events),
            (
                "unknown chunks that ran",
                unknown_ran.len(),
                unknown_events_ran,
            ),
            (
                "leads served once",
                served.len(),
                TOTAL as usize - size * (unknown_events - unknown_events_ran),
            ),
            (
                "refused chunks",
                refused_chunks,
                events(Effect::Refused).count(),
            ),
        ];
        // Every kind of fault struck, and after SOAP went away, Fallback
        // served over REST.
        for (rule, effect) in &rules {
            if !log.iter().any(|e| &e.fault == rule.fault()) {
                broken.push(format!("{client:?}: never struck: {rule:?}"));
            }
            if *effect == Effect::FallsBack && !served.values().any(|apis| apis[0] == "rest") {
                broken.push(format!(
                    "{client:?}: nothing served over REST after SOAP went away"
                ));
            }
        }
        broken.extend(duplicates(&served).map(|d| format!("{client:?}: {d}")));
        for (what, got, want) in &figures {
            if got != want {
                broken.push(format!("{client:?}: {what}: {got}, expected {want}"));
            }
        }
        lines.push(format!(
            "long run {client:?}: {TOTAL} leads in {rounds} rounds, {} faults struck, {} served once, {} reported unknown ({} of them ran), {} refused and sent again, 0 duplicates, 0 lost",
            log.len(),
            served.len(),
            unknown.len(),
            size * unknown_ran.len(),
            size * refused_chunks,
        ));
    }
    assert!(
        broken.is_empty(),
        "the long run broke {} invariant(s):\n{}",
        broken.len(),
        broken.join("\n")
    );
    for line in lines {
        eprintln!("{line}");
    }
}
