//! Workers over a byte stream (`channel_over_stdio`): the channel on the child's stdin and
//! stdout, directly and through a relay that only copies bytes (the fixture's `relay`, a
//! stand-in for `ssh host cmd`), in every serialization; a relay that drops or corrupts the
//! stream; handles refused; a pool mixing local and relayed workers.

mod common;

use std::collections::HashSet;

use childproc::ipc::Value;
use childproc::{fork_exe, Event, Fork, Pool, Serialization};
use common::{described, guard, FIXTURE};
use futures_util::StreamExt;

/// `ipc-echo` through the relay.
fn relayed(args: &[&str], worker: &str) -> Fork {
    let mut all = vec!["relay"];
    all.extend(args);
    all.extend(["--", FIXTURE, worker]);
    fork_exe(FIXTURE, all).channel_over_stdio()
}

async fn next_message(events: &mut childproc::Events) -> Value {
    loop {
        match guard(events.next()).await {
            Some(Event::Message(m)) => return m,
            Some(Event::Spawn) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn messages_cross_stdio_directly_and_through_a_relay_in_every_serialization() {
    let modes = [
        Serialization::LengthJson,
        Serialization::MsgPack,
        Serialization::Advanced,
        Serialization::Json,
    ];
    for mode in modes {
        for fork in [
            fork_exe(FIXTURE, ["ipc-echo"]).channel_over_stdio(),
            relayed(&[], "ipc-echo"),
        ] {
            let child = fork.serialization(mode).spawn().unwrap();
            assert!(
                child.stdin.is_none() && child.stdout.is_none(),
                "they carry the channel"
            );
            let mut events = child.events();
            let hello = next_message(&mut events).await;
            assert_eq!(
                hello.get("hello"),
                Some(&Value::from("from rust")),
                "{mode:?}"
            );
            let sent = Value::object([
                ("n", Value::from(1.5)),
                ("s", Value::from("é€😀")),
                ("list", Value::Array(vec![Value::Bool(true), Value::Null])),
            ]);
            for _ in 0..3 {
                child.send(sent.clone()).await.unwrap();
                let echo = next_message(&mut events).await;
                assert_eq!(echo.get("echo"), Some(&sent), "{mode:?}");
            }
            child.send("bye").await.unwrap();
            assert_eq!(
                described(events).await,
                ["disconnect", "exit code 0", "close code 0"],
                "{mode:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_parent_disconnecting_ends_a_relayed_worker() {
    let child = relayed(&[], "ipc-echo")
        .serialization(Serialization::MsgPack)
        .spawn()
        .unwrap();
    let mut events = child.events();
    next_message(&mut events).await;
    child.disconnect();
    assert!(child.channel().is_none());
    // The worker reads EOF through the relay, leaves its loop and exits; so does the relay.
    assert_eq!(
        described(events).await,
        ["disconnect", "exit code 0", "close code 0"]
    );
}

#[tokio::test]
async fn handles_cannot_cross_a_byte_stream() {
    let child = fork_exe(FIXTURE, ["ipc-echo"])
        .channel_over_stdio()
        .spawn()
        .unwrap();
    let (_keep, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let err = child.send_handle("h", theirs).await.unwrap_err();
    assert!(
        err.to_string().contains("cannot cross a byte stream"),
        "{err}"
    );
    // The channel is still good.
    let mut events = child.events();
    next_message(&mut events).await;
    child.send("bye").await.unwrap();
    assert_eq!(
        described(events).await,
        ["disconnect", "exit code 0", "close code 0"]
    );
}

#[tokio::test]
async fn a_relay_that_drops_the_connection_ends_the_channel_and_leaves_no_process() {
    // Cut inside the greeting's frame: the frame is incomplete at the end of the stream.
    let child = relayed(&["--truncate", "9"], "ipc-echo")
        .serialization(Serialization::LengthJson)
        .spawn()
        .unwrap();
    let pid = child.pid();
    let seen = described(child.events()).await;
    assert!(
        seen.iter()
            .any(|e| e.starts_with("error") && e.contains("ended inside a frame")),
        "{seen:?}"
    );
    assert!(seen.contains(&"disconnect".to_string()), "{seen:?}");
    assert_eq!(
        seen.last().map(String::as_str),
        Some("close code 0"),
        "{seen:?}"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "reaped"
    );
}

#[tokio::test]
async fn a_relay_that_corrupts_the_stream_is_a_clear_error_and_nothing_hangs() {
    // Byte 6 of the stream is inside the greeting's MessagePack payload.
    let child = relayed(&["--corrupt", "6"], "ipc-echo")
        .serialization(Serialization::MsgPack)
        .spawn()
        .unwrap();
    let seen = described(child.events()).await;
    let error = seen.iter().find(|e| e.starts_with("error")).cloned();
    assert!(error.is_some(), "{seen:?}");
    assert!(seen.contains(&"disconnect".to_string()), "{seen:?}");
    assert!(
        seen.last().is_some_and(|e| e.starts_with("close")),
        "{seen:?}"
    );
    // A corrupted length prefix says what it read.
    let child = relayed(&["--corrupt", "0"], "ipc-echo")
        .serialization(Serialization::LengthJson)
        .spawn()
        .unwrap();
    let seen = described(child.events()).await;
    assert!(
        seen.iter().any(|e| e.starts_with("error")),
        "a 4 GiB prefix is refused: {seen:?}"
    );
    assert!(
        seen.last().is_some_and(|e| e.starts_with("close")),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_mixes_local_and_relayed_workers() {
    let started = std::sync::atomic::AtomicUsize::new(0);
    let pool = Pool::builder(move || {
        let n = started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fork = if n.is_multiple_of(2) {
            fork_exe(FIXTURE, ["pool-worker"])
        } else {
            relayed(&[], "pool-worker")
        };
        fork.serialization(Serialization::MsgPack)
    })
    .size(2)
    .build()
    .unwrap();
    let answers = futures_util::future::join_all((0..20).map(|i| {
        let pool = &pool;
        async move { (i, pool.run(Value::object([("echo", Value::from(i))])).await) }
    }))
    .await;
    for (i, answer) in answers {
        assert_eq!(answer.unwrap(), Value::from(i));
    }
    // Both workers answered, each a different process.
    let mut pids = HashSet::new();
    for _ in 0..40 {
        let pid = guard(pool.run("pid")).await.unwrap();
        pids.insert(pid.as_f64().unwrap() as u32);
        if pids.len() == 2 {
            break;
        }
    }
    assert_eq!(pids.len(), 2, "{pids:?}");
    let summary = guard(pool.close()).await;
    assert_eq!(summary.stats.crashed, 0);
}
