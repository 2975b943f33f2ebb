//! spawn, stdio and the ChildProcess surface, against real processes.

use std::collections::BTreeSet;

use childproc::{Command, Signal, Stdio, StdioShorthand};
mod common;
mod scenarios;
use common::{guard, runtime, stdout_string, timeline, FIXTURE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn stdout_and_exit_code_of_a_real_program() {
    let mut child = Command::new(FIXTURE)
        .args(["out-err", "hello", "oops"])
        .spawn()
        .unwrap();
    let mut err = String::new();
    let mut stderr = child.stderr.take().unwrap();
    let out = stdout_string(&mut child).await;
    guard(stderr.read_to_string(&mut err)).await.unwrap();
    assert_eq!(out, "hello\n");
    assert_eq!(err, "oops\n");
    let status = guard(child.closed()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(child.exit_code(), Some(0));
    assert_eq!(child.signal_code(), None);
}

#[tokio::test]
async fn the_child_gets_exactly_the_configured_fds() {
    scenarios::exact_fds().await;
}

#[tokio::test]
async fn stdin_pipe_round_trip() {
    let mut child = Command::new(FIXTURE).arg("cat").spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"through the pipe").await.unwrap();
    drop(stdin);
    assert_eq!(stdout_string(&mut child).await, "through the pipe");
    assert!(guard(child.wait()).await.unwrap().success());
}

#[tokio::test]
async fn events_come_in_nodes_order() {
    let child = Command::new(FIXTURE).args(["exit", "3"]).spawn().unwrap();
    assert_eq!(
        timeline(&child).await,
        ["spawn", "exit code 3", "close code 3"]
    );
    // A second consumer sees the same history.
    assert_eq!(
        timeline(&child).await,
        ["spawn", "exit code 3", "close code 3"]
    );
}

#[tokio::test]
async fn kill_sighup_is_the_close_signal() {
    scenarios::kill_sighup().await;
}

#[tokio::test]
async fn signals_are_reset_in_the_child() {
    scenarios::signals_reset().await;
}

#[tokio::test]
async fn detached_children_lead_a_new_session() {
    scenarios::detached().await;
}

#[tokio::test]
async fn shorthands_expand_to_all_three() {
    let child = Command::new(FIXTURE)
        .arg("fds")
        .stdio_all(StdioShorthand::Ignore)
        .spawn()
        .unwrap();
    assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
    assert!(guard(child.wait()).await.unwrap().success());
    let mut piped = Command::new(FIXTURE)
        .arg("fds")
        .stdio_all(StdioShorthand::Overlapped)
        .spawn()
        .unwrap();
    assert!(piped.stdin.is_some() && piped.stderr.is_some());
    assert_eq!(stdout_string(&mut piped).await.trim(), "0 1 2");
    let ids: BTreeSet<u32> = [piped.pid()].into();
    assert_eq!(ids.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_spawn_at_once_on_a_multi_thread_runtime() {
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            tokio::spawn(async move {
                let mut child = Command::new(FIXTURE)
                    .args(["out-err", &format!("task {i}"), "e"])
                    .spawn()
                    .unwrap();
                let out = stdout_string(&mut child).await;
                (out, guard(child.closed()).await.unwrap())
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let (out, status) = t.await.unwrap();
        assert_eq!(out, format!("task {i}\n"));
        assert!(status.success());
    }
}

#[tokio::test]
async fn the_pidfd_is_exposed_and_refers_to_the_child() {
    let child = Command::new(FIXTURE)
        .args(["sleep", "30000"])
        .spawn()
        .unwrap();
    let fd = child.pidfd().expect("this kernel has pidfds");
    let link = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .unwrap();
    assert_eq!(link.to_str(), Some("anon_inode:[pidfd]"));
    let info = std::fs::read_to_string(format!(
        "/proc/self/fdinfo/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .unwrap();
    assert!(info.contains(&format!("Pid:\t{}", child.pid())), "{info}");
    child.kill(Signal::SIGKILL);
    guard(child.wait()).await.unwrap();
}

#[test]
fn a_child_whose_runtime_shut_down_stops_counting_for_wait_referenced() {
    let first = runtime();
    first.block_on(async {
        let child = Command::new(FIXTURE)
            .args(["sleep", "100"])
            .spawn()
            .unwrap();
        drop(child);
    });
    drop(first); // the watcher task dies with its runtime, before Close
    let second = runtime();
    second.block_on(async { guard(childproc::wait_referenced()).await });
}

/// As tokio's `process_spawned_and_wait_in_different_runtime`: children spawned in a
/// runtime that has shut down since are waited for, closed and followed from another.
#[test]
fn a_child_is_waited_for_in_another_runtime_after_its_own_shut_down() {
    let spawn = |code: &str| {
        Command::new(FIXTURE)
            .args(["exit", code])
            .stdin(Stdio::Pipe)
            .stdout(Stdio::Ignore)
            .spawn()
            .unwrap()
    };
    let first = runtime();
    let (waited, closed, followed) = first.block_on(async { (spawn("3"), spawn("4"), spawn("5")) });
    drop(first);
    runtime().block_on(async {
        assert_eq!(guard(waited.wait()).await.unwrap().code(), Some(3));
        assert_eq!(guard(closed.closed()).await.unwrap().code(), Some(4));
        assert_eq!(
            timeline(&followed).await,
            ["spawn", "exit code 5", "close code 5"],
            "the events of a child spawned in the runtime that shut down"
        );
    });
}

/// The same with the watcher already running in the first runtime (a timeout or an IPC
/// channel starts it at once): it dies with that runtime, mid-watch, and the other runtime
/// reaps, also the IPC child, which only the watcher reaps otherwise. The IPC child's
/// channel died with its reader: it is closed, so the child is not left waiting on it.
#[test]
fn a_child_whose_watcher_died_with_its_runtime_is_reaped_from_another() {
    let first = runtime();
    let (waited, closed, forked) = first.block_on(async {
        let spawn = |code: &str| {
            Command::new(FIXTURE)
                .args(["exit", code])
                .timeout(std::time::Duration::from_secs(3600))
                .spawn()
                .unwrap()
        };
        let (waited, closed) = (spawn("6"), spawn("7"));
        tokio::task::yield_now().await; // their watchers run up to their first wait
                                        // This one's watcher and channel reader never run before the runtime goes: they
                                        // are lost all the same.
        let forked = childproc::fork_exe(FIXTURE, ["ipc-echo"]).spawn().unwrap();
        (waited, closed, forked)
    });
    drop(first);
    runtime().block_on(async {
        assert_eq!(guard(waited.wait()).await.unwrap().code(), Some(6));
        assert_eq!(guard(closed.closed()).await.unwrap().code(), Some(7));
        // Nobody reads its channel any more: it was closed as by `disconnect()`, so sends
        // fail, and the child reads its end and exits by itself.
        assert!(!forked.connected());
        assert!(guard(forked.send(childproc::ipc::Value::from("hi")))
            .await
            .is_err());
        guard(forked.wait()).await.unwrap();
    });
}

#[tokio::test]
async fn a_parent_fd_number_is_shared_with_the_child() {
    // Node's positive-integer stdio entry: the parent's fd N becomes the child's stdout.
    use std::os::fd::AsRawFd;
    let path = std::env::temp_dir().join(format!("childproc-parent-fd-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let child = Command::new(FIXTURE)
        .args(["out-err", "into the file", "e"])
        .stdout(Stdio::parent_fd(file.as_raw_fd()))
        .spawn()
        .unwrap();
    assert!(child.stdout.is_none());
    assert!(guard(child.closed()).await.unwrap().success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "into the file\n");
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_see_one_exit_whoever_reaps() {
    // `wait()` reaps the child itself when it gets there before the watcher task: every
    // waiter, the events and `try_status` must still agree, with exactly one Exit.
    for _ in 0..50 {
        let child = std::sync::Arc::new(
            Command::new(FIXTURE)
                .args(["exit", "7"])
                .stdio_all(StdioShorthand::Ignore)
                .spawn()
                .unwrap(),
        );
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let child = child.clone();
                tokio::spawn(async move { child.wait().await.unwrap() })
            })
            .collect();
        for w in waiters {
            assert_eq!(guard(w).await.unwrap().code(), Some(7));
        }
        assert_eq!(child.exit_code(), Some(7));
        assert_eq!(
            timeline(&child).await,
            ["spawn", "exit code 7", "close code 7"]
        );
    }
}

#[tokio::test]
#[allow(unsafe_code)]
async fn a_child_reaped_behind_our_back_is_an_error_not_a_hang() {
    let child = Command::new(FIXTURE)
        .args(["sleep", "100"])
        .stdio_all(StdioShorthand::Ignore)
        .spawn()
        .unwrap();
    let pid = child.pid() as libc::pid_t;
    // Someone else in the process reaps it, as a stray `waitpid(-1)` would. The test runtime
    // has one thread, blocked here, so the watcher task cannot get there first.
    let mut status = 0;
    // SAFETY: waitpid on a child of this process, writing into a local.
    let reaped = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(reaped, pid);
    let err = guard(child.wait()).await.unwrap_err();
    assert!(err.to_string().contains(&pid.to_string()), "{err}");
    let events = timeline(&child).await;
    assert!(events.iter().any(|e| e.starts_with("error")), "{events:?}");
}

#[tokio::test]
async fn a_plain_child_costs_no_task_and_still_closes() {
    // No timers, no cancellation, no IPC: no watcher task is started for spawn → wait → drop,
    // and Close is still emitted (in place, its streams being closed).
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = tasks();
    let mut child = Command::new(FIXTURE).args(["out-err"]).spawn().unwrap();
    assert_eq!(tasks(), before);
    let out = stdout_string(&mut child).await;
    assert!(!out.is_empty());
    let mut stderr = child.stderr.take().unwrap();
    let mut err = String::new();
    stderr.read_to_string(&mut err).await.unwrap();
    assert!(guard(child.closed()).await.unwrap().success());
    assert_eq!(tasks(), before);
    assert_eq!(
        timeline(&child).await,
        ["spawn", "exit code 0", "close code 0"]
    );
    drop(child);
    assert_eq!(tasks(), before);
}

#[tokio::test]
async fn a_child_nobody_awaits_is_still_seen_to_exit_and_reaped() {
    // Polling the properties, as Node code reads `exitCode`, sees the exit.
    let child = Command::new(FIXTURE)
        .args(["exit", "3"])
        .stdio_all(StdioShorthand::Ignore)
        .spawn()
        .unwrap();
    guard(async {
        while child.exit_code().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(child.exit_code(), Some(3));
    assert_eq!(child.signal_code(), None);

    // Dropped while running and never awaited: still reaped, no zombie left.
    let child = Command::new(FIXTURE)
        .args(["sleep", "50"])
        .stdio_all(StdioShorthand::Ignore)
        .spawn()
        .unwrap();
    let pid = child.pid();
    drop(child);
    guard(async {
        while std::fs::metadata(format!("/proc/{pid}")).is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;

    // Held but never awaited: wait_referenced still sees it close.
    let child = Command::new(FIXTURE)
        .args(["sleep", "50"])
        .stdio_all(StdioShorthand::Ignore)
        .spawn()
        .unwrap();
    guard(childproc::wait_referenced()).await;
    assert_eq!(child.exit_code(), Some(0));
}
