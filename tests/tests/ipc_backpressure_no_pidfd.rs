//! Receive backpressure on the fallback for kernels without pidfds (forced; a test binary of
//! its own, because the switch is process-wide): the paused reader learns of the child's
//! exit through SIGCHLD, so a child that exits with its stream full still closes.

mod common;

use childproc::ipc::Value;
use childproc::{fork_exe, Event};
use common::{describe, guard, FIXTURE};
use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_exits_with_its_stream_full_closes_without_pidfds() {
    childproc::__force_no_pidfd(true);
    let child = fork_exe(FIXTURE, ["ipc-flood", "100", "0"])
        .ipc_high_water(8, 1 << 20)
        .spawn()
        .unwrap();
    assert!(child.pidfd().is_none());
    let events = child.events();
    assert!(guard(child.closed()).await.unwrap().success());
    let events: Vec<Event> = guard(events.collect()).await;
    let got: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => m.get("i").and_then(Value::as_f64).map(|n| n as u64),
            _ => None,
        })
        .collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    let tail: Vec<String> = events[events.len() - 3..].iter().map(describe).collect();
    assert_eq!(tail, ["disconnect", "exit code 0", "close code 0"]);
}
