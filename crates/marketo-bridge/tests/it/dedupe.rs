//! Resend protection (`Bridge::dedupe_window`): a campaign call resent
//! within the window runs once, whether the first was answered or is
//! still being served; calls that provably ran nothing are not
//! remembered; without a window every call runs.

use std::time::Duration;

use marketo_bridge::{Bridge, RunningBridge};
use marketo_campaign::soap::Authenticator;
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, RetryPolicy, SoapClient,
};
use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig};

fn serve(sandbox: &Sandbox, window: Duration) -> RunningBridge {
    let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    Bridge::rest(sandbox.rest_client().unwrap(), auth)
        .dedupe_window(window)
        .serve("127.0.0.1:0".parse().unwrap(), false)
        .unwrap()
}

fn client(sandbox: &Sandbox, server: &RunningBridge) -> SoapClient {
    SoapClient::builder(
        server.endpoint(),
        sandbox.soap_user_id(),
        sandbox.soap_encryption_key(),
    )
    .retry(RetryPolicy::never())
    .rate_limit(None)
    .build()
    .unwrap()
}

fn request(email: &str) -> CampaignRequest {
    CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::email(email).unwrap()]).unwrap()
}

#[test]
fn a_resent_call_within_the_window_runs_once() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox, Duration::from_secs(60));
    let client = client(&sandbox, &server);
    client
        .request_campaign(&request("lead@company.com"))
        .unwrap();
    client
        .request_campaign(&request("lead@company.com"))
        .unwrap();
    assert_eq!(sandbox.journal().len(), 1, "the resend ran again");
    // Another lead is another call.
    client
        .request_campaign(&request("anotherlead@company.com"))
        .unwrap();
    assert_eq!(sandbox.journal().len(), 2);
}

#[test]
fn without_a_window_a_resent_call_runs_again() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox, Duration::ZERO);
    let client = client(&sandbox, &server);
    client
        .request_campaign(&request("lead@company.com"))
        .unwrap();
    client
        .request_campaign(&request("lead@company.com"))
        .unwrap();
    assert_eq!(sandbox.journal().len(), 2);
}

/// The first call's trigger takes 1.5 s; the resend arrives meanwhile,
/// waits, and gets the same answer; the campaign runs once.
#[test]
fn a_resend_while_the_first_is_served_waits_for_its_answer() {
    let rule = FaultRule::always(Fault::Delay(Duration::from_millis(1500)))
        .api(Api::Rest)
        .method("POST")
        .path_prefix("/rest/v1/campaigns/4496/trigger");
    let sandbox = Sandbox::start_with(SandboxConfig::new().faults([rule])).unwrap();
    let server = serve(&sandbox, Duration::from_secs(60));
    let first = {
        let client = client(&sandbox, &server);
        std::thread::spawn(move || client.request_campaign(&request("lead@company.com")))
    };
    std::thread::sleep(Duration::from_millis(400));
    let second = client(&sandbox, &server).request_campaign(&request("lead@company.com"));
    assert!(first.join().unwrap().is_ok());
    assert!(second.is_ok(), "{second:?}");
    assert_eq!(sandbox.journal().len(), 1);
}

/// A first call that provably ran nothing (its lead look-up met a
/// gateway's 503: a GET, nothing sent to the trigger) is not remembered:
/// its resend runs.
#[test]
fn a_call_that_ran_nothing_is_not_remembered() {
    let rule = FaultRule::always(Fault::HttpStatus {
        status: 503,
        body: true,
        runs: false,
    })
    .api(Api::Rest)
    .method("GET")
    .path_prefix("/rest/v1/leads.json")
    .times(1);
    let sandbox = Sandbox::start_with(SandboxConfig::new().faults([rule])).unwrap();
    let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    let rest = sandbox
        .rest_client_builder()
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let server = Bridge::rest(rest, auth)
        .dedupe_window(Duration::from_secs(60))
        .serve("127.0.0.1:0".parse().unwrap(), false)
        .unwrap();
    let client = client(&sandbox, &server);
    assert!(client
        .request_campaign(&request("lead@company.com"))
        .is_err());
    assert!(sandbox.journal().is_empty());
    client
        .request_campaign(&request("lead@company.com"))
        .unwrap();
    assert_eq!(sandbox.journal().len(), 1);
}

/// Two bridges sharing Redis for their claims: a SOAP client's resend,
/// after its own timeout, reaches the other bridge while the first still
/// serves the call: one campaign run, two identical answers.
#[test]
fn a_resend_to_another_bridge_sharing_redis_runs_once() {
    let Some(redis) = test_support::redis_server::RedisServer::start() else {
        return;
    };
    let rule = FaultRule::always(Fault::Delay(Duration::from_millis(1500)))
        .api(Api::Rest)
        .method("POST")
        .path_prefix("/rest/v1/campaigns/4496/trigger");
    let sandbox = Sandbox::start_with(SandboxConfig::new().faults([rule])).unwrap();
    let bridge = || {
        let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
        Bridge::rest(sandbox.rest_client().unwrap(), auth)
            .dedupe_window_in_redis(Duration::from_secs(60), &redis.url())
            .unwrap()
            .serve("127.0.0.1:0".parse().unwrap(), false)
            .unwrap()
    };
    let (a, b) = (bridge(), bridge());
    // The client gives up on bridge a after 500 ms, as legacy code does.
    let impatient = SoapClient::builder(
        a.endpoint(),
        sandbox.soap_user_id(),
        sandbox.soap_encryption_key(),
    )
    .retry(RetryPolicy::never())
    .rate_limit(None)
    .timeout(Duration::from_millis(500))
    .build()
    .unwrap();
    assert!(impatient
        .request_campaign(&request("lead@company.com"))
        .is_err());
    let resend = client(&sandbox, &b).request_campaign(&request("lead@company.com"));
    assert!(resend.is_ok(), "{resend:?}");
    // And once more, answered: the same answer, still one run.
    assert!(client(&sandbox, &a)
        .request_campaign(&request("lead@company.com"))
        .is_ok());
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(sandbox.journal().len(), 1);
}
