//! Handle passing (Node's `send(message, sendHandle)`): sockets a Rust parent sends to a
//! Node child, which uses them; a Node parent's server used by a Rust child; Unix sockets
//! and pipes between Rust processes both ways; later sends held behind a handle.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use childproc::ipc::{Handle, Value};
use childproc::{fork, fork_exe, ChildProcess, Event, Events, Serialization, Signal};
use common::{guard, node, script, FIXTURE};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

/// The next message event (with or without a handle).
async fn next_message(events: &mut Events) -> (Value, Option<Handle>) {
    loop {
        match guard(events.next()).await {
            Some(Event::Message(v)) => return (v, None),
            Some(Event::MessageWithHandle(v, h)) => return (v, h.take()),
            Some(Event::Spawn) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

fn kind(what: &str) -> Value {
    Value::object([("kind", Value::from(what))])
}

fn node_child(mode: Serialization) -> (ChildProcess, Events) {
    let child = fork(script("handle-child.js"), [] as [&str; 0])
        .serialization(mode)
        .spawn()
        .unwrap();
    let events = child.events();
    (child, events)
}

async fn node_child_accepts_on_a_listener_sent_from_rust(mode: Serialization) {
    let (child, mut events) = node_child(mode);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    guard(child.send_handle(kind("server"), listener))
        .await
        .unwrap();
    let (report, _) = next_message(&mut events).await;
    assert_eq!(
        report.get("type"),
        Some(&Value::from("Server")),
        "{report:?}"
    );
    assert_eq!(report.get("got"), Some(&kind("server")));
    // Our copy is closed: only the Node child can accept this connection.
    let mut conn = guard(tokio::net::TcpStream::connect(("127.0.0.1", port)))
        .await
        .unwrap();
    let mut greeting = String::new();
    guard(conn.read_to_string(&mut greeting)).await.unwrap();
    assert_eq!(greeting, "hello from the node child\n");
    child.kill(Signal::SIGKILL);
}

#[tokio::test]
async fn a_node_child_accepts_on_a_tcp_listener_sent_from_rust() {
    if node() {
        node_child_accepts_on_a_listener_sent_from_rust(Serialization::Json).await;
    }
}

#[tokio::test]
async fn a_node_child_accepts_on_a_tcp_listener_sent_from_rust_in_advanced_mode() {
    if node() {
        node_child_accepts_on_a_listener_sent_from_rust(Serialization::Advanced).await;
    }
}

#[tokio::test]
async fn a_node_child_writes_to_a_tcp_stream_and_answers_on_a_udp_socket_sent_from_rust() {
    if !node() {
        return;
    }
    let (child, mut events) = node_child(Serialization::Json);
    // A connected TCP socket: the accepted end goes to Node, which writes and ends it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    guard(child.send_handle(kind("socket"), accepted))
        .await
        .unwrap();
    let (report, _) = next_message(&mut events).await;
    assert_eq!(
        report.get("type"),
        Some(&Value::from("Socket")),
        "{report:?}"
    );
    let greeting = tokio::task::spawn_blocking(move || {
        let mut s = String::new();
        client.read_to_string(&mut s).map(|_| s)
    });
    assert_eq!(
        guard(greeting).await.unwrap().unwrap(),
        "hello over the passed socket\n"
    );

    // A UDP socket: a dgram.Socket of family IPv4 (we sent dgramType udp4).
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    guard(child.send_handle(kind("dgram"), udp)).await.unwrap();
    let (report, _) = next_message(&mut events).await;
    assert_eq!(
        report.get("type"),
        Some(&Value::from("Socket")),
        "{report:?}"
    );
    assert_eq!(
        report.get("family"),
        Some(&Value::from("IPv4")),
        "{report:?}"
    );
    let me = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    me.send_to(b"ping", ("127.0.0.1", port)).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = guard(me.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"pong:ping");
    child.kill(Signal::SIGKILL);
}

#[tokio::test]
async fn messages_sent_after_a_handle_reach_a_node_child_after_it_in_order() {
    if !node() {
        return;
    }
    let (child, mut events) = node_child(Serialization::Json);
    let (_mine, theirs) = UnixStream::pair().unwrap();
    guard(child.send_handle("first", theirs)).await.unwrap();
    for i in 0..5 {
        child.send_nowait(i).unwrap();
    }
    let (report, _) = next_message(&mut events).await;
    assert_eq!(report.get("got"), Some(&Value::from("first")));
    assert_eq!(report.get("type"), Some(&Value::from("Socket")));
    for i in 0..5 {
        let (report, _) = next_message(&mut events).await;
        assert_eq!(report.get("got"), Some(&Value::from(i)), "{report:?}");
        assert_eq!(report.get("type"), Some(&Value::Null));
    }
    child.kill(Signal::SIGKILL);
}

fn node_parent_hands_a_server_to_a_rust_child(mode: &str) {
    let out = std::process::Command::new("node")
        .args([&script("handle-parent.js"), FIXTURE, mode])
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{mode}: {seen} / {stderr}");
    assert!(
        seen.contains(r#""kind":"TcpListener""#)
            && seen.contains(r#""greeting":"hello from rust\n""#),
        "{mode}: {seen} / {stderr}"
    );
}

#[tokio::test]
async fn a_node_parent_hands_a_server_to_a_rust_child() {
    if node() {
        tokio::task::spawn_blocking(|| node_parent_hands_a_server_to_a_rust_child("json"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_node_parent_hands_a_server_to_a_rust_child_in_advanced_mode() {
    if node() {
        tokio::task::spawn_blocking(|| node_parent_hands_a_server_to_a_rust_child("advanced"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn unix_sockets_and_pipes_travel_between_rust_processes_both_ways() {
    let child = fork_exe(FIXTURE, ["ipc-handles"]).spawn().unwrap();
    let mut events = child.events();

    // Parent → child: a socketpair end, then (held until the child's answer) a plain message.
    let (mine, theirs) = UnixStream::pair().unwrap();
    guard(child.send_handle("unix", theirs)).await.unwrap();
    child.send_nowait("plain after the handle").unwrap();
    let (report, _) = next_message(&mut events).await;
    assert_eq!(
        report.get("kind"),
        Some(&Value::from("UnixStream")),
        "{report:?}"
    );
    let (report, _) = next_message(&mut events).await;
    assert_eq!(
        report.get("got"),
        Some(&Value::from("plain after the handle"))
    );
    assert_eq!(report.get("kind"), Some(&Value::Null));
    let mut text = String::new();
    (&mine).read_to_string(&mut text).unwrap(); // EOF: the child dropped its copy
    assert_eq!(text, "rust was here");

    // A pipe's write end as a raw fd.
    let (mut pipe_r, pipe_w) = std::io::pipe().unwrap();
    guard(child.send_handle("pipe", OwnedFd::from(pipe_w)))
        .await
        .unwrap();
    let (report, _) = next_message(&mut events).await;
    assert_eq!(report.get("kind"), Some(&Value::from("Fd")), "{report:?}");
    let mut text = String::new();
    pipe_r.read_to_string(&mut text).unwrap();
    assert_eq!(text, "rust was here");

    // Child → parent: a socketpair end and a pipe's write end; the child reads what we write.
    guard(child.send("send-back")).await.unwrap();
    let _ = next_message(&mut events).await; // its report of "send-back"
    let (msg, unix) = next_message(&mut events).await;
    assert_eq!(msg, Value::from("unix"));
    let Some(Handle::UnixStream(mut unix)) = unix else {
        panic!("expected a Unix stream, got {unix:?}")
    };
    let (msg, pipe) = next_message(&mut events).await;
    assert_eq!(msg, Value::from("pipe"));
    let Some(Handle::Fd(pipe)) = pipe else {
        panic!("expected a raw fd, got {pipe:?}")
    };
    unix.write_all(b"from the parent").unwrap();
    drop(unix);
    std::fs::File::from(pipe)
        .write_all(b"into the pipe")
        .unwrap(); // and closed
    let (report, _) = next_message(&mut events).await;
    assert_eq!(
        report,
        Value::object([(
            "read",
            Value::Array(vec![
                Value::from("from the parent"),
                Value::from("into the pipe")
            ])
        )])
    );
    child.disconnect();
    let rest: Vec<Event> = guard(events.collect()).await;
    assert!(
        matches!(rest.last(), Some(Event::Close(s)) if s.code() == Some(0)),
        "{rest:?}"
    );
}
