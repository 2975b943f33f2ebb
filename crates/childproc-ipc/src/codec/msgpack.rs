//! [`MsgPackCodec`]: every [`Value`] kind, losslessly, as length-prefixed MessagePack.
//!
//! (See [`MsgPackCodec`] for the frame, the mapping and the extension types.)

use std::io;

use bytes::{BufMut, BytesMut};
use rmp::Marker;
use tokio_util::codec::{Decoder, Encoder};

use super::frame;
use crate::{IpcError, Result, Value};

const EXT_UNDEFINED: i8 = 1;
const EXT_BIGINT: i8 = 2;
const EXT_MAP: i8 = 3;
const EXT_SET: i8 = 4;
const EXT_DATE: i8 = 5;
const EXT_REGEXP: i8 = 6;
const EXT_ERROR: i8 = 7;
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
/// | `Error` | **ext 7**, payload one MessagePack array `[name, message, stack]` (str, str, str or nil), ext 32 header |
///
/// `Map`, `Set`, `RegExp` and `Error` payloads always use the 4-byte ext 32 length so that
/// the encoder writes in one pass (the length is patched in afterwards); decoders accept any
/// ext form for every type.
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
/// extension), [`IpcError::InvalidUtf8`], [`IpcError::Truncated`] at end of stream; encoding a
/// `BigInt` whose text is not canonical decimal is [`IpcError::Unsupported`].
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
            write_value(&mut Out(dst), item, 0)
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

/// One frame's payload: exactly one MessagePack value.
pub(crate) fn decode_payload(payload: &[u8]) -> Result<Value> {
    let mut reader = Reader {
        buf: payload,
        pos: 0,
    };
    let value = reader.value(0)?;
    if reader.pos != payload.len() {
        return Err(IpcError::malformed(format!(
            "{} trailing bytes after the MessagePack value",
            payload.len() - reader.pos
        )));
    }
    Ok(value)
}

// ---- encoding ----

/// `io::Write` over the destination buffer, for `rmp::encode`.
struct Out<'a>(&'a mut BytesMut);

impl io::Write for Out<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn patch_u32(dst: &mut BytesMut, at: usize, len: usize) {
    // Callers check len against a limit <= u32::MAX first.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    dst[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn io_err<E: Into<io::Error>>(e: E) -> IpcError {
    IpcError::Io(e.into())
}

fn len32(len: usize, what: &str) -> Result<u32> {
    u32::try_from(len).map_err(|_| {
        IpcError::unsupported(format!(
            "a {what} of {len} (MessagePack's limit is 2^32 - 1)"
        ))
    })
}

fn enter(depth: usize) -> Result<()> {
    crate::codec::check_write_depth(depth)
}

/// Whether `digits` is a BigInt's canonical decimal text: no `+`, no leading zeros, no `-0`.
pub(super) fn canonical_bigint(digits: &str) -> bool {
    let magnitude = digits.strip_prefix('-').unwrap_or(digits);
    !magnitude.is_empty()
        && magnitude.bytes().all(|b| b.is_ascii_digit())
        && (magnitude.len() == 1 || !magnitude.starts_with('0'))
        && !(magnitude == "0" && digits.starts_with('-'))
}

fn write_str(out: &mut Out<'_>, s: &str) -> Result<()> {
    rmp::encode::write_str_len(out, len32(s.len(), "string of bytes")?).map_err(io_err)?;
    out.0.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Ext with a payload known up front.
fn write_ext(out: &mut Out<'_>, ty: i8, payload: &[u8]) -> Result<()> {
    rmp::encode::write_ext_meta(out, len32(payload.len(), "extension payload")?, ty)
        .map_err(io_err)?;
    out.0.extend_from_slice(payload);
    Ok(())
}

/// Starts an ext 32 whose payload is written in place; returns where its length goes.
fn begin_ext32(out: &mut Out<'_>, ty: i8) -> usize {
    out.0.put_u8(Marker::Ext32.to_u8());
    let at = out.0.len();
    out.0.put_u32(0);
    out.0.put_i8(ty);
    at
}

/// Patches in the length of the ext 32 started at `at`.
fn end_ext32(out: &mut Out<'_>, at: usize) -> Result<()> {
    let len = out.0.len() - at - 5;
    len32(len, "extension payload")?;
    patch_u32(out.0, at, len);
    Ok(())
}

/// Only containers recurse; everything else is written out of line by [`write_leaf`] to keep
/// this frame small (its size times [`Value::MAX_DEPTH`] is the stack a value can use).
fn write_value(out: &mut Out<'_>, value: &Value, depth: usize) -> Result<()> {
    match value {
        Value::Array(items) => {
            enter(depth)?;
            write_array(out, items, depth)
        }
        Value::Object(pairs) => {
            enter(depth)?;
            rmp::encode::write_map_len(out, len32(pairs.len(), "object of keys")?)
                .map_err(io_err)?;
            for (key, item) in pairs {
                write_str(out, key)?;
                write_value(out, item, depth + 1)?;
            }
            Ok(())
        }
        Value::Map(entries) => {
            enter(depth)?;
            let at = begin_ext32(out, EXT_MAP);
            rmp::encode::write_map_len(out, len32(entries.len(), "Map of entries")?)
                .map_err(io_err)?;
            for (key, item) in entries {
                write_value(out, key, depth + 1)?;
                write_value(out, item, depth + 1)?;
            }
            end_ext32(out, at)
        }
        Value::Set(items) => {
            enter(depth)?;
            let at = begin_ext32(out, EXT_SET);
            write_array(out, items, depth)?;
            end_ext32(out, at)
        }
        _ => write_leaf(out, value),
    }
}

#[inline(never)]
fn write_leaf(out: &mut Out<'_>, value: &Value) -> Result<()> {
    match value {
        Value::Undefined => write_ext(out, EXT_UNDEFINED, &[])?,
        Value::Null => rmp::encode::write_nil(out).map_err(io_err)?,
        Value::Bool(b) => rmp::encode::write_bool(out, *b).map_err(io_err)?,
        Value::Number(n) => {
            let n = *n;
            if n.fract() == 0.0 && n.abs() <= MAX_SAFE && !(n == 0.0 && n.is_sign_negative()) {
                rmp::encode::write_sint(out, n as i64).map_err(io_err)?;
            } else {
                rmp::encode::write_f64(out, n).map_err(io_err)?;
            }
        }
        Value::BigInt(digits) => {
            if !canonical_bigint(digits) {
                return Err(IpcError::unsupported(format!(
                    "a BigInt whose text {digits:?} is not canonical decimal digits"
                )));
            }
            write_ext(out, EXT_BIGINT, digits.as_bytes())?;
        }
        Value::String(s) => write_str(out, s)?,
        Value::Bytes(b) => {
            rmp::encode::write_bin_len(out, len32(b.len(), "Buffer of bytes")?).map_err(io_err)?;
            out.0.extend_from_slice(b);
        }
        Value::Date(ms) => write_ext(out, EXT_DATE, &ms.to_be_bytes())?,
        Value::RegExp { source, flags } => {
            let at = begin_ext32(out, EXT_REGEXP);
            rmp::encode::write_array_len(out, 2).map_err(io_err)?;
            write_str(out, source)?;
            write_str(out, flags)?;
            end_ext32(out, at)?;
        }
        Value::Error {
            name,
            message,
            stack,
        } => {
            let at = begin_ext32(out, EXT_ERROR);
            rmp::encode::write_array_len(out, 3).map_err(io_err)?;
            write_str(out, name)?;
            write_str(out, message)?;
            match stack {
                Some(stack) => write_str(out, stack)?,
                None => rmp::encode::write_nil(out).map_err(io_err)?,
            }
            end_ext32(out, at)?;
        }
        Value::Array(_) | Value::Object(_) | Value::Map(_) | Value::Set(_) => {
            return Err(IpcError::unsupported("a container in write_leaf"))
        }
    }
    Ok(())
}

fn write_array(out: &mut Out<'_>, items: &[Value], depth: usize) -> Result<()> {
    rmp::encode::write_array_len(out, len32(items.len(), "array of items")?).map_err(io_err)?;
    for item in items {
        write_value(out, item, depth + 1)?;
    }
    Ok(())
}

// ---- decoding ----

/// A cursor over one frame's payload (or a part of it: an extension's payload keeps the
/// frame's offsets, so errors name the byte in the frame).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        super::take_bytes(self.buf, &mut self.pos, n, "MessagePack")
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize> {
        Ok(u16::from_be_bytes(self.array()?).into())
    }

    fn u32(&mut self) -> Result<usize> {
        Ok(u32::from_be_bytes(self.array()?) as usize)
    }

    /// A capacity that a hostile count cannot blow up: every item takes at least a byte.
    fn capacity(&self, count: usize) -> usize {
        count.min(self.buf.len() - self.pos)
    }

    fn str_of(&mut self, len: usize) -> Result<String> {
        let start = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| IpcError::InvalidUtf8 {
                offset: start + e.valid_up_to(),
            })
    }

    fn str_len(&mut self, marker: Marker) -> Result<Option<usize>> {
        Ok(Some(match marker {
            Marker::FixStr(n) => n.into(),
            Marker::Str8 => self.u8()?.into(),
            Marker::Str16 => self.u16()?,
            Marker::Str32 => self.u32()?,
            _ => return Ok(None),
        }))
    }

    /// One value. Only containers recurse; everything else is handled out of line in
    /// [`Self::scalar`] and [`Self::ext_value`] to keep this frame small, since its size
    /// times [`Value::MAX_DEPTH`] is the stack a hostile frame can make us use.
    fn value(&mut self, depth: usize) -> Result<Value> {
        let at = self.pos;
        let marker = Marker::from_u8(self.u8()?);
        match marker {
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let len = self.array_len(marker)?.unwrap_or(0);
                self.enter(depth, at)?;
                self.items(len, depth).map(Value::Array)
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                let len = self.map_len(marker)?.unwrap_or(0);
                self.enter(depth, at)?;
                self.object_or_map(len, depth)
            }
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => self.ext_value(marker, depth, at),
            _ => self.scalar(marker, at),
        }
    }

    #[inline(never)]
    fn scalar(&mut self, marker: Marker, at: usize) -> Result<Value> {
        Ok(match marker {
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::FixPos(n) => Value::Number(n.into()),
            Marker::FixNeg(n) => Value::Number(n.into()),
            Marker::U8 => Value::Number(self.u8()?.into()),
            Marker::U16 => Value::Number(self.u16()? as f64),
            Marker::U32 => Value::Number(self.u32()? as f64),
            Marker::U64 => Value::Number(u64::from_be_bytes(self.array()?) as f64),
            Marker::I8 => Value::Number(i8::from_be_bytes(self.array()?).into()),
            Marker::I16 => Value::Number(i16::from_be_bytes(self.array()?).into()),
            Marker::I32 => Value::Number(i32::from_be_bytes(self.array()?).into()),
            Marker::I64 => Value::Number(i64::from_be_bytes(self.array()?) as f64),
            Marker::F32 => Value::Number(f32::from_be_bytes(self.array()?).into()),
            Marker::F64 => Value::Number(f64::from_be_bytes(self.array()?)),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let len = self.str_len(marker)?.unwrap_or(0);
                Value::String(self.str_of(len)?)
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let len = match marker {
                    Marker::Bin8 => self.u8()?.into(),
                    Marker::Bin16 => self.u16()?,
                    _ => self.u32()?,
                };
                Value::Bytes(self.take(len)?.to_vec())
            }
            _ => {
                return Err(IpcError::malformed(format!(
                    "reserved MessagePack byte 0xc1 at byte {at}"
                )))
            }
        })
    }

    #[inline(never)]
    fn ext_value(&mut self, marker: Marker, depth: usize, at: usize) -> Result<Value> {
        let len = match marker {
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            Marker::Ext8 => self.u8()?.into(),
            Marker::Ext16 => self.u16()?,
            _ => self.u32()?,
        };
        let ty = i8::from_be_bytes(self.array()?);
        match ty {
            EXT_MAP | EXT_SET => self.ext_container(ty, len, depth, at),
            _ => self.ext(ty, len, at),
        }
    }

    /// A `Map` or `Set` extension: its payload is one map or array that must fill it.
    fn ext_container(&mut self, ty: i8, len: usize, depth: usize, at: usize) -> Result<Value> {
        self.enter(depth, at)?;
        let start = self.pos;
        self.take(len)?;
        let mut inner = Reader {
            buf: &self.buf[..start + len],
            pos: start,
        };
        let marker = Marker::from_u8(inner.u8()?);
        let value = if ty == EXT_MAP {
            let count = inner.map_len(marker)?;
            count.map(|count| inner.entries(count, depth).map(Value::Map))
        } else {
            let count = inner.array_len(marker)?;
            count.map(|count| inner.items(count, depth).map(Value::Set))
        };
        let value = value.unwrap_or_else(|| Err(bad_ext(ty, at, "not a map or array")))?;
        if inner.pos != start + len {
            return Err(bad_ext(ty, at, "trailing bytes"));
        }
        Ok(value)
    }

    fn enter(&self, depth: usize, at: usize) -> Result<()> {
        crate::codec::check_read_depth(depth, at)
    }

    fn array_len(&mut self, marker: Marker) -> Result<Option<usize>> {
        Ok(Some(match marker {
            Marker::FixArray(n) => n.into(),
            Marker::Array16 => self.u16()?,
            Marker::Array32 => self.u32()?,
            _ => return Ok(None),
        }))
    }

    fn map_len(&mut self, marker: Marker) -> Result<Option<usize>> {
        Ok(Some(match marker {
            Marker::FixMap(n) => n.into(),
            Marker::Map16 => self.u16()?,
            Marker::Map32 => self.u32()?,
            _ => return Ok(None),
        }))
    }

    fn items(&mut self, len: usize, depth: usize) -> Result<Vec<Value>> {
        let mut items = Vec::with_capacity(self.capacity(len));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }

    fn entries(&mut self, len: usize, depth: usize) -> Result<Vec<(Value, Value)>> {
        let mut entries = Vec::with_capacity(self.capacity(len));
        for _ in 0..len {
            let key = self.value(depth + 1)?;
            entries.push((key, self.value(depth + 1)?));
        }
        Ok(entries)
    }

    /// A plain map: an `Object` when every key is a str (ours always are), else a `Map`.
    fn object_or_map(&mut self, len: usize, depth: usize) -> Result<Value> {
        let entries = self.entries(len, depth)?;
        if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
            Ok(Value::Object(
                entries
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        Value::String(k) => Some((k, v)),
                        _ => None,
                    })
                    .collect(),
            ))
        } else {
            Ok(Value::Map(entries))
        }
    }

    /// A str inside an extension payload.
    fn expect_str(&mut self, what: &str) -> Result<String> {
        let at = self.pos;
        let marker = Marker::from_u8(self.u8()?);
        match self.str_len(marker)? {
            Some(len) => self.str_of(len),
            None => Err(IpcError::malformed(format!(
                "expected a str ({what}) at byte {at}"
            ))),
        }
    }

    #[inline(never)]
    fn ext(&mut self, ty: i8, len: usize, at: usize) -> Result<Value> {
        let start = self.pos;
        let payload = self.take(len)?;
        // Parse the payload in a reader of its own that keeps the frame's offsets.
        let mut inner = Reader {
            buf: &self.buf[..start + len],
            pos: start,
        };
        let bad = |what: &str| bad_ext(ty, at, what);
        let value = match ty {
            EXT_UNDEFINED if len == 0 => Value::Undefined,
            EXT_UNDEFINED => return Err(bad("undefined has no payload")),
            EXT_BIGINT => {
                let digits = std::str::from_utf8(payload)
                    .ok()
                    .filter(|d| canonical_bigint(d))
                    .ok_or_else(|| bad("not canonical decimal digits"))?;
                Value::BigInt(digits.to_owned())
            }
            EXT_DATE => {
                let bytes: [u8; 8] = payload.try_into().map_err(|_| bad("not 8 bytes"))?;
                Value::Date(f64::from_be_bytes(bytes))
            }
            EXT_TIMESTAMP => {
                Value::Date(timestamp_ms(payload).ok_or_else(|| bad("not a timestamp"))?)
            }
            EXT_REGEXP => {
                let marker = Marker::from_u8(inner.u8()?);
                if inner.array_len(marker)? != Some(2) {
                    return Err(bad("not an array of 2"));
                }
                Value::RegExp {
                    source: inner.expect_str("RegExp source")?,
                    flags: inner.expect_str("RegExp flags")?,
                }
            }
            EXT_ERROR => {
                let marker = Marker::from_u8(inner.u8()?);
                if inner.array_len(marker)? != Some(3) {
                    return Err(bad("not an array of 3"));
                }
                let name = inner.expect_str("Error name")?;
                let message = inner.expect_str("Error message")?;
                let stack = if inner.buf.get(inner.pos) == Some(&Marker::Null.to_u8()) {
                    inner.pos += 1;
                    None
                } else {
                    Some(inner.expect_str("Error stack")?)
                };
                Value::Error {
                    name,
                    message,
                    stack,
                }
            }
            _ => {
                return Err(IpcError::malformed(format!(
                    "unknown MessagePack extension type {ty} at byte {at}"
                )))
            }
        };
        if inner.pos != start + len && !matches!(ty, EXT_BIGINT | EXT_DATE | EXT_TIMESTAMP) {
            return Err(bad("trailing bytes"));
        }
        Ok(value)
    }
}

fn bad_ext(ty: i8, at: usize, what: &str) -> IpcError {
    IpcError::malformed(format!("bad extension {ty} payload at byte {at}: {what}"))
}

/// MessagePack's timestamp extension (32, 64 or 96 bits) as milliseconds since the epoch.
fn timestamp_ms(payload: &[u8]) -> Option<f64> {
    let (secs, nanos) = match payload.len() {
        4 => (u32::from_be_bytes(payload.try_into().ok()?) as f64, 0u32),
        8 => {
            let v = u64::from_be_bytes(payload.try_into().ok()?);
            ((v & 0x3_ffff_ffff) as f64, (v >> 34) as u32)
        }
        12 => {
            let nanos = u32::from_be_bytes(payload[..4].try_into().ok()?);
            (
                i64::from_be_bytes(payload[4..].try_into().ok()?) as f64,
                nanos,
            )
        }
        _ => return None,
    };
    (nanos < 1_000_000_000).then(|| secs * 1000.0 + f64::from(nanos) / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{arb_value, check_roundtrip, chunked, decode_stream, same};
    use proptest::prelude::*;

    fn payload(v: &Value) -> Vec<u8> {
        let mut buf = BytesMut::new();
        MsgPackCodec::new().encode(v, &mut buf).unwrap();
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(len, buf.len() - 4);
        buf[4..].to_vec()
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn decode_one(payload: &[u8]) -> Result<Value> {
        let (mut values, err) = decode_stream(&mut MsgPackCodec::new(), &[&frame(payload)]);
        match err {
            Some(e) => Err(e),
            None => Ok(values.remove(0)),
        }
    }

    #[test]
    fn documented_bytes() {
        let cases: Vec<(Value, Vec<u8>)> = vec![
            (Value::Null, vec![0xc0]),
            (Value::Bool(true), vec![0xc3]),
            (Value::from(1), vec![0x01]),
            (Value::from(-1), vec![0xff]),
            (Value::Number(300.0), vec![0xcd, 0x01, 0x2c]),
            (
                Value::Number(1.5),
                [&[0xcb][..], &1.5f64.to_be_bytes()].concat(),
            ),
            (
                Value::Number(-0.0),
                [&[0xcb][..], &(-0.0f64).to_be_bytes()].concat(),
            ),
            (
                Value::Number(MAX_SAFE * 2.0),
                [&[0xcb][..], &(MAX_SAFE * 2.0).to_be_bytes()].concat(),
            ),
            (Value::from("hi"), vec![0xa2, b'h', b'i']),
            (Value::Bytes(vec![1, 2]), vec![0xc4, 2, 1, 2]),
            (Value::Array(vec![Value::Null]), vec![0x91, 0xc0]),
            (
                Value::object([("a", Value::Null)]),
                vec![0x81, 0xa1, b'a', 0xc0],
            ),
            (Value::Undefined, vec![0xc7, 0, 1]),
            (
                Value::BigInt("-12".into()),
                vec![0xc7, 3, 2, b'-', b'1', b'2'],
            ),
            (
                Value::Map(vec![(Value::from(1), Value::Null)]),
                vec![0xc9, 0, 0, 0, 3, 3, 0x81, 0x01, 0xc0],
            ),
            (Value::Set(vec![]), vec![0xc9, 0, 0, 0, 1, 4, 0x90]),
            (Value::Date(0.0), vec![0xd7, 5, 0, 0, 0, 0, 0, 0, 0, 0]),
            (
                Value::RegExp {
                    source: "a".into(),
                    flags: "g".into(),
                },
                vec![0xc9, 0, 0, 0, 5, 6, 0x92, 0xa1, b'a', 0xa1, b'g'],
            ),
            (
                Value::Error {
                    name: "E".into(),
                    message: "".into(),
                    stack: None,
                },
                vec![0xc9, 0, 0, 0, 5, 7, 0x93, 0xa1, b'E', 0xa0, 0xc0],
            ),
        ];
        for (value, bytes) in cases {
            assert_eq!(payload(&value), bytes, "{value:?}");
            assert!(same(&decode_one(&bytes).unwrap(), &value), "{value:?}");
        }
    }

    #[test]
    fn reads_other_writers_forms() {
        // float 32, int 64, u64 beyond 2^53, a map with an int key, timestamps.
        assert_eq!(
            decode_one(&[0xca, 0x3f, 0xc0, 0, 0]).unwrap(),
            Value::Number(1.5)
        );
        assert_eq!(
            decode_one(&[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]).unwrap(),
            Value::from(-2)
        );
        assert_eq!(
            decode_one(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            Value::Number(18446744073709551615.0)
        );
        assert_eq!(
            decode_one(&[0x81, 0x01, 0xc0]).unwrap(),
            Value::Map(vec![(Value::from(1), Value::Null)])
        );
        assert_eq!(
            decode_one(&[0xd6, 0xff, 0, 0, 0, 2]).unwrap(),
            Value::Date(2000.0)
        );
        let ts64 = ((5_000_000u64) << 34) | 1;
        assert_eq!(
            decode_one(&[&[0xd7, 0xff][..], &ts64.to_be_bytes()].concat()).unwrap(),
            Value::Date(1005.0)
        );
        let mut ts96 = vec![0xc7, 12, 0xff];
        ts96.extend(0u32.to_be_bytes());
        ts96.extend((-1i64).to_be_bytes());
        assert_eq!(decode_one(&ts96).unwrap(), Value::Date(-1000.0));
    }

    #[test]
    fn decode_errors() {
        let malformed: &[(&[u8], &str)] = &[
            (&[], "empty frame"),
            (&[0xc1], "reserved"),
            (&[0xc0, 0xc0], "1 trailing bytes"),
            (&[0x92, 0xc0], "ends early"),
            (&[0xdd, 0xff, 0xff, 0xff, 0xff], "ends early"),
            (&[0xd4, 9, 0], "unknown MessagePack extension type 9"),
            (&[0xd4, 1, 0], "undefined has no payload"),
            (&[0xc7, 2, 2, b'0', b'1'], "not canonical"),
            (&[0xc7, 2, 2, b'-', b'0'], "not canonical"),
            (&[0xc7, 1, 2, b'x'], "not canonical"),
            (&[0xd4, 5, 0], "not 8 bytes"),
            (&[0xc7, 1, 3, 0xc0], "not a map or array"),
            (&[0xc7, 2, 3, 0x80, 0xc0], "trailing bytes"),
            (&[0xc7, 1, 3, 0x81], "ends early"),
            (
                &[0xc7, 3, 6, 0x92, 0xa0, 0xc0],
                "expected a str (RegExp flags)",
            ),
            (&[0xc7, 2, 7, 0x91, 0xa0], "not an array of 3"),
        ];
        for (bytes, reason) in malformed {
            match decode_one(bytes) {
                Err(IpcError::Malformed { reason: r }) => {
                    assert!(r.contains(reason), "{bytes:x?}: {r}")
                }
                other => panic!("{bytes:x?}: {other:?}"),
            }
        }
        assert!(matches!(
            decode_one(&[0x91, 0xa2, b'a', 0xff]),
            Err(IpcError::InvalidUtf8 { offset: 3 })
        ));
        let deep = [vec![0x91; Value::MAX_DEPTH + 1], vec![0xc0]].concat();
        assert!(
            matches!(decode_one(&deep), Err(IpcError::Malformed { reason }) if reason.contains("nesting"))
        );
        let ok = [vec![0x91; Value::MAX_DEPTH], vec![0xc0]].concat();
        assert!(decode_one(&ok).is_ok());

        let mut codec = MsgPackCodec::with_max_frame(2);
        let mut buf = BytesMut::from(&[0, 0, 0, 3][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(IpcError::FrameTooLarge { len: 3, max: 2 })
        ));
        let (_, err) = decode_stream(&mut MsgPackCodec::new(), &[&[0, 0, 0, 2, 0x91]]);
        assert!(matches!(err, Some(IpcError::Truncated { buffered: 5 })));
    }

    #[test]
    fn encode_errors_leave_the_buffer_alone() {
        let mut buf = BytesMut::from(&b"x"[..]);
        for digits in ["", "+1", "01", "-0", "1e3", " 1"] {
            assert!(matches!(
                MsgPackCodec::new().encode(Value::BigInt(digits.into()), &mut buf),
                Err(IpcError::Unsupported { .. })
            ));
        }
        assert!(matches!(
            MsgPackCodec::with_max_frame(2).encode(Value::from("ab"), &mut buf),
            Err(IpcError::FrameTooLarge { len: 3, max: 2 })
        ));
        let mut deep = Value::Null;
        for _ in 0..=Value::MAX_DEPTH {
            deep = Value::Set(vec![deep]);
        }
        assert!(matches!(
            MsgPackCodec::new().encode(&deep, &mut buf),
            Err(IpcError::Unsupported { .. })
        ));
        assert_eq!(&buf[..], b"x");
    }

    /// Values nested [`Value::MAX_DEPTH`] deep, every container kind, encode and decode in
    /// less than the 2 MiB stack a std or tokio worker thread has, even in a debug build
    /// (measured: about 3.5 KiB a level unoptimized, under 1 KiB optimized).
    #[test]
    fn max_depth_fits_in_a_small_stack() {
        let run = || {
            let kinds: [fn(Value) -> Value; 4] = [
                |v| Value::Array(vec![v]),
                |v| Value::object([("k", v)]),
                |v| Value::Map(vec![(Value::Null, v)]),
                |v| Value::Set(vec![v]),
            ];
            for (i, _) in kinds.iter().enumerate() {
                let mut v = Value::Null;
                for level in 0..Value::MAX_DEPTH {
                    v = kinds[(i + level) % 4](v);
                }
                let mut buf = BytesMut::new();
                MsgPackCodec::new().encode(&v, &mut buf).unwrap();
                let back = MsgPackCodec::new().decode(&mut buf).unwrap().unwrap();
                assert!(same(&back, &v));
                let text = crate::json::stringify(&v).unwrap();
                crate::json::parse(text.as_bytes()).unwrap();
            }
        };
        std::thread::Builder::new()
            .stack_size(1536 * 1024)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
    }

    proptest! {
        #[test]
        fn roundtrip_every_value(values in proptest::collection::vec(arb_value(), 1..4), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
            check_roundtrip(MsgPackCodec::new, &values, &cuts)?;
        }

        #[test]
        fn chunking_does_not_matter(
            bytes in proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(2), Just(3), Just(0x91), Just(0xc0), Just(0xc7), Just(0xc9), any::<u8>()],
                0..200),
            cuts in proptest::collection::vec(0usize..200, 0..10),
            max in 0usize..40,
        ) {
            let whole = decode_stream(&mut MsgPackCodec::with_max_frame(max), &[&bytes[..]]);
            let split = decode_stream(&mut MsgPackCodec::with_max_frame(max), &chunked(&bytes, &cuts));
            prop_assert!(whole.0.len() == split.0.len() && whole.0.iter().zip(&split.0).all(|(a, b)| same(a, b)));
            prop_assert_eq!(
                whole.1.as_ref().map(std::mem::discriminant),
                split.1.as_ref().map(std::mem::discriminant)
            );
        }

        #[test]
        fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_one(&payload);
        }
    }
}
