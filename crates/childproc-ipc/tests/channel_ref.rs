//! `channel.ref()` / `channel.unref()`: an open, referenced channel keeps
//! `wait_referenced()` waiting; unref, disconnect (either side) or dropping every handle of
//! it releases it. A test binary of its own: the count is process-wide.

use std::time::Duration;

use childproc_ipc::{wait_referenced, Channel, NodeJsonCodec, Value};
use futures_util::StreamExt;
use tokio::net::UnixStream;
use tokio::task::JoinHandle;

/// A guard against hangs only; never a synchronisation.
const GUARD: Duration = Duration::from_secs(30);

fn pair() -> (Channel<NodeJsonCodec>, Channel<NodeJsonCodec>) {
    let (a, b) = UnixStream::pair().unwrap();
    (
        Channel::new(a, NodeJsonCodec::new()).unwrap(),
        Channel::new(b, NodeJsonCodec::new()).unwrap(),
    )
}

/// Whether `waiter` is still pending after a message has gone from `from` to `to` — real
/// work on the runtime, during which a waiter that could finish would have.
async fn still_waiting(
    from: &Channel<NodeJsonCodec>,
    to: &mut Channel<NodeJsonCodec>,
    waiter: &JoinHandle<()>,
) -> bool {
    from.sender().send(Value::from("ping")).await.unwrap();
    assert_eq!(to.next().await.unwrap().unwrap(), Value::from("ping"));
    tokio::task::yield_now().await;
    !waiter.is_finished()
}

async fn finishes(waiter: JoinHandle<()>) {
    tokio::time::timeout(GUARD, waiter)
        .await
        .expect("wait_referenced did not resolve")
        .unwrap();
}

#[tokio::test]
async fn open_channels_hold_wait_referenced_until_unrefd_closed_or_dropped() {
    let (a, mut b) = pair();
    assert!(a.is_referenced() && b.is_referenced());

    // Both ends are open and referenced.
    let waiter = tokio::spawn(wait_referenced());
    assert!(still_waiting(&a, &mut b, &waiter).await);
    a.unref();
    assert!(!a.is_referenced() && a.connected());
    assert!(still_waiting(&a, &mut b, &waiter).await, "b still counts");
    b.sender().unref(); // the same channel, through its sender
    assert!(!b.is_referenced());
    finishes(waiter).await;

    // ref() again holds it; the peer disconnecting releases it once b reads the EOF.
    b.ref_();
    assert!(b.is_referenced());
    let waiter = tokio::spawn(wait_referenced());
    let (mut a, mut b) = (a, b);
    assert!(still_waiting(&a, &mut b, &waiter).await);
    a.disconnect();
    assert!(b.next().await.is_none());
    assert!(!b.is_referenced() && !b.connected());
    finishes(waiter).await;
    b.ref_();
    assert!(!b.is_referenced(), "a closed channel never counts again");

    // Dropping every handle of a channel releases it too.
    let (c, mut d) = pair();
    let waiter = tokio::spawn(wait_referenced());
    assert!(still_waiting(&c, &mut d, &waiter).await);
    drop(c);
    drop(d);
    finishes(waiter).await;
}
