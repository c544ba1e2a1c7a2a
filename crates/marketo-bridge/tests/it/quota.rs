//! A bridge whose REST client has a daily quota: past it, SOAP callers get
//! fault 20015 and nothing is sent.

use marketo_bridge::Bridge;
use marketo_campaign::soap::Authenticator;
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Error, LeadKey, RateLimit, RetryPolicy,
    SoapClient, SoapCode,
};
use marketo_sandbox::Sandbox;

#[test]
fn a_spent_daily_quota_is_20015_and_sends_nothing() {
    let sandbox = Sandbox::start().unwrap();
    let rest = sandbox
        .rest_client_builder()
        .rate_limit(Some(RateLimit::default().daily_quota(2)))
        .build()
        .unwrap();
    let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    let server = Bridge::rest(rest, auth)
        .serve("127.0.0.1:0".parse().unwrap(), false)
        .unwrap();
    let client = SoapClient::builder(
        server.endpoint(),
        sandbox.soap_user_id(),
        sandbox.soap_encryption_key(),
    )
    .retry(RetryPolicy::never())
    .build()
    .unwrap();
    let request =
        CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(1002200).unwrap()]).unwrap();
    // A look-up and a trigger: the quota's two calls.
    client.request_campaign(&request).unwrap();
    match client.request_campaign(&request) {
        Err(Error::SoapFault { code, message }) => {
            assert_eq!(code, SoapCode::RequestLimitExceeded, "{message}");
            assert!(message.contains("not sent"), "{message}");
            assert!(message.contains("try again after"), "{message}");
        }
        other => panic!("expected fault 20015, got {other:?}"),
    }
    assert_eq!(sandbox.journal().len(), 1);
}

/// A shared limiter whose Redis cannot answer: the SOAP caller gets 20023
/// saying the call was not sent, and nothing runs.
#[test]
fn an_unreachable_shared_limiter_is_20023_and_sends_nothing() {
    let sandbox = Sandbox::start().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shared =
        marketo_campaign::SharedLimiter::new(&format!("redis://127.0.0.1:{port}/0"), "x").unwrap();
    let rest = sandbox
        .rest_client_builder()
        .shared_limiter(shared)
        .build()
        .unwrap();
    let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    let server = Bridge::rest(rest, auth)
        .serve("127.0.0.1:0".parse().unwrap(), false)
        .unwrap();
    let client = SoapClient::builder(
        server.endpoint(),
        sandbox.soap_user_id(),
        sandbox.soap_encryption_key(),
    )
    .retry(RetryPolicy::never())
    .build()
    .unwrap();
    let request =
        CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(1002200).unwrap()]).unwrap();
    match client.request_campaign(&request) {
        Err(Error::SoapFault { code, message }) => {
            assert_eq!(code, SoapCode::RateLimited, "{message}");
            assert!(message.contains("not sent"), "{message}");
        }
        other => panic!("expected fault 20023, got {other:?}"),
    }
    assert!(sandbox.journal().is_empty());
}
