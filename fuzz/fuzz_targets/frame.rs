//! Fuzz target `frame`: see `rvs_packet::fuzzing::frame`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_packet::fuzzing::frame(data);
});
