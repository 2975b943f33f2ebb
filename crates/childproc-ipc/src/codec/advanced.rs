//! [`AdvancedCodec`]: Node's `'advanced'` serialization, V8's ValueSerializer format behind a
//! length prefix, so a Rust process and a Node.js process in advanced mode understand each
//! other.
//!
//! (See [`AdvancedCodec`] for the frame, the mapping and the limits.) Written for this crate
//! from the format as V8 and Node define it and as `shared/protocol/node-ipc.md` §3 captures
//! it from Node 20: the reader is in `read.rs`, the writer in `write.rs`, the tags in `tag.rs`.

mod bigint;
#[cfg(test)]
mod clone_tests;
mod read;
mod tag;
#[cfg(test)]
mod tests;
mod text;
mod write;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::frame;
use crate::{IpcError, Result, Value};

/// Node's `'advanced'` serialization: `u32 big-endian N ‖ N bytes` of V8 ValueSerializer data
/// (header `ff 0f`, then one value), the whole structured-clone model, as Node's
/// `serialization: 'advanced'` writes and reads it.
///
/// # Mapping
///
/// | [`Value`] | written as | a Node peer gets |
/// |---|---|---|
/// | `Undefined` / `Null` / `Bool` | `_` / `0` / `T` `F` | `undefined` / `null` / a boolean |
/// | `Number` | `I` (zigzag varint) when it is an int32 and not -0, else `N` (f64, bit for bit) | a number (NaN, ±Infinity, -0 kept) |
/// | `BigInt` | `Z`: sign and byte length, magnitude in 8-byte digits | a `bigint` |
/// | `String` | `"` Latin-1 when every character is ≤ U+00FF, else `c` UTF-16LE, after a `00` when V8 would pad it to an even frame offset | a string |
/// | `Bytes` | Node's host object for a `Buffer`: `\ 00 0a` length bytes | a `Buffer` (`Buffer.isBuffer` holds) |
/// | `TypedArray` / `DataView` | Node's host object for the view: `\ 00`, type index, length, bytes | that typed array / a `DataView` |
/// | `ArrayBuffer` | `B` length bytes, or `~` length maximum bytes when resizable | an `ArrayBuffer` |
/// | `Array` | dense `A` … `$` | an array |
/// | `SparseArray` | `a` length, index and value pairs, named properties, `@` count length | an array with those holes and properties |
/// | `Object` | `o` … `{`: keys that are array indices as numbers (as V8 writes them), others as strings, in the `Vec`'s order | a plain object |
/// | `Map` / `Set` | `;` … `:` / `'` … `,` | a `Map` / a `Set` |
/// | `Date` | `D` + f64 milliseconds | a `Date` (NaN: an invalid date) |
/// | `RegExp` | `R` source + flag bits | a `RegExp` |
/// | `Error` | `r`, the prototype tag of `name` when V8 has one (`EvalError`, `RangeError`, `ReferenceError`, `SyntaxError`, `TypeError`, `URIError`), `m` message, `c` cause if any, `s` stack if any, `.` | an instance of that class (other names: a plain `Error`), with its `cause` |
/// | `Boxed` | `y` / `x`, `n` f64, `s` string, `z` BigInt | a `Boolean`, `Number`, `String` or `BigInt` object |
/// | `Shared` / `Ref` | the object at the `Shared`; `^` and V8's object number at each `Ref` | the same object at each place (`got.a === got.b`; cycles closed) |
///
/// Encoding refuses what Node's `send()` refuses at the top level (`undefined`, a `BigInt`),
/// a `BigInt` text that is not canonical decimal or longer than 4 KiB of magnitude, RegExp
/// flags other than `dgimsuvy`, nesting deeper than [`Value::MAX_DEPTH`], and a value that
/// breaks the model's rules (a `Ref` before its `Shared`, an id shared twice, a `Shared` or
/// `Boxed` around the wrong kind, a `SparseArray` whose indices do not increase or pass its
/// length): all [`IpcError::Unsupported`], with nothing written.
///
/// # Reading
///
/// Everything Node 20 writes is read, and more of V8's format: `I`/`U`/`N` numbers
/// (integral doubles are common: V8 writes what it holds), the three string forms (`"`, `c`
/// with or without its padding, `S` UTF-8), dense arrays (with `-` holes: a `SparseArray`)
/// and sparse arrays (`a` … `@`, which Node writes for holey arrays and for arrays it
/// deserialized itself; one with every index and no named property is an `Array`), V8's own
/// views after their `ArrayBuffer`, Node's plain-copy host objects, versions 13 to 15 of the
/// header, and bytes after the value (ignored, as Node does). A lone surrogate in a two-byte
/// string is U+FFFD (a Rust `String` cannot hold one); a number property key is its
/// JavaScript string (`1` → `"1"`), as in JavaScript.
///
/// Back-references (`^`: an object sent a second time, or inside itself) are
/// [`Value::Ref`]s to the [`Value::Shared`] object they name, numbered as V8 numbered them;
/// nothing is copied, so a frame's value takes memory in proportion to the frame.
///
/// Errors, all ending the channel after the messages before it: [`IpcError::FrameTooLarge`]
/// (checked on the length prefix), [`IpcError::Malformed`] naming the tag and its byte offset
/// in the payload (an empty frame, a missing `ff` header, an unknown or unsupported tag such
/// as a `SharedArrayBuffer`, a wrong count, a back-reference to an object not read yet, data
/// that ends early),
/// [`IpcError::InvalidUtf8`] in an `S` string, [`IpcError::Truncated`] at end of stream.
///
/// The frame limit ([`AdvancedCodec::DEFAULT_MAX_FRAME`], 128 MiB, unless set with
/// [`with_max_frame`](AdvancedCodec::with_max_frame)) counts the payload; it is capped at
/// 2³¹ − 1 because Node misreads longer frames.
///
/// ```
/// use bytes::BytesMut;
/// use childproc_ipc::{AdvancedCodec, Value};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = AdvancedCodec::new();
/// let mut buf = BytesMut::new();
/// codec.encode(Value::object([("v", Value::from(1))]), &mut buf).unwrap();
/// assert_eq!(&buf[..], b"\0\0\0\x0a\xff\x0fo\"\x01vI\x02{\x01");
/// let back = codec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(back.get("v"), Some(&Value::from(1)));
/// ```
#[derive(Debug, Clone)]
pub struct AdvancedCodec {
    max_frame: usize,
}

impl AdvancedCodec {
    /// The default payload size limit: 128 MiB.
    pub const DEFAULT_MAX_FRAME: usize = 128 * 1024 * 1024;

    /// The largest limit: 2³¹ − 1 bytes (Node reads the length prefix as a signed number).
    pub const MAX_FRAME_LIMIT: usize = i32::MAX as usize;

    /// A codec with the default limit ([`Self::DEFAULT_MAX_FRAME`]).
    pub fn new() -> Self {
        Self::with_max_frame(Self::DEFAULT_MAX_FRAME)
    }

    /// A codec whose payloads may be at most `max_frame` bytes (capped at
    /// [`Self::MAX_FRAME_LIMIT`]).
    pub fn with_max_frame(max_frame: usize) -> Self {
        AdvancedCodec {
            max_frame: max_frame.min(Self::MAX_FRAME_LIMIT),
        }
    }

    /// The payload size limit in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn encode_ref(&mut self, item: &Value, dst: &mut BytesMut) -> Result<()> {
        let frame_start = dst.len();
        frame::encode_prefixed(dst, self.max_frame, |dst| {
            write::write_payload(dst, frame_start, item)
        })
    }
}

impl Default for AdvancedCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for AdvancedCodec {
    type Item = Value;
    type Error = IpcError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Value>> {
        let Some(payload) = frame::split_prefixed(src, self.max_frame)? else {
            return Ok(None);
        };
        read::read_payload(&payload).map(Some)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Value>> {
        let decoded = self.decode(buf)?;
        frame::at_eof(decoded, buf)
    }
}

impl Encoder<Value> for AdvancedCodec {
    type Error = IpcError;

    fn encode(&mut self, item: Value, dst: &mut BytesMut) -> Result<()> {
        self.encode_ref(&item, dst)
    }
}

impl Encoder<&Value> for AdvancedCodec {
    type Error = IpcError;

    fn encode(&mut self, item: &Value, dst: &mut BytesMut) -> Result<()> {
        self.encode_ref(item, dst)
    }
}
