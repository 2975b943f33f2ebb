//! spawn_sync, exec_sync and exec_file_sync: blocking, no runtime needed, Node's result shape.

mod common;

use std::time::{Duration, Instant};

use childproc::{
    exec_file_sync, exec_sync, spawn_sync, Data, ExecSyncFailure, Signal, StdStream, Stdio,
    SyncFailure,
};
use common::{after_startup, FIXTURE, STARTUP};

#[test]
fn spawn_sync_from_plain_code_returns_nodes_result_shape() {
    let r = spawn_sync(FIXTURE, ["out-err", "to-out", "to-err"]).run();
    assert!(r.pid > 0);
    assert_eq!(r.status, Some(0));
    assert_eq!(r.signal, None);
    assert_eq!(r.error, None);
    // Default encoding is 'buffer', as Node's sync API.
    assert_eq!(r.stdout, Some(Data::Bytes(b"to-out\n".to_vec())));
    assert_eq!(r.stderr, Some(Data::Bytes(b"to-err\n".to_vec())));
    assert_eq!(r.output, vec![None, r.stdout.clone(), r.stderr.clone()]);

    let r = spawn_sync(FIXTURE, ["exit", "7"]).run();
    assert_eq!((r.status, r.signal, r.error), (Some(7), None, None));
}

#[test]
fn input_stdio_and_encoding() {
    let r = spawn_sync(FIXTURE, ["cat"])
        .input("piped in")
        .encoding("utf8")
        .run();
    assert_eq!(r.stdout, Some(Data::Text("piped in".into())));
    // Without input, stdin is closed: a reader sees EOF.
    let r = spawn_sync(FIXTURE, ["cat"]).run();
    assert_eq!(r.stdout.unwrap().len(), 0);
    // A large input is interleaved with draining the output (no deadlock).
    let big = vec![b'z'; 4 << 20];
    let r = spawn_sync(FIXTURE, ["cat"])
        .input(big.clone())
        .max_buffer(8 << 20)
        .run();
    assert_eq!(r.stdout.unwrap().as_bytes(), &big[..]);
    // stdio: stdout to /dev/null and an extra pipe at fd 3 collected in output[3].
    let r = spawn_sync(FIXTURE, ["write-fd", "3", "extra"])
        .fd(1, Stdio::Ignore)
        .fd(3, Stdio::Pipe)
        .encoding("latin1")
        .run();
    assert_eq!(r.stdout, None);
    assert_eq!(r.output[3], Some(Data::Text("extra".into())));
}

#[test]
fn a_timeout_returns_only_after_the_child_has_exited() {
    let start = Instant::now();
    let r = spawn_sync(FIXTURE, ["ignore-term", &after_startup(400)])
        .timeout(STARTUP)
        .run();
    // The child ignored SIGTERM and ran on; spawnSync waited for it (Node's documented rule).
    assert!(start.elapsed() >= STARTUP + Duration::from_millis(400));
    assert_eq!(r.error, Some(SyncFailure::Timeout));
    assert_eq!(r.status, Some(0));
    assert!(
        !std::path::Path::new(&format!("/proc/{}", r.pid)).exists(),
        "the child was reaped"
    );

    let r = spawn_sync(FIXTURE, ["sleep", "30000"])
        .timeout(Duration::from_millis(30))
        .kill_signal("SIGKILL")
        .run();
    assert_eq!(
        (r.error, r.status, r.signal),
        (Some(SyncFailure::Timeout), None, Some(Signal::SIGKILL))
    );
}

#[test]
fn max_buffer_kills_and_keeps_the_output_up_to_the_limit() {
    let r = spawn_sync(FIXTURE, ["spew", "3000000"]).run();
    assert_eq!(r.error, Some(SyncFailure::MaxBuffer(StdStream::Stdout)));
    // Node keeps the whole read that passed the limit: node -e "spawnSync('sh', ['-c',
    // 'head -c 3000000 /dev/zero']).stdout.length" gives 1052672 here (a 4 KiB read past it).
    let kept = r.stdout.unwrap().len();
    assert!((1 << 20..=(1 << 20) + 65536).contains(&kept), "{kept}");
    // (maxBuffer 0 is no limit in Node's spawnSync: parity_sweep.rs.)
    let r = spawn_sync("sh", ["-c", "echo x >&2"]).max_buffer(1).run();
    assert_eq!(r.error, Some(SyncFailure::MaxBuffer(StdStream::Stderr)));
}

#[test]
fn a_child_that_fills_its_pipe_is_read_whole_and_a_big_limit_still_holds() {
    // A fast writer under a limit of 64 MiB or more: after the first read that finds the
    // pipe full, the pipe is grown and reads are up to 1 MiB. Everything still arrives,
    // once, in order.
    let n = 24_000_000;
    let out = exec_file_sync(FIXTURE, ["spew", &n.to_string()])
        .max_buffer(128 << 20)
        .run()
        .unwrap();
    assert_eq!(out.len(), n);
    assert!(out.as_bytes().iter().all(|&b| b == b'x'));
    // A grown pipe, and near the limit reads are 64 KiB again: at most one of them past it.
    let r = spawn_sync(FIXTURE, ["spew", &(72 << 20).to_string()])
        .max_buffer(66 << 20)
        .run();
    assert_eq!(r.error, Some(SyncFailure::MaxBuffer(StdStream::Stdout)));
    let kept = r.stdout.as_ref().unwrap().len();
    assert!(
        ((66 << 20) + 1..=(66 << 20) + 65536).contains(&kept),
        "{kept}"
    );
    assert_eq!(r.output[1], r.stdout, "output[1] is stdout");
    // exec_file_sync's error carries the same whole result.
    let err = exec_file_sync(FIXTURE, ["spew", &n.to_string()])
        .max_buffer(8 << 20)
        .run()
        .unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::MaxBuffer(StdStream::Stdout));
    assert_eq!(err.result.output[1], err.result.stdout);
    assert!(err.result.stdout.unwrap().len() > 8 << 20);
}

#[test]
fn a_child_writing_a_little_past_a_big_limit_is_killed_at_it() {
    // As exec's twin: under a limit below 64 MiB the pipe keeps Node's size, so the child is
    // still writing when the limit passes, and is stopped by it (SIGTERM or EPIPE).
    let n = (8 << 20) + (512 << 10);
    for _ in 0..3 {
        let err = exec_file_sync(FIXTURE, ["spew", &n.to_string()])
            .max_buffer(8 << 20)
            .run()
            .unwrap_err();
        assert_eq!(err.reason, ExecSyncFailure::MaxBuffer(StdStream::Stdout));
        let (status, signal) = (err.result.status, err.result.signal);
        assert!(
            signal == Some(Signal::SIGTERM) || status.is_some_and(|c| c != 0),
            "status {status:?}, signal {signal:?}"
        );
    }
}

#[test]
fn exec_sync_returns_stdout_or_an_error_with_the_whole_result() {
    assert_eq!(
        exec_sync("echo $((6*7))").run().unwrap(),
        Data::Bytes(b"42\n".to_vec())
    );
    assert_eq!(
        exec_file_sync(FIXTURE, ["argv", "a;b"])
            .encoding("utf8")
            .run()
            .unwrap()
            .to_string()
            .lines()
            .nth(2),
        Some("a;b")
    );

    let err = exec_sync("echo boom >&2; exit 4")
        .fd(2, Stdio::Pipe)
        .run()
        .unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::Exit);
    assert_eq!(err.result.status, Some(4));
    assert_eq!(
        err.to_string(),
        "Command failed: echo boom >&2; exit 4\nboom\n"
    );

    let err = exec_file_sync(FIXTURE, ["sleep", "30000"])
        .timeout(Duration::from_millis(30))
        .run()
        .unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::Timeout);
    assert_eq!(err.result.signal, Some(Signal::SIGTERM));
    assert!(err.to_string().ends_with("ETIMEDOUT"), "{err}");
}

#[test]
fn exec_sync_echoes_the_childs_stderr_unless_stdio_is_set() {
    let out = std::process::Command::new(FIXTURE)
        .args(["exec-sync", "echo visible >&2; echo out"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "visible\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "result=Ok(\"out\\n\")\n"
    );
}

#[test]
fn bad_input_is_reported_in_the_result_or_the_error() {
    let r = spawn_sync("no-such-program-xyz", ["a"]).run();
    assert_eq!(r.pid, 0);
    assert_eq!(r.status, None);
    match r.error {
        Some(SyncFailure::Spawn { message, kind }) => {
            assert_eq!(kind, std::io::ErrorKind::NotFound);
            assert!(message.contains("no-such-program-xyz"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let err = exec_file_sync("no-such-program-xyz", ["a"])
        .run()
        .unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::Spawn);
    assert!(
        err.to_string().starts_with("spawn no-such-program-xyz"),
        "{err}"
    );
    // exec_sync goes through the shell: 127 and its message, as Node.
    let err = exec_sync("no-such-program-xyz")
        .fd(2, Stdio::Pipe)
        .run()
        .unwrap_err();
    assert_eq!(err.result.status, Some(127));
    assert!(err.to_string().contains("not found"), "{err}");
    let err = exec_sync("true")
        .current_dir("/no/such/dir")
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
    let err = exec_file_sync("echo", ["a\0b"]).run().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("argument 1 contains a NUL byte"),
        "{err}"
    );
    // An unknown encoding gives bytes, as Node.
    let out = exec_sync("printf ab").encoding("bogus").run().unwrap();
    assert_eq!(out, Data::Bytes(b"ab".to_vec()));
}

#[test]
fn inside_a_current_thread_runtime_it_neither_panics_nor_deadlocks() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(async {
        exec_sync("echo inside")
            .encoding("utf8")
            .timeout(Duration::from_secs(30))
            .run()
    });
    assert_eq!(out.unwrap(), Data::Text("inside\n".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_multi_thread_runtime_it_neither_panics_nor_deadlocks() {
    let r = spawn_sync(FIXTURE, ["out-err", "mt", "e"]).run();
    assert_eq!(r.stdout.unwrap().as_bytes(), b"mt\n");
    // And alongside async children on the same runtime.
    let child = childproc::Command::new(FIXTURE)
        .args(["exit", "0"])
        .spawn()
        .unwrap();
    let r = spawn_sync(FIXTURE, ["exit", "2"]).run();
    assert_eq!(r.status, Some(2));
    assert!(common::guard(child.wait()).await.unwrap().success());
}

/// Runs `f` on a thread and fails the test if it has not returned within 30 s (a hang).
fn within_guard<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(common::GUARD)
        .expect("the blocking call hung")
}

#[test]
fn a_timeout_can_escalate_to_sigkill_for_the_child_and_its_whole_group() {
    // The child ignores SIGTERM: without escalation spawnSync would wait 30 s for it.
    let r = within_guard(|| {
        spawn_sync(FIXTURE, ["ignore-term", "30000"])
            .timeout(STARTUP)
            .escalate_after(Duration::from_millis(100))
            .run()
    });
    assert_eq!(
        (r.error, r.status, r.signal),
        (Some(SyncFailure::Timeout), None, Some(Signal::SIGKILL))
    );

    // The manual's `sh -c` grandchild, ignoring SIGTERM too: the group gets SIGTERM, then
    // SIGKILL after the grace period, and the run returns once the grandchild let go of
    // stdout.
    let script = format!("{FIXTURE} ignore-term 30000 & echo $!; wait");
    let err = within_guard(move || {
        exec_file_sync("sh", ["-c", &script])
            .process_group(0)
            .kill_group(true)
            .timeout(Duration::from_millis(300))
            .escalate_after(Duration::from_millis(100))
            .encoding("utf8")
            .run()
            .unwrap_err()
    });
    assert_eq!(err.reason, ExecSyncFailure::Timeout);
    let out = err.result.stdout.unwrap().to_string();
    let grandchild = out
        .lines()
        .find_map(|l| l.trim().parse::<u32>().ok())
        .expect("the grandchild's pid");
    // Its pipe closed as it began to exit; the exit itself may take a moment to finish.
    let dead = || {
        let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z")
    };
    let start = Instant::now();
    while !dead() && start.elapsed() < common::GUARD {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(dead(), "the grandchild survived");
}

/// As Node's `spawnSync`: `input` the child does not read to the end (it exits first) is a
/// pipe error, EPIPE, reported after the run with the child's own status and output; a
/// timeout would take precedence. exec_sync and exec_file_sync throw it even on a zero exit
/// (`spawnSync /bin/sh EPIPE`). Input read to the end is no error.
#[test]
fn input_the_child_does_not_read_is_an_epipe_as_in_node() {
    let big = vec![b'x'; 10 << 20]; // far more than a pipe holds
    let r = spawn_sync(FIXTURE, ["exit", "3"]).input(big.clone()).run();
    assert_eq!(r.status, Some(3));
    assert_eq!(
        r.error,
        Some(SyncFailure::Pipe(std::io::ErrorKind::BrokenPipe))
    );
    assert_eq!(r.error.unwrap().to_string(), "EPIPE");
    let r = spawn_sync("head", ["-c", "10"]).input(big.clone()).run();
    assert_eq!(
        (r.status, r.stdout),
        (Some(0), Some(Data::Bytes(b"xxxxxxxxxx".to_vec())))
    );
    assert_eq!(
        r.error,
        Some(SyncFailure::Pipe(std::io::ErrorKind::BrokenPipe))
    );

    let err = exec_sync("true").input(big.clone()).run().unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::Pipe);
    assert_eq!(err.result.status, Some(0));
    assert_eq!(err.to_string(), "spawnSync /bin/sh EPIPE");
    let err = exec_file_sync(FIXTURE, ["exit", "0"])
        .input(big.clone())
        .run()
        .unwrap_err();
    assert_eq!(err.to_string(), format!("spawnSync {FIXTURE} EPIPE"));

    let r = spawn_sync(FIXTURE, ["cat"]).input(big).max_buffer(0).run();
    assert_eq!((r.status, r.error), (Some(0), None));
    assert_eq!(r.stdout.map(|d| d.len()), Some(10 << 20));
}
