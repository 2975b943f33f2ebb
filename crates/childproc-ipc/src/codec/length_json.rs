//! [`LengthJsonCodec`]: JSON payloads behind a u32 big-endian length prefix.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::frame;
use crate::{json, IpcError, Value};

/// Length-delimited JSON: `u32 big-endian N ‖ N bytes of JSON text`.
///
/// The JSON mapping is the one of [`json`](crate::json) (`JSON.stringify`/`JSON.parse`),
/// so this codec carries the same values as [`NodeJsonCodec`](crate::NodeJsonCodec) but
/// without line splitting: the payload may contain any JSON whitespace, LF included. It is
/// for Rust↔Rust channels; Node itself does not speak it.
///
/// Errors: a declared length over the limit is [`IpcError::FrameTooLarge`] as soon as the
/// 4-byte prefix is read (nothing more is buffered); an empty payload or invalid JSON is
/// [`IpcError::Malformed`]; invalid UTF-8 is [`IpcError::InvalidUtf8`]; a partial frame at
/// end of stream is [`IpcError::Truncated`]. The limit
/// ([`LengthJsonCodec::DEFAULT_MAX_FRAME`], 128 MiB, unless set with
/// [`with_max_frame`](LengthJsonCodec::with_max_frame)) counts the payload, not the prefix,
/// and can never exceed `u32::MAX`. Encoding checks the limit too and leaves the
/// destination as it was on error.
///
/// ```
/// use bytes::BytesMut;
/// use childproc_ipc::{LengthJsonCodec, Value};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = LengthJsonCodec::new();
/// let mut buf = BytesMut::new();
/// codec.encode(Value::from("hi"), &mut buf).unwrap();
/// assert_eq!(&buf[..], b"\x00\x00\x00\x04\"hi\"");
/// assert_eq!(codec.decode(&mut buf).unwrap(), Some(Value::from("hi")));
/// ```
#[derive(Debug, Clone)]
pub struct LengthJsonCodec {
    max_frame: usize,
}

impl LengthJsonCodec {
    /// The default payload size limit: 128 MiB.
    pub const DEFAULT_MAX_FRAME: usize = 128 * 1024 * 1024;

    /// A codec with the default limit ([`Self::DEFAULT_MAX_FRAME`]).
    pub fn new() -> Self {
        Self::with_max_frame(Self::DEFAULT_MAX_FRAME)
    }

    /// A codec whose payloads may be at most `max_frame` bytes (capped at `u32::MAX`).
    pub fn with_max_frame(max_frame: usize) -> Self {
        LengthJsonCodec {
            max_frame: max_frame.min(u32::MAX as usize),
        }
    }

    /// The payload size limit in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn encode_ref(&mut self, item: &Value, dst: &mut BytesMut) -> Result<(), IpcError> {
        frame::encode_prefixed(dst, self.max_frame, |dst| json::write_value(item, dst))
    }
}

impl Default for LengthJsonCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for LengthJsonCodec {
    type Item = Value;
    type Error = IpcError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Value>, IpcError> {
        match frame::split_prefixed(src, self.max_frame)? {
            Some(payload) => json::parse(&payload).map(Some),
            None => Ok(None),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, IpcError> {
        let decoded = self.decode(buf)?;
        frame::at_eof(decoded, buf)
    }
}

impl Encoder<Value> for LengthJsonCodec {
    type Error = IpcError;

    fn encode(&mut self, item: Value, dst: &mut BytesMut) -> Result<(), IpcError> {
        self.encode_ref(&item, dst)
    }
}

impl Encoder<&Value> for LengthJsonCodec {
    type Error = IpcError;

    fn encode(&mut self, item: &Value, dst: &mut BytesMut) -> Result<(), IpcError> {
        self.encode_ref(item, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{arb_json_value, check_roundtrip, chunked, decode_stream};
    use proptest::prelude::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn encodes_prefix_and_json_stringify_text() {
        let mut codec = LengthJsonCodec::new();
        let mut buf = BytesMut::new();
        let v = Value::object([
            ("a", Value::Number(f64::NAN)),
            ("u", Value::Undefined),
            ("s", Value::from("x\ny")),
        ]);
        codec.encode(&v, &mut buf).unwrap();
        assert_eq!(&buf[..], frame(br#"{"a":null,"s":"x\ny"}"#));
        codec.encode(Value::Null, &mut buf).unwrap();
        let (values, err) = decode_stream(&mut LengthJsonCodec::new(), &[&buf[..]]);
        assert!(err.is_none());
        assert_eq!(
            values,
            [
                Value::object([("a", Value::Null), ("s", Value::from("x\ny"))]),
                Value::Null
            ]
        );
    }

    #[test]
    fn encode_errors_leave_the_buffer_alone() {
        let mut buf = BytesMut::from(&b"x"[..]);
        assert!(matches!(
            LengthJsonCodec::new().encode(Value::BigInt("1".into()), &mut buf),
            Err(IpcError::Unsupported { .. })
        ));
        assert!(matches!(
            LengthJsonCodec::with_max_frame(3).encode(Value::from("ab"), &mut buf),
            Err(IpcError::FrameTooLarge { len: 4, max: 3 })
        ));
        assert_eq!(&buf[..], b"x");
    }

    #[test]
    fn decodes_whitespace_and_multiline_payloads() {
        let bytes = frame(b" {\n\"a\" :\r\n[1]\n} ");
        let (values, err) = decode_stream(&mut LengthJsonCodec::new(), &[&bytes]);
        assert!(err.is_none());
        assert_eq!(
            values,
            [Value::object([("a", Value::Array(vec![Value::from(1)]))])]
        );
    }

    #[test]
    fn decode_errors() {
        let mut bytes = frame(b"1");
        bytes.extend(frame(b""));
        let (values, err) = decode_stream(&mut LengthJsonCodec::new(), &[&bytes]);
        assert_eq!(values, [Value::from(1)]);
        assert!(
            matches!(err, Some(IpcError::Malformed { reason }) if reason.contains("empty frame"))
        );

        let (_, err) = decode_stream(&mut LengthJsonCodec::new(), &[&frame(b"[1,")]);
        assert!(matches!(err, Some(IpcError::Malformed { .. })));
        let (_, err) = decode_stream(&mut LengthJsonCodec::new(), &[&frame(b"\"\xc3\"")]);
        assert!(matches!(err, Some(IpcError::InvalidUtf8 { offset: 1 })));

        // The limit is checked on the prefix alone: nothing else needs to arrive.
        let mut codec = LengthJsonCodec::with_max_frame(10);
        let mut buf = BytesMut::from(&[0, 0, 0, 11][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(IpcError::FrameTooLarge { len: 11, max: 10 })
        ));
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            LengthJsonCodec::new().decode(&mut buf),
            Err(IpcError::FrameTooLarge {
                len: 0xffff_ffff,
                ..
            })
        ));

        // Partial frames at EOF, including a partial prefix.
        for (bytes, buffered) in [(&[0u8, 0][..], 2), (&[0, 0, 0, 3, b'1'][..], 5)] {
            let (values, err) = decode_stream(&mut LengthJsonCodec::new(), &[bytes]);
            assert!(values.is_empty());
            assert!(matches!(err, Some(IpcError::Truncated { buffered: b }) if b == buffered));
        }
    }

    proptest! {
        #[test]
        fn roundtrip(values in proptest::collection::vec(arb_json_value(), 1..4), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
            check_roundtrip(LengthJsonCodec::new, &values, &cuts)?;
        }

        #[test]
        fn chunking_does_not_matter(
            bytes in proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(2), Just(b'1'), Just(b'"'), Just(b'['), any::<u8>()],
                0..200),
            cuts in proptest::collection::vec(0usize..200, 0..10),
            max in 0usize..40,
        ) {
            let whole = decode_stream(&mut LengthJsonCodec::with_max_frame(max), &[&bytes[..]]);
            let split = decode_stream(&mut LengthJsonCodec::with_max_frame(max), &chunked(&bytes, &cuts));
            prop_assert_eq!(&whole.0, &split.0);
            prop_assert_eq!(
                whole.1.as_ref().map(std::mem::discriminant),
                split.1.as_ref().map(std::mem::discriminant)
            );
        }
    }
}
