//! The `standard-webhooks` scheme's `v1a` (Ed25519) entries: signed with a
//! `whsk_` private key, verified with its `whpk_` public key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hookgate_fuzz::check_scheme_private(
        &hookgate::verify::StandardWebhooks,
        "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=",
        1_614_265_330,
        data,
    );
});
