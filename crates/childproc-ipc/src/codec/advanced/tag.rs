//! The V8 ValueSerializer tags this codec reads and writes (`src/objects/value-serializer.cc`
//! in V8; Node's framing of host objects is in `lib/v8.js`), and the small tables around them.

pub(super) const VERSION: u8 = 0xff;
/// The format version Node 20 writes (and this codec writes).
pub(super) const LATEST_VERSION: u8 = 15;
/// The oldest version this codec reads (Node's reader accepts 13, captured).
pub(super) const OLDEST_VERSION: u32 = 13;

pub(super) const PADDING: u8 = 0x00;
pub(super) const VERIFY_OBJECT_COUNT: u8 = b'?';
pub(super) const UNDEFINED: u8 = b'_';
pub(super) const NULL: u8 = b'0';
pub(super) const TRUE: u8 = b'T';
pub(super) const FALSE: u8 = b'F';
pub(super) const INT32: u8 = b'I';
pub(super) const UINT32: u8 = b'U';
pub(super) const DOUBLE: u8 = b'N';
pub(super) const BIGINT: u8 = b'Z';
pub(super) const UTF8_STRING: u8 = b'S';
pub(super) const ONE_BYTE_STRING: u8 = b'"';
pub(super) const TWO_BYTE_STRING: u8 = b'c';
pub(super) const OBJECT_REFERENCE: u8 = b'^';
pub(super) const OBJECT: u8 = b'o';
pub(super) const END_OBJECT: u8 = b'{';
pub(super) const SPARSE_ARRAY: u8 = b'a';
pub(super) const END_SPARSE_ARRAY: u8 = b'@';
pub(super) const DENSE_ARRAY: u8 = b'A';
pub(super) const END_DENSE_ARRAY: u8 = b'$';
pub(super) const HOLE: u8 = b'-';
pub(super) const DATE: u8 = b'D';
pub(super) const TRUE_OBJECT: u8 = b'y';
pub(super) const FALSE_OBJECT: u8 = b'x';
pub(super) const NUMBER_OBJECT: u8 = b'n';
pub(super) const BIGINT_OBJECT: u8 = b'z';
pub(super) const STRING_OBJECT: u8 = b's';
pub(super) const REGEXP: u8 = b'R';
pub(super) const MAP: u8 = b';';
pub(super) const END_MAP: u8 = b':';
pub(super) const SET: u8 = b'\'';
pub(super) const END_SET: u8 = b',';
pub(super) const ARRAY_BUFFER: u8 = b'B';
pub(super) const RESIZABLE_ARRAY_BUFFER: u8 = b'~';
pub(super) const ARRAY_BUFFER_VIEW: u8 = b'V';
pub(super) const ERROR: u8 = b'r';
pub(super) const HOST_OBJECT: u8 = b'\\';

/// Error sub-tags.
pub(super) const ERROR_MESSAGE: u8 = b'm';
pub(super) const ERROR_STACK: u8 = b's';
pub(super) const ERROR_CAUSE: u8 = b'c';
pub(super) const ERROR_END: u8 = b'.';

/// Node's host-object kinds (`ChildProcessSerializer`): an ArrayBufferView, or a C++-backed
/// object sent as a plain copy of its properties.
pub(super) const HOST_VIEW: u32 = 0;
pub(super) const HOST_PLAIN_COPY: u32 = 1;
/// Node's index of `Buffer` among the view types (0 Int8Array … 12 BigUint64Array).
pub(super) const VIEW_INDEX_BUFFER: u8 = 10;
/// Node's index of `DataView` among the view types.
pub(super) const VIEW_INDEX_DATA_VIEW: u8 = 9;

/// The Error prototypes V8 carries, by sub-tag.
const ERROR_PROTOTYPES: [(u8, &str); 6] = [
    (b'E', "EvalError"),
    (b'R', "RangeError"),
    (b'F', "ReferenceError"),
    (b'S', "SyntaxError"),
    (b'T', "TypeError"),
    (b'U', "URIError"),
];

/// The sub-tag of an Error's `name`, if V8 has one (a plain `Error` has none).
pub(super) fn error_prototype(name: &str) -> Option<u8> {
    ERROR_PROTOTYPES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(t, _)| *t)
}

/// The Error name of a prototype sub-tag.
pub(super) fn error_name(sub_tag: u8) -> Option<&'static str> {
    ERROR_PROTOTYPES
        .iter()
        .find(|(t, _)| *t == sub_tag)
        .map(|(_, n)| *n)
}

/// RegExp flags in the order JavaScript's `flags` getter lists them, with V8's bits.
/// (Bit 64 is V8's non-standard `l`, refused like any unknown bit.)
const REGEXP_FLAGS: [(char, u32); 8] = [
    ('d', 128),
    ('g', 1),
    ('i', 2),
    ('m', 4),
    ('s', 32),
    ('u', 16),
    ('v', 256),
    ('y', 8),
];

/// V8's bit for a RegExp flag character.
pub(super) fn regexp_flag_bit(flag: char) -> Option<u32> {
    REGEXP_FLAGS
        .iter()
        .find(|(c, _)| *c == flag)
        .map(|(_, b)| *b)
}

/// The flags text (`"dgimsuvy"` order) of V8's bits; `None` if an unknown bit is set.
pub(super) fn regexp_flags_text(bits: u32) -> Option<String> {
    let known = REGEXP_FLAGS.iter().fold(0, |all, (_, b)| all | b);
    (bits & !known == 0).then(|| {
        REGEXP_FLAGS
            .iter()
            .filter(|(_, b)| bits & b != 0)
            .map(|(c, _)| *c)
            .collect()
    })
}

/// The index if `key` is a canonical array index (`"0"`, `"17"`; below 2³² − 1), which V8
/// writes as a number key.
pub(super) fn array_index(key: &str) -> Option<u32> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    key.parse::<u32>().ok().filter(|&i| i != u32::MAX)
}

/// A tag byte for an error message: `0x6f ('o')`.
pub(super) fn show(tag: u8) -> String {
    if tag.is_ascii_graphic() {
        format!("0x{tag:02x} ('{}')", tag as char)
    } else {
        format!("0x{tag:02x}")
    }
}

/// What V8 means by a tag this codec does not read, for error messages.
pub(super) fn unsupported_kind(tag: u8) -> &'static str {
    match tag {
        b'u' => "a SharedArrayBuffer",
        b'w' | b'W' => "a WebAssembly module",
        b'm' => "a WebAssembly memory",
        b'p' => "a shared object",
        b't' => "a transferred ArrayBuffer",
        b'i' => "a WebAssembly module (legacy)",
        HOLE => "an array hole outside a dense array",
        END_OBJECT | END_DENSE_ARRAY | END_SPARSE_ARRAY | END_MAP | END_SET => {
            "an end tag out of place"
        }
        ARRAY_BUFFER_VIEW => "an ArrayBufferView without its ArrayBuffer",
        VERSION => "a version header inside the value",
        _ => "an unknown tag",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        for not in [
            "",
            "01",
            "-1",
            "1.5",
            "4294967295",
            "99999999999",
            "a",
            " 1",
        ] {
            assert_eq!(array_index(not), None, "{not:?}");
        }
        assert_eq!(regexp_flags_text(0xbf).as_deref(), Some("dgimsuy"));
        assert_eq!(regexp_flags_text(0x100).as_deref(), Some("v"));
        assert_eq!(regexp_flags_text(64), None);
        assert_eq!(error_prototype("TypeError"), Some(b'T'));
        assert_eq!(error_prototype("Error"), None);
        assert_eq!(error_name(b'F'), Some("ReferenceError"));
        assert_eq!(show(b'o'), "0x6f ('o')");
        assert_eq!(show(0x01), "0x01");
    }
}
