//! Campaign flows with Call Webhook, against a real HTTP receiver on
//! loopback: what arrives, byte for byte; what is journaled; what response
//! mappings do to the lead.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use marketo_campaign::webhook::Webhook;
use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, ProgramToken};
use marketo_sandbox::{
    Api, Fault, FaultRule, FlowStep, Sandbox, SandboxConfig, SandboxData, WebhookCall,
};

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A receiver on loopback: `/ok…` answers 200, `/fail…` 500, `/slow…`
/// sleeps 2.5 s then answers 200; every answer is
/// `{"registrant":{"id":"R-7"}}`.
struct Receiver {
    base: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let at = Instant::now();
                let mut body = Vec::new();
                request.as_reader().read_to_end(&mut body).unwrap();
                let url = request.url().to_owned();
                log.lock().unwrap().push(Received {
                    method: request.method().to_string(),
                    url: url.clone(),
                    headers: request
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                    at,
                });
                thread::spawn(move || {
                    let status = if url.starts_with("/fail") { 500 } else { 200 };
                    if url.starts_with("/slow") {
                        thread::sleep(Duration::from_millis(2500));
                    }
                    let answer = tiny_http::Response::from_string(r#"{"registrant":{"id":"R-7"}}"#)
                        .with_status_code(status);
                    let _ = request.respond(answer);
                });
            }
        });
        Receiver { base, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn webhook(json: serde_json::Value) -> Webhook {
    Webhook::from_json(&json.to_string()).unwrap()
}

/// A POST webhook at `url` sending `template` with tokens encoded as
/// `encoding` (`json` or `form`).
fn post_webhook(name: &str, url: &str, template: &str, encoding: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "url": url,
        "request_type": "POST",
        "template": template,
        "request_token_encoding": encoding,
    })
}

/// The README's webinar webhook, JSON-encoded, at `url`.
fn json_webhook(name: &str, url: &str) -> Webhook {
    let mut hook = post_webhook(
        name,
        url,
        "{\"email\": {{lead.Email Address}}, \"title\": {{my.WebinarTitle}}, \"join\": {{my.JoinLink}}, \"image\": {{my.WebinarImage}}}",
        "json",
    );
    hook["headers"] = serde_json::json!([
        {"name": "Content-Type", "value": "application/json"},
        {"name": "X-Webinar", "value": "{{my.WebinarTitle}}"}
    ]);
    hook["response_mappings"] =
        serde_json::json!([{"attribute": "registrant.id", "field": "webinarRegistrantId"}]);
    webhook(hook)
}

/// The same, form-encoded.
fn form_webhook(name: &str, url: &str) -> Webhook {
    webhook(post_webhook(
        name,
        url,
        "email={{lead.Email Address}}&title={{my.WebinarTitle}}&join={{my.JoinLink}}&image={{my.WebinarImage}}",
        "form",
    ))
}

/// The default data, with campaign 1234's flow calling `webhooks` in order.
fn sandbox(webhooks: Vec<Webhook>, timeout: Duration) -> Sandbox {
    let mut data = SandboxData::default();
    let campaign = data.campaigns.iter_mut().find(|c| c.id == 1234).unwrap();
    campaign.flow = webhooks
        .iter()
        .map(|w| FlowStep::CallWebhook(w.name.clone()))
        .collect();
    campaign.token_defaults.insert(
        "{{my.WebinarImage}}".into(),
        "https://example.com/default.png".into(),
    );
    data.webhooks = webhooks;
    Sandbox::start_with(SandboxConfig::new().data(data).webhook_timeout(timeout)).unwrap()
}

const TITLE: &str = "Q&A: \"SOAP\" → REST <live>\n{{my.JoinLink}} 100%+";
const JOIN: &str = "https://example.com/join?a=1&b=2";

fn tokens() -> Vec<ProgramToken> {
    vec![
        ProgramToken::new("{{my.WebinarTitle}}", TITLE).unwrap(),
        ProgramToken::new("{{my.JoinLink}}", JOIN).unwrap(),
    ]
}

fn calls_after_flows(sandbox: &Sandbox) -> Vec<WebhookCall> {
    assert!(
        sandbox.wait_for_flows(Duration::from_secs(20)),
        "flows did not finish"
    );
    sandbox.webhook_calls()
}

/// The JSON body of a GET.
fn get_json<T: serde::de::DeserializeOwned>(
    request: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
) -> T {
    let text = request.call().unwrap().body_mut().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `GET /rest/v1/leads.json?filterType=id&filterValues=ID&fields=FIELDS`, by
/// hand, with a token from the identity service.
fn rest_lead(sandbox: &Sandbox, id: u32, fields: &str) -> serde_json::Value {
    let agent = ureq::Agent::new_with_defaults();
    let token: serde_json::Value = get_json(agent.get(format!(
        "{}/oauth/token?grant_type=client_credentials&client_id={}&client_secret={}",
        sandbox.identity_endpoint(),
        sandbox.client_id(),
        sandbox.client_secret()
    )));
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let answer: serde_json::Value = get_json(
        agent
            .get(format!(
                "{}/rest/v1/leads.json?filterType=id&filterValues={id}&fields={fields}",
                sandbox.rest_endpoint()
            ))
            .header("Authorization", &bearer),
    );
    assert_eq!(answer["success"], true, "{answer}");
    answer["result"][0].clone()
}

/// A receiver, and a sandbox whose campaign 1234 calls one JSON webhook,
/// "Register", at the receiver's `/ok`.
fn register_hook() -> (Receiver, Sandbox) {
    let receiver = Receiver::start();
    let sandbox = sandbox(
        vec![json_webhook("Register", &format!("{}/ok", receiver.base))],
        Duration::from_secs(30),
    );
    (receiver, sandbox)
}

/// The lead of id `id`.
fn lead(id: u32) -> LeadKey {
    LeadKey::id(id).unwrap()
}

/// A request of `target` for one lead.
fn request(target: CampaignTarget, lead: LeadKey) -> CampaignRequest {
    CampaignRequest::new(target, [lead]).unwrap()
}

/// Requests `target` for `lead` over REST.
fn over_rest(sandbox: &Sandbox, target: CampaignTarget, lead: LeadKey) {
    sandbox
        .rest_client()
        .unwrap()
        .request_campaign(&request(target, lead))
        .unwrap();
}

#[test]
fn the_webinar_example_arrives_byte_for_byte_in_json_and_form() {
    let receiver = Receiver::start();
    let sandbox = sandbox(
        vec![
            json_webhook(
                "Register (JSON)",
                &format!(
                    "{}/ok/json?title={{{{my.WebinarTitle}}}}&fixed=%26&x=1",
                    receiver.base
                ),
            ),
            form_webhook("Register (form)", &format!("{}/ok/form", receiver.base)),
        ],
        Duration::from_secs(30),
    );
    // REST, by id with tokens.
    over_rest(
        &sandbox,
        CampaignTarget::id_with_tokens(1234, tokens()),
        LeadKey::email("lead@company.com").unwrap(),
    );
    let calls = calls_after_flows(&sandbox);
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:#?}");

    let json = &received[0];
    assert_eq!(json.method, "POST");
    assert_eq!(
        json.url,
        "/ok/json?title=Q%26A%3A%20%22SOAP%22%20%E2%86%92%20REST%20%3Clive%3E%0A%7B%7Bmy.JoinLink%7D%7D%20100%25%2B&fixed=%26&x=1"
    );
    assert_eq!(
        String::from_utf8(json.body.clone()).unwrap(),
        "{\"email\": \"lead@company.com\", \"title\": \"Q&A: \\\"SOAP\\\" → REST <live>\\n{{my.JoinLink}} 100%+\", \
         \"join\": \"https://example.com/join?a=1&b=2\", \"image\": \"https://example.com/default.png\"}"
    );
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    assert_eq!(
        json.header("X-Webinar"),
        Some("Q&A: \"SOAP\" %E2%86%92 REST <live>%0A{{my.JoinLink}} 100%25+")
    );
    let parsed: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(parsed["title"], TITLE);

    let form = &received[1];
    assert_eq!(form.url, "/ok/form");
    assert_eq!(
        form.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        String::from_utf8(form.body.clone()).unwrap(),
        "email=lead%40company.com\
         &title=Q%26A%3A+%22SOAP%22+%E2%86%92+REST+%3Clive%3E%0A%7B%7Bmy.JoinLink%7D%7D+100%25%2B\
         &join=https%3A%2F%2Fexample.com%2Fjoin%3Fa%3D1%26b%3D2\
         &image=https%3A%2F%2Fexample.com%2Fdefault.png"
    );

    // The journal says what was sent, to whom, and what came of it.
    let call = &calls[0];
    assert_eq!((call.campaign_id, call.lead_id), (1234, 1002200));
    assert_eq!(call.webhook, "Register (JSON)");
    assert_eq!(call.method, "POST");
    assert_eq!(call.url, format!("{}{}", receiver.base, json.url));
    assert_eq!(call.body.as_bytes(), json.body.as_slice());
    assert_eq!(call.status, Some(200));
    assert_eq!(call.error, None);
    assert_eq!(call.tokens.len(), 2);
    assert_eq!(
        (call.tokens[0].name.as_str(), call.tokens[0].value.as_str()),
        ("{{my.WebinarTitle}}", TITLE)
    );
    assert_eq!(
        call.mapped.get("webinarRegistrantId").map(String::as_str),
        Some("R-7")
    );
    assert_eq!(calls[1].body.as_bytes(), form.body.as_slice());
    assert!(calls[1].mapped.is_empty());

    // SOAP, by name with tokens: the same bytes arrive.
    sandbox.clear_webhook_calls();
    let request = request(
        CampaignTarget::named("Send Webinar Reminder", "Webinars", tokens()),
        LeadKey::email("lead@company.com").unwrap(),
    );
    sandbox
        .soap_client()
        .unwrap()
        .request_campaign(&request)
        .unwrap();
    assert_eq!(calls_after_flows(&sandbox).len(), 2);
    let again = receiver.received();
    assert_eq!(again.len(), 4);
    assert_eq!(again[2].body, received[0].body);
    assert_eq!(again[2].url, received[0].url);
    assert_eq!(again[3].body, received[1].body);

    // GET /sandbox/webhooks lists the same calls.
    let listed: Vec<WebhookCall> = get_json(ureq::get(format!(
        "{}/sandbox/webhooks",
        sandbox.base_url()
    )));
    assert_eq!(listed, sandbox.webhook_calls());
}

#[test]
fn a_2xx_mapping_updates_the_lead_seen_by_a_later_leads_json() {
    let (_receiver, sandbox) = register_hook();
    assert_eq!(
        rest_lead(&sandbox, 1002201, "email,webinarRegistrantId"),
        serde_json::json!({"id": 1002201, "email": "anotherlead@company.com"})
    );
    over_rest(
        &sandbox,
        CampaignTarget::id_with_tokens(1234, tokens()),
        lead(1002201),
    );
    let calls = calls_after_flows(&sandbox);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].lead_id, 1002201);
    assert_eq!(
        rest_lead(&sandbox, 1002201, "email,webinarRegistrantId"),
        serde_json::json!({"id": 1002201, "email": "anotherlead@company.com", "webinarRegistrantId": "R-7"})
    );
    // The other lead is untouched.
    assert_eq!(
        rest_lead(&sandbox, 1002200, "webinarRegistrantId"),
        serde_json::json!({"id": 1002200})
    );
}

#[test]
fn a_500_or_a_timeout_maps_nothing_and_is_journaled() {
    let receiver = Receiver::start();
    let sandbox = sandbox(
        vec![
            json_webhook("Failing", &format!("{}/fail", receiver.base)),
            json_webhook("Slow", &format!("{}/slow", receiver.base)),
        ],
        Duration::from_secs(1),
    );
    let request = request(
        CampaignTarget::id_with_tokens(1234, tokens()),
        lead(1002200),
    );
    let started = Instant::now();
    sandbox
        .rest_client()
        .unwrap()
        .request_campaign(&request)
        .unwrap();
    // The API call does not wait for the flow (a 1 s timeout, a 2.5 s service).
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let calls = calls_after_flows(&sandbox);
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0].status, Some(500), "{calls:#?}");
    assert_eq!(calls[0].error, None);
    assert!(calls[0].mapped.is_empty());
    assert_eq!(calls[1].status, None);
    let error = calls[1].error.as_deref().unwrap_or_default();
    assert!(error.to_lowercase().contains("time"), "{error}");
    assert!(calls[1].latency_ms >= 950, "{}", calls[1].latency_ms);
    assert!(calls[1].latency_ms < 2400, "{}", calls[1].latency_ms);
    assert!(calls[1].mapped.is_empty());
    // Both requests did arrive.
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(
        rest_lead(&sandbox, 1002200, "webinarRegistrantId"),
        serde_json::json!({"id": 1002200})
    );
}

#[test]
fn batch_campaigns_refuse_call_webhook_at_load() {
    let mut data = SandboxData {
        webhooks: vec![form_webhook("Hook", "https://example.com/hook")],
        ..SandboxData::default()
    };
    let batch = data.campaigns.iter_mut().find(|c| c.id == 5000).unwrap();
    assert!(!batch.requestable);
    batch.flow = vec![FlowStep::CallWebhook("Hook".into())];
    let err = Sandbox::start_with(SandboxConfig::new().data(data.clone())).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("campaign 5000 \"Monthly Newsletter\" is a batch campaign")
            && message.contains("Call Webhook works only in trigger campaigns"),
        "{message}"
    );
    let json = serde_json::to_string(&data).unwrap();
    assert_eq!(
        SandboxData::from_json(&json).unwrap_err().to_string(),
        message
    );

    let mut data = SandboxData::default();
    data.campaigns[0].flow = vec![FlowStep::CallWebhook("Nope".into())];
    let err = Sandbox::start_with(SandboxConfig::new().data(data)).unwrap_err();
    assert!(
        err.to_string().contains("no webhook is named \"Nope\""),
        "{err}"
    );
}

#[test]
fn campaigns_without_flows_call_nothing() {
    let (receiver, sandbox) = register_hook();
    over_rest(&sandbox, CampaignTarget::id(4496), lead(1002200));
    assert!(sandbox.wait_for_flows(Duration::from_secs(5)));
    assert!(sandbox.webhook_calls().is_empty());
    assert!(receiver.received().is_empty());
    assert_eq!(sandbox.journal().len(), 1);
}

/// Flows start once the API call is answered, not when the run is
/// journaled: with the trigger's answer held back 1 s (after the run), the
/// webhook arrives after that second.
#[test]
fn webhooks_are_called_after_the_api_call_is_answered() {
    let (receiver, sandbox) = register_hook();
    sandbox
        .inject(
            FaultRule::always(Fault::Delay(Duration::from_secs(1)))
                .api(Api::Rest)
                .path_prefix("/rest/v1/campaigns/1234/trigger.json"),
        )
        .unwrap();
    let request = request(
        CampaignTarget::id_with_tokens(1234, tokens()),
        lead(1002200),
    );
    let client = sandbox.rest_client().unwrap();
    let started = Instant::now();
    client.request_campaign(&request).unwrap();
    let answered = started.elapsed();
    assert!(answered >= Duration::from_secs(1), "{answered:?}");
    assert_eq!(calls_after_flows(&sandbox).len(), 1);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let arrived = received[0].at.duration_since(started);
    assert!(
        arrived >= Duration::from_millis(990),
        "arrived after {arrived:?}, answered after {answered:?}"
    );
    assert!(sandbox.fault_log()[0].ran);
}

/// A request without the tokens the webhook uses: they are sent as written,
/// and the journal says so.
#[test]
fn missing_tokens_are_sent_as_written_and_journaled_as_warnings() {
    let (receiver, sandbox) = register_hook();
    over_rest(&sandbox, CampaignTarget::id(1234), lead(1002200));
    let calls = calls_after_flows(&sandbox);
    assert_eq!(
        String::from_utf8(receiver.received()[0].body.clone()).unwrap(),
        "{\"email\": \"lead@company.com\", \"title\": {{my.WebinarTitle}}, \"join\": {{my.JoinLink}}, \
         \"image\": \"https://example.com/default.png\"}"
    );
    assert_eq!(calls[0].warnings.len(), 2, "{:?}", calls[0].warnings);
    assert!(calls[0].warnings[0].contains("{{my.WebinarTitle}}"));
    assert!(calls[0].warnings[1].contains("{{my.JoinLink}}"));
}
