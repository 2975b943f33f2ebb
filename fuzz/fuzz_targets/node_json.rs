//! `NodeJsonCodec`: never panics; chunked and whole-input decoding agree; with the pool's
//! envelopes opened (`childproc_ipc::__fuzz::Opening`) it decodes the same messages and
//! errors as without.
#![no_main]

use childproc_ipc::__fuzz::Opening;
use childproc_ipc::NodeJsonCodec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    childproc_fuzz::check(data, NodeJsonCodec::with_max_frame);
    childproc_fuzz::check(data, Opening::with_max_frame);
    let Some((_, rest)) = data.split_first() else {
        return;
    };
    let max = childproc_fuzz::MAX_FRAME;
    let plain =
        childproc_fuzz::decode_chunked(NodeJsonCodec::with_max_frame(max), rest, rest.len());
    let opened = childproc_fuzz::decode_chunked(Opening::with_max_frame(max), rest, rest.len());
    assert_eq!(
        plain.frames, opened.frames,
        "opened envelopes decode other messages"
    );
    assert_eq!(plain.error, opened.error, "opened envelopes fail otherwise");
});
