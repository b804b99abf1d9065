//! The `sendgrid` scheme: parsing, verification, handshakes, sign-then-verify
//! (default private key: the one of its unit-test vector).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scheme = hookgate::verify::scheme_by_name("sendgrid").expect("a built-in scheme");
    hookgate_fuzz::check_scheme(scheme.as_ref(), "2222222222222222222222222222222222222222222222222222222222222222", 1_600_112_502, data);
});
