//! The seeds' fork programs as working programs: seeds/002's fibonacci fork-child driven by
//! a Rust parent forking three children (Node, then Rust), and seeds/001's correlation-id
//! worker (worker.js with a Rust parent; a Rust worker with the seed's Node parent).

mod common;

use std::collections::HashMap;

use childproc::ipc::Value;
use childproc::{fork, fork_exe, ChildProcess, Event};
use common::{guard, node, script, FIXTURE};
use futures_util::StreamExt;

/// `child1.send({n: 5}) … child.on('message', m => console.log('PARENT childN got message:', m))`
async fn fibonacci_with(children: [ChildProcess; 3]) -> Vec<String> {
    let ns = [5, 10, 25];
    for (child, n) in children.iter().zip(ns) {
        child
            .send(Value::object([("n", Value::from(n))]))
            .await
            .unwrap();
    }
    let mut lines = Vec::new();
    for (i, child) in children.iter().enumerate() {
        let events: Vec<Event> = guard(child.events().collect()).await;
        for e in &events {
            if let Event::Message(m) = e {
                let (fib, n) = (
                    m.get("fib").and_then(Value::as_f64),
                    m.get("n").and_then(Value::as_f64),
                );
                lines.push(format!(
                    "PARENT child{} got message: {{ fib: {}, n: {} }}",
                    i + 1,
                    fib.unwrap(),
                    n.unwrap()
                ));
            }
        }
        assert!(
            matches!(events.last(), Some(Event::Close(s)) if s.success()),
            "{events:?}"
        );
    }
    lines
}

const FIB_LINES: [&str; 3] = [
    "PARENT child1 got message: { fib: 8, n: 5 }",
    "PARENT child2 got message: { fib: 89, n: 10 }",
    "PARENT child3 got message: { fib: 121393, n: 25 }",
];

#[tokio::test]
async fn seeds_fibonacci_fork_child_with_three_node_children() {
    if !node() {
        return;
    }
    let spawn = || {
        fork(script("fork-child.js"), [] as [&str; 0])
            .spawn()
            .unwrap()
    };
    assert_eq!(fibonacci_with([spawn(), spawn(), spawn()]).await, FIB_LINES);
}

#[tokio::test]
async fn seeds_fibonacci_fork_child_with_three_rust_children() {
    let spawn = || fork_exe(FIXTURE, ["fib-child"]).spawn().unwrap();
    assert_eq!(fibonacci_with([spawn(), spawn(), spawn()]).await, FIB_LINES);
}

#[tokio::test]
async fn seeds_correlation_id_worker_js_with_a_rust_parent() {
    if !node() {
        return;
    }
    let child = fork(script("worker.js"), [] as [&str; 0]).spawn().unwrap();
    let mut events = child.events();
    assert!(matches!(events.next().await, Some(Event::Spawn)));
    // Several calculate() calls in flight at once; answers are matched by id, not by order.
    let requests: [(u32, Value); 4] = [
        (
            1,
            Value::Array(vec![
                Value::from(1),
                Value::from(2),
                Value::from(3),
                Value::from(4),
                Value::from(5),
            ]),
        ),
        (2, Value::Array(vec![Value::from(10), Value::from(20)])),
        (3, Value::from("not a list")),
        (4, Value::Array(vec![])),
    ];
    for (id, data) in &requests {
        let msg = Value::object([
            ("id", Value::from(*id as f64)),
            ("cmd", Value::from("sum")),
            ("data", data.clone()),
        ]);
        assert!(child.send_nowait(msg).unwrap());
    }
    let mut answers = HashMap::new();
    while answers.len() < requests.len() {
        match guard(events.next()).await {
            Some(Event::Message(m)) => {
                let id = m.get("id").and_then(Value::as_f64).unwrap() as u32;
                let answer = m.get("result").or(m.get("error")).cloned().unwrap();
                answers.insert(id, answer);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(answers[&1], Value::from(15));
    assert_eq!(answers[&2], Value::from(30));
    assert_eq!(
        answers[&3],
        Value::from("msg.data.reduce is not a function")
    );
    assert_eq!(answers[&4], Value::from(0));
    // The seed's parent ends with child.kill().
    assert!(child.kill(childproc::Signal::SIGTERM));
    assert_eq!(
        guard(child.closed()).await.unwrap().signal(),
        Some(childproc::Signal::SIGTERM)
    );
}

#[tokio::test]
async fn seeds_parent_js_drives_a_rust_worker() {
    if !node() {
        return;
    }
    // The seed's parent.js with fork(module, [], {execPath}): the Rust fixture runs as
    // `fixture sum-worker`, exactly as Node's fork() builds the command line.
    let out = std::process::Command::new("node")
        .args([&script("sum-parent.js"), FIXTURE, "sum-worker"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Sum: 15\nSum: 30\nError: msg.data.reduce is not a function\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
