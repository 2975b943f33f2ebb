//! exec and execFile: the manual's examples and seeds/001's cases, awaited.

mod common;

use std::time::Duration;

use childproc::{exec, exec_file, Data, Encoding, ExecFailure, Signal, StdStream};
use common::{after_startup, guard, FIXTURE, STARTUP};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn manual_cat_js_missing_file_pipe_wc() {
    // exec('cat *.js missing_file | wc -l', …): cat complains on stderr, wc exits 0.
    let dir = std::env::temp_dir().join(format!("childproc-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.js"), "one\ntwo\n").unwrap();
    std::fs::write(dir.join("b.js"), "three\n").unwrap();
    let out = guard(exec("cat *.js missing_file | wc -l").current_dir(&dir))
        .await
        .unwrap();
    assert_eq!(out.stdout.to_string().trim(), "3");
    assert!(
        out.stderr
            .to_string()
            .contains("missing_file: No such file or directory"),
        "{:?}",
        out.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn manual_home_escaping() {
    // exec('echo "The \\$HOME variable is $HOME"'): the first $HOME is escaped, the second not.
    let out = exec(r#"echo "The \$HOME variable is $HOME""#)
        .env("HOME", "/home/someone")
        .await
        .unwrap();
    assert_eq!(out.stdout, "The $HOME variable is /home/someone\n");
}

#[tokio::test]
async fn manual_exec_and_exec_file_with_abort_are_abort_errors() {
    let token = childproc::CancellationToken::new();
    let running = exec("grep ssh")
        .abort_signal(token.clone())
        .spawn()
        .unwrap();
    token.cancel();
    let err = guard(running).await.unwrap_err();
    assert!(err.is_abort(), "{err:?}");
    assert_eq!(err.to_string(), "The operation was aborted");
    // As Node's AbortError, it comes at once, before the exit (no code, no signal yet); the
    // child was signalled and is reaped in the background.
    assert!(err.killed, "{err:?}");

    let token = childproc::CancellationToken::new();
    token.cancel();
    let err = guard(exec_file(FIXTURE, ["sleep", "30000"]).abort_signal(token))
        .await
        .unwrap_err();
    assert!(matches!(err.reason, ExecFailure::Aborted), "{err:?}");
}

#[tokio::test]
async fn manual_exec_file_node_version_and_get_version() {
    if !common::node() {
        return;
    }
    // execFile('node', ['--version']) / the promisified getVersion().
    let out = guard(exec_file("node", ["--version"])).await.unwrap();
    let v = out.stdout.as_str().unwrap();
    assert!(
        v.starts_with('v') && v.ends_with('\n') && v.contains('.'),
        "{v:?}"
    );
}

#[tokio::test]
async fn manual_promisified_ls_example() {
    // const { stdout, stderr } = await exec('ls');
    let out = exec("ls").current_dir("/usr").await.unwrap();
    assert!(
        out.stdout.as_str().unwrap().lines().any(|l| l == "bin"),
        "{:?}",
        out.stdout
    );
    assert_eq!(out.stderr, "");
}

#[tokio::test]
async fn seeds_max_buffer_overflow_keeps_the_truncated_output() {
    let err = guard(exec_file(FIXTURE, ["spew", "2000000"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err.reason, ExecFailure::MaxBuffer(StdStream::Stdout)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "stdout maxBuffer length exceeded");
    assert_eq!(err.stdout.len(), 1024 * 1024, "output kept up to the limit");
    assert!(err.stdout.as_bytes().iter().all(|&b| b == b'x'));
    assert!(err.killed);
    // A large enough limit takes it all.
    let out = guard(exec_file(FIXTURE, ["spew", "2000000"]).max_buffer(4 << 20))
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), 2_000_000);
    // Zero allows nothing; a silent child is still fine.
    let err = guard(exec("echo hi").max_buffer(0)).await.unwrap_err();
    assert!(
        matches!(err.reason, ExecFailure::MaxBuffer(StdStream::Stdout)),
        "{err:?}"
    );
    assert_eq!(err.stdout, "");
    assert!(guard(exec("true").max_buffer(0)).await.is_ok());
    // usize::MAX is "no limit", not an allocation.
    assert!(guard(exec("echo hi").max_buffer(usize::MAX)).await.is_ok());
}

#[tokio::test]
async fn a_child_that_fills_its_pipe_is_read_whole_and_a_big_limit_still_holds() {
    // Under a limit of 64 MiB or more, the first read that finds the pipe full grows it
    // (reads up to 1 MiB): the output is still whole, and the limit still cuts at exactly
    // its length.
    let n = 24_000_000;
    let out = guard(exec_file(FIXTURE, ["spew", &n.to_string()]).max_buffer(128 << 20))
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), n);
    assert!(out.stdout.as_bytes().iter().all(|&b| b == b'x'));
    let err = spew_past(72 << 20, 66 << 20).await;
    assert_eq!(err.stdout.len(), 66 << 20);
}

/// `spew n` under `max_buffer(max)`, with `n > max`: the stdout maxBuffer error.
async fn spew_past(n: usize, max: usize) -> childproc::ExecError {
    let err = guard(exec_file(FIXTURE, ["spew", &n.to_string()]).max_buffer(max))
        .await
        .unwrap_err();
    assert!(
        matches!(err.reason, ExecFailure::MaxBuffer(StdStream::Stdout)),
        "{:?}",
        err.reason
    );
    err
}

#[tokio::test]
async fn a_child_writing_a_little_past_a_big_limit_is_killed_at_it() {
    // Node's 64 KiB pipe keeps such a child blocked until the limit kills it. Under a limit
    // below 64 MiB the pipe is not grown, so here too the child cannot finish into the pipe
    // and exit by itself: it is stopped by the limit.
    let n = (8 << 20) + (512 << 10);
    for _ in 0..3 {
        let err = spew_past(n, 8 << 20).await;
        // Node 20 (`head -c` 8.5 MiB, maxBuffer 8 MiB): the child ends by the SIGTERM or by
        // the EPIPE of the pipe closed before it, never by finishing on its own.
        assert!(err.killed);
        assert!(
            err.signal == Some(Signal::SIGTERM) || err.code.is_some_and(|c| c != 0),
            "code {:?}, signal {:?}",
            err.code,
            err.signal
        );
        assert_eq!(err.stdout.len(), 8 << 20);
    }
}

#[tokio::test]
async fn seeds_shell_injection_is_one_literal_argument_to_exec_file() {
    let out = exec_file(FIXTURE, ["argv", "123; rm -rf /"]).await.unwrap();
    assert_eq!(out.stdout.to_string().lines().nth(2), Some("123; rm -rf /"));
    let out = exec_file("echo", ["$(id -u)", "`whoami`", "a|b"])
        .await
        .unwrap();
    assert_eq!(out.stdout, "$(id -u) `whoami` a|b\n");
}

#[tokio::test]
async fn fifty_mib_on_both_streams_at_once_does_not_deadlock() {
    let n = 50 * 1024 * 1024;
    let out = guard(
        exec_file(FIXTURE, ["spew-both", &n.to_string()])
            .max_buffer(64 << 20)
            .encoding(Encoding::Buffer),
    )
    .await
    .unwrap();
    assert_eq!(out.stdout.len(), n);
    assert_eq!(out.stderr.len(), n);
    assert!(matches!(out.stdout, Data::Bytes(_)));
}

#[tokio::test]
async fn a_child_ignoring_sigterm_under_timeout_finishes_on_its_own() {
    // Node sends killSignal once; a child that ignores it runs to its end and, exiting 0, is a
    // success (with `killed` set on the child). No hang. Escalation to SIGKILL comes with the
    // engine issue.
    let running = exec_file(FIXTURE, ["ignore-term", &after_startup(300)])
        .timeout(STARTUP)
        .spawn()
        .unwrap();
    let out = guard(running).await.unwrap();
    assert_eq!(out.stdout, "ready\n");
}

#[tokio::test]
async fn timeout_exit_and_signal_are_distinguishable() {
    let err = guard(exec_file(FIXTURE, ["sleep", "30000"]).timeout(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.killed);
    assert_eq!((err.code, err.signal), (None, Some(Signal::SIGTERM)));
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(
        err.to_string()
            .starts_with(&format!("Command failed: {FIXTURE} sleep 30000\n")),
        "{err}"
    );

    let err = exec("echo boom >&2; exit 3").await.unwrap_err();
    assert!(matches!(err.reason, ExecFailure::Exit));
    assert_eq!((err.code, err.signal, err.killed), (Some(3), None, false));
    assert_eq!(
        err.to_string(),
        "Command failed: echo boom >&2; exit 3\nboom\n"
    );

    let err = exec("kill -USR1 $$").await.unwrap_err();
    assert!(matches!(err.reason, ExecFailure::Signal), "{err:?}");
    assert_eq!(err.signal, Some(Signal::SIGUSR1));
}

#[tokio::test]
async fn stdin_is_closed_or_fed_and_the_child_is_reachable_before_completion() {
    // A child reading stdin sees EOF instead of hanging.
    assert_eq!(guard(exec("cat")).await.unwrap().stdout, "");
    assert_eq!(exec("cat").input("fed").await.unwrap().stdout, "fed");
    // Node's promise.child: pid and stdin before completion.
    let mut running = exec_file(FIXTURE, ["cat"]).spawn().unwrap();
    assert!(running.child().pid() > 0);
    let mut stdin = running.child_mut().stdin.take().unwrap();
    stdin.write_all(b"written by hand").await.unwrap();
    drop(stdin);
    assert_eq!(guard(running).await.unwrap().stdout, "written by hand");
}

#[tokio::test]
async fn encodings_decode_the_output() {
    let bytes = exec("printf 'h\\351'")
        .encoding(Encoding::Buffer)
        .await
        .unwrap();
    assert_eq!(bytes.stdout, Data::Bytes(vec![b'h', 0xe9]));
    assert_eq!(
        exec("printf 'h\\351'")
            .encoding("latin1")
            .await
            .unwrap()
            .stdout,
        "hé"
    );
    assert_eq!(
        exec("printf 'h\\351'")
            .encoding("hex")
            .await
            .unwrap()
            .stdout,
        "68e9"
    );
    assert_eq!(
        exec("printf hello")
            .encoding("base64")
            .await
            .unwrap()
            .stdout,
        "aGVsbG8="
    );
    assert_eq!(
        exec("printf 'h\\0i\\0'")
            .encoding("ucs2")
            .await
            .unwrap()
            .stdout,
        "hi"
    );
    assert_eq!(
        exec("printf 'h\\351'")
            .encoding("ascii")
            .await
            .unwrap()
            .stdout,
        "hi"
    );
    assert_eq!(exec("printf 'h\\351'").await.unwrap().stdout, "h\u{fffd}");
    // An encoding Node does not know gives bytes, as Node does.
    assert_eq!(
        exec("printf ab")
            .encoding("no-such-encoding")
            .await
            .unwrap()
            .stdout,
        Data::Bytes(b"ab".to_vec())
    );
    // A character split across two reads decodes whole.
    assert_eq!(
        exec_file(FIXTURE, ["split-euro"]).await.unwrap().stdout,
        "€"
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_error() {
    // exec_file of a missing program: NotFound naming it (Node: spawn nope ENOENT).
    let err = exec_file("no-such-program-xyz", ["a"]).await.unwrap_err();
    assert!(matches!(err.reason, ExecFailure::Spawn(_)));
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string().starts_with("spawn no-such-program-xyz"),
        "{err}"
    );
    // exec of a missing program: the shell's 127 and its message, as Node.
    let err = exec("no-such-program-xyz").await.unwrap_err();
    assert_eq!(err.code, Some(127));
    assert!(
        err.stderr
            .to_string()
            .contains("no-such-program-xyz: not found"),
        "{err}"
    );
    // A missing cwd names it.
    let err = exec("true").current_dir("/no/such/dir").await.unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
    // A NUL byte names the argument.
    let err = exec_file("echo", ["a\0b"]).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("argument 1 contains a NUL byte"),
        "{err}"
    );
    let err = exec("echo \0").await.unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");
}

#[tokio::test]
async fn collected_output_is_not_held_in_a_buffer_twice_its_size() {
    let n = 9 * 1024 * 1024 + 123;
    let out = guard(
        exec_file(FIXTURE, ["spew", &n.to_string()])
            .max_buffer(64 << 20)
            .encoding(Encoding::Buffer),
    )
    .await
    .unwrap();
    let Data::Bytes(bytes) = out.stdout else {
        panic!("bytes expected")
    };
    assert_eq!(bytes.len(), n);
    // The reservation made just before EOF is given back: no doubled buffer is kept.
    let (len, cap) = (bytes.len(), bytes.capacity());
    assert!(
        cap <= len + 64 * 1024,
        "{len} bytes kept in a {cap}-byte buffer"
    );
}

/// An exec given up before it completes (a timeout or a `select!` around it drops its
/// future) kills its child with `kill_on_drop`, with the kill signal. Without it the child
/// runs on, as with Node's `exec` and tokio's `output()`, and is still reaped when it ends.
#[tokio::test]
async fn an_exec_dropped_before_it_completes_kills_its_child_with_kill_on_drop() {
    use futures_util::FutureExt;
    use std::future::IntoFuture;
    let run = exec_file(FIXTURE, ["sleep", "30000"])
        .kill_on_drop(true)
        .kill_signal(Signal::SIGUSR1)
        .spawn()
        .unwrap();
    let events = run.child().events();
    let mut running = Box::pin(run.into_future());
    assert!((&mut running).now_or_never().is_none(), "the child sleeps");
    drop(running);
    let seen = common::described(events).await;
    assert_eq!(
        seen.last().map(String::as_str),
        Some("close signal SIGUSR1")
    );

    // Not even awaited: the same.
    let run = exec(format!("{FIXTURE} sleep 30000"))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let events = run.child().events();
    drop(run);
    let seen = common::described(events).await;
    assert_eq!(
        seen.last().map(String::as_str),
        Some("close signal SIGTERM")
    );

    let run = exec_file(FIXTURE, ["sleep", "300"]).spawn().unwrap();
    let events = run.child().events();
    let mut running = Box::pin(run.into_future());
    let _ = (&mut running).now_or_never();
    drop(running);
    assert_eq!(
        common::described(events).await,
        ["spawn", "exit code 0", "close code 0"]
    );
}
