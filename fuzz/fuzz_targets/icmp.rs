//! Fuzz target `icmp`: see `rvs_packet::fuzzing::icmp`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_packet::fuzzing::icmp(data);
});
