//! A load run of whole legacy flows through the bridge (issue 17): each
//! flow is `syncLead` (a new lead, three attributes) → `getLead` by email →
//! `listOperation` ADDTOLIST by list name → `requestCampaign` →
//! `getLeadActivity`, as signed SOAP envelopes; 20 clients run flows at
//! once against one bridge whose `RestClient` and the sandbox share
//! Marketo's limits (scaled down in time: 100 calls per 2 s, 10 at once).
//! Exits non-zero when an invariant fails.
//!
//! ```text
//! cargo run --release -p marketo-bridge --example lead_flow_load -- [FLOWS CLIENTS WINDOW_MS]
//! ```
//! Defaults: 100 flows, 20 clients, a 2,000 ms window (Marketo's is
//! 20,000 ms: the same limit ten times faster).
//!
//! Invariants: every SOAP call answered with success; the sandbox refused
//! no REST call with 606 or 615; each flow's lead created once and added
//! to the list once; the journal holds one run per flow, for its lead only.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use marketo_bridge::Bridge;
use marketo_campaign::soap::{request_signature, w3c_timestamp, Authenticator, DEFAULT_TIMEZONE};
use marketo_campaign::{Clock, RateLimit, RetryPolicy, SystemClock};
use marketo_sandbox::{Sandbox, SandboxConfig};

/// Counts the sandbox's REST errors by code from its debug log lines.
struct RestErrors(Mutex<BTreeMap<String, u64>>);

static REST_ERRORS: RestErrors = RestErrors(Mutex::new(BTreeMap::new()));

impl log::Log for RestErrors {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == "marketo_sandbox::rest"
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        if let Some(rest) = text.strip_prefix("sandbox REST error ") {
            let code = rest.split(':').next().unwrap_or("?").to_owned();
            *self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(code)
                .or_default() += 1;
        }
    }

    fn flush(&self) {}
}

/// What one client needs to sign and post.
struct Caller {
    endpoint: String,
    user: String,
    key: String,
    agent: ureq::Agent,
}

impl Caller {
    /// Posts `ns1:params<Operation>` holding `params`, signed now: status
    /// and body.
    fn call(&self, operation: &str, params: &str) -> Result<(u16, String), ureq::Error> {
        let timestamp = w3c_timestamp(SystemClock.now(), DEFAULT_TIMEZONE);
        let signature = request_signature(&self.key, &timestamp, &self.user);
        let mut element = String::from("params");
        element.push_str(&operation[..1].to_uppercase());
        element.push_str(&operation[1..]);
        let body = format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/">"#,
                "<SOAP-ENV:Header><ns1:AuthenticationHeader><mktowsUserId>{}</mktowsUserId>",
                "<requestSignature>{}</requestSignature><requestTimestamp>{}</requestTimestamp>",
                "</ns1:AuthenticationHeader></SOAP-ENV:Header><SOAP-ENV:Body><ns1:{}>{}</ns1:{}>",
                "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
            ),
            self.user, signature, timestamp, element, params, element
        );
        let mut response = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header(
                "SOAPAction",
                format!("\"http://www.marketo.com/mktows/{operation}\""),
            )
            .send(body.as_bytes())?;
        let status = response.status().as_u16();
        Ok((status, response.body_mut().read_to_string()?))
    }

    /// One flow for the lead `email`: the operations' names whose answer
    /// was not a success.
    fn flow(&self, email: &str) -> Vec<String> {
        let key =
            format!("<leadKey><keyType>EMAIL</keyType><keyValue>{email}</keyValue></leadKey>");
        let steps = [
            (
                "syncLead",
                format!(
                    "<leadRecord><Email>{email}</Email><leadAttributeList>\
                     <attribute><attrName>FirstName</attrName><attrValue>Load</attrValue></attribute>\
                     <attribute><attrName>LastName</attrName><attrValue>Run</attrValue></attribute>\
                     <attribute><attrName>Company</attrName><attrValue>Acme</attrValue></attribute>\
                     </leadAttributeList></leadRecord><returnLead>false</returnLead>"
                ),
            ),
            ("getLead", key.clone()),
            (
                "listOperation",
                format!(
                    "<listOperation>ADDTOLIST</listOperation><listKey><keyType>MKTOLISTNAME</keyType>\
                     <keyValue>Webinar Registrants</keyValue></listKey><listMemberList>{key}</listMemberList>\
                     <strict>true</strict>"
                ),
            ),
            (
                "requestCampaign",
                format!("<source>MKTOWS</source><campaignId>4496</campaignId><leadList>{key}</leadList>"),
            ),
            ("getLeadActivity", key.clone()),
        ];
        let mut failed = Vec::new();
        for (operation, params) in steps {
            match self.call(operation, &params) {
                Ok((200, _)) => {}
                Ok((status, body)) => {
                    let code = body
                        .split("<code>")
                        .nth(1)
                        .and_then(|s| s.split("</code>").next())
                        .unwrap_or("?");
                    failed.push(format!("{operation}: HTTP {status}, fault {code}"));
                    // The flow stops where legacy code would.
                    break;
                }
                Err(err) => {
                    failed.push(format!("{operation}: {err}"));
                    break;
                }
            }
        }
        failed
    }
}

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let flows = *args.first().unwrap_or(&100) as usize;
    let clients = *args.get(1).unwrap_or(&20) as usize;
    let window = Duration::from_millis(*args.get(2).unwrap_or(&2000));

    log::set_logger(&REST_ERRORS).map_err(|e| e.to_string())?;
    log::set_max_level(log::LevelFilter::Debug);

    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .rate_limit(100, window)
            .max_concurrent(10),
    )?;
    let rest = sandbox
        .rest_client_builder()
        .rate_limit(Some(RateLimit::new(100, window, 10)))
        .retry(RetryPolicy::never())
        .build()?;
    let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    let server = Bridge::rest(rest, auth).serve("127.0.0.1:0".parse()?, false)?;
    println!(
        "{flows} flows (syncLead, getLead, listOperation, requestCampaign, getLeadActivity) \
         from {clients} clients; sandbox and bridge at 100 REST calls per {window:?}, 10 at once"
    );

    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(clients + 1));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let caller = Caller {
                endpoint: server.endpoint(),
                user: sandbox.soap_user_id().to_owned(),
                key: sandbox.soap_encryption_key().to_owned(),
                agent: ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(300)))
                    .build()
                    .into(),
            };
            let (next, barrier, failures) = (
                Arc::clone(&next),
                Arc::clone(&barrier),
                Arc::clone(&failures),
            );
            std::thread::spawn(move || {
                barrier.wait();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= flows {
                        return;
                    }
                    let failed = caller.flow(&format!("flow{i}@load.example"));
                    failures
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(failed);
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for worker in workers {
        worker.join().map_err(|_| "a client thread panicked")?;
    }
    let wall = start.elapsed();

    let failures = failures
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let rest_errors = REST_ERRORS
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let changes = sandbox.lead_changes();
    let mut per_lead: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for change in &changes {
        per_lead
            .entry(change.lead_id)
            .or_default()
            .push(change.what.clone());
    }
    let journal = sandbox.journal();
    let soap_calls = flows * 5;
    // The REST calls the bridge made, from its /metrics.
    let metrics = ureq::get(&format!("http://{}/metrics", server.addr()))
        .call()?
        .body_mut()
        .read_to_string()?;
    let rest_calls: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("marketo_bridge_rest_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let floor = ((rest_calls / 100.0).ceil() - 1.0).max(0.0) * window.as_secs_f64();
    println!(
        "REST calls: {rest_calls} ({:.1} per flow); the rate limit allows them in {floor:.1} s at the least",
        rest_calls / flows as f64
    );
    println!(
        "{soap_calls} SOAP calls in {:.1} s ({:.1} calls/s); failures: {}; sandbox REST refusals: {rest_errors:?}",
        wall.as_secs_f64(),
        soap_calls as f64 / wall.as_secs_f64(),
        failures.len()
    );
    println!(
        "leads written: {} (each: {:?}); campaign runs journaled: {}",
        per_lead.len(),
        per_lead.values().next(),
        journal.len()
    );

    let mut ok = true;
    let mut check = |holds: bool, what: &str| {
        if !holds {
            eprintln!("FAILED: {what}");
            ok = false;
        }
    };
    check(
        failures.is_empty(),
        &format!("every call succeeds: {failures:?}"),
    );
    check(
        !rest_errors.contains_key("606") && !rest_errors.contains_key("615"),
        "no 606 / 615 from the sandbox",
    );
    check(per_lead.len() == flows, "one lead created per flow");
    check(
        per_lead
            .values()
            .all(|w| w.as_slice() == ["created", "added to list 1001"]),
        "each lead created once and added to the list once",
    );
    check(
        journal.len() == flows && journal.iter().all(|e| e.lead_ids.len() == 1),
        "one campaign run per flow, for its lead only",
    );
    let mut run_leads: Vec<u32> = journal.iter().flat_map(|e| e.lead_ids.clone()).collect();
    run_leads.sort_unstable();
    run_leads.dedup();
    check(run_leads.len() == flows, "no lead run twice");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
