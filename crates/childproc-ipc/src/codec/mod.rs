//! The codecs: tokio-util [`Decoder`](tokio_util::codec::Decoder)s and
//! [`Encoder`](tokio_util::codec::Encoder)s of [`Value`](crate::Value) messages, each
//! usable on any byte stream (`FramedRead`, `FramedWrite`, `Framed`).
//!
//! | codec | frame | carries |
//! |---|---|---|
//! | [`NodeJsonCodec`] | JSON text + LF, exactly Node's `'json'` serialization | the JSON subset of [`Value`](crate::Value) |
//! | [`LengthJsonCodec`] | u32 big-endian length + JSON text | the same JSON subset |
//! | [`MsgPackCodec`] | u32 big-endian length + MessagePack | every [`Value`](crate::Value), losslessly (extension types 1–7) |
//! | [`AdvancedCodec`] | u32 big-endian length + V8 ValueSerializer data, exactly Node's `'advanced'` serialization | every [`Value`](crate::Value) kind (an `Error`'s name only when V8 carries it) |

mod advanced;
pub(crate) mod frame;
mod length_json;
mod msgpack;
mod node_json;

pub use advanced::AdvancedCodec;
pub use length_json::LengthJsonCodec;
pub(crate) use msgpack::decode_payload as decode_msgpack;
pub use msgpack::MsgPackCodec;
pub use node_json::NodeJsonCodec;

/// The next `n` bytes of `buf` from `*pos`, advancing `*pos`; past the end, an error naming
/// the `format` being read, the count and the offset (for the binary decoders' readers).
pub(crate) fn take_bytes<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    n: usize,
    format: &str,
) -> crate::error::Result<&'a [u8]> {
    let Some(end) = pos.checked_add(n).filter(|&end| end <= buf.len()) else {
        return Err(crate::error::IpcError::malformed(format!(
            "{format} data ends early: {n} bytes needed at byte {pos}, {} left",
            buf.len() - *pos
        )));
    };
    let bytes = &buf[*pos..end];
    *pos = end;
    Ok(bytes)
}

/// Refuses to decode deeper than `Value::MAX_DEPTH` (the binary decoders' readers): an
/// error naming the byte `at` which the nesting got too deep.
pub(crate) fn check_read_depth(depth: usize, at: usize) -> crate::error::Result<()> {
    if depth >= crate::value::Value::MAX_DEPTH {
        return Err(crate::error::IpcError::malformed(format!(
            "nesting deeper than {} levels at byte {at}",
            crate::value::Value::MAX_DEPTH
        )));
    }
    Ok(())
}

/// Refuses to encode deeper than `Value::MAX_DEPTH` (the binary encoders).
pub(crate) fn check_write_depth(depth: usize) -> crate::error::Result<()> {
    if depth >= crate::value::Value::MAX_DEPTH {
        return Err(crate::error::IpcError::unsupported(format!(
            "a value nested deeper than {} levels",
            crate::value::Value::MAX_DEPTH
        )));
    }
    Ok(())
}
