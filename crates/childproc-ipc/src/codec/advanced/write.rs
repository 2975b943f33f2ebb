//! Writing a [`Value`] as a V8 ValueSerializer payload, in the forms Node's reader turns into
//! the natural JavaScript value (see [`AdvancedCodec`](super::AdvancedCodec) for the mapping).

use bytes::{BufMut, BytesMut};

use super::bigint;
use super::tag;
use super::text;
use crate::codec::msgpack::canonical_bigint;
use crate::value::{identity, Anchors, JsError, SparseArray, TypedArrayKind};
use crate::{IpcError, Result, Value};

/// Appends the payload (header and one value) for `value` to `out`. `frame_start` is where
/// the frame's 4-byte length prefix begins in `out`: V8 aligns two-byte strings on the
/// frame's offsets. On error `out` may hold a partial payload: the caller rolls it back.
pub(super) fn write_payload(out: &mut BytesMut, frame_start: usize, value: &Value) -> Result<()> {
    match value {
        Value::Undefined => {
            return Err(IpcError::unsupported(
                "undefined as a message (Node's send() throws ERR_MISSING_ARGS)",
            ))
        }
        Value::BigInt(_) => {
            return Err(IpcError::unsupported(
                "a BigInt as a whole message (Node's send() throws ERR_INVALID_ARG_TYPE); \
                 put it inside an object or array",
            ))
        }
        _ => {}
    }
    let mut w = Writer {
        out,
        frame_start,
        objects: 0,
        anchors: Anchors::default(),
    };
    w.out.put_slice(&[tag::VERSION, tag::LATEST_VERSION]);
    w.value(value, 0)
}

struct Writer<'a> {
    out: &'a mut BytesMut,
    frame_start: usize,
    /// Objects written so far: V8 numbers each object as it starts, and `^` names that number.
    objects: u32,
    /// The V8 number of each [`Value::Shared`] id written so far.
    anchors: Anchors<u32>,
}

impl Writer<'_> {
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.out.put_u8((n as u8) | 0x80);
            n >>= 7;
        }
        self.out.put_u8(n as u8);
    }

    fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }

    fn enter(depth: usize) -> Result<()> {
        crate::codec::check_write_depth(depth)
    }

    /// Only containers recurse; leaves are written out of line by [`Self::leaf`] to keep
    /// this frame small (its size times [`Value::MAX_DEPTH`] is the stack a value can use).
    fn value(&mut self, value: &Value, depth: usize) -> Result<()> {
        if value.is_object() {
            self.objects += 1;
        }
        match value {
            Value::Array(items) => {
                Self::enter(depth)?;
                self.out.put_u8(tag::DENSE_ARRAY);
                self.len(items.len());
                for item in items {
                    self.value(item, depth + 1)?;
                }
                self.out.put_slice(&[tag::END_DENSE_ARRAY, 0]);
                self.len(items.len());
            }
            Value::Object(pairs) => {
                Self::enter(depth)?;
                self.out.put_u8(tag::OBJECT);
                for (key, item) in pairs {
                    self.key(key);
                    self.value(item, depth + 1)?;
                }
                self.out.put_u8(tag::END_OBJECT);
                self.len(pairs.len());
            }
            Value::Map(entries) => {
                Self::enter(depth)?;
                self.out.put_u8(tag::MAP);
                for (key, item) in entries {
                    self.value(key, depth + 1)?;
                    self.value(item, depth + 1)?;
                }
                self.out.put_u8(tag::END_MAP);
                self.len(entries.len() * 2);
            }
            Value::Set(items) => {
                Self::enter(depth)?;
                self.out.put_u8(tag::SET);
                for item in items {
                    self.value(item, depth + 1)?;
                }
                self.out.put_u8(tag::END_SET);
                self.len(items.len());
            }
            Value::SparseArray(array) => {
                Self::enter(depth)?;
                self.sparse_array(array, depth)?;
            }
            Value::Error(error) => {
                Self::enter(depth)?;
                self.error(error, depth)?;
            }
            Value::Shared { id, value: inner } => {
                if !inner.is_object() || !self.anchors.define(*id, self.objects) {
                    return Err(identity::unsupported_shared(*id, inner));
                }
                self.value(inner, depth)?;
            }
            _ => self.leaf(value)?,
        }
        Ok(())
    }

    /// `a` length, the elements (index keys as numbers), the named properties, `@` count
    /// length: V8's form of an array with holes. (One without holes or names is dense.)
    #[inline(never)]
    fn sparse_array(&mut self, array: &SparseArray, depth: usize) -> Result<()> {
        let mut last = None;
        for (i, _) in &array.elements {
            if *i >= array.length || last.is_some_and(|l| *i <= l) {
                return Err(IpcError::unsupported(format!(
                    "a SparseArray of length {} with element index {i} (indices must increase \
                     and stay below the length)",
                    array.length
                )));
            }
            last = Some(*i);
        }
        if let Some((key, _)) = array
            .properties
            .iter()
            .find(|(k, _)| tag::array_index(k).is_some())
        {
            return Err(IpcError::unsupported(format!(
                "a SparseArray with a property named {key:?}: an index belongs in its elements"
            )));
        }
        if array.elements.len() == array.length as usize && array.properties.is_empty() {
            // No hole and no name: an everyday array, written as V8 writes one (and as this
            // codec reads it back).
            self.out.put_u8(tag::DENSE_ARRAY);
            self.len(array.elements.len());
            for (_, item) in &array.elements {
                self.value(item, depth + 1)?;
            }
            self.out.put_slice(&[tag::END_DENSE_ARRAY, 0]);
            self.len(array.elements.len());
            return Ok(());
        }
        self.out.put_u8(tag::SPARSE_ARRAY);
        self.varint(array.length.into());
        for (i, item) in &array.elements {
            self.number(f64::from(*i));
            self.value(item, depth + 1)?;
        }
        for (key, item) in &array.properties {
            self.string(key);
            self.value(item, depth + 1)?;
        }
        self.out.put_u8(tag::END_SPARSE_ARRAY);
        self.len(array.elements.len() + array.properties.len());
        self.varint(array.length.into());
        Ok(())
    }

    /// `r`, the prototype tag of the name if V8 has one, `m` message, `c` cause, `s` stack,
    /// `.`: in the order Node 20 writes them.
    #[inline(never)]
    fn error(&mut self, error: &JsError, depth: usize) -> Result<()> {
        self.out.put_u8(tag::ERROR);
        if let Some(proto) = tag::error_prototype(&error.name) {
            self.out.put_u8(proto);
        }
        self.out.put_u8(tag::ERROR_MESSAGE);
        self.string(&error.message);
        if let Some(cause) = &error.cause {
            self.out.put_u8(tag::ERROR_CAUSE);
            self.value(cause, depth + 1)?;
        }
        if let Some(stack) = &error.stack {
            self.out.put_u8(tag::ERROR_STACK);
            self.string(stack);
        }
        self.out.put_u8(tag::ERROR_END);
        Ok(())
    }

    /// Node's host-object framing of an ArrayBufferView: "a view", its type index, bytes.
    fn view(&mut self, index: u8, bytes: &[u8]) {
        self.out.put_slice(&[tag::HOST_OBJECT, 0, index]);
        self.len(bytes.len());
        self.out.put_slice(bytes);
    }

    #[inline(never)]
    fn leaf(&mut self, value: &Value) -> Result<()> {
        match value {
            Value::Undefined => self.out.put_u8(tag::UNDEFINED),
            Value::Null => self.out.put_u8(tag::NULL),
            Value::Bool(true) => self.out.put_u8(tag::TRUE),
            Value::Bool(false) => self.out.put_u8(tag::FALSE),
            Value::Number(n) => self.number(*n),
            Value::BigInt(digits) => self.bigint(tag::BIGINT, digits)?,
            Value::String(s) => self.string(s),
            Value::Bytes(bytes) => self.view(tag::VIEW_INDEX_BUFFER, bytes),
            Value::TypedArray(array) => self.view(view_index(array.kind()), array.bytes()),
            Value::DataView(bytes) => self.view(tag::VIEW_INDEX_DATA_VIEW, bytes),
            Value::ArrayBuffer(buffer) => {
                match buffer.max_byte_length {
                    None => {
                        self.out.put_u8(tag::ARRAY_BUFFER);
                        self.len(buffer.bytes.len());
                    }
                    Some(max) if (max as usize) < buffer.bytes.len() => {
                        return Err(IpcError::unsupported(format!(
                            "a resizable ArrayBuffer of {} bytes with max_byte_length {max}",
                            buffer.bytes.len()
                        )))
                    }
                    Some(max) => {
                        self.out.put_u8(tag::RESIZABLE_ARRAY_BUFFER);
                        self.len(buffer.bytes.len());
                        self.varint(max.into());
                    }
                }
                self.out.put_slice(&buffer.bytes);
            }
            Value::Boxed(inner) => match &**inner {
                Value::Bool(true) => self.out.put_u8(tag::TRUE_OBJECT),
                Value::Bool(false) => self.out.put_u8(tag::FALSE_OBJECT),
                Value::Number(n) => {
                    self.out.put_u8(tag::NUMBER_OBJECT);
                    self.out.put_f64_le(*n);
                }
                Value::String(s) => {
                    self.out.put_u8(tag::STRING_OBJECT);
                    self.string(s);
                }
                Value::BigInt(digits) => self.bigint(tag::BIGINT_OBJECT, digits)?,
                other => {
                    return Err(IpcError::unsupported(format!(
                        "Value::Boxed around a {}: only a Bool, Number, String or BigInt can \
                         be boxed",
                        identity::kind_name(other)
                    )))
                }
            },
            Value::Ref(id) => {
                let number = self
                    .anchors
                    .get(*id)
                    .ok_or_else(|| identity::dangling_ref(*id))?;
                self.out.put_u8(tag::OBJECT_REFERENCE);
                self.varint(number.into());
            }
            Value::Date(ms) => {
                self.out.put_u8(tag::DATE);
                self.out.put_f64_le(*ms);
            }
            Value::RegExp { source, flags } => {
                let bits = regexp_flags(flags)?;
                self.out.put_u8(tag::REGEXP);
                self.string(source);
                self.varint(bits.into());
            }
            Value::Array(_)
            | Value::Object(_)
            | Value::Map(_)
            | Value::Set(_)
            | Value::SparseArray(_)
            | Value::Error(_)
            | Value::Shared { .. } => {
                return Err(IpcError::unsupported("a container in write_leaf"))
            }
        }
        Ok(())
    }

    /// `I` for what V8 holds as a small integer (every int32 but -0), else `N`.
    fn number(&mut self, n: f64) {
        let i = n as i32;
        if f64::from(i) == n && !(n == 0.0 && n.is_sign_negative()) {
            self.out.put_u8(tag::INT32);
            self.varint(u64::from(((i << 1) ^ (i >> 31)) as u32));
        } else {
            self.out.put_u8(tag::DOUBLE);
            self.out.put_f64_le(n);
        }
    }

    /// A property key: array indices as numbers (as V8 writes them), other keys as strings.
    fn key(&mut self, key: &str) {
        match tag::array_index(key) {
            Some(i) if i <= i32::MAX as u32 => self.number(f64::from(i)),
            Some(i) => {
                self.out.put_u8(tag::DOUBLE);
                self.out.put_f64_le(f64::from(i));
            }
            None => self.string(key),
        }
    }

    /// One-byte (Latin-1) when every character fits, else two-byte UTF-16LE aligned on an
    /// even offset of the frame, as V8 writes it. The checks work on the UTF-8 bytes.
    fn string(&mut self, s: &str) {
        let bytes = s.as_bytes();
        if bytes.is_ascii() {
            self.out.put_u8(tag::ONE_BYTE_STRING);
            self.len(bytes.len());
            self.out.put_slice(bytes);
            return;
        }
        // Every character is at most U+00FF exactly when no lead byte is C4 or above. (The
        // max of each 64 bytes, which vectorizes, with an early exit between them: a string
        // with a character beyond U+00FF usually shows it early.)
        let wide = bytes
            .chunks(64)
            .any(|chunk| chunk.iter().fold(0, |max, &b| max.max(b)) >= 0xc4);
        if !wide {
            let continuations = bytes.iter().filter(|&&b| b & 0xc0 == 0x80).count();
            let len = bytes.len() - continuations;
            self.out.put_u8(tag::ONE_BYTE_STRING);
            self.len(len);
            self.out.reserve(len);
            text::latin1_from_utf8(s, self.out);
            return;
        }
        let units = text::utf16_len(s);
        let byte_len = units * 2;
        let offset = self.out.len() - self.frame_start;
        if (offset + 1 + varint_len(byte_len as u64)) % 2 == 1 {
            self.out.put_u8(tag::PADDING);
        }
        self.out.put_u8(tag::TWO_BYTE_STRING);
        self.len(byte_len);
        text::utf16le_from_utf8(s, units, self.out);
    }

    /// `t` (`Z`, or `z` for a boxed one), then 2 × byte length + sign, then the magnitude in whole 8-byte digits.
    fn bigint(&mut self, t: u8, digits: &str) -> Result<()> {
        if !canonical_bigint(digits) {
            return Err(IpcError::unsupported(format!(
                "a BigInt whose text {digits:?} is not canonical decimal digits"
            )));
        }
        let (negative, magnitude) = match digits.strip_prefix('-') {
            Some(m) => (true, m),
            None => (false, digits),
        };
        // A decimal digit is more than 3.3 bits: a cheap bound before converting.
        let too_big = |bytes: usize| {
            IpcError::unsupported(format!(
                "a BigInt of {bytes} bytes or more (the limit is {} bytes)",
                bigint::MAX_BYTES
            ))
        };
        if magnitude.len() > bigint::MAX_BYTES * 8 * 10 / 33 + 1 {
            return Err(too_big(magnitude.len() * 33 / 80));
        }
        let bytes = bigint::le_bytes_from_decimal(magnitude);
        if bytes.len() > bigint::MAX_BYTES {
            return Err(too_big(bytes.len()));
        }
        self.out.put_u8(t);
        self.varint((bytes.len() as u64) << 1 | u64::from(negative));
        self.out.put_slice(&bytes);
        Ok(())
    }
}

/// Node's index of a typed array's type among the view types.
fn view_index(kind: TypedArrayKind) -> u8 {
    let i = TypedArrayKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0) as u8;
    // 9 is DataView and 10 Buffer; the BigInt arrays come after them.
    if i >= 9 {
        i + 2
    } else {
        i
    }
}

fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// The RegExp flags as V8's bit field; an unknown flag is an error (the receiving V8 would
/// refuse the message, and a Node receiver dies of it).
fn regexp_flags(flags: &str) -> Result<u32> {
    let mut bits = 0;
    for c in flags.chars() {
        match tag::regexp_flag_bit(c) {
            Some(bit) => bits |= bit,
            None => {
                return Err(IpcError::unsupported(format!(
                    "a RegExp with flag {c:?} (flags are d g i m s u v y)"
                )))
            }
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        for (n, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16383, 2),
            (16384, 3),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(n), len, "{n}");
        }
    }
}
