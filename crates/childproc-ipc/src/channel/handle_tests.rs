//! Handle passing between two channels, and a raw peer that sends what no good peer would.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::UnixStream;

use super::*;
use crate::serialization::{AnyCodec, Serialization};
use crate::sys;

fn pair(mode: Serialization) -> (Channel<AnyCodec>, Channel<AnyCodec>) {
    let (a, b) = UnixStream::pair().unwrap();
    (
        Channel::new(a, mode.codec().unwrap()).unwrap(),
        Channel::new(b, mode.codec().unwrap()).unwrap(),
    )
}

/// A channel and the raw socket of its peer, which writes whatever a test wants.
fn raw_peer() -> (Channel<AnyCodec>, StdUnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    let raw = b.into_std().unwrap();
    raw.set_nonblocking(false).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    (
        Channel::new(a, Serialization::Json.codec().unwrap()).unwrap(),
        raw,
    )
}

/// Reads one json line from a raw peer.
fn read_line(raw: &mut StdUnixStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8];
    while byte[0] != b'\n' {
        raw.read_exact(&mut byte).unwrap();
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

async fn guard<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("timed out")
}

/// One side reads its channel in a task (so answers to its handles arrive) and hands over
/// what it got.
fn reader(mut ch: Channel<AnyCodec>) -> tokio::sync::mpsc::UnboundedReceiver<Incoming> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(incoming)) = ch.recv().await {
            if tx.send(incoming).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test]
async fn unix_sockets_and_pipe_fds_travel_both_ways_as_the_same_objects() {
    for mode in [Serialization::Json, Serialization::Advanced] {
        let (a, b) = pair(mode);
        let (a_tx, b_tx) = (a.sender(), b.sender());
        let (mut a_rx, mut b_rx) = (reader(a), reader(b));
        for (tx, rx) in [(&a_tx, &mut b_rx), (&b_tx, &mut a_rx)] {
            // A socketpair end: what the receiver writes into it comes out of ours.
            let (mine, theirs) = StdUnixStream::pair().unwrap();
            guard(tx.send_handle(Value::from("socket"), theirs))
                .await
                .unwrap();
            let got = guard(rx.recv()).await.unwrap();
            assert_eq!(got.message, Value::from("socket"), "{mode}");
            let Some(Handle::UnixStream(mut s)) = got.handle else {
                panic!("{mode}: expected a Unix stream, got {:?}", got.handle)
            };
            s.write_all(b"through the socket").unwrap();
            drop(s);
            let mut text = String::new();
            (&mine).read_to_string(&mut text).unwrap();
            assert_eq!(text, "through the socket");

            // A pipe's write end, as a raw fd.
            let (mut pipe_r, pipe_w) = std::io::pipe().unwrap();
            guard(tx.send_handle(Value::from(7), OwnedFd::from(pipe_w)))
                .await
                .unwrap();
            let got = guard(rx.recv()).await.unwrap();
            assert_eq!(got.message, Value::from(7));
            let Some(Handle::Fd(fd)) = got.handle else {
                panic!("{mode}: expected a raw fd, got {:?}", got.handle)
            };
            std::fs::File::from(fd)
                .write_all(b"through the pipe")
                .unwrap();
            let mut text = String::new();
            pipe_r.read_to_string(&mut text).unwrap(); // EOF: every write end is closed
            assert_eq!(text, "through the pipe");
        }
    }
}

#[tokio::test]
async fn sends_after_a_handle_are_held_until_the_answer_and_keep_their_order() {
    let (a, mut b) = pair(Serialization::Json);
    let tx = a.sender();
    let _a_rx = reader(a);
    let (_keep, theirs) = StdUnixStream::pair().unwrap();
    guard(tx.send_handle(Value::from("handle"), theirs))
        .await
        .unwrap();
    // As Node's send(): true for the first message held behind the handle, false for the
    // ones after it (they wait in its queue).
    for i in 0..3 {
        assert_eq!(tx.send_nowait(Value::from(i)).unwrap(), i == 0, "send {i}");
    }
    // The socket has room, yet nothing went: the frames wait for the peer's answer.
    assert!(tx.backlog() > 0, "plain sends were not held back");
    let first = guard(b.recv()).await.unwrap().unwrap(); // b answers NODE_HANDLE_ACK now
    assert_eq!(first.message, Value::from("handle"));
    assert!(first.handle.is_some());
    for i in 0..3 {
        let next = guard(b.recv()).await.unwrap().unwrap();
        assert_eq!(next.message, Value::from(i));
        assert!(next.handle.is_none());
    }
    // An awaited send goes out at once again, and send_nowait says true again.
    guard(tx.send(Value::from("after"))).await.unwrap();
    assert_eq!(tx.backlog(), 0);
    assert!(tx.send_nowait(Value::from("later")).unwrap());
}

#[tokio::test]
async fn the_plain_stream_keeps_handles_for_take_handle() {
    let (a, mut b) = pair(Serialization::Json);
    let tx = a.sender();
    let _a_rx = reader(a);
    let (_keep, theirs) = StdUnixStream::pair().unwrap();
    guard(tx.send_handle(Value::from("h"), theirs))
        .await
        .unwrap();
    // Held until b answers, which it does when it reads the handle: do not await it here.
    tx.send_nowait(Value::from("plain")).unwrap();
    assert_eq!(guard(b.next()).await.unwrap().unwrap(), Value::from("h"));
    assert_eq!(
        guard(b.next()).await.unwrap().unwrap(),
        Value::from("plain")
    );
    assert!(matches!(b.take_handle(), Some(Handle::UnixStream(_))));
    assert!(b.take_handle().is_none());
}

#[tokio::test]
async fn a_handle_frame_without_an_fd_is_nacked_and_not_delivered() {
    let (mut ch, mut raw) = raw_peer();
    raw.write_all(b"{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Socket\",\"msg\":1}\n\"after\"\n")
        .unwrap();
    let next = guard(ch.recv()).await.unwrap().unwrap();
    assert_eq!(next.message, Value::from("after"));
    assert!(next.handle.is_none());
    assert_eq!(read_line(&mut raw), "{\"cmd\":\"NODE_HANDLE_NACK\"}\n");
    // An unsolicited answer is ignored, never delivered.
    raw.write_all(b"{\"cmd\":\"NODE_HANDLE_ACK\"}\n\"last\"\n")
        .unwrap();
    assert_eq!(
        guard(ch.recv()).await.unwrap().unwrap().message,
        Value::from("last")
    );
}

#[tokio::test]
async fn an_fd_sent_with_a_plain_message_waits_for_the_next_handle_frame() {
    let (mut ch, mut raw) = raw_peer();
    let (mut pipe_r, pipe_w) = std::io::pipe().unwrap();
    let sent = sys::send_with_fds(&raw, b"\"plain\"\n", &[pipe_w.as_fd()]).unwrap();
    assert_eq!(sent, 8);
    drop(pipe_w);
    let plain = guard(ch.recv()).await.unwrap().unwrap();
    assert_eq!(plain.message, Value::from("plain"));
    assert!(
        plain.handle.is_none(),
        "Node gives a plain message no handle"
    );
    // A handle frame with no fd of its own gets the one that waited (Node's rule).
    raw.write_all(b"{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Socket\",\"msg\":\"wrapped twice\"}}\n")
        .unwrap();
    let got = guard(ch.recv()).await.unwrap().unwrap();
    assert_eq!(
        got.message,
        Value::from("wrapped twice"),
        "Node's resend quirk"
    );
    assert_eq!(read_line(&mut raw), "{\"cmd\":\"NODE_HANDLE_ACK\"}\n");
    let Some(Handle::Fd(fd)) = got.handle else {
        panic!("expected the pipe, got {:?}", got.handle)
    };
    std::fs::File::from(fd).write_all(b"same pipe").unwrap();
    let mut text = String::new();
    pipe_r.read_to_string(&mut text).unwrap();
    assert_eq!(text, "same pipe");
}

#[tokio::test]
async fn a_truncated_control_message_closes_its_fds_and_the_channel_goes_on() {
    let (mut ch, mut raw) = raw_peer();
    let (mut pipe_r, pipe_w) = std::io::pipe().unwrap();
    let dups: Vec<OwnedFd> = (0..20)
        .map(|_| pipe_w.as_fd().try_clone_to_owned().unwrap())
        .collect();
    let borrowed: Vec<_> = dups.iter().map(|fd| fd.as_fd()).collect();
    sys::send_with_fds(&raw, b"\"many\"\n", &borrowed).unwrap();
    drop(borrowed);
    drop(dups);
    drop(pipe_w);
    let next = guard(ch.recv()).await.unwrap().unwrap();
    assert_eq!(next.message, Value::from("many"));
    assert_eq!(ch.truncated_reads(), 1);
    // None of the 20 stayed open here: the pipe reads EOF.
    let eof = tokio::task::spawn_blocking(move || {
        let mut rest = Vec::new();
        pipe_r.read_to_end(&mut rest).map(|_| rest)
    });
    assert!(guard(eof).await.unwrap().unwrap().is_empty());
    // No fd waits, so the next handle frame is refused.
    raw.write_all(b"{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":0}\n\"ok\"\n")
        .unwrap();
    assert_eq!(
        guard(ch.recv()).await.unwrap().unwrap().message,
        Value::from("ok")
    );
    assert_eq!(read_line(&mut raw), "{\"cmd\":\"NODE_HANDLE_NACK\"}\n");
}

#[tokio::test]
async fn a_handle_frame_goes_out_with_its_fd_even_behind_a_full_socket() {
    // A backlog of big frames before and after the handle: the writes stop short of the
    // handle frame, and its first bytes carry the fd.
    let (a, b) = pair(Serialization::Json);
    let tx = a.sender();
    let _a_rx = reader(a);
    let big = "x".repeat(300_000);
    for _ in 0..3 {
        tx.send_nowait(Value::from(big.as_str())).unwrap();
    }
    let (mine, theirs) = StdUnixStream::pair().unwrap();
    let sent = tx.send_handle(Value::from("h"), theirs);
    let mut b_rx = reader(b);
    guard(sent).await.unwrap();
    tx.send_nowait(Value::from(big.as_str())).unwrap();
    for _ in 0..3 {
        assert_eq!(
            guard(b_rx.recv()).await.unwrap().message,
            Value::from(big.as_str())
        );
    }
    let got = guard(b_rx.recv()).await.unwrap();
    let Some(Handle::UnixStream(mut s)) = got.handle else {
        panic!("no handle")
    };
    s.write_all(b"hi").unwrap();
    drop(s);
    let mut text = String::new();
    (&mine).read_to_string(&mut text).unwrap();
    assert_eq!(text, "hi");
    assert_eq!(
        guard(b_rx.recv()).await.unwrap().message,
        Value::from(big.as_str())
    );
}

#[tokio::test]
async fn a_peer_that_closes_with_our_answer_unread_is_a_plain_disconnect() {
    // Found by the channel_control fuzz target: the kernel reports ECONNRESET to the reader
    // when the peer closed with bytes of ours unread; Node takes any failed read as the
    // disconnect, without an error, and so must we.
    let (mut ch, mut raw) = raw_peer();
    raw.write_all(b"{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Socket\",\"msg\":1}\n\"after\"\n")
        .unwrap();
    let next = guard(ch.recv()).await.unwrap().unwrap();
    assert_eq!(next.message, Value::from("after"));
    // The NACK went out within that `recv` (the first answer is written at once): it is
    // in the peer's socket, unread, when the peer closes it.
    drop(raw);
    assert!(
        guard(ch.recv()).await.is_none(),
        "the stream ends without an error"
    );
    assert!(!ch.connected());
}
