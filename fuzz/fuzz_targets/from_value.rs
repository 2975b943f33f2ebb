//! `from_value`: values from any codec's bytes decoded into typed messages never panic,
//! and what decodes round-trips (see `childproc_fuzz::typed`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    childproc_fuzz::typed::check(data);
});
