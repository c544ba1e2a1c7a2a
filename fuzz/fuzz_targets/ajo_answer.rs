//! The Journey Optimizer answer reader on arbitrary answers: never panics;
//! only a 2xx answer with an execution (or schedule) id is read as
//! accepted; a 429 is a rate limit whose wait is at most an hour; nothing
//! that came back is ever "not sent".
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use marketo_campaign::{fuzzing, Delivery, Error};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let status = [202, 200, 201, 400, 401, 404, 429, 500, 502, 503, 504, 302][usize::from(pick % 12)];
    // The first line is the Retry-After header, the rest the body.
    let (retry_after, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (std::str::from_utf8(&rest[..at]).ok(), &rest[at + 1..]),
        None => (None, rest),
    };
    match fuzzing::ajo_answer(status, body, retry_after) {
        Ok(id) => {
            assert!((200..300).contains(&status), "HTTP {status} read as accepted");
            assert!(!id.is_empty());
        }
        Err(err) => {
            assert!(err.to_string().len() < 8 * 1024, "error message too long");
            assert_ne!(err.delivery(), Delivery::NotSent);
            if status == 429 {
                let Error::RateLimited { retry_after, .. } = &err else {
                    panic!("429 read as {err:?}");
                };
                assert!(retry_after.is_none_or(|w| w <= Duration::from_secs(3600)));
            }
        }
    }
});
