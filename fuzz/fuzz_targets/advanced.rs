//! `AdvancedCodec`: never panics; chunked and whole-input decoding agree.
#![no_main]

use childproc_ipc::AdvancedCodec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    childproc_fuzz::check(data, AdvancedCodec::with_max_frame);
});
