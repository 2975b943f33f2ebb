//! A pseudo-terminal for the child (`Stdio::Pty`, `Command::pty`), with real programs: the
//! fixture's `tty` role, `stty`, `sh -i`, a resize the child sees, a child that exits with
//! its output unread, and a parent that drops the master first.

use childproc::{Command, Event, PtySize, Signal, Stdio};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{guard, stdout_string, FIXTURE};

/// Reads `pty` until its output so far contains `want`; returns all of it.
async fn read_until(pty: &mut childproc::Pty, want: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    while !String::from_utf8_lossy(&seen).contains(want) {
        let n = guard(pty.read(&mut buf)).await.expect("read the pty");
        assert!(
            n > 0,
            "EOF before {want:?}: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// The child sees a terminal on 0–2, has it as its controlling terminal and leads a session.
pub async fn pty_is_the_controlling_terminal() {
    let mut child = Command::new(FIXTURE)
        .arg("tty")
        .pty(PtySize::default())
        .spawn()
        .unwrap();
    assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
    let mut pty = child.pty.take().expect("a pty");
    let mut out = String::new();
    guard(pty.read_to_string(&mut out)).await.unwrap();
    assert_eq!(out.trim(), "tty 0=yes 1=yes 2=yes ctty=yes leader=yes");
    assert!(guard(child.closed()).await.unwrap().success());

    // Only stdin on the terminal: stdout stays a pipe.
    let mut mixed = Command::new(FIXTURE)
        .arg("tty")
        .stdin(Stdio::Pty)
        .stdout(Stdio::Pipe)
        .spawn()
        .unwrap();
    assert!(mixed.pty.is_some());
    assert_eq!(
        stdout_string(&mut mixed).await.trim(),
        "tty 0=yes 1=no 2=no ctty=yes leader=yes"
    );
}

/// `stty size` reads the size given; a resize reaches the child as SIGWINCH.
pub async fn pty_size_and_resize() {
    let mut child = Command::new("stty")
        .arg("size")
        .pty(PtySize {
            rows: 30,
            cols: 100,
        })
        .spawn()
        .unwrap();
    let mut pty = child.pty.take().unwrap();
    assert_eq!(
        pty.size().unwrap(),
        PtySize {
            rows: 30,
            cols: 100
        }
    );
    let mut out = String::new();
    guard(pty.read_to_string(&mut out)).await.unwrap();
    assert_eq!(out.trim(), "30 100");

    let script = "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done";
    let mut child = Command::new("sh")
        .args(["-c", script])
        .pty(PtySize::default())
        .spawn()
        .unwrap();
    let mut pty = child.pty.take().unwrap();
    read_until(&mut pty, "ready").await;
    pty.resize(PtySize {
        rows: 40,
        cols: 120,
    })
    .unwrap();
    read_until(&mut pty, "40 120").await;
    assert!(guard(child.wait()).await.unwrap().success());
}

/// An interactive shell: what is typed runs, `exit` ends it, and Close follows the
/// master's end-of-file.
pub async fn pty_interactive_shell() {
    let mut child = Command::new("sh")
        .arg("-i")
        .env("PS1", "$ ")
        .pty(PtySize::default())
        .spawn()
        .unwrap();
    let mut events = child.events();
    let mut pty = child.pty.take().unwrap();
    guard(pty.write_all(b"echo $((6 * 7))\n")).await.unwrap();
    let out = read_until(&mut pty, "42\r\n").await;
    assert!(
        out.contains("echo $((6 * 7))"),
        "the terminal echoes input: {out:?}"
    );
    guard(pty.write_all(b"exit 3\n")).await.unwrap();
    let mut rest = String::new();
    guard(pty.read_to_string(&mut rest)).await.unwrap();
    let mut seen = Vec::new();
    while let Some(e) = guard(events.next()).await {
        match e {
            Event::Exit(s) => seen.push(format!("exit {:?}", s.code())),
            Event::Close(s) => seen.push(format!("close {:?}", s.code())),
            _ => {}
        }
    }
    assert_eq!(seen, ["exit Some(3)", "close Some(3)"]);
}

/// A child that exits before its output is read: the output is all still there, then EOF.
pub async fn pty_output_outlives_the_child() {
    let mut child = Command::new("sh")
        .args([
            "-c",
            "i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo line $i; done",
        ])
        .pty(PtySize::default())
        .spawn()
        .unwrap();
    assert!(guard(child.wait()).await.unwrap().success());
    let mut pty = child.pty.take().unwrap();
    let mut out = String::new();
    guard(pty.read_to_string(&mut out)).await.unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 100, "{out:?}");
    assert_eq!(lines[99], "line 100");
    assert!(
        out.ends_with("line 100\r\n"),
        "the terminal writes \\r\\n: {out:?}"
    );
    assert!(guard(child.closed()).await.unwrap().success());
}

/// Dropping the master hangs the terminal up: the child gets SIGHUP, and nothing waits on a
/// terminal nobody holds.
pub async fn pty_dropped_first_hangs_up() {
    let mut child = Command::new("sh")
        .args(["-c", "echo ready; exec sleep 30"])
        .pty(PtySize::default())
        .spawn()
        .unwrap();
    let mut pty = child.pty.take().unwrap();
    read_until(&mut pty, "ready").await;
    drop(pty);
    let status = guard(child.closed()).await.unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGHUP), "{status:?}");
}

/// What cannot have a terminal says so.
pub async fn pty_refusals() {
    let err = Command::new(FIXTURE)
        .arg("tty")
        .pty(PtySize::default())
        .process_group(0)
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("session of its own"), "{err}");
    let sync = childproc::spawn_sync(FIXTURE, ["tty"])
        .fd(0, Stdio::Pty)
        .run();
    let message = format!("{:?}", sync.error);
    assert!(message.contains("pty"), "{message}");
}
