//! Fault injection in the sandbox: for each fault, what a client sees on
//! the wire (over ureq and raw TCP), and what the journal and the fault log
//! say ran. Also scheduling (Nth call, every Nth, limited times), the
//! admin endpoints, and the sandbox's own HTTP wire layer.
//!
//! Every wait is bounded: sockets and agents have timeouts, polls have
//! deadlines.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Delivery, Error, Fallback, LeadKey,
    Outcome, RestClient, SoapClient,
};
use marketo_sandbox::{
    Api, CutAt, Fault, FaultBody, FaultEvent, FaultRule, Sandbox, SandboxConfig, Schedule,
};
use serde_json::{json, Value};
use test_support::http::{agent, agent_with};

const TIMEOUT: Duration = Duration::from_secs(5);
const SOAP_ACTION: &str = "\"http://www.marketo.com/mktows/requestCampaign\"";
/// The lead `EMAIL:lead@company.com` is.
const LEAD: u32 = 1002200;

fn request() -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::id(4496),
        [LeadKey::email("lead@company.com").unwrap()],
    )
    .unwrap()
}

fn envelope(sandbox: &Sandbox) -> Vec<u8> {
    let request = request();
    sandbox
        .soap_client()
        .unwrap()
        .envelope(&request, request.leads())
        .unwrap()
}

/// Status and body of an exchange, or ureq's error.
type Exchange = Result<(u16, String), ureq::Error>;

fn finish(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Exchange {
    let mut response = response?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string()?;
    Ok((status, body))
}

/// One `requestCampaign` over SOAP.
fn soap_call(sandbox: &Sandbox, agent: &ureq::Agent) -> Exchange {
    finish(
        agent
            .post(sandbox.soap_endpoint())
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", SOAP_ACTION)
            .send(&envelope(sandbox)[..]),
    )
}

/// One identity call for a token: status and body.
fn identity(sandbox: &Sandbox) -> (u16, String) {
    finish(
        agent()
            .get(format!("{}/oauth/token", sandbox.identity_endpoint()))
            .query("grant_type", "client_credentials")
            .query("client_id", sandbox.client_id())
            .query("client_secret", sandbox.client_secret())
            .call(),
    )
    .unwrap()
}

/// One `requestCampaign` over SOAP with an agent that waits `timeout`:
/// it times out, after so long.
fn soap_call_times_out(sandbox: &Sandbox, timeout: Duration) -> Duration {
    let started = Instant::now();
    match soap_call(sandbox, &agent_with(timeout)) {
        Err(ureq::Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    started.elapsed()
}

/// A REST access token (an identity call).
fn token(sandbox: &Sandbox) -> String {
    let (status, body) = identity(sandbox);
    assert_eq!(status, 200, "{body}");
    json_of(&body)["access_token"].as_str().unwrap().to_owned()
}

/// One `trigger.json` call for [`LEAD`].
fn trigger(sandbox: &Sandbox, agent: &ureq::Agent, token: &str) -> Exchange {
    trigger_lead(sandbox, agent, token, LEAD)
}

/// One `trigger.json` call for the lead of id `lead`.
fn trigger_lead(sandbox: &Sandbox, agent: &ureq::Agent, token: &str, lead: u32) -> Exchange {
    finish(
        agent
            .post(format!(
                "{}/rest/v1/campaigns/4496/trigger.json",
                sandbox.rest_endpoint()
            ))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(json!({"input": {"leads": [{"id": lead}]}}).to_string()),
    )
}

/// One `campaigns.json` look-up (runs nothing).
fn lookup(sandbox: &Sandbox, agent: &ureq::Agent, token: &str) -> Exchange {
    finish(
        agent
            .get(format!(
                "{}/rest/v1/campaigns.json",
                sandbox.rest_endpoint()
            ))
            .header("Authorization", format!("Bearer {token}"))
            .call(),
    )
}

/// Adds fault rules over HTTP (`POST /sandbox/faults`).
fn add_faults(sandbox: &Sandbox, rules: &str) -> (u16, String) {
    admin("POST", sandbox, "/sandbox/faults", Some(rules))
}

fn admin(method: &str, sandbox: &Sandbox, path: &str, body: Option<&str>) -> (u16, String) {
    let url = format!("{}{path}", sandbox.base_url());
    let agent = agent();
    let response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, Some(body)) => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body),
        (_, None) => agent.post(url).send_empty(),
    };
    finish(response).unwrap()
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn soap_client(sandbox: &Sandbox, timeout: Duration) -> SoapClient {
    test_support::quiet_client!(sandbox.soap_client_builder(), timeout)
}

fn rest_client(sandbox: &Sandbox, timeout: Duration) -> RestClient {
    test_support::quiet_client!(sandbox.rest_client_builder(), timeout)
}

/// A raw SOAP request, as bytes on the wire.
fn raw_soap(sandbox: &Sandbox, extra_headers: &str) -> Vec<u8> {
    let body = envelope(sandbox);
    let mut raw = format!(
        "POST /soap/mktows/2_9 HTTP/1.1\r\nHost: sandbox\r\nContent-Type: text/xml; charset=utf-8\r\n\
         SOAPAction: {SOAP_ACTION}\r\nContent-Length: {}\r\n{extra_headers}\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    raw
}

/// Sends `request` on a fresh connection and reads until the server closes
/// it (or the read times out): the bytes, and how reading ended.
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> (Vec<u8>, std::io::Result<()>) {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(request).unwrap();
    let mut received = Vec::new();
    let ended = stream.read_to_end(&mut received).map(|_| ());
    (received, ended)
}

/// Splits a raw answer into head and body.
fn split(raw: &[u8]) -> (String, Vec<u8>) {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    (
        String::from_utf8_lossy(&raw[..at]).into_owned(),
        raw[at + 4..].to_vec(),
    )
}

/// The `Content-Length` of a raw head.
fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head}"))
}

/// Whether a TCP connection to `addr` is refused.
fn refused(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, TIMEOUT) {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
            true
        }
        Ok(_) => false,
    }
}

/// Waits (5 s at the most) until `addr` takes connections again.
fn wait_until_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while refused(addr) {
        assert!(Instant::now() < deadline, "the port never came back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Injects `fault` for the next SOAP call.
fn inject_soap(sandbox: &Sandbox, fault: Fault) {
    sandbox
        .inject(FaultRule::on_call(fault, 1).api(Api::Soap))
        .unwrap();
}

/// Asks for the campaign with a SOAP client that does not retry, and
/// checks the error says `delivery`.
fn soap_delivery(sandbox: &Sandbox, timeout: Duration, delivery: Delivery) -> Error {
    failed_with(
        soap_client(sandbox, timeout).request_campaign(&request()),
        delivery,
    )
}

/// [`soap_delivery`] over REST.
fn rest_delivery(sandbox: &Sandbox, timeout: Duration, delivery: Delivery) -> Error {
    failed_with(
        rest_client(sandbox, timeout).request_campaign(&request()),
        delivery,
    )
}

/// The error of a request that failed, saying `delivery`.
fn failed_with(result: Result<Outcome, Error>, delivery: Delivery) -> Error {
    let err = result.unwrap_err();
    assert_eq!(err.delivery(), delivery, "{err}");
    err
}

/// The fault log's entry for SOAP call `call`.
fn soap_event(call: u64, fault: &Fault, ran: bool) -> Value {
    event(Api::Soap, call, "/soap/mktows/2_9", fault, ran)
}

fn event(api: Api, call: u64, path: &str, fault: &Fault, ran: bool) -> Value {
    json!({"api": api, "call": call, "path": path, "fault": fault, "ran": ran})
}

fn log_json(sandbox: &Sandbox) -> Vec<Value> {
    sandbox
        .fault_log()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

fn one_soap_fault(fault: Fault) -> Sandbox {
    Sandbox::start_with(SandboxConfig::new().faults([FaultRule::on_call(fault, 1).api(Api::Soap)]))
        .unwrap()
}

// ---------------------------------------------------------------------------
// Connection-level faults

#[test]
fn refuse_connections_takes_a_separate_soap_port_down_and_back() {
    let sandbox = Sandbox::start_with(
        SandboxConfig::new().soap_listen(SocketAddr::from(([127, 0, 0, 1], 0))),
    )
    .unwrap();
    assert_ne!(sandbox.soap_addr(), sandbox.addr());
    assert!(sandbox
        .soap_endpoint()
        .starts_with(&format!("http://{}/", sandbox.soap_addr())));
    // A keep-alive connection is pooled by this agent...
    let pooled = agent();
    assert_eq!(soap_call(&sandbox, &pooled).unwrap().0, 200);

    let refuse = Fault::RefuseConnections { lasting: None };
    sandbox
        .inject(FaultRule::always(refuse.clone()).api(Api::Soap))
        .unwrap();
    assert!(refused(sandbox.soap_addr()));
    assert!(!refused(sandbox.addr()), "REST's port stays up");
    // ...and closed by the refusal, so the agent reconnects and is refused.
    match soap_call(&sandbox, &pooled) {
        Err(ureq::Error::Io(e)) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
        Err(ureq::Error::ConnectionFailed) => {}
        other => panic!("expected a refused connection, got {other:?}"),
    }
    soap_delivery(&sandbox, TIMEOUT, Delivery::NotSent);
    // REST still works meanwhile.
    let token = token(&sandbox);
    assert_eq!(trigger(&sandbox, &agent(), &token).unwrap().0, 200);
    let journal = sandbox.journal();
    assert_eq!(
        journal.iter().map(|e| e.api.as_str()).collect::<Vec<_>>(),
        ["soap", "rest"]
    );
    assert_eq!(
        log_json(&sandbox),
        [event(Api::Soap, 0, "", &refuse, false)]
    );

    sandbox.clear_faults();
    assert!(!refused(sandbox.soap_addr()));
    assert_eq!(soap_call(&sandbox, &pooled).unwrap().0, 200);
    assert_eq!(sandbox.journal().len(), 3);
}

#[test]
fn fallback_goes_to_rest_when_the_soap_port_refuses() {
    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .soap_listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .faults([FaultRule::always(Fault::RefuseConnections { lasting: None }).api(Api::Soap)]),
    )
    .unwrap();
    assert!(refused(sandbox.soap_addr()));
    let client = Fallback::new(
        soap_client(&sandbox, TIMEOUT),
        rest_client(&sandbox, TIMEOUT),
    );
    let outcome = client.request_campaign(&request()).unwrap();
    assert_eq!(outcome.chunks()[0].backend(), "rest");
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(
        (journal[0].api.as_str(), &journal[0].lead_ids[..]),
        ("rest", &[LEAD][..])
    );
}

#[test]
fn refusal_on_the_nth_call_then_for_a_while_on_a_shared_port() {
    let refuse = Fault::RefuseConnections {
        lasting: Some(Duration::from_millis(400)),
    };
    let sandbox = Sandbox::start().unwrap();
    let token = token(&sandbox);
    sandbox
        .inject(FaultRule::on_call(refuse.clone(), 3).api(Api::Rest))
        .unwrap();
    let pooled = agent();
    assert_eq!(lookup(&sandbox, &pooled, &token).unwrap().0, 200);
    // The call before the refusal is answered, on a connection that closes.
    let mut second = pooled
        .get(format!(
            "{}/rest/v1/campaigns.json",
            sandbox.rest_endpoint()
        ))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(
        second
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close")
    );
    second.body_mut().read_to_string().unwrap();
    let refused_at = Instant::now();
    assert!(refused(sandbox.addr()));
    assert!(lookup(&sandbox, &pooled, &token).is_err());
    // It listens again after 400 ms, on the same port.
    wait_until_listening(sandbox.addr());
    assert!(refused_at.elapsed() >= Duration::from_millis(300));
    // The rule struck once: later calls go through.
    for _ in 0..3 {
        assert_eq!(lookup(&sandbox, &pooled, &token).unwrap().0, 200);
    }
    assert_eq!(
        log_json(&sandbox),
        [event(Api::Rest, 0, "", &refuse, false)]
    );
    assert!(sandbox.journal().is_empty());
}

#[test]
fn reset_after_request_runs_nothing_and_answers_nothing() {
    let sandbox = one_soap_fault(Fault::ResetAfterRequest);
    let (received, ended) = raw_exchange(sandbox.addr(), &raw_soap(&sandbox, ""));
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    if let Err(e) = ended {
        assert!(
            matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
            ),
            "{e}"
        );
    }
    assert!(sandbox.journal().is_empty());
    assert_eq!(
        log_json(&sandbox),
        [soap_event(1, &Fault::ResetAfterRequest, false)]
    );
    // Over ureq and the client: an error, and the client cannot know.
    inject_soap(&sandbox, Fault::ResetAfterRequest);
    assert!(soap_call(&sandbox, &agent()).is_err());
    inject_soap(&sandbox, Fault::ResetAfterRequest);
    soap_delivery(&sandbox, TIMEOUT, Delivery::Unknown);
    assert!(sandbox.journal().is_empty());
    assert!(sandbox.fault_log().iter().all(|e| !e.ran));
    // The next call is served.
    assert_eq!(soap_call(&sandbox, &agent()).unwrap().0, 200);
    assert_eq!(sandbox.journal().len(), 1);
}

#[test]
fn reset_mid_response_runs_then_cuts_the_answer() {
    let sandbox = one_soap_fault(Fault::ResetMidResponse);
    let (received, _) = raw_exchange(sandbox.addr(), &raw_soap(&sandbox, ""));
    let (head, body) = split(&received);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let announced = content_length(&head);
    assert_eq!(body.len(), announced / 2, "{head}");
    assert_eq!(sandbox.journal().len(), 1);
    assert_eq!(
        log_json(&sandbox),
        [soap_event(1, &Fault::ResetMidResponse, true)]
    );
    // The client saw the campaign may have run.
    inject_soap(&sandbox, Fault::ResetMidResponse);
    soap_delivery(&sandbox, TIMEOUT, Delivery::Unknown);
    assert_eq!(sandbox.journal().len(), 2);
}

#[test]
fn a_call_that_fails_is_not_ran_even_when_the_fault_runs_it() {
    // A reset mid-response on a call the sandbox refuses (wrong lead).
    let sandbox = Sandbox::start_with(
        SandboxConfig::new().faults([FaultRule::always(Fault::ResetMidResponse)]),
    )
    .unwrap();
    let token = token(&sandbox);
    let bad = trigger_lead(&sandbox, &agent(), &token, 1);
    assert!(bad.is_err());
    assert!(lookup(&sandbox, &agent(), &token).is_err());
    assert!(sandbox.journal().is_empty());
    let log = sandbox.fault_log();
    assert_eq!(
        log.iter()
            .map(|e| (e.call, e.path.as_str(), e.ran))
            .collect::<Vec<_>>(),
        [
            (1, "/rest/v1/campaigns/4496/trigger.json", false),
            (2, "/rest/v1/campaigns.json", false)
        ]
    );
}

// ---------------------------------------------------------------------------
// Late and spoiled answers

#[test]
fn delay_past_the_client_timeout_after_the_campaign_ran() {
    let delay = Fault::Delay(Duration::from_millis(1500));
    let sandbox = one_soap_fault(delay.clone());
    assert!(
        soap_call_times_out(&sandbox, Duration::from_millis(300)) < Duration::from_millis(1400)
    );
    // The campaign ran before the wait.
    assert_eq!(sandbox.journal().len(), 1);
    assert_eq!(log_json(&sandbox), [soap_event(1, &delay, true)]);
    // The client says it may have run.
    inject_soap(&sandbox, delay.clone());
    soap_delivery(&sandbox, Duration::from_millis(300), Delivery::Unknown);
    assert_eq!(sandbox.journal().len(), 2);
    // A patient client gets the normal answer, late.
    inject_soap(&sandbox, Fault::Delay(Duration::from_millis(200)));
    let started = Instant::now();
    let (status, body) = soap_call(&sandbox, &agent()).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(status, 200);
    assert!(body.contains("<success>true</success>"), "{body}");
}

#[test]
fn http_statuses_with_and_without_a_body() {
    for status in [500u16, 502, 503] {
        for with_body in [true, false] {
            let fault = Fault::HttpStatus {
                status,
                body: with_body,
                runs: false,
            };
            let sandbox = one_soap_fault(fault.clone());
            let (got, body) = soap_call(&sandbox, &agent()).unwrap();
            assert_eq!(got, status);
            assert_eq!(
                body.contains(&format!("<h1>{status} ")),
                with_body,
                "{body}"
            );
            assert_eq!(body.is_empty(), !with_body);
            assert!(sandbox.journal().is_empty());
            assert_eq!(log_json(&sandbox), [soap_event(1, &fault, false)]);
            // Raw: the answer is framed, the connection stays usable.
            let (received, _) = raw_exchange(
                sandbox.addr(),
                &[raw_soap(&sandbox, "Connection: close\r\n")].concat(),
            );
            assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200 "));
        }
    }
    // A gateway error after the campaign ran.
    let fault = Fault::HttpStatus {
        status: 504,
        body: true,
        runs: true,
    };
    let sandbox =
        Sandbox::start_with(SandboxConfig::new().faults([FaultRule::on_call(fault, 1)])).unwrap();
    let token = token(&sandbox);
    let (status, _) = trigger(&sandbox, &agent(), &token).unwrap();
    assert_eq!(status, 504);
    assert_eq!(sandbox.journal().len(), 1);
    assert!(sandbox.fault_log()[0].ran);
}

#[test]
fn malformed_truncated_and_empty_bodies_after_the_campaign_ran() {
    let sandbox = Sandbox::start().unwrap();
    let token = token(&sandbox);
    // Normal answers, to compare with.
    let (_, soap_ok) = soap_call(&sandbox, &agent()).unwrap();
    let (_, rest_ok) = trigger(&sandbox, &agent(), &token).unwrap();
    sandbox.clear_journal();

    inject_soap(&sandbox, Fault::MalformedBody);
    let (status, body) = soap_call(&sandbox, &agent()).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.len(), soap_ok.len() + 1);
    assert!(body.ends_with("</xSOAP-ENV:Envelope>"), "{body}");
    sandbox
        .inject(FaultRule::on_call(Fault::MalformedBody, 1).api(Api::Rest))
        .unwrap();
    let (status, body) = trigger(&sandbox, &agent(), &token).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.len(), rest_ok.len());
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");

    sandbox
        .inject(FaultRule::on_call(Fault::TruncatedBody, 1))
        .unwrap();
    let (status, body) = soap_call(&sandbox, &agent()).unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, &soap_ok[..soap_ok.len() / 2])
    );
    sandbox
        .inject(FaultRule::on_call(Fault::TruncatedBody, 1))
        .unwrap();
    let (status, body) = trigger(&sandbox, &agent(), &token).unwrap();
    // The request ids differ (by a digit); the cut is at half the length.
    assert_eq!(status, 200);
    assert_eq!(body.len(), rest_ok.len() / 2, "{body}");
    assert!(rest_ok.starts_with(&body[..14]), "{body}");

    sandbox
        .inject(FaultRule::on_call(Fault::EmptyOk, 1))
        .unwrap();
    assert_eq!(soap_call(&sandbox, &agent()).unwrap(), (200, String::new()));
    sandbox
        .inject(FaultRule::on_call(Fault::EmptyOk, 1))
        .unwrap();
    assert_eq!(
        trigger(&sandbox, &agent(), &token).unwrap(),
        (200, String::new())
    );

    assert_eq!(sandbox.journal().len(), 6);
    let log = sandbox.fault_log();
    assert_eq!(log.len(), 6);
    assert!(log.iter().all(|e| e.ran), "{log:?}");
    assert_eq!(
        log.iter().map(|e| (e.api, e.call)).collect::<Vec<_>>(),
        [
            (Api::Soap, 2),
            (Api::Rest, 2),
            (Api::Soap, 3),
            (Api::Rest, 3),
            (Api::Soap, 4),
            (Api::Rest, 4)
        ]
    );

    // Each one leaves the clients unsure, and they say so.
    for fault in [Fault::MalformedBody, Fault::TruncatedBody, Fault::EmptyOk] {
        inject_soap(&sandbox, fault.clone());
        let err = soap_client(&sandbox, TIMEOUT)
            .request_campaign(&request())
            .unwrap_err();
        assert_eq!(err.delivery(), Delivery::Unknown, "{fault:?}: {err}");
    }
    assert_eq!(sandbox.journal().len(), 9);
}

// ---------------------------------------------------------------------------
// Marketo's own refusals

#[test]
fn soap_fault_on_the_nth_call() {
    let fault = Fault::SoapFault(20011);
    let sandbox =
        Sandbox::start_with(SandboxConfig::new().faults([FaultRule::on_call(fault.clone(), 2)]))
            .unwrap();
    assert_eq!(soap_call(&sandbox, &agent()).unwrap().0, 200);
    let (status, body) = soap_call(&sandbox, &agent()).unwrap();
    assert_eq!(status, 500);
    assert!(
        body.contains("<faultstring>20011 - Internal error</faultstring>"),
        "{body}"
    );
    assert!(body.contains("<code>20011</code>"), "{body}");
    assert_eq!(soap_call(&sandbox, &agent()).unwrap().0, 200);
    assert_eq!(sandbox.journal().len(), 2);
    assert_eq!(log_json(&sandbox), [soap_event(2, &fault, false)]);
    // The client reads it as a refusal with that code.
    sandbox
        .inject(FaultRule::on_call(Fault::SoapFault(20023), 1))
        .unwrap();
    let err = soap_delivery(&sandbox, TIMEOUT, Delivery::Refused);
    assert_eq!(err.soap_code().map(|c| c.code()), Some(20023));
    assert_eq!(sandbox.journal().len(), 2);
}

#[test]
fn rest_error_on_the_nth_call() {
    let sandbox = Sandbox::start().unwrap();
    let token = token(&sandbox);
    sandbox
        .inject(FaultRule::on_call(Fault::RestError(606), 2))
        .unwrap();
    assert_eq!(trigger(&sandbox, &agent(), &token).unwrap().0, 200);
    let (status, body) = trigger(&sandbox, &agent(), &token).unwrap();
    assert_eq!(status, 200);
    let body = json_of(&body);
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"][0]["code"], "606");
    assert!(body["requestId"].is_string());
    assert_eq!(trigger(&sandbox, &agent(), &token).unwrap().0, 200);
    assert_eq!(sandbox.journal().len(), 2);
    assert_eq!(
        log_json(&sandbox),
        [event(
            Api::Rest,
            2,
            "/rest/v1/campaigns/4496/trigger.json",
            &Fault::RestError(606),
            false
        )]
    );
    // A REST error never strikes SOAP calls, even for a rule on any API.
    sandbox
        .inject(FaultRule::always(Fault::RestError(611)).api(Api::Any))
        .unwrap();
    assert_eq!(soap_call(&sandbox, &agent()).unwrap().0, 200);
    // Over REST the lead (an email) is looked up first: 611 on that GET
    // means nothing was triggered.
    rest_delivery(&sandbox, TIMEOUT, Delivery::NotSent);
    assert_eq!(sandbox.journal().len(), 3);
    // 611 (system error) on the trigger itself may have run: Marketo does
    // not say an unhandled exception ran nothing.
    sandbox.clear_faults();
    sandbox
        .inject(FaultRule::always(Fault::RestError(611)).method("POST"))
        .unwrap();
    rest_delivery(&sandbox, TIMEOUT, Delivery::Unknown);
    assert_eq!(sandbox.journal().len(), 3);
    // 606 (rate) on the trigger is documented as refused before processing.
    sandbox.clear_faults();
    sandbox
        .inject(FaultRule::on_call(Fault::RestError(606), 1).method("POST"))
        .unwrap();
    rest_delivery(&sandbox, TIMEOUT, Delivery::Refused);
    assert_eq!(sandbox.journal().len(), 3);
    let log = sandbox.fault_log();
    assert_eq!(
        log.iter()
            .rev()
            .take(3)
            .map(|e| (e.path.as_str(), e.ran))
            .collect::<Vec<_>>(),
        [
            ("/rest/v1/campaigns/4496/trigger.json", false),
            ("/rest/v1/campaigns/4496/trigger.json", false),
            ("/rest/v1/leads.json", false)
        ]
    );
}

// ---------------------------------------------------------------------------
// Answers of any status and body, cut answers, stalls

/// The `Content-Type` of a raw head, if any.
fn content_type(head: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-type")
            .then(|| value.trim().to_owned())
    })
}

#[test]
fn answers_of_any_status_and_body_after_running_or_not() {
    let cases: [(u16, FaultBody, &str, &str); 6] = [
        (502, FaultBody::Empty, "", ""),
        (
            504,
            FaultBody::Text,
            "text/plain; charset=utf-8",
            "upstream request timeout",
        ),
        (
            502,
            FaultBody::Html,
            "text/html",
            "<head><title>502 Bad Gateway</title></head>",
        ),
        (
            503,
            FaultBody::SoapFault(20023),
            "text/xml; charset=utf-8",
            "<code>20023</code>",
        ),
        (
            200,
            FaultBody::SoapFault(20011),
            "text/xml; charset=utf-8",
            "<faultstring>20011 - Internal error</faultstring>",
        ),
        (
            503,
            FaultBody::RestError(611),
            "application/json;charset=UTF-8",
            r#""code":"611""#,
        ),
    ];
    for (status, body, kind, holds) in cases {
        for runs in [true, false] {
            let fault = Fault::Answer { status, body, runs };
            let sandbox = one_soap_fault(fault.clone());
            let (received, _) =
                raw_exchange(sandbox.addr(), &raw_soap(&sandbox, "Connection: close\r\n"));
            let (head, got) = split(&received);
            let got = String::from_utf8_lossy(&got);
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status} ")),
                "{fault:?}: {head}"
            );
            assert_eq!(content_type(&head).unwrap_or_default(), kind, "{fault:?}");
            assert_eq!(content_length(&head), got.len(), "{fault:?}: framed");
            assert!(got.contains(holds), "{fault:?}: {got}");
            assert_eq!(got.is_empty(), holds.is_empty(), "{fault:?}: {got}");
            assert_eq!(sandbox.journal().len(), usize::from(runs), "{fault:?}");
            assert_eq!(log_json(&sandbox), [soap_event(1, &fault, runs)]);
        }
    }
    // nginx's page, byte for byte.
    let sandbox = one_soap_fault(Fault::Answer {
        status: 504,
        body: FaultBody::Html,
        runs: false,
    });
    let (status, page) = soap_call(&sandbox, &agent()).unwrap();
    assert_eq!(status, 504);
    assert_eq!(
        page,
        "<html>\r\n<head><title>504 Gateway Timeout</title></head>\r\n<body>\r\n\
         <center><h1>504 Gateway Timeout</h1></center>\r\n<hr><center>nginx</center>\r\n\
         </body>\r\n</html>\r\n"
    );
    // Marketo's REST error after the trigger ran, and a SOAP fault sent to
    // a REST client (a rule may aim an answer at any API).
    let sandbox = Sandbox::start().unwrap();
    let token = token(&sandbox);
    for (fault, api) in [
        (
            Fault::Answer {
                status: 200,
                body: FaultBody::RestError(604),
                runs: true,
            },
            Api::Rest,
        ),
        (
            Fault::Answer {
                status: 200,
                body: FaultBody::SoapFault(20023),
                runs: true,
            },
            Api::Rest,
        ),
    ] {
        assert_eq!(FaultRule::always(fault.clone()).api_of(), fault.api());
        sandbox
            .inject(FaultRule::on_call(fault.clone(), 1).api(api))
            .unwrap();
        let (status, body) = trigger(&sandbox, &agent(), &token).unwrap();
        assert_eq!(status, 200);
        match fault {
            Fault::Answer {
                body: FaultBody::RestError(_),
                ..
            } => {
                let body = json_of(&body);
                assert_eq!(body["success"], false);
                assert_eq!(body["errors"][0]["code"], "604");
            }
            _ => assert!(body.contains("<code>20023</code>"), "{body}"),
        }
        sandbox.clear_faults();
    }
    assert_eq!(sandbox.journal().len(), 2, "both triggers ran");
    assert!(sandbox.fault_log().iter().all(|e| e.ran));
}

#[test]
fn cut_answers_look_the_same_whether_or_not_the_call_ran() {
    for at in [CutAt::BeforeAnswer, CutAt::MidBody, CutAt::ShortBody] {
        let mut seen = Vec::new();
        for runs in [true, false] {
            let fault = Fault::Cut { at, runs };
            let sandbox = one_soap_fault(fault.clone());
            let (received, _) = raw_exchange(sandbox.addr(), &raw_soap(&sandbox, ""));
            assert_eq!(sandbox.journal().len(), usize::from(runs), "{fault:?}");
            assert_eq!(log_json(&sandbox), [soap_event(1, &fault, runs)]);
            seen.push(received);
        }
        // The client cannot tell: the same bytes, ran or not.
        assert_eq!(seen[0], seen[1], "{at:?}");
        let received = &seen[0];
        match at {
            CutAt::BeforeAnswer => assert!(received.is_empty()),
            CutAt::MidBody => {
                let (head, body) = split(received);
                assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
                assert_eq!(body.len(), content_length(&head) / 2, "{head}");
                assert!(String::from_utf8_lossy(&body).starts_with("<?xml"));
            }
            _ => {
                let (head, body) = split(received);
                assert_eq!(body.len(), content_length(&head), "{head}");
                let body = String::from_utf8_lossy(&body);
                assert!(body.starts_with("<?xml"), "{body}");
                assert!(!body.contains("</SOAP-ENV:Envelope>"), "{body}");
            }
        }
    }
    // The same over REST: a cut success whether or not the trigger ran.
    let sandbox = Sandbox::start().unwrap();
    let token = token(&sandbox);
    let (_, whole) = trigger(&sandbox, &agent(), &token).unwrap();
    for runs in [true, false] {
        sandbox
            .inject(
                FaultRule::on_call(
                    Fault::Cut {
                        at: CutAt::ShortBody,
                        runs,
                    },
                    1,
                )
                .api(Api::Rest),
            )
            .unwrap();
        let (status, body) = trigger(&sandbox, &agent(), &token).unwrap();
        assert_eq!(status, 200);
        assert_eq!(body.len(), whole.len() / 2, "{body} / {whole}");
        assert!(body.starts_with(r#"{"errors":[],"requestId":""#), "{body}");
        sandbox.clear_faults();
    }
    assert_eq!(
        sandbox.journal().len(),
        2,
        "the normal call and the one that ran"
    );
    // An unrun cut on the identity service: a token answer, cut.
    sandbox
        .inject(
            FaultRule::on_call(
                Fault::Cut {
                    at: CutAt::ShortBody,
                    runs: false,
                },
                1,
            )
            .api(Api::Identity),
        )
        .unwrap();
    let (status, body) = identity(&sandbox);
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"{"access_token":"#), "{body}");
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
}

#[test]
fn stall_holds_the_request_then_closes_without_running_it() {
    let stall = Fault::Stall(Duration::from_millis(600));
    let sandbox = one_soap_fault(stall.clone());
    assert!(soap_call_times_out(&sandbox, Duration::from_millis(200)) < Duration::from_millis(550));
    // A patient client gets no answer at all, after the stall.
    inject_soap(&sandbox, stall.clone());
    let started = Instant::now();
    let (received, _) = raw_exchange(sandbox.addr(), &raw_soap(&sandbox, ""));
    assert!(received.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert!(sandbox.journal().is_empty(), "nothing ran");
    assert_eq!(
        log_json(&sandbox),
        [soap_event(1, &stall, false), soap_event(2, &stall, false)]
    );
    // The client says it may have run.
    inject_soap(&sandbox, stall);
    soap_delivery(&sandbox, Duration::from_millis(200), Delivery::Unknown);
    assert!(sandbox.journal().is_empty());
}

#[test]
fn rules_can_keep_to_a_method_and_a_path() {
    let sandbox = Sandbox::start().unwrap();
    // Over HTTP: only GETs of leads.json are struck, every one of them.
    let rule = r#"{"fault":{"kind":"malformed_body"},"api":"rest","method":"get","path_prefix":"/rest/v1/leads.json"}"#;
    let (status, body) = add_faults(&sandbox, rule);
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        json_of(&body),
        json!([{"fault": {"kind": "malformed_body"}, "api": "rest", "method": "GET", "path_prefix": "/rest/v1/leads.json"}])
    );
    let token = token(&sandbox);
    let leads = |agent: &ureq::Agent| {
        finish(
            agent
                .get(format!("{}/rest/v1/leads.json", sandbox.rest_endpoint()))
                .query("filterType", "email")
                .query("filterValues", "lead@company.com")
                .header("Authorization", format!("Bearer {token}"))
                .call(),
        )
        .unwrap()
    };
    let (status, body) = leads(&agent());
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    let (status, body) = lookup(&sandbox, &agent(), &token).unwrap();
    assert_eq!(status, 200);
    json_of(&body);
    let (status, body) = trigger(&sandbox, &agent(), &token).unwrap();
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["success"], true);
    let (_, body) = leads(&agent());
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    let log = sandbox.fault_log();
    assert_eq!(
        log.iter()
            .map(|e| (e.call, e.path.as_str()))
            .collect::<Vec<_>>(),
        [(1, "/rest/v1/leads.json"), (4, "/rest/v1/leads.json")]
    );
    // A rule for the 2nd trigger counts triggers only, look-ups aside.
    sandbox.clear_faults();
    sandbox
        .inject(
            FaultRule::on_call(Fault::EmptyOk, 2)
                .api(Api::Rest)
                .method("POST")
                .path_prefix("/rest/v1/campaigns/"),
        )
        .unwrap();
    assert_eq!(trigger(&sandbox, &agent(), &token).unwrap().0, 200);
    json_of(&lookup(&sandbox, &agent(), &token).unwrap().1);
    assert_eq!(
        trigger(&sandbox, &agent(), &token).unwrap(),
        (200, String::new())
    );
    // Refusals strike ports and take neither.
    for bad in [
        r#"{"fault":{"kind":"refuse_connections"},"method":"GET"}"#,
        r#"{"fault":{"kind":"empty_ok"},"path_prefix":"rest"}"#,
    ] {
        let (status, body) = add_faults(&sandbox, bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert!(sandbox
        .inject(FaultRule::always(Fault::RefuseConnections { lasting: None }).method("GET"))
        .is_err());
}

// ---------------------------------------------------------------------------
// Scheduling

#[test]
fn every_nth_call_a_limited_number_of_times() {
    let sandbox = Sandbox::start().unwrap();
    let rule = FaultRule::every(Fault::EmptyOk, 2).api(Api::Rest).times(2);
    assert_eq!(rule.schedule(), Schedule::Every(2));
    sandbox.inject(rule).unwrap();
    let token = token(&sandbox);
    let bodies: Vec<bool> = (0..7)
        .map(|_| lookup(&sandbox, &agent(), &token).unwrap().1.is_empty())
        .collect();
    assert_eq!(bodies, [false, true, false, true, false, false, false]);
    assert_eq!(
        sandbox
            .fault_log()
            .iter()
            .map(|e| e.call)
            .collect::<Vec<_>>(),
        [2, 4]
    );
    // Look-ups run nothing.
    assert!(sandbox.fault_log().iter().all(|e| !e.ran));
}

#[test]
fn always_and_the_first_rule_wins() {
    let sandbox = Sandbox::start_with(
        SandboxConfig::new().faults([
            FaultRule::on_call(Fault::SoapFault(20013), 2),
            FaultRule::always(Fault::HttpStatus {
                status: 503,
                body: false,
                runs: false,
            })
            .api(Api::Soap)
            .times(3),
        ]),
    )
    .unwrap();
    let statuses: Vec<u16> = (0..5)
        .map(|_| soap_call(&sandbox, &agent()).unwrap().0)
        .collect();
    // Call 2 is the SOAP fault's; the 503 rule keeps its strikes for 3 and 4.
    assert_eq!(statuses, [503, 500, 503, 503, 200]);
    assert_eq!(sandbox.journal().len(), 1);
}

#[test]
fn identity_calls_are_faulted_only_when_asked() {
    let sandbox = Sandbox::start_with(SandboxConfig::new().faults([FaultRule::always(
        Fault::HttpStatus {
            status: 500,
            body: true,
            runs: false,
        },
    )]))
    .unwrap();
    token(&sandbox);
    assert!(sandbox.fault_log().is_empty());
    sandbox.clear_faults();
    sandbox
        .inject(FaultRule::on_call(Fault::TruncatedBody, 1).api(Api::Identity))
        .unwrap();
    let (status, body) = identity(&sandbox);
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    let log = sandbox.fault_log();
    // The second identity call (the first was counted too).
    assert_eq!(
        (log[0].api, log[0].call, log[0].path.as_str(), log[0].ran),
        (Api::Identity, 2, "/identity/oauth/token", false)
    );
    // Admin endpoints are never faulted.
    sandbox
        .inject(FaultRule::always(Fault::ResetAfterRequest).api(Api::Any))
        .unwrap();
    assert_eq!(admin("GET", &sandbox, "/sandbox/journal", None).0, 200);
}

#[test]
fn rules_that_cannot_strike_are_refused() {
    let sandbox = Sandbox::start().unwrap();
    for rule in [
        FaultRule::always(Fault::SoapFault(20011)).api(Api::Rest),
        FaultRule::always(Fault::RestError(606)).api(Api::Identity),
        FaultRule::on_call(Fault::EmptyOk, 0),
        FaultRule::every(Fault::EmptyOk, 0),
        FaultRule::always(Fault::EmptyOk).times(0),
        FaultRule::always(Fault::HttpStatus {
            status: 200,
            body: true,
            runs: false,
        }),
    ] {
        assert!(sandbox.inject(rule.clone()).is_err(), "{rule:?}");
        assert!(
            Sandbox::start_with(SandboxConfig::new().faults([rule.clone()])).is_err(),
            "{rule:?}"
        );
    }
    assert!(sandbox.faults().is_empty());
}

// ---------------------------------------------------------------------------
// Administration over HTTP

#[test]
fn admin_endpoints_round_trip() {
    let sandbox = Sandbox::start().unwrap();
    let (status, body) = add_faults(
        &sandbox,
        r#"{"fault":{"kind":"http_status","status":502,"body":false},"api":"soap","on_call":2}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        json_of(&body),
        json!([{"fault": {"kind": "http_status", "status": 502, "body": false, "runs": false}, "api": "soap", "on_call": 2}])
    );
    // A bare fault strikes every call; an array adds several rules.
    let (status, body) = add_faults(
        &sandbox,
        r#"[{"kind":"rest_error","code":608},{"fault":{"kind":"delay","ms":10},"every":3,"times":1}]"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin("GET", &sandbox, "/sandbox/faults", None);
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!([
            {"fault": {"kind": "http_status", "status": 502, "body": false, "runs": false}, "api": "soap", "on_call": 2},
            {"fault": {"kind": "rest_error", "code": 608}, "api": "rest"},
            {"fault": {"kind": "delay", "ms": 10}, "api": "any", "every": 3, "times": 1},
        ])
    );
    assert_eq!(sandbox.faults().len(), 3);

    assert_eq!(soap_call(&sandbox, &agent()).unwrap().0, 200);
    assert_eq!(soap_call(&sandbox, &agent()).unwrap(), (502, String::new()));
    let (status, body) = admin("GET", &sandbox, "/sandbox/faults/log", None);
    assert_eq!(status, 200);
    let log: Vec<FaultEvent> = serde_json::from_str(&body).unwrap();
    assert_eq!(log, sandbox.fault_log());
    assert_eq!(
        json_of(&body),
        json!([{"api": "soap", "call": 2, "path": "/soap/mktows/2_9",
                "fault": {"kind": "http_status", "status": 502, "body": false, "runs": false}, "ran": false}])
    );

    for bad in [
        "not json",
        r#"{"kind":"teleport"}"#,
        r#"{"fault":{"kind":"soap_fault","code":20011},"api":"rest"}"#,
        r#"{"fault":{"kind":"empty_ok"},"on_call":0}"#,
        r#"[{"kind":"empty_ok"}, {"kind":"http_status","status":99}]"#,
    ] {
        let (status, body) = add_faults(&sandbox, bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(sandbox.faults().len(), 3, "a bad request adds nothing");

    assert_eq!(
        admin("DELETE", &sandbox, "/sandbox/faults/log", None).0,
        204
    );
    assert!(sandbox.fault_log().is_empty());
    assert_eq!(admin("DELETE", &sandbox, "/sandbox/faults", None).0, 204);
    assert!(sandbox.faults().is_empty());
    assert_eq!(admin("GET", &sandbox, "/sandbox/faults", None).1, "[]");

    // A timed refusal over HTTP, answered before the port closes.
    let (status, _) = add_faults(&sandbox, r#"{"kind":"refuse_connections","ms":300}"#);
    assert_eq!(status, 201);
    assert!(refused(sandbox.addr()));
    wait_until_listening(sandbox.addr());
    assert_eq!(admin("GET", &sandbox, "/sandbox/journal", None).0, 200);
}

// ---------------------------------------------------------------------------
// Lifecycle and the wire layer

#[test]
fn dropping_the_sandbox_stops_a_delayed_call_and_closes_the_port() {
    let sandbox = Sandbox::start_with(
        SandboxConfig::new().faults([FaultRule::always(Fault::Delay(Duration::from_secs(60)))]),
    )
    .unwrap();
    let addr = sandbox.addr();
    let raw = raw_soap(&sandbox, "");
    let waiting = std::thread::spawn(move || raw_exchange(addr, &raw));
    // Wait until the call ran (it is then in its delay).
    let deadline = Instant::now() + TIMEOUT;
    while sandbox.journal().is_empty() {
        assert!(Instant::now() < deadline, "the call never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    drop(sandbox);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (received, _) = waiting.join().unwrap();
    assert!(received.is_empty());
    assert!(refused(addr));
}

#[test]
fn keep_alive_pipelining_chunked_bodies_and_continue() {
    let sandbox = Sandbox::start().unwrap();
    let envelope = envelope(&sandbox);
    // Chunked, with 100-continue.
    let mut chunked = format!(
        "POST /soap/mktows/2_9 HTTP/1.1\r\nHost: s\r\nContent-Type: text/xml; charset=utf-8\r\n\
         SOAPAction: {SOAP_ACTION}\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    )
    .into_bytes();
    let (a, b) = envelope.split_at(envelope.len() / 3);
    for part in [a, b] {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    // Three requests pipelined on one connection; the last asks to close.
    let raw = [
        chunked,
        raw_soap(&sandbox, ""),
        b"GET /sandbox/journal HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n".to_vec(),
    ]
    .concat();
    let (received, ended) = raw_exchange(sandbox.addr(), &raw);
    ended.unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{text}");
    assert_eq!(sandbox.journal().len(), 2);
    assert!(text.ends_with(r#""ignored_keys":0}]"#), "{text}");

    // HTTP/1.0 closes unless asked; malformed requests get 4xx and a close.
    let (received, ended) = raw_exchange(sandbox.addr(), b"GET /sandbox/journal HTTP/1.0\r\n\r\n");
    ended.unwrap();
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200 OK\r\n"));
    for (raw, status) in [
        (&b"GARBAGE\r\n\r\n"[..], "400"),
        (b"GET / HTTP/2.0\r\n\r\n", "505"),
        (
            b"POST /soap/mktows/2_9 HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            "413",
        ),
        (
            b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "400",
        ),
    ] {
        let (received, _) = raw_exchange(sandbox.addr(), raw);
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
    }
    assert_eq!(sandbox.journal().len(), 2);
}

#[test]
fn every_call_is_answered_and_journaled_or_logged_under_concurrency() {
    // Calls 3, 6, 9... are dropped unanswered (nothing runs); calls 5, 10...
    // run and are cut mid-answer; 15, 30... are dropped (the first rule wins).
    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .rate_limit(1000, Duration::from_secs(20))
            .faults([
                FaultRule::every(Fault::ResetAfterRequest, 3).api(Api::Soap),
                FaultRule::every(Fault::ResetMidResponse, 5).api(Api::Soap),
            ]),
    )
    .unwrap();
    let (threads, calls) = (6, 10);
    let results: Vec<bool> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let agent = agent();
                    (0..calls)
                        .map(|_| match soap_call(&sandbox, &agent) {
                            Ok((200, body)) => body.contains("<success>true</success>"),
                            Ok((status, body)) => panic!("HTTP {status}: {body}"),
                            Err(_) => false,
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let answered = results.iter().filter(|ok| **ok).count();
    let log = sandbox.fault_log();
    let total = threads * calls;
    // Every call was either answered with success or struck by a fault...
    assert_eq!(answered + log.len(), total, "{log:?}");
    let mut numbers: Vec<u64> = log.iter().map(|e| e.call).collect();
    numbers.sort_unstable();
    let expected: Vec<u64> = (1..=total as u64)
        .filter(|n| n % 3 == 0 || n % 5 == 0)
        .collect();
    assert_eq!(numbers, expected);
    // ...and the journal holds exactly the successes and the faulted calls
    // that ran: none twice, none lost.
    let ran = log.iter().filter(|e| e.ran).count();
    assert_eq!(sandbox.journal().len(), answered + ran);
    assert!(log
        .iter()
        .all(|e| e.ran == (e.fault == Fault::ResetMidResponse)));
    assert_eq!(ran, expected.iter().filter(|n| *n % 3 != 0).count());
}
