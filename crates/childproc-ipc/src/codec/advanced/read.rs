//! Reading a V8 ValueSerializer payload into a [`Value`] (see
//! [`AdvancedCodec`](super::AdvancedCodec) for what maps to what).
//!
//! Back-references (`^id`: an object written a second time, or inside itself) become
//! [`Value::Ref`]s, and the objects they name [`Value::Shared`], so identity and cycles come
//! through and nothing is copied: a frame's value takes memory in proportion to the frame.
//! Most frames have no `^`; for those that do, a second walk over the finished value (not
//! the bytes) wraps each object some `^` names.

mod compound;
mod identity;

use super::bigint;
use super::tag;
use super::text;
use crate::value::{ArrayBuffer, TypedArray, TypedArrayKind};
use crate::{IpcError, Result, Value};

/// Reads the payload of one frame: header, then one value; bytes after it are ignored, as
/// Node ignores them.
pub(super) fn read_payload(payload: &[u8]) -> Result<Value> {
    let mut reader = Reader::new(payload);
    let mut value = reader.top()?;
    if !reader.referenced.is_empty() {
        identity::wrap_shared(&mut value, &reader.referenced);
    }
    Ok(value)
}

/// `node_of` for a V8 object number that is no object of the value.
const NO_NODE: u32 = u32::MAX;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    version: u32,
    /// For each V8 object number given so far (V8 numbers every object as it starts), the
    /// number of the value's object it is: objects counted depth first, in the order they
    /// appear ([`Value::Shared`]'s ids). The two differ only where V8 numbers two things
    /// that are one object here (an ArrayBuffer and its view; a host object and its copy).
    node_of: Vec<u32>,
    /// How many objects of the value have started.
    nodes: u32,
    /// Whether each object of the value is named by a `^` (empty until one is).
    referenced: Vec<bool>,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            version: 0,
            node_of: Vec::new(),
            nodes: 0,
            referenced: Vec::new(),
        }
    }

    fn top(&mut self) -> Result<Value> {
        self.header()?;
        self.value(0)
    }

    fn header(&mut self) -> Result<()> {
        match self.buf.first() {
            Some(&tag::VERSION) => self.pos = 1,
            Some(&b) => {
                return Err(IpcError::malformed(format!(
                    "no V8 version header: the payload starts with 0x{b:02x}, not 0xff"
                )))
            }
            None => return Err(IpcError::malformed("empty frame (length 0)")),
        }
        let version = self.varint()?;
        if !(tag::OLDEST_VERSION..=u32::from(tag::LATEST_VERSION)).contains(&version) {
            return Err(IpcError::malformed(format!(
                "V8 serialization version {version} (this reader knows {} to {})",
                tag::OLDEST_VERSION,
                tag::LATEST_VERSION
            )));
        }
        self.version = version;
        Ok(())
    }

    // ---- bytes ----

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        crate::codec::take_bytes(self.buf, &mut self.pos, n, "V8")
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn f64(&mut self) -> Result<f64> {
        let mut le = [0; 8];
        le.copy_from_slice(self.take(8)?);
        Ok(f64::from_le_bytes(le))
    }

    /// A LEB128 varint that must fit in 32 bits (V8 writes lengths, counts and ids so).
    fn varint(&mut self) -> Result<u32> {
        let at = self.pos;
        let mut n: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift >= 35 {
                return Err(IpcError::malformed(format!(
                    "varint at byte {at} is longer than 5 bytes"
                )));
            }
        }
        u32::try_from(n).map_err(|_| {
            IpcError::malformed(format!("varint at byte {at} does not fit in 32 bits"))
        })
    }

    fn len(&mut self) -> Result<usize> {
        Ok(self.varint()? as usize)
    }

    /// A capacity that a hostile count cannot blow up: every item takes at least a byte.
    fn capacity(&self, count: usize) -> usize {
        count.min(self.buf.len() - self.pos)
    }

    /// The next tag, after any padding bytes.
    fn tag(&mut self) -> Result<(u8, usize)> {
        loop {
            let at = self.pos;
            let t = self.u8()?;
            if t != tag::PADDING {
                return Ok((t, at));
            }
        }
    }

    /// Whether the next tag (after padding) is `t`; consumes it (and the padding) if so.
    fn next_is(&mut self, t: u8) -> bool {
        let mut p = self.pos;
        while self.buf.get(p) == Some(&tag::PADDING) {
            p += 1;
        }
        if self.buf.get(p) == Some(&t) {
            self.pos = p + 1;
            true
        } else {
            false
        }
    }

    fn enter(&self, depth: usize, at: usize) -> Result<()> {
        crate::codec::check_read_depth(depth, at)
    }

    // ---- object numbers ----

    /// An object of the value starts: it takes the next V8 number and the next number of
    /// the value's objects.
    fn new_object(&mut self) {
        self.node_of.push(self.nodes);
        self.nodes += 1;
    }

    // ---- values ----

    /// One value. Only containers recurse; everything else is handled out of line in
    /// [`Self::leaf`] to keep this frame small, since its size times [`Value::MAX_DEPTH`] is
    /// the stack a hostile frame can make us use.
    fn value(&mut self, depth: usize) -> Result<Value> {
        let (mut t, mut at) = self.tag()?;
        while t == tag::VERIFY_OBJECT_COUNT {
            self.varint()?;
            (t, at) = self.tag()?;
        }
        match t {
            tag::OBJECT => {
                self.enter(depth, at)?;
                self.new_object();
                Ok(Value::Object(self.object(depth, at)?))
            }
            tag::DENSE_ARRAY => {
                self.enter(depth, at)?;
                self.new_object();
                self.dense_array(depth, at)
            }
            tag::SPARSE_ARRAY => {
                self.enter(depth, at)?;
                self.new_object();
                self.sparse_array(depth, at)
            }
            tag::MAP => {
                self.enter(depth, at)?;
                self.new_object();
                self.map(depth, at)
            }
            tag::SET => {
                self.enter(depth, at)?;
                self.new_object();
                let mut items = Vec::new();
                while !self.next_is(tag::END_SET) {
                    items.push(self.value(depth + 1)?);
                }
                self.check_count("Set", at, items.len())?;
                Ok(Value::Set(items))
            }
            tag::ERROR => {
                self.enter(depth, at)?;
                self.new_object();
                self.error(depth, at)
            }
            tag::HOST_OBJECT => {
                self.enter(depth, at)?;
                self.host_object(depth, at)
            }
            tag::OBJECT_REFERENCE => self.back_reference(at),
            _ => self.leaf(t, at),
        }
    }

    #[inline(never)]
    fn leaf(&mut self, t: u8, at: usize) -> Result<Value> {
        let v = match t {
            tag::UNDEFINED => Value::Undefined,
            tag::NULL => Value::Null,
            tag::TRUE => Value::Bool(true),
            tag::FALSE => Value::Bool(false),
            tag::INT32 => Value::Number(self.int32()?.into()),
            tag::UINT32 => Value::Number(self.varint()?.into()),
            tag::DOUBLE => Value::Number(self.f64()?),
            tag::BIGINT => Value::BigInt(self.bigint(at)?),
            tag::ONE_BYTE_STRING | tag::TWO_BYTE_STRING | tag::UTF8_STRING => {
                Value::String(self.string_body(t, at)?)
            }
            _ => return self.object_leaf(t, at),
        };
        Ok(v)
    }

    /// Objects without values inside.
    fn object_leaf(&mut self, t: u8, at: usize) -> Result<Value> {
        let boxed = |v| Value::Boxed(Box::new(v));
        let v = match t {
            tag::DATE => Value::Date(self.f64()?),
            tag::TRUE_OBJECT => boxed(Value::Bool(true)),
            tag::FALSE_OBJECT => boxed(Value::Bool(false)),
            tag::NUMBER_OBJECT => boxed(Value::Number(self.f64()?)),
            tag::BIGINT_OBJECT => boxed(Value::BigInt(self.bigint(at)?)),
            tag::STRING_OBJECT => boxed(Value::String(self.string()?)),
            tag::REGEXP => {
                let source = self.string()?;
                let bits = self.varint()?;
                let flags = tag::regexp_flags_text(bits).ok_or_else(|| {
                    IpcError::malformed(format!("RegExp at byte {at} has unknown flags 0x{bits:x}"))
                })?;
                Value::RegExp { source, flags }
            }
            tag::ARRAY_BUFFER | tag::RESIZABLE_ARRAY_BUFFER => return self.array_buffer(t, at),
            _ => {
                return Err(IpcError::malformed(format!(
                    "unsupported V8 tag {} at byte {at}: {}",
                    tag::show(t),
                    tag::unsupported_kind(t)
                )))
            }
        };
        self.new_object();
        Ok(v)
    }

    /// An `ArrayBuffer`, or V8's own view of one when a `V` follows (Node writes views as
    /// host objects instead, but V8's reader takes both).
    fn array_buffer(&mut self, t: u8, at: usize) -> Result<Value> {
        let len = self.len()?;
        let max_byte_length = if t == tag::RESIZABLE_ARRAY_BUFFER {
            let max = self.varint()?;
            if (max as usize) < len {
                return Err(IpcError::malformed(format!(
                    "resizable ArrayBuffer at byte {at} is {len} bytes, above its maximum {max}"
                )));
            }
            Some(max)
        } else {
            None
        };
        let bytes = self.take(len)?;
        self.new_object();
        if !self.next_is(tag::ARRAY_BUFFER_VIEW) {
            return Ok(Value::ArrayBuffer(ArrayBuffer {
                bytes: bytes.to_vec(),
                max_byte_length,
            }));
        }
        let view_at = self.pos - 1;
        let index = self.u8()?;
        let offset = self.len()?;
        let view_len = self.len()?;
        if self.version >= 14 {
            let _flags = self.varint()?;
        }
        let viewed = offset
            .checked_add(view_len)
            .and_then(|end| bytes.get(offset..end))
            .ok_or_else(|| {
                IpcError::malformed(format!(
                    "ArrayBufferView at byte {view_at} ({view_len} bytes at offset {offset}) is \
                     outside its {len}-byte buffer"
                ))
            })?;
        let kind = match index {
            b'b' => Some(TypedArrayKind::Int8),
            b'B' => Some(TypedArrayKind::Uint8),
            b'C' => Some(TypedArrayKind::Uint8Clamped),
            b'w' => Some(TypedArrayKind::Int16),
            b'W' => Some(TypedArrayKind::Uint16),
            b'd' => Some(TypedArrayKind::Int32),
            b'D' => Some(TypedArrayKind::Uint32),
            b'f' => Some(TypedArrayKind::Float32),
            b'F' => Some(TypedArrayKind::Float64),
            b'q' => Some(TypedArrayKind::BigInt64),
            b'Q' => Some(TypedArrayKind::BigUint64),
            b'?' => None,
            _ => {
                return Err(IpcError::malformed(format!(
                    "ArrayBufferView at byte {view_at} has unknown view type {}",
                    tag::show(index)
                )))
            }
        };
        // The buffer and its view are one object here: the view's number names it, the
        // buffer's names nothing.
        let buffer = self.node_of.len() - 1;
        let node = self.node_of[buffer];
        self.node_of[buffer] = NO_NODE;
        self.node_of.push(node);
        self.view(kind, viewed.to_vec(), view_at)
    }

    /// A view's value: a typed array of `kind`, or a `DataView` for `None`.
    pub(super) fn view(
        &mut self,
        kind: Option<TypedArrayKind>,
        bytes: Vec<u8>,
        at: usize,
    ) -> Result<Value> {
        let Some(kind) = kind else {
            return Ok(Value::DataView(bytes));
        };
        let len = bytes.len();
        TypedArray::new(kind, bytes)
            .map(Value::TypedArray)
            .ok_or_else(|| {
                IpcError::malformed(format!(
                    "{kind} at byte {at} has {len} bytes, not a whole number of {}-byte elements",
                    kind.element_size()
                ))
            })
    }

    fn int32(&mut self) -> Result<i32> {
        let n = self.varint()?;
        Ok(((n >> 1) as i32) ^ -((n & 1) as i32))
    }

    fn bigint(&mut self, at: usize) -> Result<String> {
        let bitfield = self.varint()?;
        let len = (bitfield >> 1) as usize;
        if len > bigint::MAX_BYTES {
            return Err(IpcError::malformed(format!(
                "BigInt at byte {at} has {len} bytes (the limit is {})",
                bigint::MAX_BYTES
            )));
        }
        let digits = bigint::decimal_from_le_bytes(self.take(len)?);
        Ok(if bitfield & 1 == 1 && digits != "0" {
            format!("-{digits}")
        } else {
            digits
        })
    }

    /// A string value (boxed string, RegExp source, Error message and stack).
    fn string(&mut self) -> Result<String> {
        let (t, at) = self.tag()?;
        match t {
            tag::ONE_BYTE_STRING | tag::TWO_BYTE_STRING | tag::UTF8_STRING => {
                self.string_body(t, at)
            }
            _ => Err(IpcError::malformed(format!(
                "expected a string at byte {at}, found tag {}",
                tag::show(t)
            ))),
        }
    }

    fn string_body(&mut self, t: u8, at: usize) -> Result<String> {
        let len = self.len()?;
        let start = self.pos;
        let bytes = self.take(len)?;
        match t {
            // ASCII is UTF-8 as it is. (Not `from_utf8_lossy`: it checks byte by byte, ten
            // times slower than `from_utf8` on a long string.)
            tag::ONE_BYTE_STRING if bytes.is_ascii() => {
                String::from_utf8(bytes.to_vec()).map_err(|e| IpcError::InvalidUtf8 {
                    offset: start + e.utf8_error().valid_up_to(),
                })
            }
            // Latin-1: each byte is the code point; 80–FF take two bytes in UTF-8.
            tag::ONE_BYTE_STRING => Ok(text::utf8_from_latin1(bytes)),
            tag::TWO_BYTE_STRING => {
                if len % 2 == 1 {
                    return Err(IpcError::malformed(format!(
                        "two-byte string at byte {at} has an odd length ({len} bytes)"
                    )));
                }
                // A lone surrogate becomes U+FFFD: a Rust String cannot hold one.
                Ok(text::utf8_from_utf16le(bytes))
            }
            _ => std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|e| IpcError::InvalidUtf8 {
                    offset: start + e.valid_up_to(),
                }),
        }
    }

    /// `^`: another place of an object read before (or still open: a cycle).
    #[inline(never)]
    fn back_reference(&mut self, at: usize) -> Result<Value> {
        let id = self.len()?;
        let Some(&node) = self.node_of.get(id) else {
            return Err(IpcError::malformed(format!(
                "back-reference at byte {at} to object {id}, but only {} objects were read",
                self.node_of.len()
            )));
        };
        if node == NO_NODE {
            return Err(IpcError::malformed(format!(
                "back-reference at byte {at} to object {id}, the ArrayBuffer of a view (this \
                 reader keeps the view, not its buffer)"
            )));
        }
        // `node` names an object that started before: below `nodes`, which is at most the
        // payload's length (every object takes a byte of it).
        let node_index = node as usize;
        if self.referenced.len() <= node_index {
            self.referenced.resize(node_index + 1, false);
        }
        self.referenced[node_index] = true;
        Ok(Value::Ref(node))
    }
}
