//! The sandbox's SOAP envelope reader and rules on arbitrary request
//! bodies: never panics, answers 200 (ran) or 500 (fault) only.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let status = marketo_sandbox::fuzz_soap(data);
    assert!(status == 200 || status == 500, "unexpected status {status}");
});
