//! The advanced codec against the bytes Node 20 writes (`shared/protocol/node-ipc.md` §3,
//! captured by `captures/03_advanced_mode.py`), round trips, framing and bad input.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::AdvancedCodec;
use crate::test_support::{arb_value, check_roundtrip, chunked, decode_stream, same};
use crate::value::{JsError, SparseArray, TypedArray, TypedArrayKind};
use crate::{IpcError, Result, Value};

/// Bytes from a hex dump: `"ff 0f 6f"`.
fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// The payload our encoder writes for `v` (after checking the prefix).
fn payload(v: &Value) -> Vec<u8> {
    let mut buf = BytesMut::new();
    AdvancedCodec::new().encode(v, &mut buf).unwrap();
    let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
    assert_eq!(len, buf.len() - 4);
    buf[4..].to_vec()
}

fn decode_one(payload: &[u8]) -> Result<Value> {
    let (mut values, err) = decode_stream(&mut AdvancedCodec::new(), &[&frame(payload)]);
    match err {
        Some(e) => Err(e),
        None => Ok(values.remove(0)),
    }
}

fn malformed(payload: &[u8]) -> String {
    match decode_one(payload) {
        Err(IpcError::Malformed { reason }) => reason,
        other => panic!("{payload:x?}: expected Malformed, got {other:?}"),
    }
}

fn n(x: f64) -> Value {
    Value::Number(x)
}

fn s(x: &str) -> Value {
    Value::from(x)
}

fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::object(pairs)
}

fn big(d: &str) -> Value {
    Value::BigInt(d.into())
}

fn err(name: &str, message: &str, stack: Option<&str>) -> Value {
    Value::error(name, message).with_stack(stack.map(Into::into))
}

fn typed(kind: TypedArrayKind, bytes: &[u8]) -> Value {
    Value::TypedArray(TypedArray::new(kind, bytes.to_vec()).unwrap())
}

fn sparse(length: u32, elements: Vec<(u32, Value)>, properties: Vec<(&str, Value)>) -> Value {
    Value::from(SparseArray {
        length,
        elements,
        properties: properties.into_iter().map(|(k, v)| (k.into(), v)).collect(),
    })
}

/// Node's bytes that our encoder reproduces exactly: decoding gives the value, encoding the
/// value gives Node's bytes.
#[test]
fn node_bytes_both_ways() {
    let cases: Vec<(&str, Value)> =
        vec![
        ("ff 0f 30", Value::Null),
        ("ff 0f 54", Value::Bool(true)),
        ("ff 0f 46", Value::Bool(false)),
        ("ff 0f 6f 22 01 76 5f 7b 01", obj([("v", Value::Undefined)])),
        ("ff 0f 49 00", n(0.0)),
        ("ff 0f 49 02", n(1.0)),
        ("ff 0f 49 01", n(-1.0)),
        ("ff 0f 49 7e", n(63.0)),
        ("ff 0f 49 80 01", n(64.0)),
        ("ff 0f 49 fe ff ff ff 0f", n(2147483647.0)),
        ("ff 0f 49 ff ff ff ff 0f", n(-2147483648.0)),
        ("ff 0f 4e 00 00 00 00 00 00 e0 41", n(2147483648.0)),
        ("ff 0f 4e 00 00 00 00 00 00 f8 3f", n(1.5)),
        ("ff 0f 4e 00 00 00 00 00 00 f8 7f", n(f64::NAN)),
        ("ff 0f 4e 00 00 00 00 00 00 f0 7f", n(f64::INFINITY)),
        ("ff 0f 4e 00 00 00 00 00 00 f0 ff", n(f64::NEG_INFINITY)),
        ("ff 0f 4e 00 00 00 00 00 00 00 80", n(-0.0)),
        ("ff 0f 6f 22 01 76 5a 00 7b 01", obj([("v", big("0"))])),
        (
            "ff 0f 6f 22 01 76 5a 10 01 00 00 00 00 00 00 00 7b 01",
            obj([("v", big("1"))]),
        ),
        (
            "ff 0f 6f 22 01 76 5a 11 01 00 00 00 00 00 00 00 7b 01",
            obj([("v", big("-1"))]),
        ),
        (
            "ff 0f 6f 22 01 76 5a 20 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 7b 01",
            obj([("v", big("18446744073709551616"))]),
        ),
        ("ff 0f 22 00", s("")),
        ("ff 0f 22 02 68 69", s("hi")),
        ("ff 0f 22 01 e9", s("é")),
        ("ff 0f 63 02 ac 20", s("€")),
        ("ff 0f 63 06 61 00 3d d8 00 de", s("a😀")),
        // The padding rule: `c` data would start at frame offset 13 (odd): one 00 first.
        ("ff 0f 6f 22 02 61 62 00 63 02 ac 20 7b 01", obj([("ab", s("€"))])),
        (
            "ff 0f 41 03 49 02 22 01 61 54 24 00 03",
            Value::Array(vec![n(1.0), s("a"), Value::Bool(true)]),
        ),
        ("ff 0f 41 00 24 00 00", Value::Array(vec![])),
        (
            "ff 0f 6f 22 01 61 49 02 22 01 62 22 01 78 7b 02",
            obj([("a", n(1.0)), ("b", s("x"))]),
        ),
        ("ff 0f 6f 7b 00", obj([])),
        (
            "ff 0f 6f 49 02 22 03 6f 6e 65 49 04 22 03 74 77 6f 22 01 62 49 02 7b 03",
            obj([("1", s("one")), ("2", s("two")), ("b", n(1.0))]),
        ),
        (
            "ff 0f 6f 22 01 61 6f 22 01 62 41 02 49 02 6f 22 01 63 30 7b 01 24 00 02 7b 01 7b 01",
            obj([(
                "a",
                obj([(
                    "b",
                    Value::Array(vec![n(1.0), obj([("c", Value::Null)])]),
                )]),
            )]),
        ),
        (
            "ff 0f 3b 49 02 22 01 61 22 01 6b 6f 22 01 7a 49 02 7b 01 3a 04",
            Value::Map(vec![(n(1.0), s("a")), (s("k"), obj([("z", n(1.0))]))]),
        ),
        (
            "ff 0f 27 49 02 22 01 61 2c 02",
            Value::Set(vec![n(1.0), s("a")]),
        ),
        ("ff 0f 44 00 00 00 00 00 00 00 00", Value::Date(0.0)),
        ("ff 0f 44 00 e0 f2 5c 43 f6 76 42", Value::Date(1577934245678.0)),
        ("ff 0f 44 00 00 00 00 00 00 f8 7f", Value::Date(f64::NAN)),
        (
            "ff 0f 52 22 04 61 62 2b 63 03",
            Value::RegExp {
                source: "ab+c".into(),
                flags: "gi".into(),
            },
        ),
        (
            "ff 0f 52 22 01 78 bf 01",
            Value::RegExp {
                source: "x".into(),
                flags: "dgimsuy".into(),
            },
        ),
        (
            "ff 0f 52 22 07 5b 5c 70 7b 4c 7d 5d 80 02",
            Value::RegExp {
                source: "[\\p{L}]".into(),
                flags: "v".into(),
            },
        ),
        (
            "ff 0f 72 54 6d 22 01 78 73 22 01 73 2e",
            err("TypeError", "x", Some("s")),
        ),
        ("ff 0f 72 6d 22 01 78 73 22 01 73 2e", err("Error", "x", Some("s"))),
        ("ff 0f 72 52 6d 22 01 72 2e", err("RangeError", "r", None)),
        ("ff 0f 5c 00 0a 02 68 69", Value::Bytes(b"hi".to_vec())),
    ];
    for (bytes, value) in cases {
        let bytes = hex(bytes);
        let got = decode_one(&bytes).unwrap_or_else(|e| panic!("{bytes:x?}: {e}"));
        assert!(same(&got, &value), "{bytes:x?}: {got:?} != {value:?}");
        assert_eq!(payload(&value), bytes, "{value:?}");
    }
}

/// The one-byte form's edges (U+0080, U+00BF, U+00C0, U+00FF) and the first characters
/// beyond it, which need the two-byte form (and a surrogate pair above U+FFFF).
#[test]
fn latin1_and_two_byte_edges() {
    let cases: [(&str, &str); 4] = [
        ("a\u{80}\u{bf}\u{c0}\u{ff}", "ff 0f 22 05 61 80 bf c0 ff"),
        ("\u{100}", "ff 0f 63 02 00 01"),
        ("\u{ff}\u{ffff}", "ff 0f 63 04 ff 00 ff ff"),
        ("\u{10000}", "ff 0f 63 04 00 d8 00 dc"),
    ];
    for (text, bytes) in cases {
        assert_eq!(payload(&s(text)), hex(bytes), "{text:?}");
        assert_eq!(decode_one(&hex(bytes)).unwrap(), s(text));
    }
}

/// What Node writes that we read but write differently (or cannot write back).
#[test]
fn node_bytes_read_only() {
    let mut error_with_cause = hex("ff 0f 72 54 6d 22 03 62 61 64 63 49 54 73 22 0e");
    error_with_cause.extend(b"TypeError: bad");
    error_with_cause.push(0x2e);
    let mut ascii_two_byte = hex("ff 0f 6f 22 01 6b 63 20");
    for c in b'a'..=b'p' {
        ascii_two_byte.extend([c, 0]);
    }
    ascii_two_byte.extend(hex("7b 01"));
    let cases: Vec<(Vec<u8>, Value)> = vec![
        (hex("ff 0f 63 02 00 d8"), s("\u{fffd}")), // a lone surrogate
        (ascii_two_byte, obj([("k", s("abcdefghijklmnop"))])),
        (
            hex("ff 0f 41 02 4e 00 00 00 00 00 00 f8 3f 4e 00 00 00 00 00 00 00 40 24 00 02"),
            Value::Array(vec![n(1.5), n(2.0)]),
        ),
        // [1] with .foo = 'bar': Node writes it dense with a property, this codec sparse.
        (
            hex("ff 0f 41 01 49 02 22 03 66 6f 6f 22 03 62 61 72 24 01 01"),
            sparse(1, vec![(0, n(1.0))], vec![("foo", s("bar"))]),
        ),
        // The cause after the stack (Node 20 writes it before).
        (
            error_with_cause,
            Value::from(JsError {
                name: "TypeError".into(),
                message: "bad".into(),
                stack: Some("TypeError: bad".into()),
                cause: Some(n(42.0)),
            }),
        ),
        // Host tag 1: a C++-backed object as a plain copy ({h} with h.onerror = 1).
        (
            [
                hex("ff 0f 6f 22 01 68 5c 01 6f 22 07"),
                b"onerror".to_vec(),
                hex("49 02 7b 01 7b 01"),
            ]
            .concat(),
            obj([("h", obj([("onerror", n(1.0))]))]),
        ),
    ];
    for (bytes, value) in cases {
        let got = decode_one(&bytes).unwrap_or_else(|e| panic!("{bytes:x?}: {e}"));
        assert!(same(&got, &value), "{bytes:x?}: {got:?} != {value:?}");
    }
}

/// §3.6: what Node's reader tolerates, ours too.
#[test]
fn reader_tolerance() {
    let cases: Vec<(&str, Value)> = vec![
        ("ff 0f 53 03 c3 a9 21", s("é!")), // S: UTF-8
        ("ff 0f 63 02 ac 20", s("€")),     // c without the padding it would need…
        (
            "ff 0f 6f 22 02 61 62 63 02 ac 20 7b 01",
            obj([("ab", s("€"))]),
        ), // …inside an object
        ("ff 0f 00 00 30", Value::Null),   // padding before any tag
        ("ff 0f 55 ff ff ff ff 0f", n(4294967295.0)), // U: uint32
        ("ff 0f 5a 02 05", big("5")),      // a short BigInt
        ("ff 0f 5a 03 05", big("-5")),
        ("ff 0f 5a 01", big("0")),          // -0n is 0n
        ("ff 0d 30", Value::Null),          // version 13
        ("ff 0f 30 ff ff ff", Value::Null), // trailing bytes
        (
            "ff 0f 41 02 2d 49 02 24 00 02",
            sparse(2, vec![(1, n(1.0))], vec![]),
        ), // hole
        ("ff 0f 3f 02 6f 7b 00", obj([])),  // verify-count tag
        (
            "ff 0f 6f 4e 00 00 00 00 00 00 f0 41 30 7b 01",
            obj([("4294967296", Value::Null)]),
        ),
        (
            "ff 0f 6f 4e 00 00 00 00 00 00 f8 3f 30 7b 01",
            obj([("1.5", Value::Null)]),
        ),
        // V8's own view after an ArrayBuffer: bytes 1..3 of 4 (version 15 has a flags varint).
        (
            "ff 0f 42 04 0a 0b 0c 0d 56 42 01 02 00",
            typed(TypedArrayKind::Uint8, &[0x0b, 0x0c]),
        ),
        ("ff 0d 42 02 0a 0b 56 3f 01 01", Value::DataView(vec![0x0b])),
        (
            "ff 0f 42 04 0a 0b 0c 0d 56 77 02 02 00",
            typed(TypedArrayKind::Int16, &[0x0c, 0x0d]),
        ),
        // A sparse array with every index present (Node echoes arrays so): an array.
        (
            "ff 0f 61 02 49 00 22 01 61 49 02 22 01 62 40 02 02",
            Value::Array(vec![s("a"), s("b")]),
        ),
        // …and with a named key.
        (
            "ff 0f 61 02 49 00 22 01 61 49 02 22 01 62 22 01 6e 30 40 03 02",
            sparse(2, vec![(0, s("a")), (1, s("b"))], vec![("n", Value::Null)]),
        ),
        // Error sub-tags in any order, without message.
        (
            "ff 0f 72 73 22 01 73 46 2e",
            err("ReferenceError", "", Some("s")),
        ),
        // Host tag 1 referenced: its number names the copy.
        (
            "ff 0f 41 02 5c 01 6f 7b 00 5e 01 24 00 02",
            Value::Array(vec![Value::shared(1, obj([])), Value::Ref(1)]),
        ),
    ];
    for (bytes, value) in cases {
        let bytes = hex(bytes);
        let got = decode_one(&bytes).unwrap_or_else(|e| panic!("{bytes:x?}: {e}"));
        assert!(same(&got, &value), "{bytes:x?}: {got:?} != {value:?}");
    }
}

#[test]
fn back_references_that_cannot_be_read() {
    // A reference to an id not yet given, and to the ArrayBuffer of V8's own view.
    assert!(malformed(&hex("ff 0f 41 01 5e 05 24 00 01")).contains("only 1 objects"));
    assert!(
        malformed(&hex("ff 0f 41 02 42 01 07 56 42 00 01 00 5e 01 24 00 02"))
            .contains("the ArrayBuffer of a view")
    );
}

#[test]
fn bad_input_is_an_error_naming_what_and_where() {
    let cases: &[(&str, &str)] = &[
        ("30", "no V8 version header: the payload starts with 0x30"),
        ("ff 10 30", "version 16"),
        ("ff 0c 30", "version 12"),
        ("ff 0f", "ends early"),
        ("ff 0f 71", "unsupported V8 tag 0x71 ('q') at byte 2"),
        (
            "ff 0f 75 00",
            "tag 0x75 ('u') at byte 2: a SharedArrayBuffer",
        ),
        (
            "ff 0f 6f 22 01 61 2d 7b 01",
            "tag 0x2d ('-') at byte 6: an array hole",
        ),
        ("ff 0f 7b 00", "end tag out of place"),
        (
            "ff 0f 6f 22 01 61 30 7b 02",
            "object at byte 2 says 2 entries but has 1",
        ),
        (
            "ff 0f 6f 54 30 7b 01",
            "property key at byte 3 is tag 0x54 ('T')",
        ),
        (
            "ff 0f 41 01 30 24 00 02",
            "length 2 at its end but 1 at its start",
        ),
        ("ff 0f 3b 30 3a 01", "Map at byte 2 ends after a key"),
        (
            "ff 0f 3b 30 30 3a 01",
            "Map at byte 2 says 1 entries but has 2",
        ),
        (
            "ff 0f 27 30 2c 00",
            "Set at byte 2 says 0 entries but has 1",
        ),
        (
            "ff 0f 63 03 61 00 62",
            "two-byte string at byte 2 has an odd length",
        ),
        ("ff 0f 22 05 61", "5 bytes needed at byte 4, 1 left"),
        ("ff 0f 52 22 01 61 40", "unknown flags 0x40"),
        (
            "ff 0f 52 30 00",
            "expected a string at byte 3, found tag 0x30 ('0')",
        ),
        ("ff 0f 72 51 2e", "unknown field tag 0x51 ('Q') at byte 3"),
        ("ff 0f 5c 00 0d 00", "unknown type index 13"),
        ("ff 0f 5c 02", "unknown kind 2"),
        ("ff 0f 49 80 80 80 80 80 01", "longer than 5 bytes"),
        ("ff 0f 49 80 80 80 80 10", "does not fit in 32 bits"),
        ("ff 0f 5a 82 40 00", "the limit is 4096"),
        (
            "ff 0f 42 02 01 02 56 42 01 02 00",
            "outside its 2-byte buffer",
        ),
        ("ff 0f 56 42 00 00 00", "without its ArrayBuffer"),
    ];
    for (bytes, want) in cases {
        let reason = malformed(&hex(bytes));
        assert!(reason.contains(want), "{bytes}: {reason:?} lacks {want:?}");
    }
    assert!(matches!(
        decode_one(&hex("ff 0f 53 02 61 ff")),
        Err(IpcError::InvalidUtf8 { offset: 5 })
    ));
    // An empty frame, as Node's reader refuses it.
    assert!(malformed(&[]).contains("empty frame"));
    // Too deep.
    let mut deep = hex("ff 0f");
    deep.extend(std::iter::repeat_n(0x27, Value::MAX_DEPTH + 1));
    assert!(malformed(&deep).contains("nesting deeper than 256 levels at byte 258"));
    // Arrays as V8 never writes them.
    for (bytes, want) in [
        ("ff 0f 61 02 49 04 30 40 01 02", "index 2 out of order"),
        (
            "ff 0f 61 03 49 02 30 49 00 30 40 02 03",
            "index 0 out of order",
        ),
        (
            "ff 0f 61 03 22 01 61 30 49 02 30 40 02 03",
            "index 1 out of order",
        ),
        (
            "ff 0f 41 01 30 49 00 30 24 01 01",
            "an index among its named properties",
        ),
        (
            "ff 0f 5c 00 08 03 00 00 00",
            "Float64Array at byte 2 has 3 bytes",
        ),
        ("ff 0f 7e 02 01 00 00", "above its maximum 1"),
    ] {
        let reason = malformed(&hex(bytes));
        assert!(reason.contains(want), "{bytes}: {reason:?} lacks {want:?}");
    }
}

#[test]
fn framing() {
    let a = obj([("a", n(1.0))]);
    let b = Value::Array(vec![s("€"), Value::Bytes(vec![1])]);
    let mut wire = BytesMut::new();
    let mut codec = AdvancedCodec::new();
    codec.encode(&a, &mut wire).unwrap();
    codec.encode(&b, &mut wire).unwrap();
    // Two frames in one read, and the same bytes one at a time.
    let (got, err) = decode_stream(&mut AdvancedCodec::new(), &[&wire[..]]);
    assert!(err.is_none() && got.len() == 2 && same(&got[0], &a) && same(&got[1], &b));
    let bytewise: Vec<&[u8]> = wire.chunks(1).collect();
    let (got, err) = decode_stream(&mut AdvancedCodec::new(), &bytewise);
    assert!(
        err.is_none() && got.len() == 2 && same(&got[1], &b),
        "{err:?}"
    );
    // A frame cut short at EOF: the first is delivered, then Truncated.
    let cut = &wire[..wire.len() - 1];
    let (got, err) = decode_stream(&mut AdvancedCodec::new(), &[cut]);
    assert_eq!(got.len(), 1);
    assert!(matches!(err, Some(IpcError::Truncated { .. })), "{err:?}");
    // Oversized: refused on the prefix alone, before the payload arrives.
    let mut big = BytesMut::from(&[0, 0, 1, 0][..]);
    assert!(matches!(
        AdvancedCodec::with_max_frame(255).decode(&mut big),
        Err(IpcError::FrameTooLarge { len: 256, max: 255 })
    ));
    assert_eq!(
        AdvancedCodec::with_max_frame(usize::MAX).max_frame(),
        i32::MAX as usize
    );
    // The padding rule counts from the frame start, wherever the frame sits in the buffer.
    let mut shifted = BytesMut::from(&b"x"[..]);
    codec.encode(&s("€"), &mut shifted).unwrap();
    assert_eq!(&shifted[5..], hex("ff 0f 63 02 ac 20"));
}

#[test]
fn encoding_refusals_leave_the_buffer_alone() {
    let mut deep = Value::Null;
    for _ in 0..=Value::MAX_DEPTH {
        deep = Value::Array(vec![deep]);
    }
    let refused = [
        Value::Undefined,
        big("1"),
        Value::Array(vec![big("01")]),
        Value::Array(vec![big("-0")]),
        Value::Array(vec![big(&"9".repeat(10_000))]),
        Value::RegExp {
            source: "a".into(),
            flags: "gq".into(),
        },
        deep,
    ];
    let mut buf = BytesMut::from(&b"x"[..]);
    for v in &refused {
        match AdvancedCodec::new().encode(v, &mut buf) {
            Err(IpcError::Unsupported { .. }) => {}
            other => panic!("{v:?}: {other:?}"),
        }
    }
    assert!(matches!(
        AdvancedCodec::with_max_frame(3).encode(s("ab"), &mut buf),
        Err(IpcError::FrameTooLarge { len: 6, max: 3 })
    ));
    assert_eq!(&buf[..], b"x");
}

#[test]
fn every_kind_round_trips() {
    let rich = obj([
        ("undefined", Value::Undefined),
        ("null", Value::Null),
        ("bool", Value::Bool(false)),
        ("nan", n(f64::NAN)),
        ("-0", n(-0.0)),
        ("inf", n(f64::INFINITY)),
        ("-inf", n(f64::NEG_INFINITY)),
        ("i32", n(-123456.0)),
        ("big double", n(1e300)),
        ("bigint", big("123456789012345678901234567890123456789")),
        ("-bigint", big("-340282366920938463463374607431768211456")),
        ("latin1", s("café ÿ")),
        ("two-byte", s("中文 😀 é")),
        ("bytes", Value::Bytes((0..=255).collect())),
        (
            "map",
            Value::Map(vec![
                (obj([("k", n(1.0))]), Value::Set(vec![n(1.0), s("a")])),
                (n(f64::NAN), Value::Array(vec![Value::Map(vec![])])),
            ]),
        ),
        ("date", Value::Date(-1e13)),
        (
            "regexp",
            Value::RegExp {
                source: "^a+\\/(?<n>b)$".into(),
                flags: "dgimsuy".into(),
            },
        ),
        (
            "error",
            err(
                "SyntaxError",
                "bad € token",
                Some("SyntaxError: bad\n    at x"),
            ),
        ),
        ("7", s("index key")),
        ("07", s("not an index key")),
        ("4294967295", s("not an index either")),
    ]);
    let back = decode_one(&payload(&rich)).unwrap();
    assert!(same(&back, &rich), "{back:?}");
}

/// What the codec carries of any value: an Error's name only when V8 has a prototype for it,
/// RegExp flags in JavaScript's order; the top level must be something Node's send() takes.
pub(super) fn v8_form(v: Value) -> Value {
    fn walk(v: Value) -> Value {
        match v {
            Value::Error(mut error) => {
                if super::tag::error_prototype(&error.name).is_none() {
                    error.name = "Error".into();
                }
                error.cause = error.cause.map(walk);
                Value::Error(error)
            }
            Value::RegExp { source, flags } => {
                let mut bits = 0;
                for c in flags.chars() {
                    bits |= super::tag::regexp_flag_bit(c).unwrap();
                }
                Value::RegExp {
                    source,
                    flags: super::tag::regexp_flags_text(bits).unwrap(),
                }
            }
            Value::Array(items) => Value::Array(items.into_iter().map(walk).collect()),
            Value::Set(items) => Value::Set(items.into_iter().map(walk).collect()),
            Value::Object(pairs) => {
                Value::Object(pairs.into_iter().map(|(k, v)| (k, walk(v))).collect())
            }
            Value::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (walk(k), walk(v)))
                    .collect(),
            ),
            Value::SparseArray(mut a) => {
                a.elements = a.elements.into_iter().map(|(i, v)| (i, walk(v))).collect();
                a.properties = a
                    .properties
                    .into_iter()
                    .map(|(k, v)| (k, walk(v)))
                    .collect();
                Value::SparseArray(a)
            }
            Value::Shared { id, value } => Value::shared(id, walk(*value)),
            other => other,
        }
    }
    match walk(v) {
        top @ (Value::Undefined | Value::BigInt(_)) => Value::Array(vec![top]),
        top => top,
    }
}

/// Random bytes, half of them tags, small numbers and the header's bytes, so that random
/// input reaches deep into the reader. (A mapped `u8`: a 20-arm `prop_oneof!` is slow.)
fn v8ish_byte() -> impl Strategy<Value = u8> {
    const LIKELY: &[u8] = b"\0\x01\x02\x03\xff\x0foAa^;'r\\BVI\"c{$@:,-_0TNZDR";
    any::<u16>().prop_map(|r| match r & 1 {
        0 => LIKELY[usize::from(r >> 1) % LIKELY.len()],
        _ => (r >> 8) as u8,
    })
}

proptest! {
    #[test]
    fn roundtrip_every_value(
        values in proptest::collection::vec(arb_value().prop_map(v8_form), 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        check_roundtrip(AdvancedCodec::new, &values, &cuts)?;
    }

    #[test]
    fn chunking_does_not_matter(
        bytes in proptest::collection::vec(v8ish_byte(), 0..200),
        cuts in proptest::collection::vec(0usize..200, 0..10),
        max in 0usize..40,
    ) {
        let whole = decode_stream(&mut AdvancedCodec::with_max_frame(max), &[&bytes[..]]);
        let split = decode_stream(&mut AdvancedCodec::with_max_frame(max), &chunked(&bytes, &cuts));
        prop_assert!(whole.0.len() == split.0.len() && whole.0.iter().zip(&split.0).all(|(a, b)| same(a, b)));
        prop_assert_eq!(
            whole.1.as_ref().map(std::mem::discriminant),
            split.1.as_ref().map(std::mem::discriminant)
        );
    }

    #[test]
    fn arbitrary_payloads_never_panic(tail in proptest::collection::vec(v8ish_byte(), 0..300)) {
        let payload = [&[0xff, 0x0f][..], &tail].concat();
        let _ = decode_one(&payload);
        let _ = decode_one(&tail);
    }
}
