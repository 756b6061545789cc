//! Fuzz target `udp`: see `rvs_packet::fuzzing::udp`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_packet::fuzzing::udp(data);
});
