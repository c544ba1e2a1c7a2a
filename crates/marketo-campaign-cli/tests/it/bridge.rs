//! `marketo-campaign bridge`, run as a process: with its embedded sandbox,
//! over REST and over Journey Optimizer, and its graceful shutdown.

use crate::common;

use std::process::Command;
use std::time::Duration;

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Error, LeadKey, ProgramToken, RetryPolicy,
    SoapClient, SoapCode,
};
use marketo_sandbox::JournalEntry;
use test_support::http::{agent, get};

/// `marketo-campaign bridge --sandbox` as a child process (stderr piped),
/// and its start-up line.
fn cli_bridge_with_sandbox() -> (std::process::Child, serde_json::Value) {
    cli_bridge_with_sandbox_and(&[])
}

fn cli_bridge_with_sandbox_and(extra: &[&str]) -> (std::process::Child, serde_json::Value) {
    let mut args = vec!["bridge", "--sandbox", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    common::spawn_with_start_line(&args)
}

fn email(value: &str) -> LeadKey {
    LeadKey::email(value).unwrap()
}

/// `bridge --backend ajo`: an unchanged SOAP call by campaign name,
/// program and tokens runs the mapped Journey Optimizer campaign, the
/// tokens as each recipient's context; an unknown lead is still 20103 (the
/// sandbox's REST side looks keys up first) and runs nothing.
#[test]
fn the_cli_bridge_serves_soap_calls_through_journey_optimizer() {
    let (mut child, start) = cli_bridge_with_sandbox_and(&["--backend", "ajo"]);
    assert_eq!(start["backend"], "ajo");
    let client = SoapClient::builder(
        start["bridge_endpoint"].as_str().unwrap(),
        start["soap_user_id"].as_str().unwrap(),
        start["soap_encryption_key"].as_str().unwrap(),
    )
    .retry(RetryPolicy::never())
    .build()
    .unwrap();
    let tokens = [
        ProgramToken::new("{{my.WebinarTitle}}", "Fall & <more>").unwrap(),
        ProgramToken::new("{{my.JoinLink}}", "https://example.com/j?a=1&b=2").unwrap(),
    ];
    let request = CampaignRequest::new(
        CampaignTarget::named("Send Webinar Reminder", "Webinars", tokens),
        [email("lead@company.com")],
    )
    .unwrap();
    let served = client.request_campaign(&request);
    let unknown = client.request_campaign(
        &CampaignRequest::new(CampaignTarget::id(1234), [email("nobody@nowhere.example")]).unwrap(),
    );
    let (_, journal) = get(start["journal"].as_str().unwrap());
    child.kill().unwrap();
    let _ = child.wait();
    served.unwrap();
    let Err(Error::SoapFault { code, message }) = unknown else {
        panic!("expected a SOAP fault, got {unknown:?}");
    };
    assert_eq!(code, SoapCode::LeadNotFound, "{message}");
    let journal: Vec<JournalEntry> = serde_json::from_str(&journal).unwrap();
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!(journal[0].api, "ajo");
    let execution = journal[0].ajo.as_ref().unwrap();
    assert_eq!(execution.recipients.len(), 1);
    let recipient = &execution.recipients[0];
    assert_eq!(
        (recipient.user_id.as_str(), recipient.namespace.as_str()),
        ("lead@company.com", "email")
    );
    assert_eq!(
        recipient.context.get("WebinarTitle").map(String::as_str),
        Some("Fall & <more>")
    );
    assert_eq!(
        recipient.context.get("JoinLink").map(String::as_str),
        Some("https://example.com/j?a=1&b=2")
    );
}

#[test]
fn the_cli_bridge_with_its_sandbox_serves_a_soap_client() {
    let (mut child, start) = cli_bridge_with_sandbox();
    let endpoint = start["bridge_endpoint"].as_str().unwrap().to_owned();
    let (status, wsdl) = get(start["wsdl"].as_str().unwrap());
    assert_eq!(status, 200);
    assert!(
        wsdl.contains(&format!(r#"location="{endpoint}""#)),
        "{wsdl}"
    );
    let client = SoapClient::builder(
        &endpoint,
        start["soap_user_id"].as_str().unwrap(),
        start["soap_encryption_key"].as_str().unwrap(),
    )
    .build()
    .unwrap();
    let request =
        CampaignRequest::new(CampaignTarget::id(4496), [email("lead@company.com")]).unwrap();
    let result = client.request_campaign(&request);
    let (_, journal) = get(start["journal"].as_str().unwrap());
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    result.unwrap();
    let journal: Vec<JournalEntry> = serde_json::from_str(&journal).unwrap();
    // One run, over REST.
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!(
        (
            journal[0].api.as_str(),
            journal[0].campaign_id,
            &journal[0].lead_ids[..]
        ),
        ("rest", 4496, &[1002200][..])
    );
    // One log line for the call, without the key or the signature.
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("operation=requestCampaign campaign=\"4496\" leads=1 result=success"),
        "{log}"
    );
    assert!(
        !log.contains(start["soap_encryption_key"].as_str().unwrap()),
        "{log}"
    );
}

#[test]
fn sigterm_finishes_the_call_in_hand_then_exits_0() {
    let (child, start) = cli_bridge_with_sandbox();
    let journal = start["journal"].as_str().unwrap();
    let sandbox_base = journal.trim_end_matches("/sandbox/journal");
    // The trigger runs, then its answer takes 1.5 s.
    let mut response = agent()
        .post(&format!("{sandbox_base}/sandbox/faults"))
        .header("Content-Type", "application/json")
        .send(r#"{"fault":{"kind":"delay","ms":1500},"api":"rest","path_prefix":"/rest/v1/campaigns/4496/trigger"}"#)
        .unwrap();
    assert!(response.status().is_success());
    let _ = response.body_mut().read_to_string();
    let client = SoapClient::builder(
        start["bridge_endpoint"].as_str().unwrap(),
        start["soap_user_id"].as_str().unwrap(),
        start["soap_encryption_key"].as_str().unwrap(),
    )
    .build()
    .unwrap();
    let call = std::thread::spawn(move || {
        let request =
            CampaignRequest::new(CampaignTarget::id(4496), [email("lead@company.com")]).unwrap();
        client.request_campaign(&request)
    });
    std::thread::sleep(Duration::from_millis(600));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let result = call.join().unwrap();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(result.is_ok(), "{result:?}\n{log}");
    assert!(output.status.success(), "{:?}\n{log}", output.status);
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("result=success"), "{log}");
}
