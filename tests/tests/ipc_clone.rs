//! The structured-clone battery with real Node.js (tests/node/clone-kinds.js): every kind V8's
//! serializer carries, identity and cycles included, Node → Rust, Rust → Node → Rust, and
//! Node → Rust → Node, in 'advanced' serialization; and for each, the JSON text 'json' mode
//! sends, against Node's `JSON.stringify`.

mod common;

use childproc::ipc::{ArrayBuffer, JsError, SparseArray, TypedArray, TypedArrayKind, Value};
use childproc::{fork, Event, Serialization};
use common::{described, guard, node, script, FIXTURE};
use futures_util::StreamExt;

fn n(x: f64) -> Value {
    Value::Number(x)
}

fn s(x: &str) -> Value {
    Value::from(x)
}

fn boxed(v: Value) -> Value {
    Value::Boxed(Box::new(v))
}

fn error(name: &str, message: &str, cause: Value) -> Value {
    Value::from(JsError {
        name: name.into(),
        message: message.into(),
        stack: Some(format!("{name}: stack")),
        cause: Some(cause),
    })
}

fn sparse(length: u32, elements: Vec<(u32, Value)>, properties: Vec<(&str, Value)>) -> Value {
    Value::from(SparseArray {
        length,
        elements,
        properties: properties
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    })
}

/// Each kind of tests/node/clone-kinds.js as a `Value`, as a bare message of that kind
/// decodes: objects numbered depth first from 0 (the message itself).
fn kinds() -> Vec<(&'static str, Value)> {
    let t = |a: TypedArray| Value::from(a);
    vec![
        ("int8", t(TypedArray::from_slice(&[-1i8, 2]))),
        ("uint8", t(TypedArray::from_slice(&[1u8, 255]))),
        (
            "uint8_clamped",
            t(TypedArray::new(TypedArrayKind::Uint8Clamped, vec![0, 255]).unwrap()),
        ),
        ("int16", t(TypedArray::from_slice(&[-2i16, 300]))),
        ("uint16", t(TypedArray::from_slice(&[65535u16]))),
        ("int32", t(TypedArray::from_slice(&[-1_000_000_000i32]))),
        ("uint32", t(TypedArray::from_slice(&[4_000_000_000u32]))),
        ("float32", t(TypedArray::from_slice(&[0.5f32, -0.0]))),
        (
            "float64",
            t(TypedArray::from_slice(&[f64::NAN, -0.0, 1e300])),
        ),
        ("bigint64", t(TypedArray::from_slice(&[-5i64]))),
        ("biguint64", t(TypedArray::from_slice(&[u64::MAX]))),
        ("empty_typed", t(TypedArray::from_slice::<f64>(&[]))),
        ("subarray", t(TypedArray::from_slice(&[2i16, 3]))),
        ("data_view", Value::DataView(vec![1, 2, 3])),
        ("array_buffer", Value::ArrayBuffer(vec![9, 8].into())),
        (
            "resizable",
            Value::ArrayBuffer(ArrayBuffer {
                bytes: vec![0, 0],
                max_byte_length: Some(16),
            }),
        ),
        ("buffer", Value::Bytes(b"hi".to_vec())),
        ("boxed_number", boxed(n(-0.0))),
        ("boxed_string", boxed(s("s€"))),
        ("boxed_true", boxed(Value::Bool(true))),
        ("boxed_false", boxed(Value::Bool(false))),
        ("boxed_bigint", boxed(Value::BigInt("5".into()))),
        (
            "error_cause",
            error(
                "Error",
                "outer",
                Value::error("TypeError", "inner").with_stack(Some("TypeError: stack".into())),
            ),
        ),
        (
            "error_cause_value",
            error("RangeError", "r", Value::object([("code", n(42.0))])),
        ),
        (
            "sparse",
            sparse(1_000_000_001, vec![(1_000_000_000, n(1.0))], vec![]),
        ),
        ("holey", sparse(3, vec![(0, n(1.0)), (2, n(3.0))], vec![])),
        (
            "array_props",
            sparse(2, vec![(0, n(1.0)), (1, n(2.0))], vec![("foo", s("x"))]),
        ),
        (
            "shared",
            Value::object([
                ("a", Value::shared(1, Value::object([("x", n(1.0))]))),
                ("b", Value::Ref(1)),
            ]),
        ),
        (
            "cycle",
            Value::shared(0, Value::object([("self", Value::Ref(0))])),
        ),
        (
            "array_cycle",
            Value::shared(0, Value::Array(vec![n(1.0), Value::Ref(0)])),
        ),
        (
            "map_cycle",
            Value::shared(
                0,
                Value::Map(vec![(s("me"), Value::Ref(0)), (Value::Ref(0), n(1.0))]),
            ),
        ),
        (
            "set_cycle",
            Value::shared(0, Value::Set(vec![Value::Ref(0)])),
        ),
        (
            "shared_typed",
            Value::Array(vec![
                Value::shared(1, t(TypedArray::from_slice(&[7u8]))),
                Value::Ref(1),
            ]),
        ),
        (
            "shared_across",
            Value::Array(vec![
                Value::shared(1, Value::object::<&str>([])),
                Value::Map(vec![(Value::Ref(1), Value::Ref(1))]),
                Value::Set(vec![Value::Ref(1)]),
            ]),
        ),
    ]
}

/// Debug text shows every kind, tells NaN and -0 apart, and includes ids.
fn same(a: &Value, b: &Value) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

async fn next_message(events: &mut childproc::Events) -> Value {
    match guard(events.next()).await {
        Some(Event::Message(m)) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn every_kind_crosses_between_rust_and_node_both_ways() {
    if !node() {
        return;
    }
    let child = fork(script("clone-echo.js"), [] as [&str; 0])
        .serialization(Serialization::Advanced)
        .spawn()
        .unwrap();
    let mut events = child.events();
    assert!(matches!(guard(events.next()).await, Some(Event::Spawn)));
    // The battery's names, so that neither side has a kind the other lacks.
    let names = next_message(&mut events).await;
    let Some(Value::Array(names)) = names.get("names") else {
        panic!("{names:?}")
    };
    let kinds = kinds();
    let ours: Vec<Value> = kinds.iter().map(|(name, _)| s(name)).collect();
    assert_eq!(names, &ours);

    for (name, value) in &kinds {
        // Node → Rust: what V8 writes for a fresh JavaScript value.
        child
            .send(Value::object([("want", s(name))]))
            .await
            .unwrap();
        let got = next_message(&mut events).await;
        assert!(
            same(&got, value),
            "{name} from Node: {got:?}\nwanted {value:?}"
        );

        // Rust → Node: JavaScript sees exactly the kind, identity included; and its echo,
        // written by V8, reads back as what we sent.
        child
            .send(Value::object([
                ("check", s(name)),
                ("value", value.clone()),
            ]))
            .await
            .unwrap();
        let verdict = next_message(&mut events).await;
        assert_eq!(
            verdict.get("verdict"),
            Some(&s("")),
            "{name} in Node: {verdict:?}"
        );
        let echo = next_message(&mut events).await;
        assert!(
            same(&echo, value),
            "{name} echoed: {echo:?}\nwanted {value:?}"
        );
    }
    child.send("bye").await.unwrap();
    assert_eq!(
        described(events).await,
        ["disconnect", "exit code 0", "close code 0"]
    );
}

#[tokio::test]
async fn a_node_parent_gets_every_kind_back_from_a_rust_child() {
    if !node() {
        return;
    }
    let out = std::process::Command::new("node")
        .args([&script("clone-parent.js"), FIXTURE])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let verdicts = childproc::ipc::json::parse(&out.stdout).unwrap();
    let Value::Object(verdicts) = verdicts else {
        panic!("{verdicts:?} {stderr}")
    };
    assert_eq!(verdicts.len(), kinds().len(), "{verdicts:?}");
    for (name, verdict) in verdicts {
        assert_eq!(verdict, s(""), "{name} through a Rust child");
    }
}
