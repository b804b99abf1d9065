//! The `zoom` scheme: parsing, verification, handshakes, sign-then-verify
//! (default secret: the one of its unit-test vector).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scheme = hookgate::verify::scheme_by_name("zoom").expect("a built-in scheme");
    hookgate_fuzz::check_scheme(scheme.as_ref(), "zoom_secret_token", 1_700_000_000, data);
});
