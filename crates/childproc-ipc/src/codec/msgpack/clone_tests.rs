//! The structured-clone kinds in MessagePack: exact bytes for each extension, round trips
//! of the whole model with identity, and frames that break its rules.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::MsgPackCodec;
use crate::test_support::{arb_clone_value, check_roundtrip, same};
use crate::value::{ArrayBuffer, JsError, SparseArray, TypedArray, TypedArrayKind};
use crate::{IpcError, Value};

fn encode(v: &Value) -> Result<Vec<u8>, IpcError> {
    let mut buf = BytesMut::new();
    MsgPackCodec::new().encode(v, &mut buf)?;
    Ok(buf[4..].to_vec())
}

fn decode(payload: &[u8]) -> Result<Value, IpcError> {
    let mut buf = BytesMut::from(&(payload.len() as u32).to_be_bytes()[..]);
    buf.extend_from_slice(payload);
    Ok(MsgPackCodec::new()
        .decode(&mut buf)?
        .expect("a whole frame"))
}

fn ext32(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0xc9];
    out.extend((payload.len() as u32).to_be_bytes());
    out.push(ty);
    out.extend(payload);
    out
}

#[test]
fn each_extension_byte_for_byte() {
    let cases: Vec<(Value, Vec<u8>)> = vec![
        (
            Value::from(TypedArray::from_slice(&[1i16, -1])),
            vec![0xc7, 5, 8, 3, 1, 0, 0xff, 0xff],
        ),
        (
            Value::from(TypedArray::from_slice::<f64>(&[])),
            vec![0xd4, 8, 8],
        ),
        (Value::DataView(vec![7]), vec![0xd4, 9, 7]),
        (
            Value::ArrayBuffer(ArrayBuffer::from(vec![1, 2])),
            vec![0xd5, 10, 1, 2],
        ),
        (
            Value::ArrayBuffer(ArrayBuffer {
                bytes: vec![],
                max_byte_length: Some(16),
            }),
            vec![0xd6, 11, 0, 0, 0, 16],
        ),
        (
            Value::Boxed(Box::new(Value::Bool(true))),
            ext32(12, &[0xc3]),
        ),
        (
            Value::from(SparseArray {
                length: 5,
                elements: vec![(3, Value::Null)],
                properties: vec![("p".into(), Value::from(1))],
            }),
            ext32(13, &[0x93, 5, 0x92, 3, 0xc0, 0x81, 0xa1, b'p', 1]),
        ),
        (
            Value::from(JsError {
                name: "E".into(),
                message: "".into(),
                stack: None,
                cause: Some(Value::from(1)),
            }),
            ext32(7, &[0x94, 0xa1, b'E', 0xa0, 0xc0, 1]),
        ),
        (
            Value::shared(9, Value::Array(vec![Value::Ref(9)])),
            ext32(14, &[0, 0, 0, 9, 0x91, 0xd6, 15, 0, 0, 0, 9]),
        ),
    ];
    for (value, bytes) in cases {
        assert_eq!(encode(&value).unwrap(), bytes, "{value:?}");
        let back = decode(&bytes).unwrap();
        assert!(same(&back, &value), "{back:?}");
    }
    // The 3-element Error of earlier versions still reads.
    let old = ext32(7, &[0x93, 0xa1, b'E', 0xa0, 0xc0]);
    assert_eq!(decode(&old).unwrap(), Value::error("E", ""));
}

#[test]
fn frames_that_break_the_rules_are_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xd6, 15, 0, 0, 0, 1], "reference to id 1 comes before"),
        (
            [
                vec![0x92],
                ext32(14, &[0, 0, 0, 1, 0x90]),
                ext32(14, &[0, 0, 0, 1, 0x90]),
            ]
            .concat(),
            "shared id 1 appears twice",
        ),
        (ext32(14, &[0, 0, 0, 1, 1]), "around a Number"),
        (
            ext32(12, &[0x90]),
            "not a boolean, number, string or BigInt",
        ),
        (vec![0xd6, 8, 8, 0, 0, 0], "not a whole number of elements"),
        (vec![0xd5, 8, 11, 0], "unknown element type"),
        (vec![0xd5, 11, 0, 0], "shorter than its maximum"),
        (vec![0xc7, 5, 11, 0, 0, 0, 0, 5], "longer than its maximum"),
        (
            ext32(13, &[0x93, 2, 0x92, 5, 0xc0, 0x80]),
            "element index 5",
        ),
        (
            ext32(13, &[0x93, 2, 0x90, 0x81, 0xa1, b'1', 0xc0]),
            "property named \"1\"",
        ),
        (ext32(13, &[0x93, 2, 0x91, 0xc0, 0x80]), "odd element array"),
        (
            ext32(7, &[0x95, 0xa0, 0xa0, 0xc0, 1, 1]),
            "not an array of 3 or 4",
        ),
    ];
    for (bytes, want) in cases {
        match decode(&bytes) {
            Err(IpcError::Malformed { reason }) => {
                assert!(
                    reason.contains(want),
                    "{bytes:x?}: {reason:?} lacks {want:?}"
                )
            }
            other => panic!("{bytes:x?}: expected Malformed, got {other:?}"),
        }
    }
    // Extensions inside extensions count as levels: a long chain is refused, not a stack
    // overflow.
    let mut chain = vec![0xc0];
    for _ in 0..10_000 {
        chain = ext32(14, &[[0, 0, 0, 1].as_slice(), &chain].concat());
    }
    assert!(
        matches!(decode(&chain), Err(IpcError::Malformed { reason }) if reason.contains("nesting deeper"))
    );
    let mut boxes = vec![0xc3];
    for _ in 0..10_000 {
        boxes = ext32(12, &boxes);
    }
    assert!(
        matches!(decode(&boxes), Err(IpcError::Malformed { reason }) if reason.contains("nesting deeper"))
    );
}

#[test]
fn identity_that_cannot_be_written_is_refused() {
    for (v, want) in [
        (Value::Ref(3), "names no Value::Shared"),
        (
            Value::Array(vec![Value::shared(1, Value::from(1))]),
            "around Number",
        ),
        (
            Value::Array(vec![
                Value::shared(1, Value::Array(vec![])),
                Value::shared(1, Value::Array(vec![])),
            ]),
            "appears twice",
        ),
        (Value::Boxed(Box::new(Value::Null)), "around a Null"),
        (
            Value::TypedArray(TypedArray::new(TypedArrayKind::Int8, vec![]).unwrap()).clone(),
            "",
        ),
    ] {
        let mut buf = BytesMut::from(&b"x"[..]);
        let result = MsgPackCodec::new().encode(&v, &mut buf);
        if want.is_empty() {
            assert!(result.is_ok());
            continue;
        }
        match result {
            Err(IpcError::Unsupported { what }) => assert!(what.contains(want), "{what}"),
            other => panic!("{v:?}: {other:?}"),
        }
        assert_eq!(&buf[..], b"x");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The whole model, identity included, comes back exactly: MessagePack keeps the ids.
    #[test]
    fn every_clone_value_round_trips(
        values in proptest::collection::vec(arb_clone_value(), 1..3),
        cuts in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        check_roundtrip(MsgPackCodec::new, &values, &cuts)?;
    }
}

/// The new containers nested as deep as allowed, in every binary codec, and hostile chains
/// of extensions, all within a stack smaller than a thread's default.
#[test]
fn max_depth_fits_in_a_small_stack() {
    use crate::AdvancedCodec;
    let run = || {
        let kinds: [fn(Value, u32) -> Value; 4] = [
            |v, _| {
                Value::from(SparseArray {
                    length: 9,
                    elements: vec![(4, v)],
                    properties: vec![],
                })
            },
            |v, _| {
                Value::from(JsError {
                    name: "E".into(),
                    message: String::new(),
                    stack: None,
                    cause: Some(v),
                })
            },
            |v, id| Value::shared(id, Value::Array(vec![v, Value::Ref(id)])),
            |v, _| Value::Map(vec![(Value::Boxed(Box::new(Value::from(1))), v)]),
        ];
        for (i, _) in kinds.iter().enumerate() {
            let mut v = Value::Null;
            // A Shared is a level of its own in MessagePack: stay within the limit there.
            for level in 0..Value::MAX_DEPTH / 2 - 1 {
                v = kinds[(i + level) % 4](v, level as u32);
            }
            let back = decode(&encode(&v).unwrap()).unwrap();
            assert!(same(&back, &v));
            let mut buf = BytesMut::new();
            AdvancedCodec::new().encode(&v, &mut buf).unwrap();
            AdvancedCodec::new().decode(&mut buf).unwrap().unwrap();
        }
        let mut chain = vec![0xc0];
        for _ in 0..2_000 {
            chain = ext32(14, &[[0, 0, 0, 1].as_slice(), &chain].concat());
        }
        assert!(decode(&chain).is_err());
    };
    std::thread::Builder::new()
        .stack_size(1536 * 1024)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}
