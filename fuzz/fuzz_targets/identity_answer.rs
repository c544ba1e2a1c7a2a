//! The REST client against arbitrary identity (OAuth token) answers, end to
//! end over loopback: never panics (whatever `expires_in` says), a token
//! answer that cannot be used sends nothing and says so (`NotSent`), a
//! usable one triggers exactly once per request, also from the cache, and no
//! error quotes the client secret.
#![no_main]

#[path = "fake_marketo.rs"]
mod fake;

use libfuzzer_sys::fuzz_target;
use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, Delivery, LeadKey};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    fake::script(fake::Script {
        identity: (fake::status(pick), body.to_vec()),
        ..fake::Script::default()
    });
    let client = fake::client();
    let lead = LeadKey::id(1002200).expect("a valid id");
    let request = CampaignRequest::new(CampaignTarget::id(4496), [lead]).expect("a valid request");
    // Twice: the second call reads the token cache.
    for call in 0..2 {
        let before = fake::triggers();
        let result = client.request_campaign(&request);
        let sent = fake::triggers() - before;
        match result {
            Ok(outcome) => {
                assert_eq!(sent, 1, "call {call}: one chunk, {sent} triggers");
                assert!(outcome.is_complete());
            }
            Err(err) => {
                assert_eq!(sent, 0, "call {call}: failed after triggering: {err}");
                assert_eq!(err.delivery(), Delivery::NotSent, "call {call}: {err}");
                let shown = format!("{err} {err:?}");
                assert!(shown.len() < 16 * 1024, "error message too long");
                assert!(!shown.contains(fake::SECRET), "the secret is quoted: {shown}");
            }
        }
    }
});
