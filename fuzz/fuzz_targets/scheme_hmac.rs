//! The generic `hmac` scheme: options through `GenericHmac::new`, then header
//! parsing, verification, sign-then-verify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hookgate_fuzz::check_generic(data));
