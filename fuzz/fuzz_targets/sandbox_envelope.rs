//! The sandbox's SOAP envelope reader and rules on arbitrary request
//! bodies: never panics, answers 200 (ran) or 500 (fault) only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marketo_campaign::fuzzing;

fuzz_target!(|data: &[u8]| {
    let status = fuzzing::sandbox_envelope(data);
    assert!(status == 200 || status == 500, "unexpected status {status}");
});
