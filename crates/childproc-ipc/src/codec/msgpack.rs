//! [`MsgPackCodec`]: the whole [`Value`] model, losslessly, as length-prefixed MessagePack.
//!
//! (See [`MsgPackCodec`] for the frame, the mapping and the extension types.)

use std::cell::Cell;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

mod clone;
#[cfg(test)]
mod clone_tests;
mod read;
#[cfg(test)]
mod tests;
mod write;

use super::frame;
use crate::value::{identity, Anchors};
use crate::{IpcError, Result, Value};
use read::Reader;
pub(super) use write::canonical_bigint;
use write::{write_value, Out};

const EXT_UNDEFINED: i8 = 1;
const EXT_BIGINT: i8 = 2;
const EXT_MAP: i8 = 3;
const EXT_SET: i8 = 4;
const EXT_DATE: i8 = 5;
const EXT_REGEXP: i8 = 6;
/// MessagePack's own timestamp extension, read as a `Date`.
const EXT_TIMESTAMP: i8 = -1;

/// Integral doubles up to this magnitude travel as MessagePack ints.
const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

/// Length-prefixed MessagePack carrying every [`Value`] kind losslessly.
///
/// # Frame
///
/// `u32 big-endian N ‖ N bytes`: exactly one MessagePack value, nothing after it.
///
/// # Mapping
///
/// | [`Value`] | MessagePack |
/// |---|---|
/// | `Null` | nil |
/// | `Bool` | bool |
/// | `Number` | the smallest int when integral, not -0 and within ±2⁵³; otherwise float 64 (NaN, ±Infinity and -0 included, bit for bit) |
/// | `String` | str |
/// | `Bytes` | bin |
/// | `Array` | array |
/// | `Object` | map with str keys, in order (repeated keys are kept as they are) |
/// | `Undefined` | **ext 1**, empty payload |
/// | `BigInt` | **ext 2**, payload the ASCII decimal digits, `-` first if negative (canonical: no `+`, no leading zeros, no `-0`) |
/// | `Map` | **ext 3**, payload one MessagePack map (keys of any kind), always with an ext 32 header |
/// | `Set` | **ext 4**, payload one MessagePack array, always with an ext 32 header |
/// | `Date` | **ext 5**, payload 8 bytes: the milliseconds as an f64 big-endian (fixext 8; NaN is an invalid date) |
/// | `RegExp` | **ext 6**, payload one MessagePack array `[source, flags]` (two str), ext 32 header |
/// | `Error` | **ext 7**, payload one MessagePack array `[name, message, stack]` (str, str, str or nil) and, when it has one, the cause as a fourth element; ext 32 header |
/// | `TypedArray` | **ext 8**, payload one byte, the kind (its index in [`TypedArrayKind::ALL`](crate::TypedArrayKind::ALL)), then the bytes |
/// | `DataView` | **ext 9**, payload the bytes |
/// | `ArrayBuffer` | **ext 10**, payload the bytes; resizable: **ext 11**, payload `max_byte_length` as a u32 big-endian, then the bytes |
/// | `Boxed` | **ext 12**, payload one MessagePack value (the primitive), ext 32 header |
/// | `SparseArray` | **ext 13**, payload one MessagePack array `[length, [index, value, …], {name: value, …}]`, ext 32 header |
/// | `Shared` | **ext 14**, payload the id as a u32 big-endian, then one MessagePack value (the object), ext 32 header |
/// | `Ref` | **ext 15**, payload the id as a u32 big-endian |
///
/// Payloads with values inside always use the 4-byte ext 32 length so that the encoder writes
/// in one pass (the length is patched in afterwards); decoders accept any ext form for every
/// type. Each extension with values inside is a level of nesting. A decoded frame's identity
/// is checked: each id shared once and around an object, each `Ref` inside or after its
/// `Shared`.
///
/// The decoder also accepts what other MessagePack writers produce: any int or float
/// width (as a `Number`; ints beyond ±2⁵³ round to the nearest double), a map with a
/// non-str key (as a `Map`), and the standard timestamp extension −1 (as a `Date`).
/// Other extension types, the reserved byte `c1`, invalid UTF-8 in a str, trailing bytes
/// and nesting deeper than [`Value::MAX_DEPTH`] are errors.
///
/// The frame limit ([`MsgPackCodec::DEFAULT_MAX_FRAME`], 128 MiB, unless set with
/// [`with_max_frame`](MsgPackCodec::with_max_frame)) counts the payload and is checked on the
/// length prefix, before the payload is buffered. Errors: [`IpcError::FrameTooLarge`],
/// [`IpcError::Malformed`] (invalid MessagePack, an empty frame, trailing bytes, an unknown
/// extension, a payload that breaks the model's rules), [`IpcError::InvalidUtf8`],
/// [`IpcError::Truncated`] at end of stream; encoding a `BigInt` whose text is not canonical
/// decimal, or a value that breaks the model's rules (see [`Value::Shared`]), is
/// [`IpcError::Unsupported`].
///
/// ```
/// use bytes::BytesMut;
/// use childproc_ipc::{MsgPackCodec, Value};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let v = Value::Array(vec![Value::Undefined, Value::Number(f64::NAN), Value::BigInt("-12".into())]);
/// let mut codec = MsgPackCodec::new();
/// let mut buf = BytesMut::new();
/// codec.encode(&v, &mut buf).unwrap();
/// let back = codec.decode(&mut buf).unwrap().unwrap();
/// assert!(matches!(&back, Value::Array(a) if a[1].as_f64().unwrap().is_nan()));
/// ```
#[derive(Debug, Clone)]
pub struct MsgPackCodec {
    max_frame: usize,
}

impl MsgPackCodec {
    /// The default payload size limit: 128 MiB.
    pub const DEFAULT_MAX_FRAME: usize = 128 * 1024 * 1024;

    /// A codec with the default limit ([`Self::DEFAULT_MAX_FRAME`]).
    pub fn new() -> Self {
        Self::with_max_frame(Self::DEFAULT_MAX_FRAME)
    }

    /// A codec whose payloads may be at most `max_frame` bytes (capped at `u32::MAX`).
    pub fn with_max_frame(max_frame: usize) -> Self {
        MsgPackCodec {
            max_frame: max_frame.min(u32::MAX as usize),
        }
    }

    /// The payload size limit in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn encode_ref(&mut self, item: &Value, dst: &mut BytesMut) -> Result<()> {
        frame::encode_prefixed(dst, self.max_frame, |dst| {
            write_value(&mut Out(dst, Anchors::default()), item, 0)
        })
    }
}

impl Default for MsgPackCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for MsgPackCodec {
    type Item = Value;
    type Error = IpcError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Value>> {
        let Some(payload) = frame::split_prefixed(src, self.max_frame)? else {
            return Ok(None);
        };
        decode_payload(&payload).map(Some)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Value>> {
        let decoded = self.decode(buf)?;
        frame::at_eof(decoded, buf)
    }
}

/// One frame's payload: exactly one MessagePack value, its identity checked.
pub(crate) fn decode_payload(payload: &[u8]) -> Result<Value> {
    let identity = Cell::new(false);
    let mut reader = Reader {
        buf: payload,
        pos: 0,
        identity: &identity,
    };
    let value = reader.value(0)?;
    if reader.pos != payload.len() {
        return Err(IpcError::malformed(format!(
            "{} trailing bytes after the MessagePack value",
            payload.len() - reader.pos
        )));
    }
    if identity.get() {
        identity::check(&value)
            .map_err(|what| IpcError::malformed(format!("MessagePack value: {what}")))?;
    }
    Ok(value)
}

impl Encoder<Value> for MsgPackCodec {
    type Error = IpcError;

    fn encode(&mut self, item: Value, dst: &mut BytesMut) -> Result<()> {
        self.encode_ref(&item, dst)
    }
}

impl Encoder<&Value> for MsgPackCodec {
    type Error = IpcError;

    fn encode(&mut self, item: &Value, dst: &mut BytesMut) -> Result<()> {
        self.encode_ref(item, dst)
    }
}
