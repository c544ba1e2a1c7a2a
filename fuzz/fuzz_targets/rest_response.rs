//! The REST response reader on arbitrary answers: never panics, and only a
//! 200 `success:true` answer yields records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marketo_campaign::{fuzzing, Delivery};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let status = [200, 200, 500, 404, 410, 401, 502, 414][usize::from(pick % 8)];
    match fuzzing::rest_response(status, body) {
        Ok(_) => assert_eq!(status, 200, "a non-200 answer was read as success"),
        Err(err) => {
            assert!(err.to_string().len() < 8 * 1024, "error message too long");
            assert_ne!(err.delivery(), Delivery::NotSent);
        }
    }
});
