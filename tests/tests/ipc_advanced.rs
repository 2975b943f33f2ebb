//! IPC in 'advanced' serialization (Node's V8 format): Rust parent ↔ Node child with every
//! value kind, checked on the Node side with JavaScript's own eyes; Node parent ↔ Rust child;
//! Rust ↔ Rust; event order; Node's internal messages.

mod common;

use childproc::ipc::{JsError, SparseArray, TypedArray, Value};
use childproc::{fork, fork_exe, Command, Event, Serialization, Stdio};
use common::{described, guard, node, script, FIXTURE};
use futures_util::StreamExt;

fn n(x: f64) -> Value {
    Value::Number(x)
}

fn s(x: &str) -> Value {
    Value::from(x)
}

/// A message with every kind a `Value` holds, under the key `tests/node/advanced-echo.js`
/// checks it by.
fn every_kind() -> Value {
    Value::object([
        ("undefined", Value::Undefined),
        ("null", Value::Null),
        ("true", Value::Bool(true)),
        ("int", n(-42.0)),
        ("double", n(1.5)),
        ("beyond_int32", n(9007199254740992.0)),
        ("nan", n(f64::NAN)),
        ("neg_zero", n(-0.0)),
        ("inf", n(f64::INFINITY)),
        ("neg_inf", n(f64::NEG_INFINITY)),
        (
            "bigint",
            Value::BigInt("123456789012345678901234567890".into()),
        ),
        ("neg_bigint", Value::BigInt("-18446744073709551616".into())),
        ("latin1", s("café ÿ")),
        ("two_byte", s("a€😀")),
        ("bytes", Value::Bytes(vec![0, 1, 255])),
        ("array", Value::Array(vec![n(1.0), s("two"), Value::Null])),
        (
            "object",
            Value::object([("nested", Value::object([("deep", Value::Bool(true))]))]),
        ),
        (
            "map",
            Value::Map(vec![(s("k"), n(1.0)), (n(2.0), Value::Set(vec![n(3.0)]))]),
        ),
        ("set", Value::Set(vec![s("a"), n(1.0)])),
        ("date", Value::Date(1577934245678.0)),
        ("invalid_date", Value::Date(f64::NAN)),
        (
            "regexp",
            Value::RegExp {
                source: "ab+c".into(),
                flags: "gi".into(),
            },
        ),
        (
            "error",
            Value::error("TypeError", "bad").with_stack(Some("TypeError: bad\n    at rust".into())),
        ),
        ("plain_error", Value::error("Error", "x")),
    ])
}

/// What `tests/node/advanced-echo.js` sends first, as it arrives: built in JavaScript, written
/// by Node (a shared object, holey and sparse arrays, typed arrays, boxed primitives, an Error
/// with a cause and one with a custom name, a class instance).
fn from_node() -> Value {
    let sparse = |length, elements| {
        Value::from(SparseArray {
            length,
            elements,
            properties: vec![],
        })
    };
    let boxed = |v| Value::Boxed(Box::new(v));
    // Objects are numbered as they come: the message 0, buffer 1 … map 8, the shared one 9.
    Value::object([
        ("hello", s("from node")),
        ("int", n(7.0)),
        ("double", n(0.1)),
        ("neg_zero", n(-0.0)),
        ("nan", n(f64::NAN)),
        ("big_int32", n(2147483648.0)),
        ("undef", Value::Undefined),
        ("nul", Value::Null),
        ("big", Value::BigInt("1180591620717411303424".into())),
        ("neg_big", Value::BigInt("-5".into())),
        ("ascii", s("hi")),
        ("latin1", s("é")),
        ("two_byte", s("€😀")),
        ("sliced", s("abc")),
        ("buffer", Value::Bytes(b"world".to_vec())),
        ("u16", Value::from(TypedArray::from_slice(&[1u16, 258]))),
        ("array_buffer", Value::ArrayBuffer(vec![9, 8].into())),
        ("data_view", Value::DataView(vec![0, 0])),
        ("holey", sparse(3, vec![(0, n(1.0)), (2, n(3.0))])),
        ("sparse", sparse(4, vec![(3, s("x"))])),
        ("doubles", Value::Array(vec![n(1.5), n(2.0)])),
        (
            "map",
            Value::Map(vec![
                (n(1.0), s("a")),
                (s("k"), Value::shared(9, Value::object([("x", n(1.0))]))),
            ]),
        ),
        ("set", Value::Set(vec![n(1.0), s("a")])),
        ("date", Value::Date(1577934245678.0)),
        (
            "regexp",
            Value::RegExp {
                source: "x".into(),
                flags: "dgimsuy".into(),
            },
        ),
        (
            "error",
            Value::from(JsError {
                name: "TypeError".into(),
                message: "bad".into(),
                stack: Some("TypeError: bad".into()),
                cause: Some(n(42.0)),
            }),
        ),
        (
            "named_error",
            Value::error("Error", "m").with_stack(Some("s".into())),
        ),
        ("boxed_number", boxed(n(1.5))),
        ("boxed_string", boxed(s("s"))),
        ("boxed_false", boxed(Value::Bool(false))),
        ("shared_again", Value::Ref(9)),
        ("instance", Value::object([("y", n(2.0))])),
        (
            "index_keys",
            Value::object([("1", s("one")), ("2", s("two")), ("b", n(1.0))]),
        ),
    ])
}

/// Debug text shows every kind and tells NaN and -0 apart, where `==` cannot.
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
async fn rust_parent_and_node_child_exchange_every_kind_in_advanced_mode() {
    if !node() {
        return;
    }
    let child = fork(script("advanced-echo.js"), [] as [&str; 0])
        .serialization(Serialization::Advanced)
        .spawn()
        .unwrap();
    let mut events = child.events();
    assert!(matches!(guard(events.next()).await, Some(Event::Spawn)));

    // What Node writes, read by us.
    let greeting = next_message(&mut events).await;
    assert!(same(&greeting, &from_node()), "{greeting:#?}");

    // What we write, seen by JavaScript, then echoed back by Node (which writes arrays it
    // deserialized in the sparse form: read back as the same arrays).
    let sent = every_kind();
    child.send(sent.clone()).await.unwrap();
    let reply = next_message(&mut events).await;
    let Some(Value::Object(checks)) = reply.get("checks") else {
        panic!("{reply:?}")
    };
    let Value::Object(keys) = &sent else {
        unreachable!()
    };
    assert_eq!(checks.len(), keys.len(), "{checks:?}");
    for (key, ok) in checks {
        assert_eq!(ok, &Value::Bool(true), "JavaScript sees {key} wrong");
    }
    let echo = reply.get("echo").unwrap();
    assert!(same(echo, &sent), "{echo:#?}");

    // Message, then Disconnect, Exit, Close.
    child.send("bye").await.unwrap();
    assert_eq!(
        described(events).await,
        ["disconnect", "exit code 0", "close code 0"]
    );
}

#[tokio::test]
async fn internal_messages_stay_hidden_in_advanced_mode() {
    if !node() {
        return;
    }
    // Command with an 'ipc' stdio entry, as Node's spawn(…, {stdio: [.., 'ipc']}).
    let child = Command::new("node")
        .arg(script("advanced-echo.js"))
        .fd(3, Stdio::Ipc)
        .serialization(Serialization::Advanced)
        .spawn()
        .unwrap();
    let mut events = child.events();
    assert!(matches!(guard(events.next()).await, Some(Event::Spawn)));
    next_message(&mut events).await; // the greeting
    child.send("internal").await.unwrap();
    // NODE_FOO and NODE_HANDLE_ACK are internal; "NODE_" alone is not.
    let first = next_message(&mut events).await;
    assert!(
        same(&first, &Value::object([("cmd", s("NODE_"))])),
        "{first:?}"
    );
    assert!(same(&next_message(&mut events).await, &s("after internal")));
    child.send("bye").await.unwrap();
    assert_eq!(
        described(events).await,
        ["disconnect", "exit code 0", "close code 0"]
    );
}

#[tokio::test]
async fn a_node_parent_drives_a_rust_child_in_advanced_mode() {
    if !node() {
        return;
    }
    let out = std::process::Command::new("node")
        .args([&script("advanced-parent.js"), FIXTURE])
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        seen.trim(),
        r#"["hello from rust","echo equal","classes ok","disconnect","exit 0"]"#,
        "{stderr}"
    );
}

#[tokio::test]
async fn a_rust_child_speaks_advanced_with_a_rust_parent() {
    let child = fork_exe(FIXTURE, ["ipc-echo"])
        .serialization(Serialization::Advanced)
        .spawn()
        .unwrap();
    let mut events = child.events();
    assert!(matches!(guard(events.next()).await, Some(Event::Spawn)));
    let hello = next_message(&mut events).await;
    assert_eq!(hello.get("hello"), Some(&s("from rust")));
    let sent = every_kind();
    child.send(sent.clone()).await.unwrap();
    let reply = next_message(&mut events).await;
    assert!(same(reply.get("echo").unwrap(), &sent), "{reply:#?}");
    // Typed messages go through the same Value conversion as in every serialization.
    child
        .send(childproc::ipc::Json(&[1u8, 2, 3]))
        .await
        .unwrap();
    let reply = next_message(&mut events).await;
    let typed: Vec<u8> = childproc::ipc::from_value(reply.get("echo").unwrap()).unwrap();
    assert_eq!(typed, [1, 2, 3]);
    child.send("bye").await.unwrap();
    assert_eq!(
        described(events).await,
        ["disconnect", "exit code 0", "close code 0"]
    );
}
