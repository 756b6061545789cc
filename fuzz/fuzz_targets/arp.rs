//! Fuzz target `arp`: see `rvs_packet::fuzzing::arp`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_packet::fuzzing::arp(data);
});
