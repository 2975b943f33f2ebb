//! Calls that stay bounded under faults: a grandchild that inherited the pipes and outlives
//! the child cannot keep a timed-out, aborted or overflowed exec, execFile, sync call or
//! pipeline waiting (Node's kill() closes the pipes too); the wait delay bounds `Close` and
//! every runner after the exit; no valid `Duration` panics; no child stays a zombie when its
//! runtime goes away.
//!
//! The grandchildren here are `sleep 1000`s that print their pid; each test checks that the
//! call returned while they were still alive (so it did not wait for them), then kills them.

mod common;

use std::time::Duration;

use childproc::{
    exec, exec_file, exec_file_sync, exec_sync, spawn_sync, CancellationToken, Command,
    ExecFailure, ExecSyncFailure, Pipeline, Signal, StdStream, SyncFailure,
};
use common::guard;
use tokio::io::AsyncReadExt;

/// Starts two grandchildren that hold stdout and stderr, prints their pids, waits for them.
const HOLD_AND_WAIT: &str = "sleep 1000 & echo $!; sleep 1000 & echo $!; wait";
/// Starts one grandchild that holds the pipes, prints its pid and exits with 0 at once.
const HOLD_AND_EXIT: &str = "sleep 1000 & echo $!";

/// The pids printed on `out`'s lines.
fn pids(out: &str) -> Vec<i32> {
    out.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Asserts that the call returned while every grandchild in `out` still ran, then kills them.
fn returned_before_the_grandchildren_ended(out: &str, expected: usize) {
    let pids = pids(out);
    assert_eq!(pids.len(), expected, "grandchild pids in {out:?}");
    for &pid in &pids {
        assert!(
            alive(pid),
            "grandchild {pid} ended before the call returned"
        );
    }
    for pid in pids {
        // SAFETY-free: a plain kill(2) of the test's own grandchild.
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

/// Waits (polling, with a guard) until `path` holds a line: the script's sign that its
/// grandchild runs.
async fn wait_for_file(path: &std::path::Path) -> String {
    guard(async {
        loop {
            if let Ok(s) = std::fs::read_to_string(path) {
                if s.ends_with('\n') {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

fn temp_file(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("childproc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test]
async fn exec_timeout_returns_while_grandchildren_hold_the_pipes() {
    let err = guard(exec(HOLD_AND_WAIT).timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(matches!(err.reason, ExecFailure::Timeout), "{err:?}");
    assert_eq!(err.signal, Some(Signal::SIGTERM));
    assert!(err.killed && err.pipes_closed_early, "{err:?}");
    returned_before_the_grandchildren_ended(&err.stdout.to_string(), 2);
}

#[tokio::test]
async fn exec_file_timeout_returns_while_grandchildren_hold_the_pipes() {
    let err = guard(exec_file("sh", ["-c", HOLD_AND_WAIT]).timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    returned_before_the_grandchildren_ended(&err.stdout.to_string(), 2);
}

#[tokio::test]
async fn exec_resolves_at_the_timeout_when_the_child_exited_with_zero() {
    // Node: exec('sleep 3 & echo started', { timeout: 500 }) calls back with no error and
    // the output so far once the timeout passes.
    let out = guard(exec(HOLD_AND_EXIT).timeout(Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(out.pipes_closed_early);
    assert!(out.stderr.is_empty());
    returned_before_the_grandchildren_ended(&out.stdout.to_string(), 1);
}

#[tokio::test]
async fn exec_abort_returns_at_once_while_a_grandchild_holds_the_pipes() {
    let marker = temp_file("abort-exec");
    let script = format!("sleep 1000 & echo $! > {}; echo $!; wait", marker.display());
    let token = CancellationToken::new();
    let running = exec(&script).abort_signal(token.clone()).spawn().unwrap();
    let grandchild = wait_for_file(&marker).await;
    token.cancel();
    let err = guard(running).await.unwrap_err();
    assert!(err.is_abort(), "{err:?}");
    assert!(err.killed);
    returned_before_the_grandchildren_ended(&grandchild, 1);
    let _ = std::fs::remove_file(marker);
}

#[tokio::test]
async fn exec_max_buffer_returns_while_a_grandchild_holds_the_pipes() {
    let script = "sleep 1000 & echo $!; yes | head -c 100000; wait";
    let err = guard(exec(script).max_buffer(1000)).await.unwrap_err();
    assert!(
        matches!(err.reason, ExecFailure::MaxBuffer(StdStream::Stdout)),
        "{err:?}"
    );
    let stdout = err.stdout.to_string();
    assert_eq!(stdout.len(), 1000);
    let first = stdout.lines().next().unwrap_or_default().to_owned();
    returned_before_the_grandchildren_ended(&first, 1);
}

#[test]
fn spawn_sync_timeout_closes_the_pipes_and_returns() {
    let r = spawn_sync("sh", ["-c", HOLD_AND_WAIT])
        .timeout(Duration::from_millis(300))
        .run();
    assert_eq!(r.error, Some(SyncFailure::Timeout));
    assert_eq!(r.signal, Some(Signal::SIGTERM));
    assert!(r.pipes_closed_early);
    returned_before_the_grandchildren_ended(&r.stdout.unwrap().to_string(), 2);
}

#[test]
fn spawn_sync_timeout_after_a_zero_exit_is_still_a_timeout() {
    // Node: spawnSync('sh', ['-c', 'sleep 3 & echo started'], { timeout: 500 }) gives
    // ETIMEDOUT with status 0 after 500 ms.
    let r = spawn_sync("sh", ["-c", HOLD_AND_EXIT])
        .timeout(Duration::from_millis(300))
        .run();
    assert_eq!(r.error, Some(SyncFailure::Timeout));
    assert_eq!(r.status, Some(0));
    returned_before_the_grandchildren_ended(&r.stdout.unwrap().to_string(), 1);
}

#[test]
fn exec_sync_and_exec_file_sync_timeouts_return() {
    let err = exec_sync(HOLD_AND_WAIT)
        .timeout(Duration::from_millis(300))
        .run()
        .unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::Timeout);
    returned_before_the_grandchildren_ended(&err.result.stdout.unwrap().to_string(), 2);

    let err = exec_file_sync("sh", ["-c", HOLD_AND_WAIT])
        .timeout(Duration::from_millis(300))
        .run()
        .unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::Timeout);
    returned_before_the_grandchildren_ended(&err.result.stdout.unwrap().to_string(), 2);
}

#[test]
fn spawn_sync_max_buffer_closes_the_pipes_and_returns() {
    let r = spawn_sync(
        "sh",
        ["-c", "sleep 1000 & echo $!; yes | head -c 100000; wait"],
    )
    .max_buffer(1000)
    .run();
    assert_eq!(r.error, Some(SyncFailure::MaxBuffer(StdStream::Stdout)));
    let stdout = r.stdout.unwrap().to_string();
    let first = stdout.lines().next().unwrap_or_default().to_owned();
    returned_before_the_grandchildren_ended(&first, 1);
}

#[tokio::test]
async fn wait_delay_cuts_the_pipes_of_a_spawned_child_and_close_follows() {
    let mut child = Command::new("sh")
        .args(["-c", HOLD_AND_EXIT])
        .wait_delay(Duration::from_millis(200))
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // A read in progress is woken by the cut and ends with what came before it.
    let reader = tokio::spawn(async move {
        let mut s = String::new();
        stdout.read_to_string(&mut s).await.map(|_| s)
    });
    let status = guard(child.closed()).await.unwrap();
    assert!(status.success());
    assert!(child.pipes_closed_early());
    let out = guard(reader).await.unwrap().unwrap();
    returned_before_the_grandchildren_ended(&out, 1);
}

#[tokio::test]
async fn without_a_wait_delay_close_waits_for_the_grandchild_as_in_node() {
    let mut child = Command::new("sh")
        .args(["-c", HOLD_AND_EXIT])
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut line = [0u8; 32];
    let n = guard(stdout.read(&mut line)).await.unwrap();
    let pid = pids(std::str::from_utf8(&line[..n]).unwrap())[0];
    guard(child.wait()).await.unwrap();
    // Exited, but 'close' waits for the grandchild's copy of stdout: killing it releases it.
    assert!(!child.pipes_closed_early());
    let closed = tokio::spawn(async move { child.closed().await.map(|_| child) });
    assert!(alive(pid));
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    let child = guard(closed).await.unwrap().unwrap();
    assert!(!child.pipes_closed_early());
    drop(stdout);
}

#[tokio::test]
async fn wait_delay_bounds_exec_after_the_exit() {
    let out = guard(exec(HOLD_AND_EXIT).wait_delay(Duration::from_millis(200)))
        .await
        .unwrap();
    assert!(out.pipes_closed_early);
    returned_before_the_grandchildren_ended(&out.stdout.to_string(), 1);
}

#[tokio::test]
async fn wait_delay_keeps_reading_while_the_child_runs() {
    // 1 MiB is far more than a pipe holds: it arrives only if the pipes are drained while the
    // child runs. The delay is long, so nothing is cut: the pipes reach EOF on their own.
    let out = guard(
        exec("head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2")
            .encoding("buffer")
            .max_buffer(2 << 20)
            .wait_delay(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert_eq!(out.stdout.as_bytes().len(), 1 << 20);
    assert_eq!(out.stderr.as_bytes().len(), 1 << 20);
    assert!(!out.pipes_closed_early);
}

#[test]
fn wait_delay_bounds_the_sync_trio_after_the_exit() {
    let r = spawn_sync("sh", ["-c", HOLD_AND_EXIT])
        .wait_delay(Duration::from_millis(200))
        .run();
    assert_eq!((r.error.clone(), r.status), (None, Some(0)));
    assert!(r.pipes_closed_early);
    returned_before_the_grandchildren_ended(&r.stdout.unwrap().to_string(), 1);

    let out = exec_sync(HOLD_AND_EXIT)
        .wait_delay(Duration::from_millis(200))
        .run()
        .unwrap();
    returned_before_the_grandchildren_ended(&out.to_string(), 1);

    let out = exec_file_sync("sh", ["-c", HOLD_AND_EXIT])
        .wait_delay(Duration::from_millis(200))
        .run()
        .unwrap();
    returned_before_the_grandchildren_ended(&out.to_string(), 1);
}

#[tokio::test]
async fn pipeline_timeout_ends_every_stage_and_returns() {
    let err = guard(
        Pipeline::new()
            .pipe(Command::new("sh").args(["-c", HOLD_AND_WAIT]))
            .pipe(Command::new("cat"))
            .timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err.reason, ExecFailure::Timeout), "{err:?}");
    let statuses = err.output.status.stages();
    assert_eq!(statuses.len(), 2);
    // cat's stdin is held by the grandchildren: only the kill ended it.
    assert!(
        statuses.iter().all(|s| s.signal() == Some(Signal::SIGTERM)),
        "{statuses:?}"
    );
    returned_before_the_grandchildren_ended(&err.output.stdout.to_string(), 2);
}

#[tokio::test]
async fn pipeline_abort_ends_every_stage_and_returns_at_once() {
    let marker = temp_file("abort-pipeline");
    let script = format!("sleep 1000 & echo $! > {}; wait", marker.display());
    let token = CancellationToken::new();
    let running = Pipeline::new()
        .pipe(Command::new("sh").args(["-c", &script]))
        .pipe(Command::new("cat"))
        .abort_signal(token.clone())
        .spawn()
        .unwrap();
    let pids = running.pids();
    let output = tokio::spawn(running.output());
    let grandchild = wait_for_file(&marker).await;
    token.cancel();
    let err = guard(output).await.unwrap().unwrap_err();
    assert!(matches!(err.reason, ExecFailure::Aborted), "{err:?}");
    assert_eq!(err.to_string(), "The operation was aborted");
    returned_before_the_grandchildren_ended(&grandchild, 1);
    // The stages themselves were killed (and are reaped by their watchers).
    let _ = pids;
    let _ = std::fs::remove_file(marker);
}

#[tokio::test]
async fn pipeline_wait_delay_bounds_the_call_after_every_stage_exited() {
    // The first stage's grandchild holds that stage's stderr pipe; both stages exit.
    let out = guard(
        Pipeline::new()
            .pipe(Command::new("sh").args(["-c", "sleep 1000 & echo $! >&2; echo x"]))
            .pipe(Command::new("head").arg("-n1"))
            .wait_delay(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    assert_eq!(out.stdout, "x\n");
    assert!(out.pipes_closed_early);
    returned_before_the_grandchildren_ended(&out.stderr[0].to_string(), 1);
}

#[tokio::test]
async fn no_valid_duration_panics() {
    let max = Duration::MAX;
    let r = spawn_sync("true", [] as [&str; 0]).timeout(max).run();
    assert_eq!((r.error, r.status), (None, Some(0)));
    let r = spawn_sync("true", [] as [&str; 0])
        .escalate_after(max)
        .wait_delay(max)
        .timeout(max)
        .run();
    assert_eq!(r.status, Some(0));
    assert!(exec_sync("true").timeout(max).run().is_ok());
    guard(
        exec("true")
            .timeout(max)
            .escalate_after(max)
            .wait_delay(max),
    )
    .await
    .unwrap();
    let child = Command::new("true")
        .timeout(max)
        .escalate_after(max)
        .wait_delay(max)
        .spawn()
        .unwrap();
    assert!(guard(child.closed()).await.unwrap().success());
    guard(
        Pipeline::new()
            .pipe(Command::new("true"))
            .timeout(max)
            .wait_delay(max),
    )
    .await
    .unwrap();
    // A timeout that fires with an escalation too long to represent: no panic either.
    let r = spawn_sync("sleep", ["1000"])
        .timeout(Duration::from_millis(50))
        .escalate_after(max)
        .run();
    assert_eq!(r.signal, Some(Signal::SIGTERM));
}

/// Zombie children of this process, from /proc.
fn zombie_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str()) {
            found.push(pid);
        }
    }
    found
}

/// Waits (polling, with a guard) until `pid` is gone from /proc: reaped.
fn wait_until_reaped(pid: u32) {
    let start = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            start.elapsed() < common::GUARD,
            "child {pid} was never reaped (zombies: {:?})",
            zombie_children()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn children_outliving_their_runtime_are_reaped() {
    let runtime = common::runtime;
    // Dropped inside the runtime, which then shuts down before the watcher ran.
    let rt = runtime();
    let first = rt.block_on(async {
        let child = Command::new("true").spawn().unwrap();
        child.pid()
    });
    drop(rt);
    // Held past the runtime's end, then dropped with no runtime at all.
    let rt = runtime();
    let (second, child) = rt.block_on(async {
        let child = Command::new("true").spawn().unwrap();
        (child.pid(), child)
    });
    drop(rt);
    drop(child);
    // kill_on_drop after the runtime ended: killed, then reaped.
    let rt = runtime();
    let (third, child) = rt.block_on(async {
        let child = Command::new("sleep")
            .arg("1000")
            .kill_on_drop(true)
            .timeout(Duration::from_secs(1000))
            .spawn()
            .unwrap();
        (child.pid(), child)
    });
    drop(rt);
    drop(child);
    // Each of ours is reaped. (Other tests of this binary run meanwhile, so a zombie of
    // theirs may exist for a moment: only our own pids are checked.)
    for pid in [first, second, third] {
        wait_until_reaped(pid);
    }
}
