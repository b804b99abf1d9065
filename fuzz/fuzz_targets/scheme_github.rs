//! The `github` scheme: header parsing, verification, sign-then-verify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scheme = hookgate::verify::scheme_by_name("github").expect("a built-in scheme");
    hookgate_fuzz::check_scheme(
        scheme.as_ref(),
        "It's a Secret to Everybody",
        1_700_000_000,
        data,
    );
});
