//! Answers from the network that once crashed the client: no panic, on any
//! input (issue 8, defect 7).

use std::time::Duration;

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, RestClient, RetryPolicy,
};

/// Identity answers a token that "lives" `expires_in` seconds; the API
/// finds every lead looked up and accepts every trigger.
fn server(expires_in: &'static str) -> String {
    crate::rest_mock("tok", expires_in, |url| {
        if url.starts_with("/rest/v1/leads.json") {
            r#"{"requestId":"1#0","success":true,"result":[{"id":1002200}]}"#.to_owned()
        } else {
            r#"{"requestId":"1#1","success":true,"result":[{"id":4496}]}"#.to_owned()
        }
    })
}

#[test]
fn a_token_that_lives_forever_does_not_panic() {
    for expires_in in ["18446744073709551615", "9223372036854775807", "0"] {
        let base = server(expires_in);
        let builder = RestClient::builder(&base, "id", "secret");
        let client = test_support::quiet_client!(builder, Duration::from_secs(10));
        let request =
            CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(1002200).unwrap()])
                .unwrap();
        // Twice: the second call reads the cached token's expiry.
        for _ in 0..2 {
            let outcome = client.request_campaign(&request).unwrap();
            assert!(outcome.is_complete(), "{expires_in}");
        }
    }
}

/// A transport failure keeps the HTTP stack's own error as its source.
#[test]
fn a_transport_error_keeps_its_cause() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = marketo_campaign::SoapClient::builder(
        format!("http://127.0.0.1:{port}/soap/mktows/2_9"),
        "user",
        "key",
    )
    .rate_limit(None)
    .retry(RetryPolicy::never())
    .build()
    .unwrap();
    let request =
        CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(1002200).unwrap()]).unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    assert_eq!(err.delivery(), marketo_campaign::Delivery::NotSent, "{err}");
    let cause = std::error::Error::source(&err).expect("the ureq error is kept");
    assert!(cause.downcast_ref::<ureq::Error>().is_some(), "{cause:?}");
}
