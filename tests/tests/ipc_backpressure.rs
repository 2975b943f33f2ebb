//! IPC receive backpressure: a parent that does not read its child's messages stops reading
//! the channel, so the child's sends wait; nothing is lost, order is kept, and the everyday
//! patterns do not deadlock (only `wait()`/`closed()`, a late stream, two streams of which one
//! is dropped, a child that exits with messages unread). And the child's side: a Rust child
//! that does not read pushes back on the parent's sends.

mod common;

use childproc::ipc::Value;
use childproc::{fork_exe, ChildProcess, ChildStdout, Event, Events, Fork, Lines, Stdio};
use common::{describe, guard, FIXTURE};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// A small mark, so a few thousand messages overflow it many times.
const MARK: usize = 16;

/// `fixture ipc-flood n every` with stdout piped (its `sent <k>` lines) and a mark of
/// [`MARK`] messages.
fn flood(n: u64, every: u64) -> Fork {
    fork_exe(
        FIXTURE,
        ["ipc-flood".to_string(), n.to_string(), every.to_string()],
    )
    .stdio([Stdio::Ignore, Stdio::Pipe, Stdio::Inherit, Stdio::Ipc])
    .ipc_high_water(MARK, 1 << 20)
}

/// Reads the child's stdout until the line `want` (the child's sends got that far); returns
/// the rest of it, to keep open while the child writes.
async fn until_line(child: &mut ChildProcess, want: &str) -> Lines<ChildStdout> {
    let mut lines = child.stdout.take().expect("stdout is piped").lines();
    while let Some(line) = guard(lines.next()).await {
        if line.expect("a line") == want {
            return lines;
        }
    }
    panic!("the child's stdout ended before {want:?}");
}

/// The `i` of every message, in arrival order.
fn numbers(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.get("i").and_then(Value::as_f64).expect("{i}") as u64),
            _ => None,
        })
        .collect()
}

/// The last three events' names.
fn tail(events: &[Event]) -> Vec<String> {
    events[events.len().saturating_sub(3)..]
        .iter()
        .map(describe)
        .collect()
}

const END: [&str; 3] = ["disconnect", "exit code 0", "close code 0"];

fn assert_all_in_order(events: &[Event], n: u64) {
    let got = numbers(events);
    assert_eq!(got.len() as u64, n, "messages lost");
    assert!(
        got.iter().enumerate().all(|(i, k)| *k == i as u64),
        "messages out of order"
    );
    assert_eq!(tail(events), END);
}

/// The next message's number, skipping `Spawn`.
async fn next_number(events: &mut Events) -> u64 {
    loop {
        match guard(events.next()).await.expect("a message") {
            Event::Spawn => {}
            Event::Message(m) => return m.get("i").and_then(Value::as_f64).expect("{i}") as u64,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_stops_reading_loses_nothing_and_keeps_the_order() {
    let mut child = flood(20_000, 100).spawn().unwrap();
    let events = child.events();
    // 200 sends went through while nobody read the stream: far more than its mark holds.
    let _stdout = until_line(&mut child, "sent 200").await;
    let events: Vec<Event> = guard(events.collect()).await;
    assert_all_in_order(&events, 20_000);
}

#[tokio::test]
async fn awaiting_only_wait_with_a_flooding_child_drops_what_nobody_reads() {
    // No stream: a child blocked on its full channel would never exit if the parent held
    // every message back for a stream that never comes.
    let child = flood(20_000, 0).spawn().unwrap();
    assert!(guard(child.wait()).await.unwrap().success());
    assert!(guard(child.closed()).await.unwrap().success());
    // A late stream gets the history: the first messages, up to the mark, and the lifecycle.
    let events: Vec<Event> = guard(child.events().collect()).await;
    assert_eq!(numbers(&events), (0..MARK as u64).collect::<Vec<_>>());
    assert_eq!(describe(&events[0]), "spawn");
    assert_eq!(tail(&events), END);
}

#[tokio::test]
async fn awaiting_only_closed_with_a_flooding_child_completes() {
    let mut child = flood(20_000, 100).spawn().unwrap();
    // The history is full and the reader paused before `closed()` is called.
    let _stdout = until_line(&mut child, "sent 200").await;
    assert!(guard(child.closed()).await.unwrap().success());
    let events: Vec<Event> = guard(child.events().collect()).await;
    assert_eq!(numbers(&events), (0..MARK as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_late_stream_takes_over_the_history_and_gets_every_message() {
    let mut child = flood(5_000, 100).spawn().unwrap();
    // No stream yet: the history fills to its mark and the reader waits for one.
    let _stdout = until_line(&mut child, "sent 200").await;
    let events: Vec<Event> = guard(child.events().collect()).await;
    assert_all_in_order(&events, 5_000);
    // A second stream gets the lifecycle only, as before.
    let later: Vec<String> = guard(child.events().collect::<Vec<_>>())
        .await
        .iter()
        .map(describe)
        .collect();
    assert_eq!(later, ["spawn", END[0], END[1], END[2]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_one_of_two_streams_lets_the_other_read_on() {
    let child = flood(5_000, 0).spawn().unwrap();
    let mut read = child.events();
    let unread = child.events();
    // The unread stream fills to the mark and the reader waits: the other gets that far…
    for i in 0..MARK as u64 {
        assert_eq!(next_number(&mut read).await, i);
    }
    // …and on once the unread one is dropped.
    drop(unread);
    let rest: Vec<Event> = guard(read.collect()).await;
    let got = numbers(&rest);
    assert_eq!(got, (MARK as u64..5_000).collect::<Vec<_>>());
    assert_eq!(tail(&rest), END);
}

#[tokio::test]
async fn a_child_that_exits_with_messages_unread_still_delivers_them_all() {
    // 100 small messages fit in the socket: the child exits while its stream, unread, is
    // full and the reader waits. Once the child is gone the rest is read, so `closed()`
    // completes, and the stream still gets every message.
    let child = flood(100, 0).ipc_high_water(8, 1 << 20).spawn().unwrap();
    let events = child.events();
    assert!(guard(child.closed()).await.unwrap().success());
    let events: Vec<Event> = guard(events.collect()).await;
    assert_all_in_order(&events, 100);
}

#[tokio::test]
async fn a_byte_mark_bounds_big_messages_too() {
    // A mark of 4 KiB holds a few 110-byte messages, far under the message mark.
    let mut child = flood(3_000, 100)
        .ipc_high_water(1 << 20, 4096)
        .spawn()
        .unwrap();
    let events = child.events();
    let _stdout = until_line(&mut child, "sent 200").await;
    let events: Vec<Event> = guard(events.collect()).await;
    assert_all_in_order(&events, 3_000);
}

#[tokio::test]
async fn a_rust_child_that_does_not_read_pushes_back_on_the_parent() {
    let mut child = fork_exe(FIXTURE, ["ipc-hold"])
        .stdio([Stdio::Pipe, Stdio::Pipe, Stdio::Inherit, Stdio::Ipc])
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut events = child.events();
    child.send("first").await.unwrap();
    let _stdout = until_line(&mut child, "holding").await;
    // The child's channel has read once and reads no more: the socket fills, then our queue
    // grows past 128 KiB and `send_nowait` says so. A channel that read ahead without a
    // bound would keep taking bytes and never push back.
    let chunk = Value::from("y".repeat(1024));
    let (mut sent, limit) = (0u64, 64u64 << 20);
    while child.send_nowait(chunk.clone()).unwrap() {
        sent += 1;
        assert!(sent * 1024 < limit, "no backpressure after {sent} KiB");
    }
    sent += 1; // the message that returned false is queued too
    assert!(
        sent * 1024 < 8 << 20,
        "the child took {sent} KiB before pushing back"
    );
    // Now it reads: every message arrives.
    stdin.write_all(b"go\n").await.unwrap();
    guard(child.send("end")).await.unwrap();
    loop {
        match guard(events.next()).await.expect("the answer") {
            Event::Message(m) => {
                assert_eq!(m.get("count").and_then(Value::as_f64), Some(sent as f64));
                break;
            }
            Event::Spawn => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(guard(child.closed()).await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_that_sends_everything_before_reading_the_echoes_does_not_deadlock() {
    // The echo child waits to write each echo before it reads on; the parent writes all its
    // messages before it reads any echo. Once the stream is full, the reader would pause,
    // the child's echo wait, and the parent's sends wait for the child: while our own sends
    // wait, the reader reads on.
    let child = fork_exe(FIXTURE, ["ipc-echo"])
        .ipc_high_water(MARK, 1 << 20)
        .spawn()
        .unwrap();
    let mut events = child.events();
    let payload = "z".repeat(200);
    for i in 0..3_000 {
        let message = Value::object([("i", Value::from(i)), ("pad", Value::from(&*payload))]);
        guard(child.send(message)).await.unwrap();
    }
    child.send("bye").await.unwrap();
    let events: Vec<Event> = guard(events.by_ref().collect()).await;
    let echoes: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => m.get("echo")?.get("i")?.as_f64().map(|n| n as u64),
            _ => None,
        })
        .collect();
    assert_eq!(echoes, (0..3_000).collect::<Vec<_>>());
    assert_eq!(tail(&events), END);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_child_flooding_a_small_mark_loses_nothing() {
    if !common::node() {
        return;
    }
    // With a mark of 16 the reader pauses and resumes hundreds of times against libuv's
    // writes (which queue in the Node child while the socket is full).
    let child = childproc::fork(common::script("echo.js"), ["count", "20000"])
        .ipc_high_water(MARK, 1 << 20)
        .spawn()
        .unwrap();
    let mut events = child.events();
    let mut got = Vec::new();
    while let Some(event) = guard(events.next()).await {
        if got.len() % 1000 == 0 {
            tokio::task::yield_now().await; // a consumer that falls behind now and then
        }
        got.push(event);
    }
    assert_all_in_order(&got, 20_000);
}
