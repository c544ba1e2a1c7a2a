//! The identity answer reader on arbitrary answers, without a socket: never
//! panics, never believes a token lives past an hour, never says a campaign
//! may have run (a token request triggers nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use marketo_campaign::{fuzzing, Delivery};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let status = [200, 200, 200, 401, 400, 500, 502, 503][usize::from(pick % 8)];
    match fuzzing::identity_answer(status, body) {
        Ok(life) => {
            assert_eq!(status, 200, "a non-200 answer gave a token");
            assert!(life.as_secs() <= 3600, "a token believed to live {life:?}");
        }
        Err(err) => {
            assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
            assert!(!err.to_string().contains("client-secret"), "{err}");
        }
    }
});
