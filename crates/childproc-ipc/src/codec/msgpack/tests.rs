//! MessagePack: the documented bytes, other writers' forms, bad input, round trips.

use super::*;
use crate::test_support::{arb_value, check_roundtrip, chunked, decode_stream, same};
use proptest::prelude::*;

fn payload(v: &Value) -> Vec<u8> {
    let mut buf = BytesMut::new();
    MsgPackCodec::new().encode(v, &mut buf).unwrap();
    let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
    assert_eq!(len, buf.len() - 4);
    buf[4..].to_vec()
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn decode_one(payload: &[u8]) -> Result<Value> {
    let (mut values, err) = decode_stream(&mut MsgPackCodec::new(), &[&frame(payload)]);
    match err {
        Some(e) => Err(e),
        None => Ok(values.remove(0)),
    }
}

#[test]
fn documented_bytes() {
    let cases: Vec<(Value, Vec<u8>)> = vec![
        (Value::Null, vec![0xc0]),
        (Value::Bool(true), vec![0xc3]),
        (Value::from(1), vec![0x01]),
        (Value::from(-1), vec![0xff]),
        (Value::Number(300.0), vec![0xcd, 0x01, 0x2c]),
        (
            Value::Number(1.5),
            [&[0xcb][..], &1.5f64.to_be_bytes()].concat(),
        ),
        (
            Value::Number(-0.0),
            [&[0xcb][..], &(-0.0f64).to_be_bytes()].concat(),
        ),
        (
            Value::Number(MAX_SAFE * 2.0),
            [&[0xcb][..], &(MAX_SAFE * 2.0).to_be_bytes()].concat(),
        ),
        (Value::from("hi"), vec![0xa2, b'h', b'i']),
        (Value::Bytes(vec![1, 2]), vec![0xc4, 2, 1, 2]),
        (Value::Array(vec![Value::Null]), vec![0x91, 0xc0]),
        (
            Value::object([("a", Value::Null)]),
            vec![0x81, 0xa1, b'a', 0xc0],
        ),
        (Value::Undefined, vec![0xc7, 0, 1]),
        (
            Value::BigInt("-12".into()),
            vec![0xc7, 3, 2, b'-', b'1', b'2'],
        ),
        (
            Value::Map(vec![(Value::from(1), Value::Null)]),
            vec![0xc9, 0, 0, 0, 3, 3, 0x81, 0x01, 0xc0],
        ),
        (Value::Set(vec![]), vec![0xc9, 0, 0, 0, 1, 4, 0x90]),
        (Value::Date(0.0), vec![0xd7, 5, 0, 0, 0, 0, 0, 0, 0, 0]),
        (
            Value::RegExp {
                source: "a".into(),
                flags: "g".into(),
            },
            vec![0xc9, 0, 0, 0, 5, 6, 0x92, 0xa1, b'a', 0xa1, b'g'],
        ),
        (
            Value::error("E", ""),
            vec![0xc9, 0, 0, 0, 5, 7, 0x93, 0xa1, b'E', 0xa0, 0xc0],
        ),
    ];
    for (value, bytes) in cases {
        assert_eq!(payload(&value), bytes, "{value:?}");
        assert!(same(&decode_one(&bytes).unwrap(), &value), "{value:?}");
    }
}

#[test]
fn reads_other_writers_forms() {
    // float 32, int 64, u64 beyond 2^53, a map with an int key, timestamps.
    assert_eq!(
        decode_one(&[0xca, 0x3f, 0xc0, 0, 0]).unwrap(),
        Value::Number(1.5)
    );
    assert_eq!(
        decode_one(&[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]).unwrap(),
        Value::from(-2)
    );
    assert_eq!(
        decode_one(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap(),
        Value::Number(18446744073709551615.0)
    );
    assert_eq!(
        decode_one(&[0x81, 0x01, 0xc0]).unwrap(),
        Value::Map(vec![(Value::from(1), Value::Null)])
    );
    assert_eq!(
        decode_one(&[0xd6, 0xff, 0, 0, 0, 2]).unwrap(),
        Value::Date(2000.0)
    );
    let ts64 = ((5_000_000u64) << 34) | 1;
    assert_eq!(
        decode_one(&[&[0xd7, 0xff][..], &ts64.to_be_bytes()].concat()).unwrap(),
        Value::Date(1005.0)
    );
    let mut ts96 = vec![0xc7, 12, 0xff];
    ts96.extend(0u32.to_be_bytes());
    ts96.extend((-1i64).to_be_bytes());
    assert_eq!(decode_one(&ts96).unwrap(), Value::Date(-1000.0));
}

#[test]
fn decode_errors() {
    let malformed: &[(&[u8], &str)] = &[
        (&[], "empty frame"),
        (&[0xc1], "reserved"),
        (&[0xc0, 0xc0], "1 trailing bytes"),
        (&[0x92, 0xc0], "ends early"),
        (&[0xdd, 0xff, 0xff, 0xff, 0xff], "ends early"),
        (&[0xd4, 99, 0], "unknown MessagePack extension type 99"),
        (&[0xd4, 1, 0], "undefined has no payload"),
        (&[0xc7, 2, 2, b'0', b'1'], "not canonical"),
        (&[0xc7, 2, 2, b'-', b'0'], "not canonical"),
        (&[0xc7, 1, 2, b'x'], "not canonical"),
        (&[0xd4, 5, 0], "not 8 bytes"),
        (&[0xc7, 1, 3, 0xc0], "not a map or array"),
        (&[0xc7, 2, 3, 0x80, 0xc0], "trailing bytes"),
        (&[0xc7, 1, 3, 0x81], "ends early"),
        (
            &[0xc7, 3, 6, 0x92, 0xa0, 0xc0],
            "expected a str (RegExp flags)",
        ),
        (&[0xc7, 2, 7, 0x91, 0xa0], "not an array of 3"),
    ];
    for (bytes, reason) in malformed {
        match decode_one(bytes) {
            Err(IpcError::Malformed { reason: r }) => {
                assert!(r.contains(reason), "{bytes:x?}: {r}")
            }
            other => panic!("{bytes:x?}: {other:?}"),
        }
    }
    assert!(matches!(
        decode_one(&[0x91, 0xa2, b'a', 0xff]),
        Err(IpcError::InvalidUtf8 { offset: 3 })
    ));
    let deep = [vec![0x91; Value::MAX_DEPTH + 1], vec![0xc0]].concat();
    assert!(
        matches!(decode_one(&deep), Err(IpcError::Malformed { reason }) if reason.contains("nesting"))
    );
    let ok = [vec![0x91; Value::MAX_DEPTH], vec![0xc0]].concat();
    assert!(decode_one(&ok).is_ok());

    let mut codec = MsgPackCodec::with_max_frame(2);
    let mut buf = BytesMut::from(&[0, 0, 0, 3][..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(IpcError::FrameTooLarge { len: 3, max: 2 })
    ));
    let (_, err) = decode_stream(&mut MsgPackCodec::new(), &[&[0, 0, 0, 2, 0x91]]);
    assert!(matches!(err, Some(IpcError::Truncated { buffered: 5 })));
}

#[test]
fn encode_errors_leave_the_buffer_alone() {
    let mut buf = BytesMut::from(&b"x"[..]);
    for digits in ["", "+1", "01", "-0", "1e3", " 1"] {
        assert!(matches!(
            MsgPackCodec::new().encode(Value::BigInt(digits.into()), &mut buf),
            Err(IpcError::Unsupported { .. })
        ));
    }
    assert!(matches!(
        MsgPackCodec::with_max_frame(2).encode(Value::from("ab"), &mut buf),
        Err(IpcError::FrameTooLarge { len: 3, max: 2 })
    ));
    let mut deep = Value::Null;
    for _ in 0..=Value::MAX_DEPTH {
        deep = Value::Set(vec![deep]);
    }
    assert!(matches!(
        MsgPackCodec::new().encode(&deep, &mut buf),
        Err(IpcError::Unsupported { .. })
    ));
    assert_eq!(&buf[..], b"x");
}

/// Values nested [`Value::MAX_DEPTH`] deep, every container kind, encode and decode in
/// less than the 2 MiB stack a std or tokio worker thread has, even in a debug build
/// (measured: about 3.5 KiB a level unoptimized, under 1 KiB optimized).
#[test]
fn max_depth_fits_in_a_small_stack() {
    let run = || {
        let kinds: [fn(Value) -> Value; 4] = [
            |v| Value::Array(vec![v]),
            |v| Value::object([("k", v)]),
            |v| Value::Map(vec![(Value::Null, v)]),
            |v| Value::Set(vec![v]),
        ];
        for (i, _) in kinds.iter().enumerate() {
            let mut v = Value::Null;
            for level in 0..Value::MAX_DEPTH {
                v = kinds[(i + level) % 4](v);
            }
            let mut buf = BytesMut::new();
            MsgPackCodec::new().encode(&v, &mut buf).unwrap();
            let back = MsgPackCodec::new().decode(&mut buf).unwrap().unwrap();
            assert!(same(&back, &v));
            let text = crate::json::stringify(&v).unwrap();
            crate::json::parse(text.as_bytes()).unwrap();
        }
    };
    std::thread::Builder::new()
        .stack_size(1536 * 1024)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

proptest! {
    #[test]
    fn roundtrip_every_value(values in proptest::collection::vec(arb_value(), 1..4), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        check_roundtrip(MsgPackCodec::new, &values, &cuts)?;
    }

    #[test]
    fn chunking_does_not_matter(
        bytes in proptest::collection::vec(
            prop_oneof![Just(0u8), Just(1), Just(2), Just(3), Just(0x91), Just(0xc0), Just(0xc7), Just(0xc9), any::<u8>()],
            0..200),
        cuts in proptest::collection::vec(0usize..200, 0..10),
        max in 0usize..40,
    ) {
        let whole = decode_stream(&mut MsgPackCodec::with_max_frame(max), &[&bytes[..]]);
        let split = decode_stream(&mut MsgPackCodec::with_max_frame(max), &chunked(&bytes, &cuts));
        prop_assert!(whole.0.len() == split.0.len() && whole.0.iter().zip(&split.0).all(|(a, b)| same(a, b)));
        prop_assert_eq!(
            whole.1.as_ref().map(std::mem::discriminant),
            split.1.as_ref().map(std::mem::discriminant)
        );
    }

    #[test]
    fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_one(&payload);
    }
}
