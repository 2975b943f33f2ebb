//! `subprocess.channel.ref()` / `.unref()`: in Node the parent's event loop stays alive while
//! a child's channel is connected and referenced, even if the child itself is unref'd. Here
//! that loop's wait is `childproc::wait_referenced()`. A test binary of its own, whose tests
//! take turns: `wait_referenced` counts every child and channel of the process.

mod common;

use childproc::ipc::Value;
use childproc::{fork, fork_exe, ChildProcess, Event, Events};
use common::{guard, node, script, FIXTURE};
use futures_util::StreamExt;
use tokio::task::JoinHandle;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The events after `Spawn` and the child's greeting.
async fn greeted(child: &ChildProcess) -> Events {
    let mut events = child.events();
    assert!(matches!(guard(events.next()).await, Some(Event::Spawn)));
    assert!(matches!(
        guard(events.next()).await,
        Some(Event::Message(_))
    ));
    events
}

/// Whether `waiter` is still pending after one more exchange with the echo child — real
/// work on the runtime, during which a waiter that could finish would have.
async fn still_waiting(child: &ChildProcess, events: &mut Events, waiter: &JoinHandle<()>) -> bool {
    child.send(Value::from("ping")).await.unwrap();
    match guard(events.next()).await {
        Some(Event::Message(m)) => assert_eq!(m.get("echo"), Some(&Value::from("ping"))),
        other => panic!("expected the echo, got {other:?}"),
    }
    tokio::task::yield_now().await;
    !waiter.is_finished()
}

/// An unref'd child holds `wait_referenced` through its channel until the channel is
/// unref'd; ref'd again, until it is disconnected.
async fn channel_ref_unref(child: ChildProcess) {
    let mut events = greeted(&child).await;
    let channel = child.channel().expect("a forked child has a channel");
    assert!(child.is_referenced() && channel.is_referenced());
    child.unref();

    let waiter = tokio::spawn(childproc::wait_referenced());
    assert!(
        still_waiting(&child, &mut events, &waiter).await,
        "child.unref() alone must not release the parent while the channel is connected"
    );
    channel.unref();
    assert!(!channel.is_referenced() && child.connected());
    guard(waiter).await.unwrap();

    channel.ref_();
    assert!(channel.is_referenced());
    let waiter = tokio::spawn(childproc::wait_referenced());
    assert!(still_waiting(&child, &mut events, &waiter).await);
    child.disconnect();
    guard(waiter).await.unwrap();
    assert!(
        !channel.is_referenced(),
        "a disconnected channel no longer counts"
    );

    child.ref_();
    guard(child.closed()).await.unwrap();
}

#[tokio::test]
async fn a_connected_channel_holds_wait_referenced_until_unrefd_or_disconnected() {
    let _turn = TURN.lock().await;
    channel_ref_unref(fork_exe(FIXTURE, ["ipc-echo"]).spawn().unwrap()).await;
}

#[tokio::test]
async fn the_same_with_a_node_child() {
    if !node() {
        return;
    }
    let _turn = TURN.lock().await;
    channel_ref_unref(fork(script("echo.js"), [] as [&str; 0]).spawn().unwrap()).await;
}

#[tokio::test]
async fn the_child_disconnecting_releases_an_unrefd_childs_channel() {
    let _turn = TURN.lock().await;
    let child = fork_exe(FIXTURE, ["ipc-echo"]).spawn().unwrap();
    let mut events = greeted(&child).await;
    let channel = child.channel().unwrap().clone();
    child.unref();
    let waiter = tokio::spawn(childproc::wait_referenced());
    assert!(still_waiting(&child, &mut events, &waiter).await);
    child.send(Value::from("bye")).await.unwrap(); // the child disconnects and exits
    guard(waiter).await.unwrap();
    assert!(!channel.is_referenced());
    assert!(child.channel().is_none());
    guard(child.closed()).await.unwrap();
}
