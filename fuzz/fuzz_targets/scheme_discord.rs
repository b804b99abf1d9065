//! The `discord` scheme: parsing, verification, handshakes, sign-then-verify
//! (default private key: the one of its unit-test vector).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scheme = hookgate::verify::scheme_by_name("discord").expect("a built-in scheme");
    hookgate_fuzz::check_scheme(scheme.as_ref(), "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", 1_700_000_000, data);
});
