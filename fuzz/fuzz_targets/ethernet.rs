//! Fuzz target `ethernet`: see `rvs_packet::fuzzing::ethernet`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_packet::fuzzing::ethernet(data);
});
