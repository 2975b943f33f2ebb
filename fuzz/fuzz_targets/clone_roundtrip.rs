//! `clone_roundtrip`: the whole structured-clone model through every codec's encoder and
//! decoder (see `childproc_fuzz::clone`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    childproc_fuzz::clone::check(data);
});
