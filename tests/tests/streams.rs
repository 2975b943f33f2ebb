//! Reading a child's output beyond Node's `'data'` events: line streams (Node's `readline`
//! on `child.stdout`), stdout and stderr interleaved with tags, and stderr merged into stdout
//! at the OS level (`Stdio::SameAs`, a shell's `2>&1`).
//!
//! Ordering tests use the fixture's `write-acked` role: it writes one chunk, then waits for
//! the test to acknowledge it, so no sleep decides what happens first.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use childproc::{Command, Error, Interleaved, LinesError, StdStream, Stdio};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;
mod common;
use common::{guard, stdout_string, FIXTURE};

fn hex(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `write-acked` fixture writing `chunks` (`('o' | 'e' | 'c', bytes)`).
fn acked(chunks: &[(char, &[u8])]) -> Command {
    let mut c = Command::new(FIXTURE);
    c.arg("write-acked");
    for (to, bytes) in chunks {
        c.arg(format!("{to}:{}", hex(bytes)));
    }
    c
}

/// `sh -c script`, stdout's lines collected (errors as their messages).
async fn sh_lines(script: &str, max: usize) -> Vec<Result<String, String>> {
    let mut child = Command::new("sh").args(["-c", script]).spawn().unwrap();
    let lines = child.stdout.take().unwrap().lines().max_length(max);
    let all: Vec<_> = guard(lines.collect::<Vec<_>>()).await;
    assert!(guard(child.closed()).await.unwrap().success());
    all.into_iter()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect()
}

fn ok(lines: &[&str]) -> Vec<Result<String, String>> {
    lines.iter().map(|l| Ok(l.to_string())).collect()
}

#[tokio::test]
async fn lines_end_at_lf_or_crlf_and_the_last_needs_no_newline() {
    let got = sh_lines(r"printf 'a\r\nb\n\r\n\nlast'", 100).await;
    assert_eq!(got, ok(&["a", "b", "", "", "last"]));
    let got = sh_lines(r"printf 'only\r\n'", 100).await;
    assert_eq!(got, ok(&["only"]));
    assert_eq!(sh_lines("true", 100).await, ok(&[]));

    // Bytes, strict and lossy decoding of what is not UTF-8.
    let script = r"printf '\377x\nok\n'";
    let mut child = Command::new("sh").args(["-c", script]).spawn().unwrap();
    let raw: Vec<_> = guard(
        child
            .stdout
            .take()
            .unwrap()
            .byte_lines()
            .collect::<Vec<_>>(),
    )
    .await;
    let raw: Vec<_> = raw.into_iter().map(|l| l.unwrap().to_vec()).collect();
    assert_eq!(raw, [b"\xffx".to_vec(), b"ok".to_vec()]);
    let got = sh_lines(script, 100).await;
    assert!(
        got[0].as_ref().unwrap_err().contains("not valid UTF-8"),
        "{got:?}"
    );
    assert_eq!(got[1], Ok("ok".into()));
    let mut child = Command::new("sh").args(["-c", script]).spawn().unwrap();
    let lossy = child.stdout.take().unwrap().lines().lossy();
    let got: Vec<_> = guard(lossy.collect::<Vec<_>>()).await;
    let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, ["\u{fffd}x", "ok"]);
}

/// Counts the bytes read through it and wakes the test after each read.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicUsize>,
    progress: Arc<Notify>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.read.fetch_add(n, Ordering::SeqCst);
            self.progress.notify_one();
        }
        polled
    }
}

/// "€" (e2 82 ac) written in two writes; the second only after the line stream has read the
/// first byte on its own, so the character is certainly split across reads.
#[tokio::test]
async fn a_character_split_across_reads_arrives_whole() {
    let mut child = acked(&[('o', b"\xe2"), ('o', b"\x82\xac\n")])
        .spawn()
        .unwrap();
    let (read, progress) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
    let stdout = Counting {
        inner: child.stdout.take().unwrap(),
        read: read.clone(),
        progress: progress.clone(),
    };
    let lines = tokio::spawn(childproc::Lines::new(stdout).collect::<Vec<_>>());
    guard(async {
        while read.load(Ordering::SeqCst) == 0 {
            progress.notified().await;
        }
    })
    .await;
    assert_eq!(
        read.load(Ordering::SeqCst),
        1,
        "the first read had the first byte only"
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\n").await.unwrap();
    let got: Vec<_> = guard(lines).await.unwrap();
    let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, ["€"]);
    assert!(guard(child.closed()).await.unwrap().success());
}

/// A line over the limit is one error, its rest skipped without being kept, then reading
/// goes on; a child that never writes a newline costs at most the limit.
#[tokio::test]
async fn an_over_long_line_is_an_error_and_the_stream_goes_on() {
    let script = r"head -c 100000 /dev/zero | tr '\0' x; printf '\nnext\n'";
    let got = sh_lines(script, 1000).await;
    assert_eq!(
        got,
        [Err("line longer than 1000 bytes".into()), Ok("next".into())]
    );
    // 64 MiB without a newline, default limit (1 MiB): one error, then the end.
    let mut child = Command::new(FIXTURE)
        .args(["spew", &(64 << 20).to_string()])
        .spawn()
        .unwrap();
    let got: Vec<_> = guard(child.stdout.take().unwrap().lines().collect::<Vec<_>>()).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        matches!(got[0], Err(LinesError::TooLong { max }) if max == childproc::DEFAULT_MAX_LINE),
        "{got:?}"
    );
    assert!(guard(child.closed()).await.unwrap().success());
}

/// The child writes stdout and stderr alternately, each write waiting for the test to have
/// seen the one before: the merged stream delivers them in that order, tagged, keeps going
/// after stdout closes, and ends once stderr has closed too.
#[tokio::test]
async fn interleaved_lines_and_chunks_keep_arrival_order_until_both_close() {
    let script: &[(char, &[u8])] = &[
        ('o', b"out 1\n"),
        ('e', b"err 1\n"),
        ('e', b"err 2\n"),
        ('o', b"out 2\n"),
        ('c', b""), // closes stdout; no ack awaited after it
        ('e', b"err 3\n"),
    ];
    let want = [
        (StdStream::Stdout, "out 1"),
        (StdStream::Stderr, "err 1"),
        (StdStream::Stderr, "err 2"),
        (StdStream::Stdout, "out 2"),
        (StdStream::Stderr, "err 3"),
    ];
    let mut child = acked(script).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let got = drive(child.interleaved_lines(), &mut stdin).await;
    let want_lines: Vec<_> = want.iter().map(|(s, l)| (*s, l.to_string())).collect();
    assert_eq!(got, want_lines);
    assert!(guard(child.closed()).await.unwrap().success());

    // Chunks as read: each write of the child is one chunk here (it waits for our ack).
    let mut child = acked(script).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let got = drive(child.interleaved_chunks(), &mut stdin).await;
    let got: Vec<_> = got
        .into_iter()
        .map(|(s, b)| (s, String::from_utf8(b.to_vec()).unwrap()))
        .collect();
    let want_chunks: Vec<_> = want.iter().map(|(s, l)| (*s, format!("{l}\n"))).collect();
    assert_eq!(got, want_chunks);
    assert!(guard(child.closed()).await.unwrap().success());
}

/// Reads a merged stream to its end, acknowledging each of the first four items to the
/// `write-acked` child (which waits after each of its first four writes).
async fn drive<T: Send + 'static>(
    mut merged: Interleaved<T>,
    stdin: &mut childproc::ChildStdin,
) -> Vec<(StdStream, T)> {
    let mut got = Vec::new();
    while let Some((stream, item)) = guard(merged.next()).await {
        got.push((stream, item.unwrap()));
        if got.len() <= 4 {
            stdin.write_all(b"\n").await.unwrap();
        }
    }
    got
}

/// `2>&1`: one pipe carries both streams in exactly the order the child wrote them, however
/// fast it alternates, and there is no separate stderr pipe.
#[tokio::test]
async fn stderr_same_as_stdout_keeps_the_childs_write_order() {
    let mut child = Command::new(FIXTURE)
        .args(["alternate", "2000"])
        .stderr(Stdio::SameAs(1))
        .spawn()
        .unwrap();
    assert!(child.stderr.is_none());
    let out = stdout_string(&mut child).await;
    let expected: String = (0..2000).map(|i| format!("out {i}\nerr {i}\n")).collect();
    assert_eq!(out, expected);
    assert!(guard(child.closed()).await.unwrap().success());

    // Any fd can name another: fd 3 is the stdout pipe too.
    let mut child = Command::new(FIXTURE)
        .args(["write-fd", "3", "via fd 3"])
        .fd(3, Stdio::SameAs(1))
        .spawn()
        .unwrap();
    assert_eq!(stdout_string(&mut child).await, "via fd 3");
    assert!(guard(child.closed()).await.unwrap().success());

    // It follows whatever fd 1 is: ignored, so the stderr line goes nowhere either.
    let child = Command::new(FIXTURE)
        .args(["out-err", "o", "e"])
        .stdout(Stdio::Ignore)
        .stderr(Stdio::SameAs(1))
        .spawn()
        .unwrap();
    assert!(child.stdout.is_none() && child.stderr.is_none());
    assert!(guard(child.closed()).await.unwrap().success());

    for (fd, cfg) in [(2, Stdio::SameAs(2)), (2, Stdio::SameAs(-1))] {
        let err = Command::new(FIXTURE).fd(fd, cfg).spawn().unwrap_err();
        assert!(matches!(err, Error::Stdio(_)), "{err:?}");
    }
    let err = Command::new(FIXTURE)
        .stdout(Stdio::SameAs(2))
        .stderr(Stdio::SameAs(1))
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("stdio[1]: SameAs(2)"), "{err}");
}
