//! IPC in 'json' mode: Rust parent ↔ Node child, Rust parent ↔ Rust child, Node parent ↔ Rust
//! child; event order; Node's internal messages; bad frames; disconnect from either side.

mod common;
mod scenarios;

use childproc::ipc::Value;
use childproc::{fork, fork_exe, Command, Event, Serialization, Stdio};
use common::{describe, described, guard, node, script, stdout_string, timeline, FIXTURE};
use futures_util::StreamExt;
use scenarios::echo_dialogue;
use std::collections::HashMap;

/// The `i` of every `{i: n}` message, in arrival order.
fn numbered_messages(events: &[Event]) -> Vec<f64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => m.get("i").and_then(Value::as_f64),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn rust_parent_forks_a_node_child_and_sees_message_disconnect_exit_close() {
    if !node() {
        return;
    }
    let child = fork(script("echo.js"), [] as [&str; 0]).spawn().unwrap();
    assert!(child.connected());
    assert!(child.channel().is_some());
    let seen = echo_dialogue(&child, "from node").await;
    assert_eq!(
        seen,
        [
            "message echo(payload)",
            "message Object([(\"echo\", String(\"second\"))])",
            "disconnect",
            "exit code 0",
            "close code 0"
        ]
    );
    assert!(!child.connected());
    // `subprocess.channel` is null once the child has disconnected.
    assert!(child.channel().is_none());
    // After disconnect: send fails, send_nowait is false with an Error event (as Node).
    assert!(child.send(Value::from(1)).await.is_err());
    assert!(!child.send_nowait(Value::from(1)).unwrap());
}

#[tokio::test]
async fn rust_parent_forks_a_rust_child_the_same_way() {
    scenarios::ipc_fork_rust_child().await;
}

#[tokio::test]
async fn a_rust_child_speaks_msgpack_too() {
    let child = fork_exe(FIXTURE, ["ipc-echo"])
        .serialization(Serialization::MsgPack)
        .spawn()
        .unwrap();
    let mut events = child.events();
    events.next().await;
    assert!(matches!(
        guard(events.next()).await,
        Some(Event::Message(_))
    ));
    let rich = Value::Array(vec![
        Value::Undefined,
        Value::Number(f64::NAN),
        Value::Number(-0.0),
        Value::BigInt("123456789012345678901234567890".into()),
        Value::Bytes(vec![0, 255]),
        Value::Map(vec![(Value::from(1), Value::from("one"))]),
        Value::Set(vec![Value::from("x")]),
        Value::Date(0.0),
        Value::RegExp {
            source: "a+".into(),
            flags: "g".into(),
        },
    ]);
    child.send(rich.clone()).await.unwrap();
    match guard(events.next()).await {
        Some(Event::Message(m)) => {
            let echoed = m.get("echo").unwrap();
            // NaN != NaN: compare the debug forms, which show every kind and bit pattern.
            assert_eq!(format!("{echoed:?}"), format!("{rich:?}"));
        }
        other => panic!("{other:?}"),
    }
    child.disconnect();
    assert_eq!(
        described(events).await,
        ["disconnect", "exit code 0", "close code 0"]
    );
}

#[tokio::test]
async fn a_node_parent_drives_a_rust_child() {
    if !node() {
        return;
    }
    let out = std::process::Command::new("node")
        .args([&script("parent.js"), FIXTURE])
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // [{"hello":"from rust","pid":<pid>}, <the echo>, "disconnect", "exit 0"] in Node's words.
    let (greeting, rest) = seen
        .trim()
        .split_once("},")
        .unwrap_or_else(|| panic!("{seen} / {stderr}"));
    assert!(
        greeting.starts_with(r#"[{"hello":"from rust","pid":"#),
        "{seen} / {stderr}"
    );
    assert_eq!(
        rest, r#"{"echo":{"n":1,"s":"é€😀","a":[true,null,1.5]}},"disconnect","exit 0"]"#,
        "{stderr}"
    );
}

#[tokio::test]
async fn ten_thousand_messages_from_node_arrive_in_order() {
    if !node() {
        return;
    }
    let child = fork(script("echo.js"), ["count", "10000"]).spawn().unwrap();
    let events: Vec<Event> = guard(child.events().collect()).await;
    let numbers = numbered_messages(&events);
    assert_eq!(numbers.len(), 10000, "messages lost");
    assert!(
        numbers.iter().enumerate().all(|(i, n)| *n == i as f64),
        "messages out of order"
    );
    let tail: Vec<String> = events[events.len() - 3..].iter().map(describe).collect();
    assert_eq!(tail, ["disconnect", "exit code 0", "close code 0"]);
}

#[tokio::test]
async fn internal_messages_are_hidden_and_a_bad_frame_ends_the_channel_with_a_clear_error() {
    // A child writing straight to its channel fd: a user message, an internal one, garbage.
    let script = r#"printf '{"a":1}\n{"cmd":"NODE_HANDLE_ACK"}\n{"cmd":"NODE_"}\n{bad json\n{"never":1}\n' >&3; sleep 0.2"#;
    let child = Command::new("sh")
        .args(["-c", script])
        .fd(3, Stdio::Ipc)
        .spawn()
        .unwrap();
    let seen = timeline(&child).await;
    assert_eq!(seen[0], "spawn");
    assert_eq!(seen[1], "message Object([(\"a\", Number(1.0))])");
    assert_eq!(seen[2], "message Object([(\"cmd\", String(\"NODE_\"))])");
    assert!(
        seen[3].starts_with("error ipc: malformed IPC message"),
        "{seen:?}"
    );
    assert_eq!(seen[4..], ["disconnect", "exit code 0", "close code 0"]);
}

#[tokio::test]
async fn the_parent_disconnecting_gives_the_child_eof() {
    let child = fork_exe(FIXTURE, ["ipc-echo"]).spawn().unwrap();
    let mut events = child.events();
    events.next().await;
    events.next().await; // the greeting
    assert!(child.channel().is_some());
    child.disconnect();
    assert!(!child.connected());
    // `subprocess.channel` is null as soon as disconnect() is called.
    assert!(child.channel().is_none());
    // The child saw EOF, left its loop and exited 0; Close still comes (Node never emits it here).
    assert_eq!(
        described(events).await,
        ["disconnect", "exit code 0", "close code 0"]
    );
    // A second disconnect is an error event, as in Node.
    child.disconnect();
    assert!(timeline(&child)
        .await
        .iter()
        .any(|e| e == "error ipc: channel closed"));
}

#[tokio::test]
async fn bad_ipc_configuration_is_a_clear_error() {
    let err = Command::new(FIXTURE)
        .fd(3, Stdio::Ipc)
        .fd(4, Stdio::Ipc)
        .spawn()
        .unwrap_err();
    assert!(
        err.to_string().contains("more than one 'ipc' entry"),
        "{err}"
    );
    let err = fork_exe(FIXTURE, ["ipc-echo"])
        .stdio([Stdio::Pipe, Stdio::Pipe, Stdio::Pipe])
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("exactly one ipc entry"), "{err}");
    // A child without a channel: send is an error, connected is false.
    let plain = Command::new(FIXTURE).args(["exit", "0"]).spawn().unwrap();
    assert!(!plain.connected());
    assert!(plain.send(Value::Null).await.is_err());
}

#[tokio::test]
async fn a_child_dying_mid_message_is_an_orderly_disconnect_exit_close() {
    // Complete frames first, then half a frame, then the child is gone.
    let script = r#"printf '{"a":1}\n{"a":2}\n{"b":' >&3; exit 3"#;
    let child = Command::new("sh")
        .args(["-c", script])
        .fd(3, Stdio::Ipc)
        .spawn()
        .unwrap();
    let seen = timeline(&child).await;
    assert_eq!(
        seen[..3],
        [
            "spawn",
            "message Object([(\"a\", Number(1.0))])",
            "message Object([(\"a\", Number(2.0))])"
        ]
    );
    assert!(
        seen[3].starts_with("error ipc: IPC stream ended inside a frame"),
        "{seen:?}"
    );
    assert_eq!(seen[4..], ["disconnect", "exit code 3", "close code 3"]);
}

#[tokio::test]
async fn a_child_exiting_with_messages_in_flight_delivers_every_complete_one() {
    // 2000 frames written in one go, then exit: the parent gets all of them, in order.
    let script = r#"i=0; while [ $i -lt 2000 ]; do printf '{"i":%d}\n' $i; i=$((i+1)); done >&3"#;
    let child = Command::new("sh")
        .args(["-c", script])
        .fd(3, Stdio::Ipc)
        .spawn()
        .unwrap();
    let events: Vec<Event> = guard(child.events().collect()).await;
    let got = numbered_messages(&events);
    assert_eq!(got.len(), 2000);
    assert!(got.iter().enumerate().all(|(i, n)| *n == i as f64));
    let tail: Vec<String> = events[events.len() - 3..].iter().map(describe).collect();
    assert_eq!(tail, ["disconnect", "exit code 0", "close code 0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_from_many_tasks_all_arrive_and_typed_messages_round_trip() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Job {
        task: u32,
        seq: u32,
        label: String,
    }
    let child = fork_exe(FIXTURE, ["ipc-echo"]).spawn().unwrap();
    let mut events = child.events();
    events.next().await; // spawn
    events.next().await; // greeting
    let sender = child.channel().unwrap().clone();
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let sender = sender.clone();
            tokio::spawn(async move {
                for seq in 0..250 {
                    let job = Job {
                        task,
                        seq,
                        label: format!("t{task}-{seq}"),
                    };
                    sender
                        .send(childproc::ipc::to_value(&job).unwrap())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut per_task: HashMap<u32, Vec<u32>> = HashMap::new();
    while per_task.values().map(Vec::len).sum::<usize>() < 2000 {
        match guard(events.next()).await {
            Some(Event::Message(m)) => {
                let job: Job = childproc::ipc::from_value(m.get("echo").unwrap()).unwrap();
                assert_eq!(job.label, format!("t{}-{}", job.task, job.seq));
                per_task.entry(job.task).or_default().push(job.seq);
            }
            other => panic!("{other:?}"),
        }
    }
    // Every message arrived once, and each task's messages kept their order.
    for seqs in per_task.values() {
        assert_eq!(seqs, &(0..250).collect::<Vec<_>>());
    }
    child.disconnect();
    guard(child.closed()).await.unwrap();
}

#[tokio::test]
async fn typed_messages_go_out_with_json_and_come_back_with_from_value() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Job {
        id: u32,
        files: Vec<String>,
    }
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Echo {
        echo: Job,
    }
    let child = fork_exe(FIXTURE, ["ipc-echo"]).spawn().unwrap();
    let mut events = child.events();
    let job = Job {
        id: 7,
        files: vec!["a.rs".into(), "b.rs".into()],
    };
    guard(child.send(childproc::ipc::Json(&job))).await.unwrap();
    let mut replies = Vec::new();
    while let Some(event) = guard(events.next()).await {
        if let Event::Message(m) = event {
            if m.get("hello").is_none() {
                replies.push(childproc::ipc::from_value::<Echo>(&m).unwrap());
                break;
            }
        }
    }
    assert_eq!(replies, [Echo { echo: job }]);
    // Plain values convert too: "bye" ends the echo child.
    guard(child.send("bye")).await.unwrap();
    assert!(guard(child.wait()).await.unwrap().success());
}

/// The child side of `channel.ref()`/`unref()`: the fixture's `main` ends when
/// `childproc_ipc::wait_referenced()` resolves.
#[tokio::test]
async fn a_rust_childs_wait_referenced_holds_until_the_parent_disconnects_or_it_unrefs() {
    // Referenced (the default): the child outlives an exchange, and ends when we disconnect.
    let mut child = fork_exe(FIXTURE, ["ipc-held"])
        .silent(true)
        .spawn()
        .unwrap();
    let mut events = child.events();
    child.send(Value::from("ping")).await.unwrap();
    let seen: Vec<String> = vec![
        describe(&guard(events.next()).await.unwrap()),
        describe(&guard(events.next()).await.unwrap()),
    ];
    assert_eq!(
        seen,
        ["spawn", "message String(\"ping\")"],
        "the child is still there"
    );
    child.disconnect();
    assert_eq!(
        described(events).await,
        ["disconnect", "exit code 0", "close code 0"]
    );
    assert_eq!(stdout_string(&mut child).await, "released\n");

    // Unref'd by the child itself: it ends while we are still connected.
    let mut child = fork_exe(FIXTURE, ["ipc-held"])
        .silent(true)
        .spawn()
        .unwrap();
    child.send(Value::from("unref")).await.unwrap();
    assert_eq!(
        timeline(&child).await,
        [
            "spawn",
            "message String(\"unref\")",
            "disconnect",
            "exit code 0",
            "close code 0"
        ]
    );
    assert_eq!(stdout_string(&mut child).await, "released\n");
}

#[tokio::test]
async fn exit_follows_disconnect_unless_a_grandchild_holds_the_channel() {
    // The child's end closes with it: every message, then Disconnect, then Exit (as Node).
    for _ in 0..20 {
        let child = Command::new("sh")
            .args(["-c", r#"printf '{"a":1}\n' >&3; exit 4"#])
            .fd(3, Stdio::Ipc)
            .spawn()
            .unwrap();
        assert_eq!(
            timeline(&child).await,
            [
                "spawn",
                "message Object([(\"a\", Number(1.0))])",
                "disconnect",
                "exit code 4",
                "close code 4"
            ]
        );
    }
    // A grandchild keeps the channel open: Exit is not held back for it.
    let script = format!("{FIXTURE} sleep 300 & exit 0");
    let child = Command::new("sh")
        .args(["-c", &script])
        .fd(3, Stdio::Ipc)
        .spawn()
        .unwrap();
    assert!(guard(child.wait()).await.unwrap().success());
    assert!(child.connected(), "the grandchild still holds the channel");
    assert_eq!(
        timeline(&child).await,
        ["spawn", "exit code 0", "disconnect", "close code 0"]
    );
}
