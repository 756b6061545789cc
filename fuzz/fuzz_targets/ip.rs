//! Fuzz target `ip`: see `rvs_packet::fuzzing::ip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_packet::fuzzing::ip(data);
});
