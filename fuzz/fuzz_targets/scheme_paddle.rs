//! The `paddle` scheme: parsing, verification, handshakes, sign-then-verify
//! (default secret: the one of its unit-test vector).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scheme = hookgate::verify::scheme_by_name("paddle").expect("a built-in scheme");
    hookgate_fuzz::check_scheme(scheme.as_ref(), "VALID_SECRET", 1_698_796_800, data);
});
