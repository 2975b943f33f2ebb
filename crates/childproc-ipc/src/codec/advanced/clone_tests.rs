//! The structured-clone kinds against the bytes Node 20's `v8.serialize` (with the IPC
//! channel's host-object framing) writes for them: typed arrays, DataView, ArrayBuffer,
//! boxed primitives, an Error's cause, sparse arrays, shared objects and cycles.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::AdvancedCodec;
use crate::test_support::{arb_clone_value, renumbered, same};
use crate::value::{ArrayBuffer, JsError, SparseArray, TypedArray, TypedArrayKind};
use crate::{IpcError, Value};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn encode(v: &Value) -> Result<Vec<u8>, IpcError> {
    let mut buf = BytesMut::new();
    AdvancedCodec::new().encode(v, &mut buf)?;
    Ok(buf[4..].to_vec())
}

fn decode(payload: &[u8]) -> Result<Value, IpcError> {
    let mut buf = BytesMut::from(&(payload.len() as u32).to_be_bytes()[..]);
    buf.extend_from_slice(payload);
    Ok(AdvancedCodec::new()
        .decode(&mut buf)?
        .expect("a whole frame"))
}

fn typed(kind: TypedArrayKind, bytes: &[u8]) -> Value {
    Value::TypedArray(TypedArray::new(kind, bytes.to_vec()).unwrap())
}

fn boxed(v: Value) -> Value {
    Value::Boxed(Box::new(v))
}

fn n(x: f64) -> Value {
    Value::Number(x)
}

/// `node -e 'v8.serialize(x)'` for each, with the `5c` host objects as Node's child_process
/// serializer frames them (a `00` "view" kind after the tag). Decoding gives the value and
/// encoding it gives Node's bytes back.
#[test]
fn node_bytes_both_ways() {
    let sparse = |length, elements: Vec<(u32, Value)>| {
        Value::from(SparseArray {
            length,
            elements,
            properties: vec![],
        })
    };
    let one = Value::object([("x", n(1.0))]);
    let cases: Vec<(&str, Value)> = vec![
        // new Uint8Array([1, 2]), Int16Array([1, -1]), Float64Array([1.5]), BigInt64Array([5n])
        (
            "ff 0f 5c 00 01 02 01 02",
            typed(TypedArrayKind::Uint8, &[1, 2]),
        ),
        (
            "ff 0f 5c 00 03 04 01 00 ff ff",
            typed(TypedArrayKind::Int16, &[1, 0, 255, 255]),
        ),
        (
            "ff 0f 5c 00 08 08 00 00 00 00 00 00 f8 3f",
            Value::from(TypedArray::from_slice(&[1.5f64])),
        ),
        (
            "ff 0f 5c 00 0b 08 05 00 00 00 00 00 00 00",
            Value::from(TypedArray::from_slice(&[5i64])),
        ),
        (
            "ff 0f 5c 00 0c 08 ff ff ff ff ff ff ff ff",
            Value::from(TypedArray::from_slice(&[u64::MAX])),
        ),
        (
            "ff 0f 5c 00 02 01 ff",
            typed(TypedArrayKind::Uint8Clamped, &[255]),
        ),
        // new DataView(new ArrayBuffer(2)), Buffer.from([1, 2])
        ("ff 0f 5c 00 09 02 00 00", Value::DataView(vec![0, 0])),
        ("ff 0f 5c 00 0a 02 01 02", Value::Bytes(vec![1, 2])),
        // new ArrayBuffer(2), new ArrayBuffer(2, { maxByteLength: 8 })
        (
            "ff 0f 42 02 00 00",
            Value::ArrayBuffer(ArrayBuffer::from(vec![0, 0])),
        ),
        (
            "ff 0f 7e 02 08 00 00",
            Value::ArrayBuffer(ArrayBuffer {
                bytes: vec![0, 0],
                max_byte_length: Some(8),
            }),
        ),
        // new Number(1.5), new String('s'), new Boolean(true), new Boolean(false), Object(5n)
        ("ff 0f 6e 00 00 00 00 00 00 f8 3f", boxed(n(1.5))),
        ("ff 0f 73 22 01 73", boxed(Value::from("s"))),
        ("ff 0f 79", boxed(Value::Bool(true))),
        ("ff 0f 78", boxed(Value::Bool(false))),
        (
            "ff 0f 7a 10 05 00 00 00 00 00 00 00",
            boxed(Value::BigInt("5".into())),
        ),
        // e = new Error('m', { cause: 42 }); e.stack = 'S'
        (
            "ff 0f 72 6d 22 01 6d 63 49 54 73 22 01 53 2e",
            Value::from(JsError {
                name: "Error".into(),
                message: "m".into(),
                stack: Some("S".into()),
                cause: Some(n(42.0)),
            }),
        ),
        // o = { x: 1 }; { a: o, b: o }
        (
            "ff 0f 6f 22 01 61 6f 22 01 78 49 02 7b 01 22 01 62 5e 01 7b 02",
            Value::object([("a", Value::shared(1, one.clone())), ("b", Value::Ref(1))]),
        ),
        // c = {}; c.self = c
        (
            "ff 0f 6f 22 04 73 65 6c 66 5e 00 7b 01",
            Value::shared(0, Value::object([("self", Value::Ref(0))])),
        ),
        // a = []; a[5] = 1   and   [1, , 3]
        (
            "ff 0f 61 06 49 0a 49 02 40 01 06",
            sparse(6, vec![(5, n(1.0))]),
        ),
        (
            "ff 0f 61 03 49 00 49 02 49 04 49 06 40 02 03",
            sparse(3, vec![(0, n(1.0)), (2, n(3.0))]),
        ),
        // a = []; a[2 ** 31 + 5] = 1: the index as a double
        (
            "ff 0f 61 86 80 80 80 08 4e 00 00 a0 00 00 00 e0 41 49 02 40 01 86 80 80 80 08",
            sparse(2_147_483_654, vec![(2_147_483_653, n(1.0))]),
        ),
        // a = []; a[1e9] = 1: 23 bytes, one element
        (
            "ff 0f 61 81 94 eb dc 03 49 80 a8 d6 b9 07 49 02 40 01 81 94 eb dc 03",
            sparse(1_000_000_001, vec![(1_000_000_000, n(1.0))]),
        ),
        // t = new Uint8Array([7]); [t, t]   and   ab = new ArrayBuffer(1); [ab, ab]
        (
            "ff 0f 41 02 5c 00 01 01 07 5e 01 24 00 02",
            Value::Array(vec![
                Value::shared(1, typed(TypedArrayKind::Uint8, &[7])),
                Value::Ref(1),
            ]),
        ),
        (
            "ff 0f 41 02 42 01 00 5e 01 24 00 02",
            Value::Array(vec![
                Value::shared(1, Value::ArrayBuffer(ArrayBuffer::from(vec![0]))),
                Value::Ref(1),
            ]),
        ),
        // n = new Number(3); [n, n]
        (
            "ff 0f 41 02 6e 00 00 00 00 00 00 08 40 5e 01 24 00 02",
            Value::Array(vec![Value::shared(1, boxed(n(3.0))), Value::Ref(1)]),
        ),
        // m = new Map(); m.set(m, m)
        (
            "ff 0f 3b 5e 00 5e 00 3a 02",
            Value::shared(0, Value::Map(vec![(Value::Ref(0), Value::Ref(0))])),
        ),
        // s = [1]; s.push(s)
        (
            "ff 0f 41 02 49 02 5e 00 24 00 02",
            Value::shared(0, Value::Array(vec![n(1.0), Value::Ref(0)])),
        ),
    ];
    for (bytes, value) in cases {
        let bytes = hex(bytes);
        let got = decode(&bytes).unwrap_or_else(|e| panic!("{bytes:x?}: {e}"));
        assert!(same(&got, &value), "{bytes:x?}: {got:?} != {value:?}");
        assert_eq!(encode(&value).unwrap(), bytes, "{value:?}");
    }
}

/// Object numbers count every object, shared or not, depth first; ids chosen by the sender
/// of a `Value` are only names.
#[test]
fn ids_are_names_and_numbers_count_every_object() {
    let point = Value::object([("x", n(1.0))]);
    let sent = Value::object([
        (
            "list",
            Value::Array(vec![Value::Date(0.0), Value::Bytes(vec![1])]),
        ),
        ("p", Value::shared(77, point.clone())),
        ("q", Value::Ref(77)),
        (
            "cyclic",
            Value::shared(5, Value::Set(vec![Value::Ref(5), Value::Ref(77)])),
        ),
    ]);
    let wire = encode(&sent).unwrap();
    let got = decode(&wire).unwrap();
    // Objects: the outer object 0, the array 1, the date 2, the buffer 3, the point 4, the set 5.
    let want = Value::object([
        (
            "list",
            Value::Array(vec![Value::Date(0.0), Value::Bytes(vec![1])]),
        ),
        ("p", Value::shared(4, point)),
        ("q", Value::Ref(4)),
        (
            "cyclic",
            Value::shared(5, Value::Set(vec![Value::Ref(5), Value::Ref(4)])),
        ),
    ]);
    assert!(same(&got, &want), "{got:?}");
    assert_eq!(encode(&got).unwrap(), wire);
}

#[test]
fn identity_that_cannot_be_written_is_refused() {
    let refused = [
        (Value::Ref(0), "names no Value::Shared"),
        (
            Value::Array(vec![Value::Ref(1), Value::shared(1, Value::Array(vec![]))]),
            "names no Value::Shared",
        ),
        (
            Value::Array(vec![
                Value::shared(1, Value::Array(vec![])),
                Value::shared(1, Value::Set(vec![])),
            ]),
            "id 1 appears twice",
        ),
        (
            Value::Array(vec![Value::shared(2, n(1.0))]),
            "around Number",
        ),
        (
            Value::Array(vec![Value::shared(
                2,
                Value::shared(3, Value::Array(vec![])),
            )]),
            "around Shared",
        ),
        (
            Value::Array(vec![boxed(Value::Null)]),
            "Boxed around a Null",
        ),
        (
            Value::from(SparseArray {
                length: 3,
                elements: vec![(2, n(1.0)), (1, n(1.0))],
                properties: vec![],
            }),
            "element index 1",
        ),
        (
            Value::from(SparseArray {
                length: 3,
                elements: vec![(3, n(1.0))],
                properties: vec![],
            }),
            "element index 3",
        ),
        (
            Value::from(SparseArray {
                length: 3,
                elements: vec![],
                properties: vec![("2".into(), n(1.0))],
            }),
            "a property named \"2\"",
        ),
        (
            Value::ArrayBuffer(ArrayBuffer {
                bytes: vec![0; 4],
                max_byte_length: Some(2),
            }),
            "max_byte_length 2",
        ),
    ];
    for (v, want) in refused {
        let mut buf = BytesMut::from(&b"x"[..]);
        match AdvancedCodec::new().encode(&v, &mut buf) {
            Err(IpcError::Unsupported { what }) => assert!(what.contains(want), "{v:?}: {what}"),
            other => panic!("{v:?}: {other:?}"),
        }
        assert_eq!(&buf[..], b"x");
    }
}

/// A hostile frame cannot expand: references are leaves and holes cost nothing, so the
/// value takes memory in proportion to the frame.
#[test]
fn references_and_holes_do_not_expand() {
    // a_k = [a_(k-1), a_(k-1)] 40 times: 2^40 leaves as copies; here 81 nodes.
    let mut explode = hex("ff 0f 41 29 41 02 30 30 24 00 02");
    for id in 1..=40u8 {
        explode.extend([0x41, 0x02, 0x5e, id, 0x5e, id, 0x24, 0x00, 0x02]);
    }
    explode.extend([0x24, 0x00, 0x29]);
    let Value::Array(items) = decode(&explode).unwrap() else {
        panic!()
    };
    assert_eq!(items.len(), 41);
    assert!(matches!(&items[40], Value::Array(pair) if pair == &[Value::Ref(40), Value::Ref(40)]));
    // The longest array there is: no element, length 2^32 - 2.
    let got = decode(&hex("ff 0f 61 fe ff ff ff 0f 40 00 fe ff ff ff 0f")).unwrap();
    let Value::SparseArray(a) = &got else {
        panic!("{got:?}")
    };
    assert!(a.length == u32::MAX - 1 && a.elements.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every kind and identity: encoding then decoding gives the value (ids renumbered).
    #[test]
    fn every_clone_value_round_trips(v in arb_clone_value()) {
        let v = super::tests::v8_form(v);
        let wire = encode(&v).unwrap();
        let back = decode(&wire).unwrap();
        let want = renumbered(&v);
        prop_assert!(same(&back, &want), "{:?}\n!=\n{:?}", back, want);
        // And the decoded value writes the same bytes.
        prop_assert_eq!(encode(&back).unwrap(), wire);
    }
}
