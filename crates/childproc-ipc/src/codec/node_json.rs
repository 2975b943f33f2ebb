//! [`NodeJsonCodec`]: Node.js's `'json'` serialization, one `JSON.stringify` text per line.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::frame;
use crate::{json, IpcError, Value};

/// Newline-delimited JSON exactly as Node.js's `'json'` IPC serialization writes and reads it.
///
/// A frame is `JSON.stringify(value)` as UTF-8 followed by one LF (`0a`); see
/// [`json`](crate::json) for the value mapping. Decoding splits on LF and parses each line
/// with `JSON.parse` semantics: JSON whitespace around the value and a trailing CR are
/// accepted. Unlike Node, which throws from inside its read callback (and exits), this
/// codec reports problems as errors:
///
/// * an empty or blank line, invalid JSON: [`IpcError::Malformed`];
/// * invalid UTF-8: [`IpcError::InvalidUtf8`] (Node replaces it with U+FFFD);
/// * a line longer than the limit ([`NodeJsonCodec::DEFAULT_MAX_FRAME`], 128 MiB, unless
///   set with [`with_max_frame`](NodeJsonCodec::with_max_frame)), not counting the LF:
///   [`IpcError::FrameTooLarge`], reported as soon as more bytes than the limit are buffered
///   without an LF — the codec never buffers a whole oversized line (Node has no limit);
/// * bytes after the last LF at end of stream: [`IpcError::Truncated`] (Node drops them
///   silently).
///
/// Encoding refuses what Node's `send()` refuses (a top-level `undefined`, a `BigInt`) with
/// [`IpcError::Unsupported`] and frames over the limit with [`IpcError::FrameTooLarge`];
/// a failed encode leaves the destination buffer as it was.
///
/// Scanning for LF is incremental, so a large frame arriving in many small reads costs time
/// proportional to its size.
///
/// ```
/// use bytes::BytesMut;
/// use childproc_ipc::{NodeJsonCodec, Value};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = NodeJsonCodec::new();
/// let mut buf = BytesMut::new();
/// codec.encode(Value::object([("a", Value::from(1))]), &mut buf).unwrap();
/// assert_eq!(&buf[..], b"{\"a\":1}\n");
/// assert_eq!(codec.decode(&mut buf).unwrap(), Some(Value::object([("a", Value::from(1))])));
/// ```
#[derive(Debug, Clone)]
pub struct NodeJsonCodec {
    max_frame: usize,
    /// How much of the buffer is known to hold no LF.
    scanned: usize,
    /// The envelope keys a frame is opened for (see [`AnyCodec::open_envelopes`]).
    ///
    /// [`AnyCodec::open_envelopes`]: crate::AnyCodec
    envelopes: &'static [&'static str],
    /// The id and key of the envelope the last decoded value came in, if it was opened.
    opened: Option<(Value, &'static str)>,
}

impl NodeJsonCodec {
    /// The default frame size limit: 128 MiB of JSON text per message.
    pub const DEFAULT_MAX_FRAME: usize = 128 * 1024 * 1024;

    /// A codec with the default frame limit ([`Self::DEFAULT_MAX_FRAME`]).
    pub fn new() -> Self {
        Self::with_max_frame(Self::DEFAULT_MAX_FRAME)
    }

    /// A codec whose frames (JSON text without the LF) may be at most `max_frame` bytes.
    pub fn with_max_frame(max_frame: usize) -> Self {
        NodeJsonCodec {
            max_frame,
            scanned: 0,
            envelopes: &[],
            opened: None,
        }
    }

    /// The frame size limit in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn encode_ref(&mut self, item: &Value, dst: &mut BytesMut) -> Result<(), IpcError> {
        let start = dst.len();
        let result = json::write_value(item, dst).and_then(|()| {
            let len = dst.len() - start;
            if len > self.max_frame {
                return Err(IpcError::FrameTooLarge {
                    len,
                    max: self.max_frame,
                });
            }
            dst.extend_from_slice(b"\n");
            Ok(())
        });
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }
}

impl Default for NodeJsonCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for NodeJsonCodec {
    type Item = Value;
    type Error = IpcError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Value>, IpcError> {
        self.opened = None;
        if self.envelopes.is_empty() {
            return self.read_line(src, json::parse);
        }
        let keys = self.envelopes;
        let read = self.read_line(src, |line| match json::envelope(line, keys) {
            // An internal message inside would be taken for one of Node's: not opened.
            Some((id, key, value)) if !crate::is_internal(&value) => Ok((value, Some((id, key)))),
            _ => json::parse(line).map(|value| (value, None)),
        })?;
        Ok(read.map(|(value, opened)| {
            self.opened = opened;
            value
        }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, IpcError> {
        let decoded = self.decode(buf)?;
        let result = frame::at_eof(decoded, buf);
        if buf.is_empty() {
            self.scanned = 0; // nothing left to have scanned
        }
        result
    }
}

impl NodeJsonCodec {
    /// From now on a frame `{"id":<number>,"<key>":<value>}` with `key` one of `keys` is
    /// decoded as its value alone, its id and key kept for [`take_opened`](Self::take_opened).
    pub(crate) fn open_envelopes(&mut self, keys: &'static [&'static str]) {
        self.envelopes = keys;
    }

    /// The id and key of the envelope the last decoded value came in, if it was opened.
    pub(crate) fn take_opened(&mut self) -> Option<(Value, &'static str)> {
        self.opened.take()
    }

    /// `read` of the next whole line's text (without its LF), if it has arrived, which is
    /// then taken off `src` (read in place: no copy, no split of the buffer); a line over
    /// the limit, empty or blank is an error.
    pub(crate) fn read_line<T>(
        &mut self,
        src: &mut BytesMut,
        read: impl FnOnce(&[u8]) -> Result<T, IpcError>,
    ) -> Result<Option<T>, IpcError> {
        let scanned = self.scanned.min(src.len());
        let Some(found) = crate::scan::find(&src[scanned..], b'\n') else {
            self.scanned = src.len();
            if src.len() > self.max_frame {
                return Err(IpcError::FrameTooLarge {
                    len: src.len(),
                    max: self.max_frame,
                });
            }
            return Ok(None);
        };
        self.scanned = 0;
        let len = scanned + found;
        if len > self.max_frame {
            src.advance(len + 1);
            return Err(IpcError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        let line = &src[..len];
        let result = if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            Err(IpcError::malformed(if line.is_empty() {
                "empty line"
            } else {
                "blank line (only whitespace)"
            }))
        } else {
            read(line)
        };
        src.advance(len + 1);
        result.map(Some)
    }
}

impl Encoder<Value> for NodeJsonCodec {
    type Error = IpcError;

    fn encode(&mut self, item: Value, dst: &mut BytesMut) -> Result<(), IpcError> {
        self.encode_ref(&item, dst)
    }
}

impl Encoder<&Value> for NodeJsonCodec {
    type Error = IpcError;

    fn encode(&mut self, item: &Value, dst: &mut BytesMut) -> Result<(), IpcError> {
        self.encode_ref(item, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{arb_json_value, check_roundtrip, chunked, decode_stream, same};
    use proptest::prelude::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut buf = BytesMut::new();
        NodeJsonCodec::new().encode(v, &mut buf).unwrap();
        buf.to_vec()
    }

    fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Value {
        Value::object(pairs)
    }

    fn n(x: f64) -> Value {
        Value::Number(x)
    }

    /// Every row of the protocol notes' §2.1 table, byte for byte.
    #[test]
    fn writes_what_node_writes() {
        let rows: Vec<(Value, &[u8])> = vec![
            (
                obj([("a", n(1.0)), ("b", "x".into())]),
                b"{\"a\":1,\"b\":\"x\"}\n",
            ),
            ("hi".into(), b"\"hi\"\n"),
            (n(42.0), b"42\n"),
            (n(1.5), b"1.5\n"),
            (Value::Bool(true), b"true\n"),
            (Value::Null, b"null\n"),
            (n(f64::NAN), b"null\n"),
            (n(f64::NEG_INFINITY), b"null\n"),
            (n(-0.0), b"0\n"),
            (n(1e21), b"1e+21\n"),
            (
                obj([(
                    "a",
                    obj([("b", Value::Array(vec![n(1.0), obj([("c", Value::Null)])]))]),
                )]),
                b"{\"a\":{\"b\":[1,{\"c\":null}]}}\n",
            ),
            // `() => 1` in an array is written like undefined.
            (
                Value::Array(vec![Value::Undefined, Value::Undefined]),
                b"[null,null]\n",
            ),
            (
                obj([("u", Value::Undefined), ("v", n(1.0))]),
                b"{\"v\":1}\n",
            ),
            (
                obj([("s", "é€😀".into())]),
                &[
                    0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f,
                    0x98, 0x80, 0x22, 0x7d, 0x0a,
                ],
            ),
            ("a\nb\r\t\"\\".into(), b"\"a\\nb\\r\\t\\\"\\\\\"\n"),
            ("\u{0}\u{1f}\u{7f}".into(), b"\"\\u0000\\u001f\x7f\"\n"),
            ("\u{2028}".into(), &[0x22, 0xe2, 0x80, 0xa8, 0x22, 0x0a]),
            (Value::Date(0.0), b"\"1970-01-01T00:00:00.000Z\"\n"),
            (Value::Map(vec![(n(1.0), n(2.0))]), b"{}\n"),
            (
                Value::error("Error", "x").with_stack(Some("Error: x\n    at <anonymous>".into())),
                b"{}\n",
            ),
            (
                Value::RegExp {
                    source: "a".into(),
                    flags: "g".into(),
                },
                b"{}\n",
            ),
            (Value::Set(vec![n(1.0)]), b"{}\n"),
            (
                Value::Bytes(b"hi".to_vec()),
                b"{\"type\":\"Buffer\",\"data\":[104,105]}\n",
            ),
            (
                Value::Bytes(vec![0, 9, 10, 99, 100, 255]),
                b"{\"type\":\"Buffer\",\"data\":[0,9,10,99,100,255]}\n",
            ),
            (Value::Bytes(vec![]), b"{\"type\":\"Buffer\",\"data\":[]}\n"),
        ];
        for (value, bytes) in rows {
            assert_eq!(
                enc(&value),
                bytes,
                "{value:?} gave {:?}",
                String::from_utf8_lossy(&enc(&value))
            );
        }
        // Other C0 controls: the short escapes, the rest as lowercase \u00xx.
        let all_c0: String = (0u8..0x20).map(char::from).collect();
        assert_eq!(
            enc(&all_c0.into()),
            b"\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"\n"
        );
    }

    #[test]
    fn refuses_to_send_what_node_refuses_and_leaves_buffer_alone() {
        let mut codec = NodeJsonCodec::new();
        let mut buf = BytesMut::from(&b"x"[..]);
        for v in [
            Value::Undefined,
            Value::BigInt("1".into()),
            obj([("a", n(1.0)), ("b", Value::BigInt("2".into()))]),
        ] {
            assert!(matches!(
                codec.encode(&v, &mut buf),
                Err(IpcError::Unsupported { .. })
            ));
            assert_eq!(&buf[..], b"x");
        }
        let mut small = NodeJsonCodec::with_max_frame(4);
        small.encode(Value::from("ab"), &mut buf).unwrap();
        assert!(matches!(
            small.encode(Value::from("abc"), &mut buf),
            Err(IpcError::FrameTooLarge { len: 5, max: 4 })
        ));
        assert_eq!(&buf[..], b"x\"ab\"\n");
    }

    fn decode_all(bytes: &[u8]) -> (Vec<Value>, Option<IpcError>) {
        decode_stream(&mut NodeJsonCodec::new(), &[bytes])
    }

    /// The protocol notes' §2.2 reader cases.
    #[test]
    fn reads_what_node_reads() {
        let (values, err) = decode_all(b"\"s\"\nnull\ntrue\n-0\n1e400\n");
        assert!(err.is_none());
        assert_eq!(values.len(), 5);
        assert!(same(&values[0], &"s".into()));
        assert!(same(&values[1], &Value::Null));
        assert!(same(&values[2], &Value::Bool(true)));
        assert!(same(&values[3], &n(-0.0)));
        assert!(same(&values[4], &n(f64::INFINITY)));

        // Blanks and a trailing CR are JSON whitespace.
        let (values, err) = decode_all(b"{\"a\":1}\r\n  [1] \t\n");
        assert!(err.is_none());
        assert_eq!(values, [obj([("a", n(1.0))]), Value::Array(vec![n(1.0)])]);

        // A UTF-8 sequence split across reads; several frames in one read; one frame over
        // many reads.
        let text = "{\"s\":\"é€😀\"}\n{\"b\":2}\n".as_bytes();
        for split in 0..text.len() {
            let (values, err) =
                decode_stream(&mut NodeJsonCodec::new(), &[&text[..split], &text[split..]]);
            assert!(err.is_none());
            assert_eq!(values, [obj([("s", "é€😀".into())]), obj([("b", n(2.0))])]);
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(decode_stream(&mut NodeJsonCodec::new(), &bytes).0.len(), 2);

        // Invalid UTF-8: Node substitutes U+FFFD; we refuse, naming the offset.
        let (values, err) = decode_all(b"1\n\"\xff\xfe\"\n");
        assert_eq!(values, [n(1.0)]);
        assert!(matches!(err, Some(IpcError::InvalidUtf8 { offset: 1 })));

        // An unterminated tail at EOF: Node drops it, we report it after the whole frames.
        let (values, err) = decode_all(b"{\"a\":1}\n{\"b\":2}");
        assert_eq!(values, [obj([("a", n(1.0))])]);
        assert!(matches!(err, Some(IpcError::Truncated { buffered: 7 })));

        // Node crashes on these; we end with Malformed after the good frames.
        for (bytes, reason) in [
            (&b"1\n\n2\n"[..], "empty line"),
            (b"1\r\n \r\n", "blank line"),
            (b"1\nNaN\n", "expected value at column 1"),
            (b"1\n{\"a\":}\n", "expected value at column 6"),
            (b"1\n[1,2\n", "unexpected end of input in an array"),
        ] {
            let (values, err) = decode_all(bytes);
            assert_eq!(values, [n(1.0)]);
            match err {
                Some(IpcError::Malformed { reason: r }) => assert!(r.contains(reason), "{r}"),
                other => panic!("{other:?}"),
            }
        }

        // NODE_ commands are the channel's business, not the codec's: decoded as given.
        let (values, _) = decode_all(b"{\"cmd\":\"NODE_FOO\"}\n");
        assert_eq!(values, [obj([("cmd", "NODE_FOO".into())])]);
    }

    #[test]
    fn frame_limit_applies_before_the_lf_arrives() {
        let mut codec = NodeJsonCodec::with_max_frame(8);
        let mut buf = BytesMut::from(&b"\"123456\"\n"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some("123456".into()));
        buf.extend_from_slice(b"\"1234567");
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"8");
        assert!(matches!(
            codec.decode(&mut buf),
            Err(IpcError::FrameTooLarge { len: 9, max: 8 })
        ));
        // All at once: the whole line's length is known.
        let mut buf = BytesMut::from(&b"\"12345678901\"\n"[..]);
        assert!(matches!(
            NodeJsonCodec::with_max_frame(8).decode(&mut buf),
            Err(IpcError::FrameTooLarge { len: 13, max: 8 })
        ));
    }

    #[test]
    fn big_frame_in_small_reads_is_linear() {
        // 64 MiB in 64 KiB reads: with a rescan per read this is ~32 GiB of scanning.
        let payload = "x".repeat(64 * 1024 * 1024 - 3);
        let frame = format!("\"{payload}\"\n");
        let mut codec = NodeJsonCodec::new();
        let mut buf = BytesMut::with_capacity(frame.len());
        let started = std::time::Instant::now();
        let mut got = None;
        for chunk in frame.as_bytes().chunks(64 * 1024) {
            buf.extend_from_slice(chunk);
            if let Some(v) = codec.decode(&mut buf).unwrap() {
                got = Some(v);
            }
        }
        assert_eq!(
            got.as_ref().and_then(Value::as_str).map(str::len),
            Some(payload.len())
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[tokio::test]
    async fn works_under_framed_read() {
        use futures_util::StreamExt;
        use tokio_util::codec::FramedRead;
        let bytes: &[u8] = b"1\n{\"a\":[true]}\n\"tail";
        let mut framed = FramedRead::new(bytes, NodeJsonCodec::new());
        let mut got = Vec::new();
        let err = loop {
            match framed.next().await {
                Some(Ok(v)) => got.push(v),
                Some(Err(e)) => break Some(e),
                None => break None,
            }
        };
        assert_eq!(
            got,
            [n(1.0), obj([("a", Value::Array(vec![Value::Bool(true)]))])]
        );
        assert!(matches!(err, Some(IpcError::Truncated { buffered: 5 })));
        assert!(framed.next().await.is_none());
    }

    #[test]
    fn opened_envelopes_come_as_their_value_and_the_rest_whole() {
        let mut codec = NodeJsonCodec::new();
        codec.open_envelopes(&["task"]);
        let mut buf = BytesMut::from(
            &b"{\"id\":3,\"task\":[1]}\n{\"id\":4,\"task\":{\"cmd\":\"NODE_X\"}}\n{\"task\":1,\"id\":5}\n"[..],
        );
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Value::Array(vec![n(1.0)]))
        );
        assert_eq!(codec.take_opened(), Some((n(3.0), "task")));
        // One of Node's internal messages inside is not opened (the channel would take the
        // value alone for one), nor is another shape.
        let internal = obj([("id", n(4.0)), ("task", obj([("cmd", "NODE_X".into())]))]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(internal));
        assert_eq!(codec.take_opened(), None);
        let reversed = obj([("task", n(1.0)), ("id", n(5.0))]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(reversed));
        assert_eq!(codec.take_opened(), None);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
    }

    proptest! {
        #[test]
        fn roundtrip(values in proptest::collection::vec(arb_json_value(), 1..4)) {
            check_roundtrip(NodeJsonCodec::new, &values, &[])?;
        }

        #[test]
        fn chunking_does_not_matter(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'1'), Just(b'"'), Just(b' '), Just(b'['), Just(b']'), Just(0xc3), Just(0xa9), any::<u8>()],
                0..200),
            cuts in proptest::collection::vec(0usize..200, 0..10),
            max in 1usize..40,
        ) {
            let whole = decode_stream(&mut NodeJsonCodec::with_max_frame(max), &[&bytes[..]]);
            let pieces = chunked(&bytes, &cuts);
            let split = decode_stream(&mut NodeJsonCodec::with_max_frame(max), &pieces);
            prop_assert_eq!(&whole.0, &split.0);
            prop_assert_eq!(
                whole.1.as_ref().map(std::mem::discriminant),
                split.1.as_ref().map(std::mem::discriminant)
            );
        }
    }
}
