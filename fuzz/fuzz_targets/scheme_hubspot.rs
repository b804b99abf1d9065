//! The `hubspot` scheme: parsing, verification, handshakes, sign-then-verify
//! (default secret: the one of its unit-test vector).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scheme = hookgate::verify::scheme_by_name("hubspot").expect("a built-in scheme");
    hookgate_fuzz::check_scheme(scheme.as_ref(), "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", 1_693_657_560, data);
});
