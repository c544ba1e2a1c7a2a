//! The REST client against arbitrary look-up answers (`campaigns.json`,
//! `leads.json`), end to end over loopback: never panics, triggers a chunk
//! at most once, never calls a failure "unknown" when nothing was triggered
//! (a GET cannot run a campaign), and quotes neither the secret nor the
//! access token.
//!
//! Input: one byte (bits 0-2: `campaigns.json` status, 3-5: `leads.json`
//! status, 6: by name or by id), then the `campaigns.json` body, `\xff\xff`,
//! the `leads.json` body (without the separator both get the same body).
#![no_main]

#[path = "fake_marketo.rs"]
mod fake;

use libfuzzer_sys::fuzz_target;
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Delivery, LeadKey, LeadKeyType,
};

fn split(body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    match body.windows(2).position(|w| w == b"\xff\xff") {
        Some(at) => (body[..at].to_vec(), body[at + 2..].to_vec()),
        None => (body.to_vec(), body.to_vec()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (campaigns, leads) = split(rest);
    fake::script(fake::Script {
        identity: (200, fake::TOKEN.to_vec()),
        campaigns: (fake::status(pick), campaigns),
        leads: (fake::status(pick >> 3), leads),
    });
    let target = if pick & 0x40 != 0 {
        CampaignTarget::named("Send Webinar Reminder", "Webinars", [])
    } else {
        CampaignTarget::id(4496)
    };
    let keys = [
        (LeadKeyType::Email, "lead@company.com"),
        (LeadKeyType::Email, "Other@Example.com"),
        (LeadKeyType::Cookie, "id:123-ABC-456&token:_mch-example.com-1-2"),
        (LeadKeyType::SfdcLeadId, "00Q5e00000AbCdEFGH"),
        (LeadKeyType::Idnum, "1002200"),
    ]
    .map(|(key_type, value)| LeadKey::new(key_type, value).expect("a valid key"));
    let key_count = keys.len();
    let request = CampaignRequest::new(target, keys).expect("a valid request");
    let before = fake::triggers();
    let result = fake::client().request_campaign(&request);
    let sent = fake::triggers() - before;
    assert!(sent <= 1, "one chunk triggered {sent} times");
    match result {
        // Every key is looked up (IDNUM too): a request that succeeds ran
        // the campaign, unless no key named a lead, and then it says so for
        // every key.
        Ok(outcome) => {
            if sent == 0 {
                assert_eq!(
                    outcome.unmatched().count(),
                    key_count,
                    "accepted without a trigger, yet some keys were not reported unmatched"
                );
            }
        }
        Err(err) => {
            if sent == 0 {
                assert_ne!(
                    err.delivery(),
                    Delivery::Unknown,
                    "nothing was triggered, yet the outcome is unknown: {err}"
                );
            }
            let shown = format!("{err} {err:?}");
            assert!(shown.len() < 64 * 1024, "error message too long");
            assert!(!shown.contains(fake::SECRET), "the secret is quoted: {shown}");
            assert!(!shown.contains("t0k3n"), "the access token is quoted: {shown}");
        }
    }
});
