//! `hookgate::config::from_yaml`: any text, no panic, errors that name
//! something. Runs in a network namespace of its own (host names resolve to
//! nothing, and no lookup leaves the machine).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        hookgate_fuzz::isolate_network();
        // The reference config reads its secret from this variable.
        std::env::set_var("FYNAPSE_WEBHOOK_SECRET", "fuzz-secret");
    },
    |data: &[u8]| hookgate_fuzz::check_config(data)
);
