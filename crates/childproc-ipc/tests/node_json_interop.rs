//! NodeJsonCodec against a real Node.js: what `JSON.stringify` + LF produces decodes to
//! the values Node meant, and our encoding of them is byte-identical to Node's.

use std::process::Command;

use bytes::BytesMut;
use childproc_ipc::{NodeJsonCodec, Value};
use tokio_util::codec::{Decoder, Encoder};

const SCRIPT: &str = r#"
const values = [
  {a: 1, b: 'x'}, 'hi', 42, 1.5, true, null, NaN, -Infinity, -0, 1e21, 1e-7, 0.1,
  {a: {b: [1, {c: null}]}}, [undefined, () => 1], {u: undefined, v: 1},
  {s: 'é€😀'}, 'a\nb\r\t"\\', '\u0000\u001f\u007f', '\u2028',
  new Date(0), new Date(-1), new Map([[1, 2]]), new Error('x'), /a/g, Buffer.from('hi'),
  {dup: 1, order: [3, 2, 1]}, 123456789012345680000, 5e-324,
];
for (const v of values) process.stdout.write(JSON.stringify(v) + '\n');
"#;

#[test]
fn decodes_what_node_writes() {
    let output = match Command::new("node").arg("-e").arg(SCRIPT).output() {
        Ok(output) => output,
        Err(e) => {
            eprintln!("skipped: cannot run `node` ({e})");
            return;
        }
    };
    assert!(output.status.success(), "node failed: {output:?}");
    let mut buf = BytesMut::from(&output.stdout[..]);
    let mut codec = NodeJsonCodec::new();
    let mut values = Vec::new();
    while let Some(v) = codec.decode_eof(&mut buf).unwrap() {
        values.push(v);
    }
    let n = Value::Number;
    let expected = vec![
        Value::object([("a", n(1.0)), ("b", "x".into())]),
        "hi".into(),
        n(42.0),
        n(1.5),
        Value::Bool(true),
        Value::Null,
        Value::Null,
        Value::Null,
        n(0.0),
        n(1e21),
        n(1e-7),
        n(0.1),
        Value::object([(
            "a",
            Value::object([(
                "b",
                Value::Array(vec![n(1.0), Value::object([("c", Value::Null)])]),
            )]),
        )]),
        Value::Array(vec![Value::Null, Value::Null]),
        Value::object([("v", n(1.0))]),
        Value::object([("s", "é€😀".into())]),
        "a\nb\r\t\"\\".into(),
        "\u{0}\u{1f}\u{7f}".into(),
        "\u{2028}".into(),
        "1970-01-01T00:00:00.000Z".into(),
        "1969-12-31T23:59:59.999Z".into(),
        Value::object::<&str>([]),
        Value::object::<&str>([]),
        Value::object::<&str>([]),
        Value::object([
            ("type", "Buffer".into()),
            ("data", Value::Array(vec![n(104.0), n(105.0)])),
        ]),
        Value::object([
            ("dup", n(1.0)),
            ("order", Value::Array(vec![n(3.0), n(2.0), n(1.0)])),
        ]),
        n(123456789012345680000.0),
        n(5e-324),
    ];
    assert_eq!(values, expected);

    // And back: re-encoding what we decoded gives Node's bytes exactly.
    let mut ours = BytesMut::new();
    for v in &values {
        codec.encode(v, &mut ours).unwrap();
    }
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&output.stdout)
    );
}
