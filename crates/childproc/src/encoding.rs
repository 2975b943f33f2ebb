//! Node's `encoding` option: how captured output is decoded.

use std::fmt;
use std::str::FromStr;

/// How exec and the sync API decode captured stdout/stderr (Node's `encoding` option).
///
/// Parsing a name never fails: as in Node, an unrecognised name means [`Encoding::Buffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// `'utf8'` / `'utf-8'`: invalid sequences become U+FFFD, as Node's decoder does.
    #[default]
    Utf8,
    /// `'buffer'`: the bytes as they are.
    Buffer,
    /// `'latin1'` / `'binary'`: each byte is one code point.
    Latin1,
    /// `'ascii'`: the high bit of each byte is cleared, then as latin1 (Node's rule).
    Ascii,
    /// `'hex'`: lowercase hex digits.
    Hex,
    /// `'base64'`: standard alphabet with padding.
    Base64,
    /// `'base64url'`: URL-safe alphabet without padding.
    Base64Url,
    /// `'utf16le'` / `'ucs2'`: little-endian UTF-16; a trailing odd byte is dropped.
    Utf16Le,
}

impl FromStr for Encoding {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "utf8" | "utf-8" => Encoding::Utf8,
            "latin1" | "binary" => Encoding::Latin1,
            "ascii" => Encoding::Ascii,
            "hex" => Encoding::Hex,
            "base64" => Encoding::Base64,
            "base64url" => Encoding::Base64Url,
            "utf16le" | "utf-16le" | "ucs2" | "ucs-2" => Encoding::Utf16Le,
            _ => Encoding::Buffer,
        })
    }
}

impl From<&str> for Encoding {
    fn from(s: &str) -> Self {
        s.parse().unwrap_or_default()
    }
}

impl Encoding {
    /// Decodes `bytes`: a string for every encoding but [`Encoding::Buffer`].
    pub fn decode(self, bytes: Vec<u8>) -> Data {
        match self {
            Encoding::Buffer => Data::Bytes(bytes),
            Encoding::Utf8 => Data::Text(match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
            Encoding::Latin1 => Data::Text(bytes.iter().map(|&b| char::from(b)).collect()),
            Encoding::Ascii => Data::Text(bytes.iter().map(|&b| char::from(b & 0x7f)).collect()),
            Encoding::Hex => {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let mut s = String::with_capacity(bytes.len() * 2);
                for b in bytes {
                    s.push(char::from(DIGITS[usize::from(b >> 4)]));
                    s.push(char::from(DIGITS[usize::from(b & 15)]));
                }
                Data::Text(s)
            }
            Encoding::Base64 => Data::Text(base64(&bytes, STANDARD, true)),
            Encoding::Base64Url => Data::Text(base64(&bytes, URL_SAFE, false)),
            Encoding::Utf16Le => {
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|p| u16::from_le_bytes([p[0], p[1]]))
                    .collect();
                Data::Text(String::from_utf16_lossy(&units))
            }
        }
    }
}

impl Encoding {
    /// Where Node's string decoder would start the text of a chunk that begins at `at` in
    /// `bytes`: before a multi-byte character (UTF-8, UTF-16) or a base64 group that the
    /// bytes before `at` leave incomplete (the decoder holds those back for the next chunk).
    pub(crate) fn chunk_start(self, bytes: &[u8], at: usize) -> usize {
        let at = at.min(bytes.len());
        match self {
            Encoding::Utf8 => {
                // The last lead byte among the (at most 3) bytes before `at`.
                let from = at.saturating_sub(3);
                let lead = (from..at).rev().find(|&i| bytes[i] & 0xc0 != 0x80);
                match lead {
                    Some(i) => {
                        let len = match bytes[i] {
                            b if b >= 0xf0 => 4,
                            b if b >= 0xe0 => 3,
                            b if b >= 0xc0 => 2,
                            _ => 1,
                        };
                        if i + len > at {
                            i
                        } else {
                            at
                        }
                    }
                    None => at,
                }
            }
            Encoding::Utf16Le => {
                let even = at - at % 2;
                // A high surrogate waits for its pair.
                match even.checked_sub(2) {
                    Some(i) if (0xd8..=0xdb).contains(&bytes[i + 1]) => i,
                    _ => even,
                }
            }
            Encoding::Base64 | Encoding::Base64Url => at - at % 3,
            _ => at,
        }
    }
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        let emit = chunk.len() + 1;
        for i in 0..4 {
            if i < emit {
                out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Captured output: text for a string encoding, bytes for `'buffer'` (Node's string-or-Buffer).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Data {
    /// Decoded text.
    Text(String),
    /// Raw bytes (`encoding: 'buffer'` or an unrecognised encoding).
    Bytes(Vec<u8>),
}

impl Data {
    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Data::Text(s) => Some(s),
            Data::Bytes(_) => None,
        }
    }
    /// The bytes: raw, or the text's UTF-8.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Data::Text(s) => s.as_bytes(),
            Data::Bytes(b) => b,
        }
    }
    /// The text, converting bytes lossily.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Data::Text(s) => s.into(),
            Data::Bytes(b) => String::from_utf8_lossy(b),
        }
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }
    /// Whether there is no output.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Consumes it into bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Data::Text(s) => s.into_bytes(),
            Data::Bytes(b) => b,
        }
    }
}

impl Default for Data {
    fn default() -> Self {
        Data::Text(String::new())
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Text(s) => fmt::Debug::fmt(s, f),
            Data::Bytes(b) => write!(f, "<Buffer {} bytes>", b.len()),
        }
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl PartialEq<str> for Data {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes() && matches!(self, Data::Text(_))
    }
}
impl PartialEq<&str> for Data {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}
impl PartialEq<[u8]> for Data {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: Encoding, b: &[u8]) -> String {
        e.decode(b.to_vec())
            .as_str()
            .expect("a string encoding")
            .to_owned()
    }

    #[test]
    fn each_encoding_decodes_as_node_does() {
        // Values checked against Node's Buffer#toString.
        assert_eq!(text(Encoding::Utf8, "héllo €".as_bytes()), "héllo €");
        assert_eq!(text(Encoding::Utf8, b"a\xffb"), "a\u{fffd}b");
        assert_eq!(text(Encoding::Latin1, b"\xe9\x41"), "éA");
        assert_eq!(text(Encoding::Ascii, b"\xe9\x41"), "iA");
        assert_eq!(text(Encoding::Hex, b"\x00\xffA"), "00ff41");
        assert_eq!(text(Encoding::Base64, b"hello"), "aGVsbG8=");
        assert_eq!(text(Encoding::Base64, b"hell"), "aGVsbA==");
        assert_eq!(text(Encoding::Base64, b"hel"), "aGVs");
        assert_eq!(text(Encoding::Base64Url, b"\xfb\xff"), "-_8");
        assert_eq!(
            text(Encoding::Utf16Le, b"h\0i\0\x3d\xd8\x00\xde!"),
            "hi\u{1f600}"
        );
        assert_eq!(Encoding::Buffer.decode(vec![1, 2]), Data::Bytes(vec![1, 2]));
    }

    #[test]
    fn names_parse_like_node_and_unknown_names_mean_buffer() {
        assert_eq!(Encoding::from("UTF-8"), Encoding::Utf8);
        assert_eq!(Encoding::from("ucs2"), Encoding::Utf16Le);
        assert_eq!(Encoding::from("binary"), Encoding::Latin1);
        assert_eq!(Encoding::from("klingon"), Encoding::Buffer);
    }

    #[test]
    fn a_multibyte_character_split_across_chunks_decodes_whole() {
        let euro = "€".as_bytes();
        let mut joined = euro[..1].to_vec();
        joined.extend_from_slice(&euro[1..]);
        assert_eq!(Encoding::Utf8.decode(joined), "€");
    }
}
