//! The SOAP→REST bridge (`marketo_bridge`) between SOAP clients
//! and the sandbox's REST side: what ran is read from the sandbox journal.
//! The last tests drive PHP's `SoapClient` and Python's zeep, unmodified,
//! from the WSDL URL (skipped with a notice when the tool is missing,
//! failed instead when `MC_REQUIRE_CLIENTS=1`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use marketo_bridge::{Bridge, RunningBridge};
use marketo_campaign::soap::{request_signature, w3c_timestamp, Authenticator, DEFAULT_TIMEZONE};
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Clock, Error, FixedClock, LeadKey,
    ProgramToken, RateLimit, RetryPolicy, SoapClient, SoapClientBuilder, SoapCode, SystemClock,
};
use marketo_sandbox::{
    Api, Fault as SandboxFault, FaultRule, JournalEntry, Sandbox, SandboxConfig, SandboxData,
};
use test_support::http::{agent, get};

/// A sandbox and a bridge in front of its REST side.
fn setup() -> (Sandbox, RunningBridge) {
    setup_with(|bridge| bridge)
}

fn setup_with(
    configure: impl FnOnce(Bridge<marketo_campaign::RestClient>) -> Bridge<marketo_campaign::RestClient>,
) -> (Sandbox, RunningBridge) {
    let sandbox = Sandbox::start().unwrap();
    let server = serve_for(&sandbox, configure);
    (sandbox, server)
}

/// A bridge in front of `sandbox`'s REST side, configured by `configure`.
fn serve_for(
    sandbox: &Sandbox,
    configure: impl FnOnce(Bridge<marketo_campaign::RestClient>) -> Bridge<marketo_campaign::RestClient>,
) -> RunningBridge {
    serve(configure(Bridge::rest(
        sandbox.rest_client().unwrap(),
        auth(sandbox),
    )))
}

/// The sandbox's SOAP credentials, as the bridge checks them.
fn auth(sandbox: &Sandbox) -> Authenticator {
    Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key())
}

/// Serves `bridge` on a free loopback port.
fn serve<R: CampaignRequester + Send + Sync + 'static>(bridge: Bridge<R>) -> RunningBridge {
    bridge.serve("127.0.0.1:0".parse().unwrap(), false).unwrap()
}

/// A bridge in front of `rest`, a REST client of `sandbox`.
fn serve_rest(sandbox: &Sandbox, rest: marketo_campaign::RestClient) -> RunningBridge {
    serve(Bridge::rest(rest, auth(sandbox)))
}

/// A REST client of `sandbox` whose limiter waits `budget` at the most,
/// for `calls` calls per `window` and `concurrent` at a time.
fn limited_rest(
    sandbox: &Sandbox,
    calls: u32,
    window: Duration,
    concurrent: usize,
    budget: Duration,
) -> marketo_campaign::RestClient {
    sandbox
        .rest_client_builder()
        .rate_limit(Some(
            RateLimit::new(calls, window, concurrent).max_wait(budget),
        ))
        .build()
        .unwrap()
}

/// Campaign 4496 for lead@company.com.
fn demo_request() -> CampaignRequest {
    CampaignRequest::new(CampaignTarget::id(4496), [email("lead@company.com")]).unwrap()
}

/// Campaign 4496 for lead@company.com and an unknown lead.
fn with_an_unknown_lead() -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::id(4496),
        [email("lead@company.com"), email("nobody@example.com")],
    )
    .unwrap()
}

fn client(sandbox: &Sandbox, server: &RunningBridge) -> SoapClient {
    client_with(sandbox, server, RetryPolicy::default())
}

fn client_with(sandbox: &Sandbox, server: &RunningBridge, retry: RetryPolicy) -> SoapClient {
    client_builder(sandbox, server, sandbox.soap_encryption_key())
        .retry(retry)
        .build()
        .unwrap()
}

/// A SOAP client of the bridge, as the sandbox's user, signing with `key`.
fn client_builder(sandbox: &Sandbox, server: &RunningBridge, key: &str) -> SoapClientBuilder {
    SoapClient::builder(server.endpoint(), sandbox.soap_user_id(), key)
}

fn email(value: &str) -> LeadKey {
    LeadKey::email(value).unwrap()
}

fn soap_fault(result: Result<impl std::fmt::Debug, Error>) -> (SoapCode, String) {
    match result {
        Err(Error::SoapFault { code, message }) => (code, message),
        other => panic!("expected a SOAP fault, got {other:?}"),
    }
}

/// Posts `params` in `ns1:<element>`, signed now with the sandbox's key.
pub(crate) fn post_signed(
    sandbox: &Sandbox,
    server: &RunningBridge,
    element: &str,
    params: &str,
) -> (u16, String) {
    post_signed_with(
        sandbox,
        server,
        sandbox.soap_encryption_key(),
        element,
        params,
    )
}

/// Posts `params` in `ns1:<element>`, signed now with `key`.
fn post_signed_with(
    sandbox: &Sandbox,
    server: &RunningBridge,
    key: &str,
    element: &str,
    params: &str,
) -> (u16, String) {
    let user = sandbox.soap_user_id();
    let timestamp = w3c_timestamp(SystemClock.now(), DEFAULT_TIMEZONE);
    let signature = request_signature(key, &timestamp, user);
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Header><ns1:AuthenticationHeader><mktowsUserId>{user}</mktowsUserId><requestSignature>{signature}</requestSignature><requestTimestamp>{timestamp}</requestTimestamp></ns1:AuthenticationHeader></SOAP-ENV:Header><SOAP-ENV:Body><ns1:{element}>{params}</ns1:{element}></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    );
    let operation = element.strip_prefix("params").unwrap_or(element);
    let operation = format!("{}{}", operation[..1].to_lowercase(), &operation[1..]);
    let mut response = agent()
        .post(&server.endpoint())
        .header("Content-Type", "text/xml; charset=utf-8")
        .header(
            "SOAPAction",
            format!("\"http://www.marketo.com/mktows/{operation}\""),
        )
        .send(body.as_bytes())
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// A client of a bridge, signing with `key` (the sandbox's when `None`)
/// and configured by `configure`, is refused with `code`; nothing runs.
fn client_refused(
    key: Option<&str>,
    configure: impl FnOnce(SoapClientBuilder) -> SoapClientBuilder,
    code: SoapCode,
) {
    let (sandbox, server) = setup();
    let key = key.unwrap_or(sandbox.soap_encryption_key());
    let client = configure(client_builder(&sandbox, &server, key))
        .build()
        .unwrap();
    refused_with(&sandbox, &client, code);
}

/// Runs `request` through a bridge configured by `configure`; the sandbox
/// behind it.
fn run_through(
    configure: impl FnOnce(Bridge<marketo_campaign::RestClient>) -> Bridge<marketo_campaign::RestClient>,
    request: &CampaignRequest,
) -> Sandbox {
    let (sandbox, server) = setup_with(configure);
    client(&sandbox, &server).request_campaign(request).unwrap();
    sandbox
}

/// Requests [`demo_request`] with `client`: refused with `code`, nothing
/// ran. The fault's message.
fn refused_with(sandbox: &Sandbox, client: &SoapClient, code: SoapCode) -> String {
    let (got, message) = soap_fault(client.request_campaign(&demo_request()));
    assert_eq!(got, code, "{message}");
    assert!(sandbox.journal().is_empty());
    message
}

/// Every REST call to trigger campaign 4496 meets `fault`.
fn fault_on_triggers(sandbox: &Sandbox, fault: SandboxFault) {
    sandbox
        .inject(
            FaultRule::always(fault)
                .api(Api::Rest)
                .path_prefix("/rest/v1/campaigns/4496/trigger"),
        )
        .unwrap();
}

/// The body of an answer of HTTP 200.
fn listed((status, body): (u16, String)) -> String {
    assert_eq!(status, 200, "{body}");
    body
}

/// The body of a SOAP fault of `code` on HTTP 500.
fn fault_answer((status, body): (u16, String), code: u32) -> String {
    assert_eq!(status, 500, "{body}");
    assert!(body.contains(&format!("<code>{code}</code>")), "{body}");
    body
}

/// `getCampaignsForSource` with `params`, signed with the sandbox's key.
fn campaigns_for_source(sandbox: &Sandbox, server: &RunningBridge, params: &str) -> (u16, String) {
    post_signed(sandbox, server, "paramsGetCampaignsForSource", params)
}

fn rest_runs(journal: &[JournalEntry]) -> Vec<(u32, Vec<u32>)> {
    journal
        .iter()
        .map(|e| {
            assert_eq!(e.api, "rest", "{e:?}");
            (e.campaign_id, e.lead_ids.clone())
        })
        .collect()
}

#[test]
fn a_soap_client_runs_a_campaign_over_rest() {
    let (sandbox, server) = setup();
    let client = client(&sandbox, &server);
    let request = CampaignRequest::new(
        CampaignTarget::id(4496),
        [email("lead@company.com"), LeadKey::id(1002201).unwrap()],
    )
    .unwrap();
    client.request_campaign(&request).unwrap();
    assert_eq!(
        rest_runs(&sandbox.journal()),
        [(4496, vec![1002200, 1002201])]
    );
}

#[test]
fn by_name_with_tokens_and_every_key_type_rest_can_look_up() {
    let (sandbox, server) = setup();
    let client = client(&sandbox, &server);
    let tokens = [ProgramToken::new("{{my.WebinarTitle}}", "Fall & more").unwrap()];
    let keys = [
        LeadKey::id(1002200).unwrap(),
        email("lead@company.com"),
        "COOKIE:id:561-HYG-937&token:_mch-company.com-1374552656411-90718"
            .parse()
            .unwrap(),
        "SFDCACCOUNTID:0015000000XyZaAAAV".parse().unwrap(),
        "SFDCCONTACTID:0035000000AbCdEAAV".parse().unwrap(),
        "SFDCLEADID:00Q5000000FgHiJEAV".parse().unwrap(),
        "SFDCOPPTYID:0065000000EfGhIAAV".parse().unwrap(),
    ];
    let request = CampaignRequest::new(
        CampaignTarget::named("Send Webinar Reminder", "Webinars", tokens),
        keys,
    )
    .unwrap();
    let result = client.request_campaign(&request);
    let journal = sandbox.journal();
    // SFDCACCOUNTID names both leads: ambiguous, so SOAP's rule refuses the
    // call before anything runs.
    let (code, message) = soap_fault(result);
    assert_eq!(code, SoapCode::LeadNotFound, "{message}");
    assert!(
        message.contains("SFDCACCOUNTID:0015000000XyZaAAAV"),
        "{message}"
    );
    assert!(journal.is_empty(), "{journal:?}");

    let keys: Vec<LeadKey> = request
        .leads()
        .iter()
        .filter(|k| k.key_type().as_str() != "SFDCACCOUNTID")
        .cloned()
        .collect();
    let request = CampaignRequest::new(request.target().clone(), keys).unwrap();
    client.request_campaign(&request).unwrap();
    let journal = sandbox.journal();
    assert_eq!(rest_runs(&journal), [(1234, vec![1002200, 1002201])]);
    assert_eq!(journal[0].tokens[0].value, "Fall & more");
}

#[test]
fn a_wrong_signature_is_20014_and_runs_nothing() {
    client_refused(Some("wrong-key"), |b| b, SoapCode::AuthenticationFailed);
}

#[test]
fn a_stale_timestamp_is_20016_and_runs_nothing() {
    client_refused(
        None,
        |b| b.clock(FixedClock::parse("2010-04-09T14:04:54-07:00").unwrap()),
        SoapCode::RequestExpired,
    );
}

#[test]
fn an_unknown_lead_is_20103_naming_it_and_runs_nothing() {
    let (sandbox, server) = setup();
    let client = client(&sandbox, &server);
    let request = with_an_unknown_lead();
    let (code, message) = soap_fault(client.request_campaign(&request));
    assert_eq!(code, SoapCode::LeadNotFound);
    assert!(message.contains("EMAIL:nobody@example.com"), "{message}");
    assert!(sandbox.journal().is_empty(), "{:?}", sandbox.journal());
}

#[test]
fn any_requester_with_rest_look_ups_keeps_the_unknown_lead_rule() {
    // Bridge::new (a requester of one's own) + lookups: look up, then run.
    let sandbox = Sandbox::start().unwrap();
    let rest = sandbox.rest_client().unwrap();
    let server = serve(Bridge::new(rest.clone(), auth(&sandbox)).lookups(rest));
    let client = client(&sandbox, &server);
    let unknown = with_an_unknown_lead();
    let (code, message) = soap_fault(client.request_campaign(&unknown));
    assert_eq!(code, SoapCode::LeadNotFound);
    assert!(message.contains("EMAIL:nobody@example.com"), "{message}");
    assert!(sandbox.journal().is_empty());
    let known = demo_request();
    client.request_campaign(&known).unwrap();
    assert_eq!(rest_runs(&sandbox.journal()), [(4496, vec![1002200])]);
}

#[test]
fn run_matched_leads_runs_the_others() {
    let sandbox = run_through(|b| b.run_matched_leads(true), &with_an_unknown_lead());
    assert_eq!(rest_runs(&sandbox.journal()), [(4496, vec![1002200])]);
}

#[test]
fn more_than_100_keys_are_all_served() {
    let sandbox = Sandbox::start_with(
        SandboxConfig::new().data(SandboxData::default().with_generated_leads(1, 250)),
    )
    .unwrap();
    let server = serve_rest(&sandbox, sandbox.rest_client().unwrap());
    let keys: String = (1..=250)
        .map(|n| {
            format!("<leadKey><keyType>EMAIL</keyType><keyValue>lead{n}@example.com</keyValue></leadKey>")
        })
        .collect();
    let (status, body) = post_signed(
        &sandbox,
        &server,
        "paramsRequestCampaign",
        &format!("<source>MKTOWS</source><campaignId>4496</campaignId><leadList>{keys}</leadList>"),
    );
    assert_eq!(status, 200, "{body}");
    let runs = rest_runs(&sandbox.journal());
    let served: Vec<u32> = runs.iter().flat_map(|(_, ids)| ids.clone()).collect();
    assert_eq!(served, (1..=250).collect::<Vec<u32>>());
    assert_eq!(
        runs.iter().map(|(_, ids)| ids.len()).collect::<Vec<_>>(),
        [100, 100, 50]
    );
}

#[test]
fn an_unknown_campaign_is_20113() {
    let (sandbox, server) = setup();
    let client = client(&sandbox, &server);
    for target in [
        CampaignTarget::id(9999),
        CampaignTarget::named("No Such Campaign", "Demo Program", []),
    ] {
        let request = CampaignRequest::new(target, [email("lead@company.com")]).unwrap();
        let (code, message) = soap_fault(client.request_campaign(&request));
        assert_eq!(code, SoapCode::CampaignNotFound, "{message}");
    }
    assert!(sandbox.journal().is_empty());
}

#[test]
fn an_unknown_outcome_says_may_have_run_and_is_not_retried() {
    let (sandbox, server) = setup();
    fault_on_triggers(
        &sandbox,
        SandboxFault::HttpStatus {
            status: 502,
            body: false,
            runs: true,
        },
    );
    let client = client(&sandbox, &server);
    let request = demo_request();
    let (code, message) = soap_fault(client.request_campaign(&request));
    assert_eq!(code, SoapCode::InternalError, "{message}");
    assert!(message.contains("may have run"), "{message}");
    assert!(message.contains("do not resend"), "{message}");
    assert_eq!(rest_runs(&sandbox.journal()), [(4496, vec![1002200])]);
}

#[test]
fn rate_limits_at_rest_become_20023() {
    // Without retries: the bridge's REST client would otherwise wait out
    // the limit within its retry budget.
    let sandbox = Sandbox::start().unwrap();
    let rest = sandbox
        .rest_client_builder()
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let server = serve_rest(&sandbox, rest);
    fault_on_triggers(&sandbox, SandboxFault::RestError(606));
    refused_with(&sandbox, &client(&sandbox, &server), SoapCode::RateLimited);
}

/// A call that the bridge's own limiter would keep waiting past the budget
/// is not sent: the caller gets 20023 (rate) or 20024 (concurrency) within
/// about the budget, nothing runs for it, and the sandbox never answers
/// 606/615.
#[test]
fn a_call_past_the_wait_budget_gets_20023_or_20024_and_is_not_sent() {
    let budget = Duration::from_millis(300);
    let request = demo_request();

    // Rate: 2 calls a minute; one SOAP call is a look-up and a trigger.
    let sandbox = Sandbox::start().unwrap();
    let rest = limited_rest(&sandbox, 2, Duration::from_secs(60), 10, budget);
    let server = serve_rest(&sandbox, rest);
    // Retries off: a SOAP client retries 20023 / 20024 by itself.
    let soap = client_with(&sandbox, &server, RetryPolicy::never());
    soap.request_campaign(&request).unwrap();
    let started = std::time::Instant::now();
    let (code, message) = soap_fault(soap.request_campaign(&request));
    let waited = started.elapsed();
    assert_eq!(code, SoapCode::RateLimited, "{message}");
    assert!(message.contains("not sent"), "{message}");
    assert!(
        waited >= budget && waited < budget * 4,
        "answered after {waited:?}"
    );
    assert_eq!(rest_runs(&sandbox.journal()).len(), 1);

    // Concurrency: one call at a time, each REST call 400 ms at the sandbox.
    let sandbox =
        Sandbox::start_with(SandboxConfig::new().latency(Duration::from_millis(400))).unwrap();
    let rest = limited_rest(&sandbox, 100, Duration::from_secs(20), 1, budget);
    let server = serve_rest(&sandbox, rest);
    let results: Vec<_> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..2)
            .map(|i| {
                let soap = client_with(&sandbox, &server, RetryPolicy::never());
                let request = &request;
                scope.spawn(move || {
                    std::thread::sleep(Duration::from_millis(100 * i));
                    soap.request_campaign(request)
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    // Whichever got the place first ran; the other was held past the budget.
    let (ran, held): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(ran.len(), 1, "{held:?}");
    let (code, message) = soap_fault(held.into_iter().next().unwrap());
    assert_eq!(code, SoapCode::ConcurrencyLimited, "{message}");
    assert_eq!(rest_runs(&sandbox.journal()).len(), 1);
}

#[test]
fn wsdl_names_the_bridge_in_any_case_and_version() {
    let (_sandbox, server) = setup();
    let base = format!("http://{}", server.addr());
    for query in ["WSDL", "wsdl", "Wsdl"] {
        let url = format!("{base}/soap/mktows/2_3?{query}");
        let (status, wsdl) = get(&url);
        assert_eq!(status, 200);
        assert!(
            wsdl.contains(&format!(
                r#"<soap:address location="{base}/soap/mktows/2_3"/>"#
            )),
            "{wsdl}"
        );
        assert!(wsdl.contains("getCampaignsForSource"));
    }
    assert_eq!(get(&format!("{base}/soap/mktows/3_0?WSDL")).0, 404);
    assert_eq!(get(&format!("{base}/healthz")), (200, "ok\n".into()));
}

#[test]
fn public_url_sets_the_soap_address() {
    let (_sandbox, server) = setup_with(|b| b.public_url("https://bridge.example.com/"));
    let (_, wsdl) = get(&format!("http://{}/soap/mktows/2_9?WSDL", server.addr()));
    assert!(
        wsdl.contains(r#"location="https://bridge.example.com/soap/mktows/2_9""#),
        "{wsdl}"
    );
}

#[test]
fn other_operations_are_refused_by_name() {
    let (sandbox, server) = setup();
    let body = fault_answer(
        post_signed(&sandbox, &server, "paramsListMObjects", ""),
        20012,
    );
    assert!(body.contains("listMObjects"), "{body}");
    assert!(body.contains("it serves requestCampaign, scheduleCampaign, getCampaignsForSource, syncLead, syncMultipleLeads, getLead, getMultipleLeads, describeMObject, listOperation, getLeadActivity, getLeadChanges, mergeLeads"), "{body}");
}

#[test]
fn get_campaigns_for_source_lists_requestable_campaigns() {
    let (sandbox, server) = setup();
    let body = listed(campaigns_for_source(
        &sandbox,
        &server,
        "<source>MKTOWS</source>",
    ));
    assert!(body.contains("<returnCount>2</returnCount>"), "{body}");
    assert!(
        body.contains("<id>4496</id><name>Request Campaign Demo</name>"),
        "{body}"
    );
    assert!(!body.contains("Monthly Newsletter"), "{body}");
    let (_, body) = campaigns_for_source(
        &sandbox,
        &server,
        "<source>MKTOWS</source><name>webinar</name>",
    );
    assert!(body.contains("<returnCount>1</returnCount>"), "{body}");
    assert!(body.contains("<id>1234</id>"), "{body}");
    // Sales Insight campaigns: REST cannot list them; said plainly.
    let body = fault_answer(
        campaigns_for_source(&sandbox, &server, "<source>SALES</source>"),
        20012,
    );
    assert!(body.contains("source SALES is not supported"), "{body}");
    fault_answer(
        post_signed_with(
            &sandbox,
            &server,
            "wrong",
            "paramsGetCampaignsForSource",
            "<source>MKTOWS</source>",
        ),
        20014,
    );
}

#[test]
fn schedule_campaign_goes_to_schedule_json() {
    let (sandbox, server) = setup();
    let (status, body) = post_signed(
        &sandbox,
        &server,
        "paramsScheduleCampaign",
        "<programName>Newsletters</programName><campaignName>Monthly Newsletter</campaignName>\
         <campaignRunAt>2030-08-01T10:00:00-07:00</campaignRunAt>",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("successScheduleCampaign"), "{body}");
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!(
        (journal[0].api.as_str(), journal[0].campaign_id),
        ("rest", 5000)
    );
}

#[test]
fn dry_run_answers_success_and_runs_nothing() {
    let sandbox = run_through(|b| b.dry_run(true), &demo_request());
    assert!(sandbox.journal().is_empty());
}

#[test]
fn metrics_count_calls_by_operation_and_result() {
    let (sandbox, server) = setup();
    let client = client(&sandbox, &server);
    let request = demo_request();
    client.request_campaign(&request).unwrap();
    let bad = CampaignRequest::new(CampaignTarget::id(9999), [email("lead@company.com")]).unwrap();
    let _ = client.request_campaign(&bad);
    let (status, metrics) = get(&format!("http://{}/metrics", server.addr()));
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"marketo_bridge_calls_total{operation="requestCampaign",result="success"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"marketo_bridge_calls_total{operation="requestCampaign",result="20113"} 1"#
        ),
        "{metrics}"
    );
    // Latency: both calls in the histogram, cumulative to +Inf.
    assert!(
        metrics.contains(
            r#"marketo_bridge_call_duration_seconds_bucket{operation="requestCampaign",le="+Inf"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"marketo_bridge_call_duration_seconds_count{operation="requestCampaign"} 2"#
        ),
        "{metrics}"
    );
    // The REST calls behind them: one token, a lead look-up and a trigger
    // each (REST answers its errors, 1013 here, with HTTP 200; the SOAP
    // result above names the code).
    let rest = |path: &str| {
        let prefix = format!("marketo_bridge_rest_calls_total{{path=\"{path}\",result=\"200\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .map(|n| n.parse::<u64>().unwrap())
    };
    assert_eq!(rest("/identity/oauth/token"), Some(1), "{metrics}");
    assert_eq!(
        rest("/rest/v1/campaigns/{id}/trigger.json"),
        Some(2),
        "{metrics}"
    );
    assert_eq!(rest("/rest/v1/leads.json"), Some(2), "{metrics}");
    assert!(!metrics.contains("client_secret"), "{metrics}");
    assert!(
        metrics.contains("marketo_bridge_rest_call_duration_seconds_count "),
        "{metrics}"
    );
}

#[test]
fn oversized_requests_are_refused_with_413() {
    let (_sandbox, server) = setup_with(|b| b.max_body_bytes(1000));
    let mut response = agent()
        .post(&server.endpoint())
        .send(&vec![b' '; 5000][..])
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let _ = response.body_mut().read_to_string();
}

/// A client that sends its headers slowly (or never) is cut off after the
/// read timeout, one whose body stalls gets 408; neither holds the bridge:
/// a SOAP client is served meanwhile, and nothing runs for the stalled ones.
#[test]
fn slow_clients_are_cut_off_and_do_not_hold_the_bridge() {
    use std::io::{Read, Write};
    let (sandbox, server) = setup_with(|b| b.read_timeout(Duration::from_millis(400)));
    let started = std::time::Instant::now();
    // Headers never finished.
    let mut slow_head = std::net::TcpStream::connect(server.addr()).unwrap();
    slow_head
        .write_all(b"POST /soap/mktows/2_9 HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Headers complete, body promised but never sent.
    let mut slow_body = std::net::TcpStream::connect(server.addr()).unwrap();
    slow_body
        .write_all(
            b"POST /soap/mktows/2_9 HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n<SOAP-ENV",
        )
        .unwrap();
    // Meanwhile an honest client is served at once.
    client(&sandbox, &server)
        .request_campaign(&demo_request())
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(400));
    for stream in [&slow_head, &slow_body] {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
    }
    let mut head_answer = Vec::new();
    let read = slow_head.read_to_end(&mut head_answer);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the stalled headers were not cut off"
    );
    // hyper closes the connection (it may first say 408).
    let head_answer = String::from_utf8_lossy(&head_answer);
    assert!(
        read.is_err() || head_answer.is_empty() || head_answer.starts_with("HTTP/1.1 408"),
        "{head_answer}"
    );
    let mut body_answer = String::new();
    let _ = slow_body.read_to_string(&mut body_answer);
    assert!(
        body_answer.starts_with("HTTP/1.1 408"),
        "a stalled body gets 408: {body_answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        rest_runs(&sandbox.journal()).len(),
        1,
        "only the honest call ran"
    );
}

#[test]
fn a_non_loopback_address_needs_consent() {
    let sandbox = Sandbox::start().unwrap();
    let bridge = Bridge::rest(sandbox.rest_client().unwrap(), auth(&sandbox));
    let err = bridge
        .serve("0.0.0.0:0".parse().unwrap(), false)
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

/// Whether `tool probe...` runs. When it does not: a notice that `test`
/// is skipped (`skipping {test} (set ...)`), or a failure naming `what`
/// when `MC_REQUIRE_CLIENTS=1`.
pub(crate) fn tool_available(tool: &str, probe: &[&str], what: &str, test: &str) -> bool {
    let required = std::env::var("MC_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
    let available = Command::new(tool)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            !required,
            "{what} is required (MC_REQUIRE_CLIENTS=1) but missing"
        );
        eprintln!("notice: skipping {test} (set MC_REQUIRE_CLIENTS=1 to fail instead)");
    }
    available
}

/// Runs an unmodified third-party SOAP client script against the bridge.
fn external_client(tool: &str, probe: &[&str], script: &str, expected: &[&str]) {
    if !tool_available(
        tool,
        probe,
        &format!("{tool} with its SOAP client"),
        &format!("the {tool} SOAP client test: {tool} or its SOAP library is missing"),
    ) {
        return;
    }
    let (sandbox, server) = setup();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bridge_clients")
        .join(script);
    let output = Command::new(tool)
        .arg(&script)
        .arg(format!("{}?WSDL", server.endpoint()))
        .arg(sandbox.soap_user_id())
        .arg(sandbox.soap_encryption_key())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{tool}: {stdout}\n{stderr}");
    // The script requests campaign 4496 for lead@company.com, then an
    // unknown lead (and expects fault 20103).
    assert!(stdout.contains("success: true"), "{stdout}\n{stderr}");
    assert!(stdout.contains("fault: 20103"), "{stdout}\n{stderr}");
    for line in expected {
        assert!(stdout.contains(line), "{line}: {stdout}\n{stderr}");
    }
    assert_eq!(rest_runs(&sandbox.journal()), [(4496, vec![1002200])]);
}

#[test]
fn php_soapclient_unmodified_through_the_bridge() {
    external_client(
        "php",
        &[
            "-r",
            "new SoapClient(null, ['location' => 'http://x', 'uri' => 'u']);",
        ],
        "request_campaign.php",
        &[],
    );
}

#[test]
fn python_zeep_unmodified_through_the_bridge() {
    external_client(
        "python3",
        &["-c", "import zeep"],
        "request_campaign.py",
        // getCampaignsForSource, by exact name.
        &["campaigns: 1 [4496]"],
    );
}

/// An unchanged SOAP integration, through the SOAP bridge, served by AJO:
/// the bridge keeps SOAP's unknown-lead rule with REST look-ups, and AJO
/// runs the campaign the map names.
#[test]
fn a_soap_integration_is_served_by_ajo_through_the_bridge() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(
        Bridge::new(sandbox.ajo_client().unwrap(), auth(&sandbox))
            .lookups(sandbox.rest_client().unwrap()),
    );
    let soap = client(&sandbox, &server);
    let request = webinar_request("Migrating off SOAP", "lead@company.com");
    soap.request_campaign(&request).unwrap();
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(
        (journal[0].api.as_str(), journal[0].lead_ids.as_slice()),
        ("ajo", &[1002200][..])
    );
    let execution = journal[0].ajo.as_ref().unwrap();
    assert_eq!(
        execution.campaign_id,
        "7c1e4b2a-9d3f-4e61-a8b5-3f2d1c0b1234"
    );
    assert_eq!(
        execution.recipients[0].context["WebinarTitle"],
        "Migrating off SOAP"
    );
    // An unknown lead: SOAP's fault, nothing run.
    let unknown = webinar_request("Migrating off SOAP", "nobody@company.com");
    assert!(matches!(
        soap.request_campaign(&unknown),
        Err(Error::SoapFault { .. })
    ));
    assert_eq!(sandbox.journal().len(), 1);
}

/// The bridge reaches the sandbox's REST side: its runs get their flows
/// too (the README's webinar flow, whose webhook calls the sandbox's echo).
#[test]
fn runs_through_the_bridge_call_the_webhooks_too() {
    let flow = include_str!("../../../../examples/webinar_flow.json");
    let data = SandboxData::from_json(flow).unwrap();
    let sandbox = Sandbox::start_with(SandboxConfig::new().data(data)).unwrap();
    let server = serve_for(&sandbox, |bridge| bridge);
    let title = "Q&A: \"SOAP\" → REST <live>";
    let request = webinar_request(title, "anotherlead@company.com");
    client(&sandbox, &server)
        .request_campaign(&request)
        .unwrap();
    assert!(
        sandbox.wait_for_flows(Duration::from_secs(20)),
        "flows did not finish"
    );
    let calls = sandbox.webhook_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!((calls[0].lead_id, calls[0].status), (1002201, Some(200)));
    let body: serde_json::Value = serde_json::from_str(&calls[0].body).unwrap();
    assert_eq!(body["title"], title);
    assert_eq!(body["email"], "anotherlead@company.com");
}

/// "Send Webinar Reminder" with the README's webinar tokens, `title`
/// included, for the lead of email `lead`.
fn webinar_request(title: &str, lead: &str) -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::named("Send Webinar Reminder", "Webinars", webinar_tokens(title)),
        [email(lead)],
    )
    .unwrap()
}

/// The README's webinar tokens, with `title`.
fn webinar_tokens(title: &str) -> Vec<ProgramToken> {
    vec![
        ProgramToken::new("{{my.WebinarTitle}}", title).unwrap(),
        ProgramToken::new("{{my.JoinLink}}", "https://example.com/join?a=1&b=\"2\"").unwrap(),
        ProgramToken::new("{{my.WebinarImage}}", "https://example.com/webinar.png").unwrap(),
    ]
}
