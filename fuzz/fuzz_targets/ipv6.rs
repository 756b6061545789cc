//! Fuzz target `ipv6`: see `rvs_packet::fuzzing::ipv6`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_packet::fuzzing::ipv6(data);
});
