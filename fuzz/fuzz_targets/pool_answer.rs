//! The pool's reading of a worker's answer (`childproc::__fuzz_pool_answer`): never panics
//! on any message a worker can send, accepts only safe-integer ids, and an answer rebuilt
//! the way a worker sends it (`{ id, result }` / `{ id, error }`) reads back the same.
//!
//! The first input byte picks the codec the rest is decoded with (Node json, MessagePack,
//! Node advanced), so the messages cover every `Value` kind; each frame decoded before the
//! first error is one message.
#![no_main]

use bytes::BytesMut;
use childproc::ipc::{AdvancedCodec, IpcError, MsgPackCodec, NodeJsonCodec, Value};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

/// Small frames: the fuzzer's inputs are a few KiB.
const MAX_FRAME: usize = 64 * 1024;

/// JavaScript's `Number.MAX_SAFE_INTEGER`, the largest id the pool accepts.
const MAX_ID: u64 = (1 << 53) - 1;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let messages = match first % 3 {
        0 => frames(NodeJsonCodec::with_max_frame(MAX_FRAME), rest),
        1 => frames(MsgPackCodec::with_max_frame(MAX_FRAME), rest),
        _ => frames(AdvancedCodec::with_max_frame(MAX_FRAME), rest),
    };
    for message in messages {
        check(message);
    }
});

/// The frames `codec` decodes from `data`, up to the first error.
fn frames<D: Decoder<Item = Value, Error = IpcError>>(mut codec: D, data: &[u8]) -> Vec<Value> {
    let mut buf = BytesMut::from(data);
    let mut out = Vec::new();
    while let Ok(Some(v)) = codec.decode_eof(&mut buf) {
        out.push(v);
    }
    out
}

fn check(message: Value) {
    let is_object = matches!(message, Value::Object(_));
    let Some((id, answer)) = childproc::__fuzz_pool_answer(message) else {
        return;
    };
    assert!(is_object, "only an object is an answer");
    assert!(id <= MAX_ID, "id {id} is not a safe integer");
    let (key, value) = match &answer {
        Ok(v) => ("result", v.clone()),
        Err(v) => ("error", v.clone()),
    };
    let rebuilt = Value::object([("id", Value::Number(id as f64)), (key, value)]);
    let again = childproc::__fuzz_pool_answer(rebuilt).expect("a rebuilt answer is an answer");
    assert_eq!(again.0, id);
    // `{:?}`, since NaN != NaN.
    assert_eq!(format!("{:?}", again.1), format!("{answer:?}"));
}
