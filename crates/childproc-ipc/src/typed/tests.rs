//! Typed encoding equals the `Value` encoding byte for byte, for every codec.

use std::collections::BTreeMap;

use bytes::BytesMut;
use serde::{Deserialize, Serialize, Serializer};
use tokio_util::codec::Encoder;

use super::TypedCodec;
use crate::{to_value, Serialization};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Unit,
    Newtype(u32),
    Tuple(i8, String),
    Struct { a: Option<f64>, b: Vec<u16> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    level: i32,
    ratio: f64,
    small: f32,
    name: String,
    tags: Vec<String>,
    parent: Option<Box<Record>>,
    kind: Kind,
    attrs: BTreeMap<String, i64>,
    by_number: BTreeMap<u32, bool>,
    pair: (char, ()),
}

fn record(id: u64, ratio: f64, name: &str) -> Record {
    Record {
        id,
        level: -3,
        ratio,
        small: 0.1,
        name: name.into(),
        tags: vec!["a\"b\\c\n\t\u{1}\u{7f}\u{2028}".into(), "é€😀".into()],
        parent: Some(Box::new(Record {
            id: 1,
            level: 0,
            ratio: -0.0,
            small: f32::MAX,
            name: String::new(),
            tags: vec![],
            parent: None,
            kind: Kind::Unit,
            attrs: BTreeMap::new(),
            by_number: BTreeMap::new(),
            pair: ('x', ()),
        })),
        kind: Kind::Struct {
            a: Some(1.0),
            b: (0..20).collect(),
        },
        attrs: (0..17).map(|i| (format!("k{i}"), i64::MIN + i)).collect(),
        by_number: [(7, true), (u32::MAX, false)].into(),
        pair: ('é', ()),
    }
}

struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

fn both<T: Serialize>(message: &T) {
    for mode in ["json", "json-length", "msgpack", "advanced"] {
        let mode: Serialization = mode.parse().unwrap();
        let mut typed = BytesMut::new();
        let mut via_value = BytesMut::new();
        let typed_result = mode.codec().unwrap().encode_typed(message, &mut typed);
        let value_result =
            to_value(message).and_then(|v| mode.codec().unwrap().encode(v, &mut via_value));
        assert_eq!(
            typed_result.is_ok(),
            value_result.is_ok(),
            "{mode}: {typed_result:?} vs {value_result:?}"
        );
        assert_eq!(typed, via_value, "{mode}");
    }
}

#[test]
fn typed_bytes_equal_value_bytes() {
    for (id, ratio) in [
        (0, 0.5),
        ((1 << 53) + 1, 1e21),
        (u64::MAX, f64::NAN),
        (42, f64::INFINITY),
        (7, 1e-7),
        (9, 123456789012345680000.0),
    ] {
        both(&record(id, ratio, "x"));
    }
    both(&record(1, 2.0, &"long".repeat(100)));
    both(&record(1, 2.0, &"z".repeat(70_000)));
    both(&vec![0u8; 70_000]);
    both(&Raw(&[1, 2, 255]));
    both(&(i128::MIN, u128::MAX, -0.0f64, 0.1f32, f32::NAN, 1.0f64));
    both(&Kind::Newtype(3));
    both(&Kind::Tuple(-1, "t".into()));
    both(&"plain");
    both(&());
    let big_map: BTreeMap<String, u8> = (0..70_000).map(|i| (i.to_string(), 1)).collect();
    both(&big_map);
    // What JSON cannot hold is refused both ways.
    let bad: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
    both(&bad);
}

#[test]
fn typed_decoding_reads_what_typed_encoding_wrote() {
    let mut rec = record(12, 0.25, "é");
    // Integers beyond 2^53 do not come back as JavaScript numbers (as through a Value).
    rec.attrs = (0..17).map(|i| (format!("k{i}"), -i)).collect();
    rec.by_number = [(7, true)].into();
    for mode in ["json", "json-length", "msgpack", "advanced"] {
        let mode: Serialization = mode.parse().unwrap();
        let mut codec = mode.codec().unwrap();
        let mut buf = BytesMut::new();
        codec.encode_typed(&rec, &mut buf).unwrap();
        let mut expected = rec.clone();
        // -0.0 is 0 in JSON, and f32 0.1 comes back as 0.1.
        if let Some(p) = &mut expected.parent {
            if mode != Serialization::MsgPack {
                p.ratio = 0.0;
            }
        }
        let back: Record = codec.decode_typed(&mut buf).unwrap().unwrap();
        assert_eq!(back, expected, "{mode}");
        assert!(buf.is_empty());
        // A frame that is not a `Record` is an error, as through a Value.
        codec.encode_typed(&"text", &mut buf).unwrap();
        assert!(codec.decode_typed::<Record>(&mut buf).is_err(), "{mode}");
    }
}

#[test]
fn typed_decoding_falls_back_to_the_value_path() {
    // A lone surrogate escape (JSON.stringify writes them) and a repeated key.
    let mut codec = Serialization::Json.codec().unwrap();
    let mut buf = BytesMut::from(&b"\"\\ud800\"\n{\"n\":1,\"n\":2}\n"[..]);
    assert_eq!(
        codec.decode_typed::<String>(&mut buf).unwrap().unwrap(),
        "\u{fffd}"
    );
    #[derive(Deserialize, Debug, PartialEq)]
    struct N {
        n: u8,
    }
    assert_eq!(codec.decode_typed::<N>(&mut buf).unwrap(), Some(N { n: 2 }));
    // An integral float where an integer is expected (a Value sender's 2^60): read as
    // from_value reads it, through its JavaScript text.
    let mut codec = Serialization::MsgPack.codec().unwrap();
    let mut buf = BytesMut::new();
    codec
        .encode(crate::Value::Number(2f64.powi(60)), &mut buf)
        .unwrap();
    assert_eq!(
        codec.decode_typed::<u64>(&mut buf).unwrap(),
        Some(1152921504606847000)
    );
}

mod generated {
    use proptest::prelude::*;

    use super::*;

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::Unit),
            any::<u32>().prop_map(Kind::Newtype),
            (any::<i8>(), "\\PC{0,8}").prop_map(|(a, b)| Kind::Tuple(a, b)),
            (
                proptest::option::of(any::<f64>()),
                proptest::collection::vec(any::<u16>(), 0..6)
            )
                .prop_map(|(a, b)| Kind::Struct { a, b }),
        ]
    }

    fn records() -> impl Strategy<Value = Record> {
        let leaf = (
            (any::<u64>(), any::<i32>(), any::<f64>(), any::<f32>()),
            (
                "(?s).{0,16}",
                proptest::collection::vec("\\PC{0,6}", 0..4),
                kind(),
            ),
            (
                proptest::collection::btree_map("[a-z]{1,4}", any::<i64>(), 0..4),
                proptest::collection::btree_map(any::<u32>(), any::<bool>(), 0..3),
                any::<char>(),
            ),
        )
            .prop_map(
                |((id, level, ratio, small), (name, tags, kind), (attrs, by_number, c))| Record {
                    id,
                    level,
                    ratio,
                    small,
                    name,
                    tags,
                    parent: None,
                    kind,
                    attrs,
                    by_number,
                    pair: (c, ()),
                },
            );
        leaf.prop_recursive(3, 6, 1, |inner| {
            (inner.clone(), inner).prop_map(|(mut outer, parent)| {
                outer.parent = Some(Box::new(parent));
                outer
            })
        })
    }

    proptest! {
        /// Any record, in every serialization: the typed bytes are the `Value` path's bytes,
        /// and typed decoding reads back what the `Value` path reads.
        #[test]
        fn typed_encoding_is_the_value_encoding(r in records()) {
            both(&r);
            for mode in ["json", "json-length", "msgpack", "advanced"] {
                let mode: Serialization = mode.parse().unwrap();
                let mut wire = BytesMut::new();
                mode.codec().unwrap().encode_typed(&r, &mut wire).unwrap();
                let mut copy = wire.clone();
                let typed: Option<Record> = mode.codec().unwrap().decode_typed(&mut wire).unwrap();
                let value = tokio_util::codec::Decoder::decode(&mut mode.codec().unwrap(), &mut copy)
                    .unwrap()
                    .unwrap();
                let via_value: Record = crate::from_value(&value).unwrap();
                prop_assert_eq!(format!("{typed:?}"), format!("{:?}", Some(via_value)));
            }
        }
    }
}
