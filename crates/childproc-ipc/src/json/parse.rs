//! Reading JSON text into a [`Value`] as `JSON.parse` does (see the [module docs](super)).

use std::collections::HashMap;

use crate::{IpcError, Result, Value};

/// One JSON value with whitespace around it, the whole of `text`.
pub(super) fn document(text: &str) -> Result<Value> {
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

/// `{"id":<number>,"<key>":<value>}` exactly as `JSON.stringify` writes it (no whitespace,
/// those two keys in that order, `key` one of `keys`): the id, the key and the value. `None`
/// for any other text, a bad one included: the caller parses it whole, which gives the same
/// message (or the same error) the long way.
pub(super) fn envelope(text: &str, keys: &[&'static str]) -> Option<(Value, &'static str, Value)> {
    let rest = text.strip_prefix(r#"{"id":"#)?;
    let mut p = Parser {
        text,
        pos: text.len() - rest.len(),
    };
    if !matches!(p.peek(), Some(b'-' | b'0'..=b'9')) {
        return None;
    }
    let id = p.number().ok()?;
    let after = text[p.pos..].strip_prefix(",\"")?;
    let &key = keys.iter().find(|k| {
        after
            .strip_prefix(**k)
            .is_some_and(|tail| tail.starts_with("\":"))
    })?;
    p.pos = text.len() - after.len() + key.len() + 2;
    let value = p.value(1).ok()?;
    (text.len() == p.pos + 1 && text.ends_with('}')).then_some((id, key, value))
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
        let bytes = self.text.as_bytes();
        let negative = bytes.get(start) == Some(&b'-');
        let first = start + usize::from(negative);
        // The integer part in one pass, its value kept while it is exact (15 digits at most).
        let mut end = first;
        let mut n = 0u64;
        while let Some(d) = bytes
            .get(end)
            .map(|b| b.wrapping_sub(b'0'))
            .filter(|d| *d <= 9)
        {
            n = n.wrapping_mul(10).wrapping_add(u64::from(d));
            end += 1;
        }
        match end - first {
            0 => {
                self.pos = first;
                return Err(self.unexpected("in a number, expected a digit"));
            }
            // A leading zero is a whole integer part: what follows it is not a digit of it.
            _ if bytes[first] == b'0' => (end, n) = (first + 1, 0),
            _ => {}
        }
        self.pos = end;
        if end - first <= 15 && !matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            // A whole number of at most 15 digits is exact in a double: no rounding to do.
            // Below 10^15: exact. `-0` stays negative zero, as in `JSON.parse`.
            #[allow(clippy::cast_precision_loss)]
            let n = n as f64;
            return Ok(Value::Number(if negative { -n } else { n }));
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
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(Vec::new()));
        }
        // Room for four pairs at once, as the first push would make, without its slow path.
        let mut object = ObjectBuilder {
            pairs: Vec::with_capacity(4),
            index: None,
        };
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
        // Filled only once an escape is met: a string without one is copied once, at its size.
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
                    let tail = &self.text[start..self.pos];
                    self.pos += 1;
                    if out.is_empty() {
                        return Ok(tail.to_owned());
                    }
                    out.push_str(tail);
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
