//! The `slack` scheme: header parsing, verification, sign-then-verify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scheme = hookgate::verify::scheme_by_name("slack").expect("a built-in scheme");
    hookgate_fuzz::check_scheme(
        scheme.as_ref(),
        "8f742231b10e8888abcd99yyyzzz85a5",
        1_531_420_618,
        data,
    );
});
