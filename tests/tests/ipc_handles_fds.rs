//! No fd leaks from handle passing: the parent's fd table returns to its size after handles
//! go both ways and are dropped. Alone in its binary: other tests' fds would blur the count.

mod common;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use childproc::ipc::Value;
use childproc::{fork_exe, Event, Events};
use common::{guard, FIXTURE};
use futures_util::StreamExt;

fn open_fds() -> usize {
    std::fs::read_dir("/dev/fd").unwrap().count()
}

/// Waits for the next message event; a handle that came with it is dropped (closed) with it.
async fn next_message(events: &mut Events) -> Value {
    loop {
        match guard(events.next()).await {
            Some(Event::Message(v)) | Some(Event::MessageWithHandle(v, _)) => return v,
            Some(Event::Spawn) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn sending_and_dropping_handles_leaks_no_fd() {
    let child = fork_exe(FIXTURE, ["ipc-handles"]).spawn().unwrap();
    let mut events = child.events();
    // One of each first, so the runtime's and the channel's own fds all exist.
    let round = async |child: &childproc::ChildProcess, events: &mut Events| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        guard(child.send_handle("listener", listener))
            .await
            .unwrap();
        assert_eq!(
            next_message(events).await.get("kind"),
            Some(&Value::from("TcpListener"))
        );
        // The child answers one connection.
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Read::read_to_end(&mut conn, &mut Vec::new()).unwrap();
        drop(conn);
        let (mine, theirs) = UnixStream::pair().unwrap();
        guard(child.send_handle("unix", theirs)).await.unwrap();
        next_message(events).await;
        drop(mine);
        let (pipe_r, pipe_w) = std::io::pipe().unwrap();
        guard(child.send_handle("pipe", OwnedFd::from(pipe_w)))
            .await
            .unwrap();
        next_message(events).await;
        drop(pipe_r);
        // Handles the child sends us: dropped with their events.
        guard(child.send("send-back")).await.unwrap();
        for _ in 0..3 {
            next_message(events).await;
        }
        let read = next_message(events).await; // EOF on both: we closed what we got
        assert!(read.get("read").is_some(), "{read:?}");
    };
    round(&child, &mut events).await;
    let baseline = open_fds();
    for _ in 0..10 {
        round(&child, &mut events).await;
    }
    assert_eq!(open_fds(), baseline, "fds leaked");
    child.disconnect();
    let _: Vec<Event> = guard(events.collect()).await;
}
