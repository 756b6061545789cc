//! Fuzz target `tunnel`: see `rvs_packet::fuzzing::tunnel`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_packet::fuzzing::tunnel(data);
});
