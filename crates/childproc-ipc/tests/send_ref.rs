//! `Sender::send_ref` / `send_ref_nowait`: a value sent by reference goes out as the same
//! bytes as the value itself, in every serialization, stays the caller's, and fails as
//! `send` / `send_nowait` do. The peer is a plain socket read without blocking.

use childproc_ipc::{
    AdvancedCodec, AnyCodec, IpcError, LengthJsonCodec, MsgPackCodec, NodeJsonCodec, Value,
};

mod common;
use common::{channel_and_peer, readable_now};

fn codecs() -> [AnyCodec; 4] {
    [
        AnyCodec::NodeJson(NodeJsonCodec::new()),
        AnyCodec::LengthJson(LengthJsonCodec::new()),
        AnyCodec::MsgPack(MsgPackCodec::new()),
        AnyCodec::Advanced(AdvancedCodec::new()),
    ]
}

#[tokio::test]
async fn a_value_sent_by_reference_is_the_same_bytes_and_stays_the_callers() {
    let value = Value::object([
        ("id", Value::from(7)),
        (
            "task",
            Value::object([("s", Value::from("hé")), ("n", Value::from(1.5))]),
        ),
        ("list", Value::Array(vec![Value::Null, Value::from(true)])),
    ]);
    for codec in codecs() {
        let (channel, mut peer) = channel_and_peer(codec.clone());
        let tx = channel.sender();
        tx.send(value.clone()).await.unwrap();
        let owned = readable_now(&mut peer);
        assert!(!owned.is_empty(), "{codec:?}");
        tx.send_ref(&value).await.unwrap();
        assert_eq!(readable_now(&mut peer), owned, "send_ref, {codec:?}");
        // A burst: the first goes out at once, the next queue behind it; the awaited send
        // after them writes the queue.
        assert!(tx.send_ref_nowait(&value).unwrap());
        assert!(tx.send_ref_nowait(&value).unwrap());
        tx.send_ref(&value).await.unwrap();
        assert_eq!(readable_now(&mut peer), owned.repeat(3), "{codec:?}");
    }
    // Still the caller's, unchanged.
    assert_eq!(value.get("id"), Some(&Value::from(7)));
}

#[tokio::test]
async fn sending_by_reference_fails_as_sending_does_and_writes_nothing() {
    let (channel, mut peer) = channel_and_peer(AnyCodec::NodeJson(NodeJsonCodec::new()));
    let tx = channel.sender();
    // JSON cannot carry a BigInt: an error naming it, nothing written, the channel open.
    let bad = Value::BigInt("1".into());
    let err = tx.send_ref(&bad).await.unwrap_err();
    assert!(err.to_string().contains("BigInt"), "{err}");
    assert!(tx.send_ref_nowait(&bad).is_err());
    assert!(readable_now(&mut peer).is_empty());
    tx.send_ref(&Value::from(1)).await.unwrap();
    assert_eq!(readable_now(&mut peer), b"1\n");
    // A closed channel: `send_ref` says so, `send_ref_nowait` answers false, as Node's send.
    tx.close();
    assert!(matches!(
        tx.send_ref(&Value::from(2)).await,
        Err(IpcError::Closed)
    ));
    assert!(!tx.send_ref_nowait(&Value::from(2)).unwrap());
    assert!(readable_now(&mut peer).is_empty());
}
