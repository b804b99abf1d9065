//! The `standard-webhooks` scheme: header parsing, verification, sign-then-verify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scheme = hookgate::verify::scheme_by_name("standard-webhooks").expect("a built-in scheme");
    hookgate_fuzz::check_scheme(
        scheme.as_ref(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        1_614_265_330,
        data,
    );
});
