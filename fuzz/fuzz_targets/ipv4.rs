//! Fuzz target `ipv4`: see `rvs_packet::fuzzing::ipv4`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_packet::fuzzing::ipv4(data);
});
