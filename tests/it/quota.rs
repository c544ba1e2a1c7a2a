//! The daily quota of a client's limiter (`RateLimit::daily_quota`): past
//! it, calls are not sent, at once, naming when the quota day resets.

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Delivery, Error, LeadKey, RateLimit,
};
use marketo_sandbox::Sandbox;

#[test]
fn a_spent_daily_quota_sends_nothing_and_names_the_reset() {
    let sandbox = Sandbox::start().unwrap();
    // Each REST request is a look-up and a trigger: two calls.
    let client = sandbox
        .rest_client_builder()
        .rate_limit(Some(RateLimit::default().daily_quota(4)))
        .build()
        .unwrap();
    let request =
        CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(1002200).unwrap()]).unwrap();
    client.request_campaign(&request).unwrap();
    client.request_campaign(&request).unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
    let Error::QuotaSpent { quota, resets_at } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*quota, 4);
    assert!(
        resets_at.ends_with("T06:00:00Z") || resets_at.ends_with("T05:00:00Z"),
        "{resets_at}"
    );
    assert!(err.to_string().contains("not sent"), "{err}");
    assert_eq!(sandbox.journal().len(), 2);
}
