//! Fuzz target `tcp`: see `rvs_packet::fuzzing::tcp`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_packet::fuzzing::tcp(data);
});
