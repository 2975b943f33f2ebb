//! [`Value`] ↔ JSON text with the semantics of JavaScript's `JSON.stringify` and
//! `JSON.parse`, which is what Node.js's `'json'` serialization uses; plus typed helpers for
//! any `serde` type.
//!
//! Writing ([`stringify()`]) follows `JSON.stringify` byte for byte:
//!
//! | [`Value`] | JSON text |
//! |---|---|
//! | `Number`: NaN, ±Infinity / -0 / others | `null` / `0` / as JavaScript's `Number.prototype.toString` (`1e+21`, `1.5`, `1e-7`) |
//! | `Undefined` | left out of objects; `null` in arrays; refused at the top level ([`IpcError::Unsupported`], Node's `send()` throws) |
//! | `BigInt` | refused anywhere ([`IpcError::Unsupported`]; `JSON.stringify` throws) |
//! | `String` | `"` … `"` escaping `"` `\` and `\b \f \n \r \t`; other C0 controls as `\u00xx` (lowercase); DEL, U+2028 and everything else raw UTF-8 |
//! | `Bytes` | `{"type":"Buffer","data":[…]}` (`Buffer.prototype.toJSON`) |
//! | `Date` | its ISO string `"1970-01-01T00:00:00.000Z"` (`null` for an invalid date) |
//! | `Map`, `Set`, `RegExp`, `Error` | `{}` (they have no enumerable own properties) |
//! | `Object` | pairs in the `Vec`'s order, as given (repeated keys are written as they are) |
//!
//! Reading ([`parse()`]) follows `JSON.parse`: any JSON value with JSON whitespace around it;
//! numbers become `f64` (`1e400` is Infinity, `-0` stays -0); an object keeps its keys in
//! text order, and a repeated key keeps its first position and its last value, as a
//! JavaScript object does. Differences, all deliberate:
//!
//! * invalid UTF-8 is [`IpcError::InvalidUtf8`] (Node replaces it with U+FFFD);
//! * a lone surrogate escape such as `"\ud800"` becomes U+FFFD (a Rust `String` cannot hold
//!   one);
//! * keys that are array indices (`"1"`) keep their text position (a JavaScript object
//!   would enumerate them first, in ascending order);
//! * nesting deeper than [`Value::MAX_DEPTH`] is refused on both sides.

use std::collections::HashMap;

use bytes::BufMut;
use serde::{de::DeserializeOwned, Serialize};

use crate::value::Expansion;
use crate::{IpcError, Result, Value};

mod clone;

/// `JSON.stringify(value)`, as UTF-8 text.
///
/// Fails with [`IpcError::Unsupported`] for a top-level `undefined`, a `BigInt` anywhere,
/// or nesting deeper than [`Value::MAX_DEPTH`].
///
/// ```
/// use childproc_ipc::{json, Value};
/// let v = Value::object([("a", Value::from(1)), ("b", Value::Number(f64::NAN))]);
/// assert_eq!(json::stringify(&v).unwrap(), r#"{"a":1,"b":null}"#);
/// ```
pub fn stringify(value: &Value) -> Result<String> {
    let mut out = Vec::new();
    write_value(value, &mut out)?;
    // The writer only ever emits valid UTF-8: ASCII plus the bytes of valid `str`s.
    String::from_utf8(out).map_err(|e| IpcError::InvalidUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// `JSON.parse(text)`, into a [`Value`] (see the module docs for the mapping).
///
/// ```
/// use childproc_ipc::{json, Value};
/// let v = json::parse(br#" {"a":1,"b":[true,null],"a":2} "#).unwrap();
/// assert_eq!(v, Value::object([
///     ("a", Value::from(2)),
///     ("b", Value::Array(vec![Value::Bool(true), Value::Null])),
/// ]));
/// ```
pub fn parse(text: &[u8]) -> Result<Value> {
    let text = std::str::from_utf8(text).map_err(|e| IpcError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let mut p = Parser { text, pos: 0 };
    p.skip_ws();
    if p.pos == text.len() {
        return Err(IpcError::malformed("no JSON value (only whitespace)"));
    }
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.unexpected("after the JSON value"));
    }
    Ok(value)
}

/// Serializes any `serde` type to JSON text (with `serde_json`; no trailing LF).
///
/// The output is valid JSON that Node's `JSON.parse` reads; non-finite floats become `null`
/// as in JavaScript. Fails with [`IpcError::Unsupported`] when `serde_json` cannot represent
/// the value (e.g. a map with non-string keys).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| IpcError::unsupported(e.to_string()))
}

/// Deserializes any `serde` type from JSON text (with `serde_json`).
///
/// Invalid UTF-8 is [`IpcError::InvalidUtf8`]; invalid JSON or JSON that does not fit `T`
/// is [`IpcError::Malformed`] with `serde_json`'s explanation.
pub fn from_json<T: DeserializeOwned>(text: &[u8]) -> Result<T> {
    let text = std::str::from_utf8(text).map_err(|e| IpcError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    serde_json::from_str(text).map_err(|e| IpcError::malformed(e.to_string()))
}

/// A typed message as a [`Value`], through its JSON form: what a peer in `'json'` mode
/// receives when you send `message`. Use it to send any `Serialize` type on a channel.
pub fn to_value<T: Serialize + ?Sized>(message: &T) -> Result<Value> {
    parse(&to_json(message)?)
}

/// A received [`Value`] as a typed message, through its JSON form (`Deserialize` types).
/// Values JSON cannot hold (a `BigInt`, say) are an error naming them.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T> {
    from_json(stringify(value)?.as_bytes())
}

/// Writes `JSON.stringify(value)` to `out`. On error `out` may hold a partial text: callers
/// roll it back.
pub(crate) fn write_value<B: BufMut>(value: &Value, out: &mut B) -> Result<()> {
    if let Value::Undefined = value {
        return Err(IpcError::unsupported(
            "undefined as a JSON message (Node's send() throws ERR_MISSING_ARGS)",
        ));
    }
    write_inner(value, out, 0, &mut Expansion::default())
}

fn write_inner<'v, B: BufMut>(
    value: &'v Value,
    out: &mut B,
    depth: usize,
    identity: &mut Expansion<'v>,
) -> Result<()> {
    identity.count()?;
    match value {
        // `Undefined` only gets here inside an array, where JSON.stringify writes null.
        Value::Undefined | Value::Null => out.put_slice(b"null"),
        Value::Bool(true) => out.put_slice(b"true"),
        Value::Bool(false) => out.put_slice(b"false"),
        Value::Number(n) => write_number(*n, out),
        Value::BigInt(_) => return Err(IpcError::unsupported(
            "a BigInt in JSON (JSON.stringify throws \"Do not know how to serialize a BigInt\")",
        )),
        Value::String(s) => write_str(s, out),
        Value::Bytes(bytes) => {
            out.put_slice(br#"{"type":"Buffer","data":["#);
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_u8_decimal(*b, out);
            }
            out.put_slice(b"]}");
        }
        Value::Array(items) => {
            check_write_depth(depth)?;
            out.put_u8(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_inner(item, out, depth + 1, identity)?;
            }
            out.put_u8(b']');
        }
        Value::Object(pairs) => {
            check_write_depth(depth)?;
            out.put_u8(b'{');
            let mut first = true;
            for (key, item) in pairs {
                if let Value::Undefined = item {
                    continue;
                }
                if !first {
                    out.put_u8(b',');
                }
                first = false;
                write_str(key, out);
                out.put_u8(b':');
                write_inner(item, out, depth + 1, identity)?;
            }
            out.put_u8(b'}');
        }
        Value::Map(_)
        | Value::Set(_)
        | Value::RegExp { .. }
        | Value::Error(_)
        | Value::DataView(_)
        | Value::ArrayBuffer(_) => out.put_slice(b"{}"),
        Value::Date(ms) => match iso_date(*ms) {
            Some(iso) => {
                out.put_u8(b'"');
                out.put_slice(iso.as_bytes());
                out.put_u8(b'"');
            }
            None => out.put_slice(b"null"),
        },
        Value::TypedArray(_) | Value::SparseArray(_) | Value::Boxed(_) => {
            clone::write(value, out, depth, identity)?
        }
        Value::Shared { id, value: inner } => {
            let inner = identity.enter_shared(*id, inner)?;
            write_inner(inner, out, depth, identity)?;
            identity.leave(false);
        }
        Value::Ref(id) => {
            let target = identity.enter_ref(*id)?;
            write_inner(target, out, depth, identity)?;
            identity.leave(true);
        }
    }
    Ok(())
}

pub(super) fn check_write_depth(depth: usize) -> Result<()> {
    if depth >= Value::MAX_DEPTH {
        return Err(IpcError::unsupported(format!(
            "a value nested deeper than {} levels",
            Value::MAX_DEPTH
        )));
    }
    Ok(())
}

fn write_number<B: BufMut>(n: f64, out: &mut B) {
    if !n.is_finite() {
        out.put_slice(b"null");
    } else if n == 0.0 {
        // Both zeros: JSON.stringify(-0) is "0".
        out.put_u8(b'0');
    } else {
        out.put_slice(ryu_js::Buffer::new().format_finite(n).as_bytes());
    }
}

fn write_u8_decimal<B: BufMut>(b: u8, out: &mut B) {
    if b >= 100 {
        out.put_u8(b'0' + b / 100);
    }
    if b >= 10 {
        out.put_u8(b'0' + (b / 10) % 10);
    }
    out.put_u8(b'0' + b % 10);
}

fn write_str<B: BufMut>(s: &str, out: &mut B) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_u8(b'"');
    let mut rest = s.as_bytes();
    loop {
        // Copy the run that needs no escape (multi-byte UTF-8 included) in one go.
        let plain = crate::scan::plain_len(rest);
        out.put_slice(&rest[..plain]);
        let Some(&b) = rest.get(plain) else {
            break;
        };
        rest = &rest[plain + 1..];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => {
                out.put_slice(b"\\u00");
                out.put_u8(HEX[usize::from(b >> 4)]);
                out.put_u8(HEX[usize::from(b & 0xf)]);
                continue;
            }
        };
        out.put_slice(escape);
    }
    out.put_u8(b'"');
}

/// `Date.prototype.toJSON`: the ISO-8601 text of a time value, `None` for an invalid date.
fn iso_date(ms: f64) -> Option<String> {
    // TimeClip: beyond ±8.64e15 ms (or NaN) a JavaScript Date is invalid; else truncate.
    if !ms.is_finite() || ms.abs() > 8.64e15 {
        return None;
    }
    let t = ms.trunc() as i64;
    const DAY: i64 = 86_400_000;
    let (days, in_day) = (t.div_euclid(DAY), t.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    let (h, min, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else if year > 0 {
        format!("+{year:06}")
    } else {
        format!("-{:06}", -year)
    };
    Some(format!(
        "{year}-{month:02}-{day:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z"
    ))
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Keys of an object being parsed; indexed by a hash map once it grows, so that a hostile
/// object with many keys costs O(n), not O(n²).
struct ObjectBuilder {
    pairs: Vec<(String, Value)>,
    index: Option<HashMap<String, usize>>,
}

impl ObjectBuilder {
    const LINEAR: usize = 16;

    fn insert(&mut self, key: String, value: Value) {
        let found = match &mut self.index {
            Some(index) => index.get(&key).copied(),
            None => self.pairs.iter().position(|(k, _)| *k == key),
        };
        if let Some(i) = found {
            // JavaScript: the first position, the last value.
            self.pairs[i].1 = value;
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.pairs.len());
        } else if self.pairs.len() >= Self::LINEAR {
            let mut index: HashMap<String, usize> = self
                .pairs
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            index.insert(key.clone(), self.pairs.len());
            self.index = Some(index);
        }
        self.pairs.push((key, value));
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// An error naming the character at the current position (1-based byte column).
    fn unexpected(&self, context: &str) -> IpcError {
        match self.text[self.pos..].chars().next() {
            Some(c) => IpcError::malformed(format!(
                "unexpected {c:?} at column {} {context}",
                self.pos + 1
            )),
            None => IpcError::malformed(format!("unexpected end of input {context}")),
        }
    }

    fn expect(&mut self, byte: u8, context: &str) -> Result<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(context))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(IpcError::malformed(format!(
                "expected value at column {}, found {:?}",
                self.pos + 1,
                self.text[self.pos..].chars().next().unwrap_or('?')
            ))),
            None => Err(IpcError::malformed(
                "unexpected end of input, expected a value",
            )),
        }
    }

    fn enter(&self, depth: usize) -> Result<()> {
        if depth >= Value::MAX_DEPTH {
            return Err(IpcError::malformed(format!(
                "nesting deeper than {} levels at column {}",
                Value::MAX_DEPTH,
                self.pos + 1
            )));
        }
        Ok(())
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(IpcError::malformed(format!(
                "expected value at column {} (not `{word}`)",
                self.pos + 1
            )))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.unexpected("in a number, expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.unexpected("in a number, expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.unexpected("in a number, expected an exponent digit"));
            }
        }
        let literal = &self.text[start..self.pos];
        // The grammar is checked above; Rust's parser rounds correctly, overflows to ±inf.
        literal
            .parse::<f64>()
            .map(Value::Number)
            .map_err(|e| IpcError::malformed(format!("bad number {literal:?}: {e}")))
    }

    fn array(&mut self, depth: usize) -> Result<Value> {
        self.enter(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected("in an array, expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value> {
        self.enter(depth)?;
        self.pos += 1;
        let mut object = ObjectBuilder {
            pairs: Vec::new(),
            index: None,
        };
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(object.pairs));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("in an object, expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':', "in an object, expected ':'")?;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            object.insert(key, value);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(object.pairs));
                }
                _ => return Err(self.unexpected("in an object, expected ',' or '}'")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16> {
        let hex = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                IpcError::malformed(format!(
                    "bad \\u escape at column {}, expected 4 hex digits",
                    self.pos + 1
                ))
            })?;
        self.pos += 4;
        u16::from_str_radix(hex, 16).map_err(|e| IpcError::malformed(e.to_string()))
    }

    fn string(&mut self) -> Result<String> {
        let open = self.pos;
        self.pos += 1;
        let bytes = self.text.as_bytes();
        let mut out = String::new();
        let mut start = self.pos;
        loop {
            self.pos += crate::scan::plain_len(&bytes[self.pos.min(bytes.len())..]);
            let Some(&b) = bytes.get(self.pos) else {
                return Err(IpcError::malformed(format!(
                    "unterminated string starting at column {}",
                    open + 1
                )));
            };
            match b {
                b'"' => {
                    out.push_str(&self.text[start..self.pos]);
                    self.pos += 1;
                    return Ok(out);
                }
                0x00..=0x1f => {
                    return Err(IpcError::malformed(format!(
                        "bad control character {:?} in a string at column {}",
                        char::from(b),
                        self.pos + 1
                    )))
                }
                b'\\' => {
                    out.push_str(&self.text[start..self.pos]);
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let unit = self.hex4()?;
                            self.pos -= 1; // the common `+= 1` below
                            self.code_unit(unit)?
                        }
                        _ => return Err(self.unexpected("in a string, after '\\'")),
                    };
                    self.pos += 1;
                    out.push(c);
                    start = self.pos;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// The character for a `\uXXXX` escape already read, pairing a high surrogate with a
    /// following `\uDC00`–`\uDFFF` escape. Lone surrogates become U+FFFD.
    fn code_unit(&mut self, unit: u16) -> Result<char> {
        if (0xD800..0xDC00).contains(&unit) {
            let rest = &self.text.as_bytes()[self.pos + 1..];
            if rest.starts_with(b"\\u") {
                let save = self.pos;
                self.pos += 3;
                if let Ok(low @ 0xDC00..=0xDFFF) = self.hex4() {
                    self.pos -= 1;
                    let c =
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    return Ok(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                self.pos = save;
            }
        }
        Ok(char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &Value) -> String {
        stringify(v).unwrap()
    }

    #[test]
    fn numbers_format_like_javascript() {
        let cases: &[(f64, &str)] = &[
            (1e21, "1e+21"),
            (1e-7, "1e-7"),
            (123456789012345680000.0, "123456789012345680000"),
            (0.1, "0.1"),
            (-1e-7, "-1e-7"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1e20, "100000000000000000000"),
            (123e-20, "1.23e-18"),
            (9007199254740992.0, "9007199254740992"),
            (-0.0, "0"),
            (42.0, "42"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (f64::NEG_INFINITY, "null"),
        ];
        for (n, text) in cases {
            assert_eq!(s(&Value::Number(*n)), *text, "{n}");
        }
    }

    #[test]
    fn dates_format_like_to_iso_string() {
        let cases: &[(f64, &str)] = &[
            (0.0, "1970-01-01T00:00:00.000Z"),
            (-1.0, "1969-12-31T23:59:59.999Z"),
            (-86400000.0, "1969-12-31T00:00:00.000Z"),
            (8.64e15, "+275760-09-13T00:00:00.000Z"),
            (-8.64e15, "-271821-04-20T00:00:00.000Z"),
            (-62167219200000.0, "0000-01-01T00:00:00.000Z"),
            (-62167219200001.0, "-000001-12-31T23:59:59.999Z"),
            (253402300800000.0, "+010000-01-01T00:00:00.000Z"),
            (1.5, "1970-01-01T00:00:00.001Z"),
            (-1.5, "1969-12-31T23:59:59.999Z"),
            (1577934245678.0, "2020-01-02T03:04:05.678Z"),
        ];
        for (t, text) in cases {
            assert_eq!(s(&Value::Date(*t)), format!("\"{text}\""), "{t}");
        }
        assert_eq!(s(&Value::Date(f64::NAN)), "null");
        assert_eq!(s(&Value::Date(8.64e15 + 1.0)), "null");
    }

    #[test]
    fn refuses_what_node_refuses() {
        for v in [
            Value::Undefined,
            Value::BigInt("1".into()),
            Value::Array(vec![Value::BigInt("1".into())]),
            Value::object([("a", Value::BigInt("-5".into()))]),
        ] {
            assert!(
                matches!(stringify(&v), Err(IpcError::Unsupported { .. })),
                "{v:?}"
            );
        }
        // Not enumerable: never looked at.
        let inside_map = Value::Map(vec![(Value::BigInt("1".into()), Value::Undefined)]);
        assert_eq!(s(&inside_map), "{}");
    }

    #[test]
    fn depth_limit_both_ways() {
        let mut v = Value::Null;
        for _ in 0..Value::MAX_DEPTH {
            v = Value::Array(vec![v]);
        }
        let text = s(&v);
        assert_eq!(parse(text.as_bytes()).unwrap(), v);
        let deeper = Value::Array(vec![v]);
        assert!(matches!(
            stringify(&deeper),
            Err(IpcError::Unsupported { .. })
        ));
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("nesting deeper than 256"), "{err}");
    }

    #[test]
    fn parse_values_and_whitespace() {
        assert_eq!(parse(b"\"s\"").unwrap(), Value::from("s"));
        assert_eq!(parse(b" null\r").unwrap(), Value::Null);
        assert_eq!(parse(b"\ttrue ").unwrap(), Value::Bool(true));
        let z = parse(b"-0").unwrap().as_f64().unwrap();
        assert!(z == 0.0 && z.is_sign_negative());
        assert_eq!(parse(b"1e400").unwrap(), Value::Number(f64::INFINITY));
        assert_eq!(parse(b"-1e400").unwrap(), Value::Number(f64::NEG_INFINITY));
        assert_eq!(parse(b"1E-2").unwrap(), Value::Number(0.01));
        assert_eq!(parse(b"[ 1 , {\"a\" : [] } ]").unwrap().to_owned(), {
            Value::Array(vec![
                Value::from(1),
                Value::object([("a", Value::Array(vec![]))]),
            ])
        });
    }

    #[test]
    fn parse_strings() {
        assert_eq!(
            parse(br#""a\nb\r\t\"\\\/\b\f\u0041\u00e9\u20ac""#).unwrap(),
            Value::from("a\nb\r\t\"\\/\u{8}\u{c}Aé€")
        );
        assert_eq!(parse(br#""\ud83d\ude00""#).unwrap(), Value::from("😀"));
        assert_eq!(
            parse(br#""\ud800x\udc00\ud800\u0041""#).unwrap(),
            Value::from("\u{fffd}x\u{fffd}\u{fffd}A")
        );
        assert_eq!(
            parse("\"é€😀\u{2028}\u{7f}\"".as_bytes()).unwrap(),
            Value::from("é€😀\u{2028}\u{7f}")
        );
    }

    #[test]
    fn repeated_key_keeps_first_position_last_value() {
        assert_eq!(
            parse(br#"{"a":1,"b":2,"a":3}"#).unwrap(),
            Value::object([("a", Value::from(3)), ("b", Value::from(2))])
        );
        // The same past the linear-search threshold.
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        text.push_str("\"k3\":\"last\"}");
        let Value::Object(pairs) = parse(text.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(pairs.len(), 40);
        assert_eq!(pairs[3], ("k3".to_owned(), Value::from("last")));
        assert_eq!(pairs[39], ("k39".to_owned(), Value::from(39)));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "no JSON value"),
            (b" \r", "no JSON value"),
            (b"NaN", "expected value at column 1, found 'N'"),
            (b"[1,]", "expected value at column 4"),
            (b"{\"a\":1", "unexpected end of input in an object"),
            (
                b"{a:1}",
                "unexpected 'a' at column 2 in an object, expected a string key",
            ),
            (b"1 2", "unexpected '2' at column 3 after the JSON value"),
            (b"\"abc", "unterminated string starting at column 1"),
            (
                b"\"a\tb\"",
                "bad control character '\\t' in a string at column 3",
            ),
            (b"\"\\x\"", "unexpected 'x' at column 3 in a string"),
            (b"\"\\u12g4\"", "bad \\u escape"),
            (b"01", "unexpected '1' at column 2"),
            (b"1.", "expected a digit after '.'"),
            (b"1e", "expected an exponent digit"),
            (b"-", "expected a digit"),
            (b"+1", "expected value at column 1"),
            (b"tru", "not `true`"),
        ];
        for (text, reason) in cases {
            match parse(text) {
                Err(IpcError::Malformed { reason: r }) => {
                    assert!(
                        r.contains(reason),
                        "{:?}: {r:?}",
                        String::from_utf8_lossy(text)
                    )
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(text)),
            }
        }
        assert!(matches!(
            parse(b"\"ab\xff\xfe\""),
            Err(IpcError::InvalidUtf8 { offset: 3 })
        ));
    }

    #[test]
    fn typed_helpers() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Msg {
            n: u32,
            s: String,
        }
        let m = Msg {
            n: 7,
            s: "é\n".into(),
        };
        let text = to_json(&m).unwrap();
        assert_eq!(text, "{\"n\":7,\"s\":\"é\\n\"}".as_bytes());
        assert_eq!(from_json::<Msg>(&text).unwrap(), m);
        assert_eq!(parse(&text).unwrap().get("n"), Some(&Value::from(7)));
        assert!(matches!(
            from_json::<Msg>(br#"{"n":"x","s":""}"#),
            Err(IpcError::Malformed { .. })
        ));
        assert!(matches!(
            from_json::<Msg>(b"{\"n\":1,\"s\":\"\xff\"}"),
            Err(IpcError::InvalidUtf8 { offset: 12 })
        ));
    }

    #[test]
    fn typed_decoding_keeps_every_double_exact() {
        // Found by the from_value fuzz target: serde_json's default float parsing may be one
        // unit in the last place off; a typed f64 must be the number the peer sent.
        for x in [
            2.222222222222222e44,
            1.6666666666666667e46,
            5e-324,
            1.7976931348623157e308,
        ] {
            assert_eq!(
                from_value::<f64>(&Value::Number(x)).unwrap().to_bits(),
                x.to_bits()
            );
            assert_eq!(
                from_json::<f64>(stringify(&Value::Number(x)).unwrap().as_bytes()).unwrap(),
                x
            );
        }
    }
}
