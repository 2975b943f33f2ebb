//! `Sender::cork`: while a cork lives, sends only queue; dropping the last one writes them
//! together. The peer is a plain socket read without blocking, so "nothing was written" is
//! an observation (the read would block), not a wait.

use std::time::Duration;

use childproc_ipc::{AnyCodec, NodeJsonCodec, Value};

mod common;
use common::{channel_and_peer, readable_now};

/// A guard against hangs only; never a synchronisation.
const GUARD: Duration = Duration::from_secs(30);

#[tokio::test]
async fn corked_sends_wait_for_the_last_cork_then_go_out_together() {
    let (channel, mut peer) = channel_and_peer(AnyCodec::NodeJson(NodeJsonCodec::new()));
    let tx = channel.sender();
    let outer = tx.cork();
    let inner = tx.clone().cork(); // corks nest, from any clone
    for word in ["one", "two", "three"] {
        assert!(tx.send_nowait(Value::from(word)).unwrap());
    }
    assert!(readable_now(&mut peer).is_empty(), "written while corked");
    assert!(tx.backlog() > 0);
    drop(inner);
    assert!(readable_now(&mut peer).is_empty(), "one cork is still open");
    drop(outer);
    assert_eq!(readable_now(&mut peer), b"\"one\"\n\"two\"\n\"three\"\n");
    assert_eq!(tx.backlog(), 0);

    // Uncorked, a send goes out at once again.
    tx.send(Value::from("four")).await.unwrap();
    assert_eq!(readable_now(&mut peer), b"\"four\"\n");
}

#[tokio::test]
async fn an_awaited_send_resolves_once_its_cork_is_dropped() {
    let (channel, mut peer) = channel_and_peer(AnyCodec::NodeJson(NodeJsonCodec::new()));
    let tx = channel.sender();
    let cork = tx.cork();
    let sending = tokio::spawn({
        let tx = tx.clone();
        async move { tx.send(Value::from("held")).await }
    });
    // Let the send run until it waits: it has queued its frame, which stays unwritten.
    while tx.backlog() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(!sending.is_finished());
    assert!(readable_now(&mut peer).is_empty());
    drop(cork);
    let sent = tokio::time::timeout(GUARD, sending)
        .await
        .expect("the send never resolved");
    sent.unwrap().unwrap();
    assert_eq!(readable_now(&mut peer), b"\"held\"\n");
}

#[tokio::test]
async fn a_cork_dropped_after_the_peer_left_reports_the_failed_write() {
    let (channel, peer) = channel_and_peer(AnyCodec::NodeJson(NodeJsonCodec::new()));
    let tx = channel.sender();
    let cork = tx.cork();
    assert!(tx.send_nowait(Value::from("lost")).unwrap());
    drop(peer);
    drop(cork);
    assert!(tx.take_error().is_some(), "the failed write was not kept");
}
