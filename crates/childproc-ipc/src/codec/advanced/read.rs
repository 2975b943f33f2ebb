//! Reading a V8 ValueSerializer payload into a [`Value`] (see
//! [`AdvancedCodec`](super::AdvancedCodec) for what maps to what).
//!
//! Back-references (`^id`: an object written a second time) become copies of the object they
//! name. Most frames have none, so a frame is read once without keeping anything; when that
//! reading met a `^`, the frame is read a second time keeping a copy of each object some `^`
//! names as it completes. Copies and the holes of sparse arrays are charged to a budget (in bytes
//! of memory, see [`EXPANSION_FACTOR`]), so a small frame cannot expand into a huge value;
//! a reference to an object that is still open (a cycle) cannot be a `Value` and is an error.

use std::mem::size_of;

mod compound;

use super::bigint;
use super::tag;
use crate::{IpcError, Result, Value};

/// How much memory back-references and sparse-array holes may add to a frame's value:
/// [`EXPANSION_BASE`] plus this many times the payload's size.
const EXPANSION_FACTOR: usize = 8;
/// See [`EXPANSION_FACTOR`]: 1 MiB.
const EXPANSION_BASE: usize = 1024 * 1024;

/// Reads the payload of one frame: header, then one value; bytes after it are ignored, as
/// Node ignores them.
pub(super) fn read_payload(payload: &[u8]) -> Result<Value> {
    let budget = payload
        .len()
        .saturating_mul(EXPANSION_FACTOR)
        .saturating_add(EXPANSION_BASE);
    let mut first = Reader::new(payload, budget, None);
    let value = first.top()?;
    if first.wanted.is_empty() {
        return Ok(value);
    }
    let mut slots: Vec<Slot> = (0..first.next_id).map(|_| Slot::Unwanted).collect();
    for id in first.wanted {
        // Every id was checked against next_id when its `^` was read.
        if let Some(slot) = slots.get_mut(id) {
            *slot = Slot::Pending;
        }
    }
    drop(value);
    Reader::new(payload, budget, Some(slots)).top()
}

/// The second reading's record of an object id.
enum Slot {
    /// No `^` names it.
    Unwanted,
    /// Some `^` names it; not complete yet.
    Pending,
    /// Complete: the copy a `^` gets.
    Done(Value),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    version: u32,
    /// The id the next object-like value gets.
    next_id: usize,
    /// Ids of the objects being read (containers whose end is not reached yet).
    open: Vec<usize>,
    /// First reading: the ids some `^` names.
    wanted: Vec<usize>,
    /// Second reading: the copies.
    slots: Option<Vec<Slot>>,
    /// Bytes of memory that copies and holes may still take.
    budget: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], budget: usize, slots: Option<Vec<Slot>>) -> Self {
        Reader {
            buf,
            pos: 0,
            version: 0,
            next_id: 0,
            open: Vec::new(),
            wanted: Vec::new(),
            slots,
            budget,
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

    fn charge(&mut self, bytes: usize, what: &str, at: usize) -> Result<()> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(IpcError::malformed(format!(
                "{what} at byte {at} would expand the message beyond 1 MiB + {EXPANSION_FACTOR} \
                 times its size"
            ))),
        }
    }

    // ---- object ids ----

    /// An id for an object-like value with no values inside.
    fn leaf_id(&mut self) -> usize {
        self.next_id += 1;
        self.next_id - 1
    }

    /// An id for an object whose contents follow: open until [`Self::close`].
    fn open_id(&mut self) -> usize {
        let id = self.leaf_id();
        self.open.push(id);
        id
    }

    /// The object `id` is complete (opened with [`Self::open_id`] if `opened`).
    fn complete(&mut self, id: usize, opened: bool, value: &Value) {
        if opened {
            self.open.pop();
        }
        if let Some(slot) = self.slots.as_mut().and_then(|s| s.get_mut(id)) {
            if matches!(slot, Slot::Pending) {
                *slot = Slot::Done(value.clone());
            }
        }
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
                let id = self.open_id();
                let v = Value::Object(self.object(depth, at)?);
                self.complete(id, true, &v);
                Ok(v)
            }
            tag::DENSE_ARRAY => {
                self.enter(depth, at)?;
                let id = self.open_id();
                let v = self.dense_array(depth, at)?;
                self.complete(id, true, &v);
                Ok(v)
            }
            tag::SPARSE_ARRAY => {
                self.enter(depth, at)?;
                let id = self.open_id();
                let v = self.sparse_array(depth, at)?;
                self.complete(id, true, &v);
                Ok(v)
            }
            tag::MAP => {
                self.enter(depth, at)?;
                let id = self.open_id();
                let v = self.map(depth, at)?;
                self.complete(id, true, &v);
                Ok(v)
            }
            tag::SET => {
                self.enter(depth, at)?;
                let id = self.open_id();
                let mut items = Vec::new();
                while !self.next_is(tag::END_SET) {
                    items.push(self.value(depth + 1)?);
                }
                self.check_count("Set", at, items.len())?;
                let v = Value::Set(items);
                self.complete(id, true, &v);
                Ok(v)
            }
            tag::ERROR => {
                self.enter(depth, at)?;
                let id = self.open_id();
                let v = self.error(depth, at)?;
                self.complete(id, true, &v);
                Ok(v)
            }
            tag::HOST_OBJECT => {
                self.enter(depth, at)?;
                let id = self.open_id();
                let v = self.host_object(depth, at)?;
                self.complete(id, true, &v);
                Ok(v)
            }
            tag::OBJECT_REFERENCE => self.back_reference(depth, at),
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

    /// Object-like values without values inside: they get an id.
    fn object_leaf(&mut self, t: u8, at: usize) -> Result<Value> {
        let v = match t {
            tag::DATE => Value::Date(self.f64()?),
            tag::TRUE_OBJECT => Value::Bool(true),
            tag::FALSE_OBJECT => Value::Bool(false),
            tag::NUMBER_OBJECT => Value::Number(self.f64()?),
            tag::BIGINT_OBJECT => Value::BigInt(self.bigint(at)?),
            tag::STRING_OBJECT => Value::String(self.string()?),
            tag::REGEXP => {
                let source = self.string()?;
                let bits = self.varint()?;
                let flags = tag::regexp_flags_text(bits).ok_or_else(|| {
                    IpcError::malformed(format!("RegExp at byte {at} has unknown flags 0x{bits:x}"))
                })?;
                Value::RegExp { source, flags }
            }
            tag::ARRAY_BUFFER => {
                let len = self.len()?;
                Value::Bytes(self.take(len)?.to_vec())
            }
            tag::RESIZABLE_ARRAY_BUFFER => {
                let len = self.len()?;
                let _max_len = self.varint()?;
                Value::Bytes(self.take(len)?.to_vec())
            }
            _ => {
                return Err(IpcError::malformed(format!(
                    "unsupported V8 tag {} at byte {at}: {}",
                    tag::show(t),
                    tag::unsupported_kind(t)
                )))
            }
        };
        let id = self.leaf_id();
        self.complete(id, false, &v);
        if matches!(t, tag::ARRAY_BUFFER | tag::RESIZABLE_ARRAY_BUFFER) {
            if let Value::Bytes(buffer) = &v {
                if self.next_is(tag::ARRAY_BUFFER_VIEW) {
                    return self.view_of(buffer, at);
                }
            }
        }
        Ok(v)
    }

    /// V8's own ArrayBufferView after its ArrayBuffer (Node writes views as host objects
    /// instead, but V8's reader takes both): the viewed bytes.
    fn view_of(&mut self, buffer: &[u8], at: usize) -> Result<Value> {
        let _kind = self.u8()?;
        let offset = self.len()?;
        let len = self.len()?;
        if self.version >= 14 {
            let _flags = self.varint()?;
        }
        let bytes = offset
            .checked_add(len)
            .and_then(|end| buffer.get(offset..end))
            .ok_or_else(|| {
                IpcError::malformed(format!(
                    "ArrayBufferView at byte {at} ({len} bytes at offset {offset}) is outside its {}-byte buffer",
                    buffer.len()
                ))
            })?;
        let v = Value::Bytes(bytes.to_vec());
        let id = self.leaf_id();
        self.complete(id, false, &v);
        Ok(v)
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
            tag::ONE_BYTE_STRING => {
                let high = bytes.iter().filter(|&&b| b >= 0x80).count();
                let mut utf8 = Vec::with_capacity(bytes.len() + high);
                for &b in bytes {
                    if b < 0x80 {
                        utf8.push(b);
                    } else {
                        utf8.extend_from_slice(&[0xc0 | b >> 6, 0x80 | (b & 0x3f)]);
                    }
                }
                String::from_utf8(utf8).map_err(|e| IpcError::InvalidUtf8 {
                    offset: start + e.utf8_error().valid_up_to(),
                })
            }
            tag::TWO_BYTE_STRING => {
                if len % 2 == 1 {
                    return Err(IpcError::malformed(format!(
                        "two-byte string at byte {at} has an odd length ({len} bytes)"
                    )));
                }
                let units = bytes
                    .chunks_exact(2)
                    .map(|u| u16::from_le_bytes([u[0], u[1]]));
                // A lone surrogate becomes U+FFFD: a Rust String cannot hold one.
                Ok(char::decode_utf16(units)
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect())
            }
            _ => std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|e| IpcError::InvalidUtf8 {
                    offset: start + e.valid_up_to(),
                }),
        }
    }

    #[inline(never)]
    fn back_reference(&mut self, depth: usize, at: usize) -> Result<Value> {
        let id = self.len()?;
        if id >= self.next_id {
            return Err(IpcError::malformed(format!(
                "back-reference at byte {at} to object {id}, but only {} objects were read",
                self.next_id
            )));
        }
        if self.open.contains(&id) {
            return Err(IpcError::malformed(format!(
                "back-reference at byte {at} to object {id}, which contains it: \
                 a cyclic message cannot be a Value"
            )));
        }
        let Some(slots) = &self.slots else {
            self.wanted.push(id);
            return Ok(Value::Undefined);
        };
        let Some(Slot::Done(target)) = slots.get(id) else {
            return Err(IpcError::malformed(format!(
                "back-reference at byte {at} to object {id}, which is not available"
            )));
        };
        let (height, weight) = measure(target);
        if depth + height > Value::MAX_DEPTH {
            return Err(IpcError::malformed(format!(
                "back-reference at byte {at} nests deeper than {} levels",
                Value::MAX_DEPTH
            )));
        }
        let copy = target.clone();
        self.charge(weight, "back-reference", at)?;
        Ok(copy)
    }
}

/// A value's container nesting (0 for a leaf) and its memory in bytes, roughly. Values read
/// here nest at most [`Value::MAX_DEPTH`] deep, which bounds the recursion.
fn measure(v: &Value) -> (usize, usize) {
    let node = size_of::<Value>();
    match v {
        Value::String(s) | Value::BigInt(s) => (0, node + s.len()),
        Value::Bytes(b) => (0, node + b.len()),
        Value::RegExp { source, flags } => (0, node + source.len() + flags.len()),
        Value::Error {
            name,
            message,
            stack,
        } => (
            0,
            node + name.len() + message.len() + stack.as_ref().map_or(0, String::len),
        ),
        Value::Array(items) | Value::Set(items) => items.iter().fold((1, node), |(h, w), item| {
            let (ih, iw) = measure(item);
            (h.max(ih + 1), w + iw)
        }),
        Value::Object(pairs) => pairs.iter().fold((1, node), |(h, w), (k, item)| {
            let (ih, iw) = measure(item);
            (h.max(ih + 1), w + iw + k.len() + size_of::<String>())
        }),
        Value::Map(entries) => entries.iter().fold((1, node), |(h, w), (k, item)| {
            let (kh, kw) = measure(k);
            let (ih, iw) = measure(item);
            (h.max(kh + 1).max(ih + 1), w + kw + iw)
        }),
        _ => (0, node),
    }
}
