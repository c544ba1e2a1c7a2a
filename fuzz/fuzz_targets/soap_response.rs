//! The SOAP response reader on arbitrary answers: never panics, and only
//! `<success>true</success>` in a 200 answer counts as success.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marketo_campaign::{fuzzing, Delivery};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a status that matters to the reader.
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let status = [200, 500, 404, 410, 400, 502, 302, 201][usize::from(pick % 8)];
    match fuzzing::soap_response(status, body) {
        Ok(()) => assert_eq!(status, 200, "a non-200 answer was read as success"),
        Err(err) => {
            // Errors keep at most an excerpt of the body.
            assert!(err.to_string().len() < 8 * 1024, "error message too long");
            if (400..500).contains(&status) {
                assert_ne!(err.delivery(), Delivery::NotSent);
            }
        }
    }
});
