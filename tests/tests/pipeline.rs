//! OS-level pipelines (`childproc::Pipeline`): stages linked by pipes the parent lets go of,
//! so no byte passes through it; statuses, pipefail, failures, fds.
//!
//! The test counting the parent's fds and children takes `TABLE` for writing; every other
//! test here takes it for reading, so nothing else in this binary spawns meanwhile (a test
//! starting meanwhile builds its runtime first: those fds are not counted).

use std::collections::BTreeSet;

use childproc::{Command, Error, ExecFailure, Pipeline, Signal, Stdio, StdioShorthand};
use tokio::io::AsyncReadExt;
use tokio::sync::RwLock;
mod common;
use common::{guard, FIXTURE};

static TABLE: RwLock<()> = RwLock::const_new(());

/// An owned command (a stage a closure can return; a `&mut Command` from a temporary
/// cannot leave its statement).
fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// A fixture command.
fn fixture(args: &[&str]) -> Command {
    cmd(FIXTURE, args)
}

/// What fd `fd` of process `pid` points to (`pipe:[1234]`, `/dev/null`…).
fn fd_target(pid: &str, fd: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd/{fd}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Every fd target of this process.
fn own_targets() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .collect()
}

/// Whether an fd target is a tokio runtime's own: its epoll, its eventfd, its copy of the
/// signal socket. libtest may start another test of this binary at any moment, and that test
/// builds its runtime before it waits for `TABLE`.
fn a_runtimes_own(target: &str) -> bool {
    ["anon_inode:[eventpoll]", "anon_inode:[eventfd]", "socket:"]
        .iter()
        .any(|p| target.starts_with(p))
}

/// This process's count of the fds a pipeline could leave behind (pipes, pidfds, /dev/null:
/// every fd but a runtime's own) and its live children (every thread's).
fn fds_and_children() -> (usize, BTreeSet<String>) {
    let fds = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| !a_runtimes_own(&t.to_string_lossy()))
        .count();
    let mut children = BTreeSet::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let list = std::fs::read_to_string(task.unwrap().path().join("children"));
        children.extend(
            list.unwrap_or_default()
                .split_whitespace()
                .map(String::from),
        );
    }
    (fds, children)
}

/// A child whose command line contains "ssh", so `ps ax | grep ssh` always has a match.
fn ssh_marker() -> childproc::ChildProcess {
    fixture(&["sleep", "60000"])
        .argv0("ssh-pipeline-twin-marker")
        .stdio_all(StdioShorthand::Ignore)
        .spawn()
        .unwrap()
}

/// The manual's "very elaborate way to run `ps ax | grep ssh`", the short way: the two
/// commands linked at the OS level, awaited like exec.
#[tokio::test]
async fn ps_ax_piped_into_grep_ssh_as_a_pipeline() {
    let _table = TABLE.read().await;
    let marker = ssh_marker();
    let out = guard(
        Pipeline::new()
            .pipe(Command::new("ps").arg("ax"))
            .pipe(Command::new("grep").arg("ssh")),
    )
    .await
    .unwrap();
    let shell = guard(childproc::exec("ps ax | grep ssh")).await.unwrap();

    let ours = out.stdout.as_str().unwrap();
    let theirs = shell.stdout.as_str().unwrap();
    for listing in [ours, theirs] {
        assert!(listing.lines().all(|l| l.contains("ssh")), "{listing}");
        assert!(
            listing.contains("ssh-pipeline-twin-marker sleep 60000"),
            "{listing}"
        );
        // Whether grep sees itself is a race in both, as in a terminal: `ps` may read the
        // process table before `grep` has been exec'd. Not asserted.
    }
    let codes: Vec<_> = out.status.stages().iter().map(|s| s.code()).collect();
    assert_eq!(codes, [Some(0), Some(0)]);
    assert_eq!(out.stderr.len(), 2);
    assert!(out.stderr.iter().all(|e| e.is_empty()), "{:?}", out.stderr);

    assert!(marker.kill(Signal::SIGTERM));
    guard(marker.closed()).await.unwrap();
}

/// `yes | head -n 3` ends: head's exit closes the only read end, so `yes` dies of SIGPIPE
/// (its disposition is reset to the default in the child). A Rust writer, which ignores
/// SIGPIPE itself, gets EPIPE instead. With pipefail, the SIGPIPE fails the pipeline.
#[tokio::test]
async fn yes_into_head_ends_with_sigpipe_for_yes() {
    let _table = TABLE.read().await;
    let pipeline = || {
        Pipeline::new()
            .pipe(cmd("yes", &[]))
            .pipe(cmd("head", &["-n", "3"]))
    };
    let out = guard(pipeline()).await.unwrap();
    assert_eq!(out.stdout.as_str(), Some("y\ny\ny\n"));
    let stages = out.status.stages();
    assert_eq!(stages[0].signal(), Some(Signal::SIGPIPE), "{stages:?}");
    assert_eq!(stages[1].code(), Some(0));
    assert_eq!(out.status.last(), Some(stages[1]));
    assert_eq!(out.status.pipefail(), Some(stages[0]));

    let err = guard(pipeline().pipefail(true)).await.unwrap_err();
    assert!(matches!(err.reason, ExecFailure::Signal), "{err:?}");
    assert_eq!(err.stage, Some(0));
    assert_eq!(err.status().and_then(|s| s.signal()), Some(Signal::SIGPIPE));
    assert_eq!(err.output.stdout.as_str(), Some("y\ny\ny\n"));
    assert!(
        err.to_string()
            .starts_with("Command failed: yes | head -n 3"),
        "{err}"
    );

    // The fixture writer is a Rust program: SIGPIPE ignored, so its write fails with EPIPE.
    let out = guard(
        Pipeline::new()
            .pipe(fixture(&["spew", "10000000"]))
            .pipe(Command::new("head").args(["-c", "5"])),
    )
    .await
    .unwrap();
    assert_eq!(out.stdout.as_str(), Some("xxxxx"));
    assert_eq!(out.status.stages()[0].code(), Some(101));
    let writer_err = out.stderr[0].to_string_lossy();
    assert!(writer_err.contains("Broken pipe"), "{writer_err}");
}

/// 100 MiB through `fixture | cat | fixture count`: the stages' links are pipes only they
/// hold — the parent's fd table has none of them (it holds the first stdin and the last
/// stdout, which the same check finds) — and the count arrives whole.
#[tokio::test]
async fn a_hundred_mib_through_three_stages_never_touches_the_parent() {
    let _table = TABLE.read().await;
    const SIZE: usize = 100 * 1024 * 1024;
    // Kept alive: `spawn` itself must close the parent's copies of the links, not the drop
    // of the commands.
    let mut pipeline = Pipeline::new()
        .pipe(fixture(&["wait-then-spew", &SIZE.to_string()]))
        .pipe(cmd("cat", &[]))
        .pipe(fixture(&["count"]));
    let mut running = pipeline.spawn().unwrap();
    // Every stage is blocked reading its stdin (the first waits for our EOF): look now.
    let pids: Vec<String> = running.pids().iter().map(u32::to_string).collect();
    let parent = own_targets();
    let first_link = fd_target(&pids[0], 1);
    let second_link = fd_target(&pids[1], 1);
    for link in [&first_link, &second_link] {
        assert!(link.starts_with("pipe:["), "{link}");
        assert!(
            !parent.contains(link),
            "the parent holds a stage link {link}"
        );
    }
    assert_ne!(first_link, second_link);
    assert_eq!(fd_target(&pids[1], 0), first_link);
    assert_eq!(fd_target(&pids[2], 0), second_link);
    // The ends the parent does hold are found by the same check.
    assert!(parent.contains(&fd_target(&pids[0], 0)));
    assert!(parent.contains(&fd_target(&pids[2], 1)));
    for pid in &pids {
        assert!(
            parent.contains(&fd_target(pid, 2)),
            "each stderr is a pipe to us"
        );
    }

    drop(running.stdin.take()); // go
    let mut count = String::new();
    let mut stdout = running.stdout.take().unwrap();
    guard(stdout.read_to_string(&mut count)).await.unwrap();
    assert_eq!(count.trim(), SIZE.to_string());
    let status = guard(running.closed()).await.unwrap();
    assert!(status.pipefail().unwrap().success(), "{status:?}");
    drop(pipeline);
}

/// Each stage gets exactly fds 0–2: no stage inherits another stage's link (the parent made
/// them close-on-exec, and the engine closes everything above the configured fds). Each
/// stage prints its own fd table after relaying what came before.
#[tokio::test]
async fn every_stage_gets_exactly_fds_0_1_2() {
    let _table = TABLE.read().await;
    let _open_in_parent = std::fs::File::open("/proc/self/status").unwrap();
    let out = guard(
        Pipeline::new()
            .pipe(fixture(&["fds"]))
            .pipe(fixture(&["cat-then-fds"]))
            .pipe(fixture(&["cat-then-fds"]))
            .pipe(fixture(&["cat-then-fds"])),
    )
    .await
    .unwrap();
    assert_eq!(out.stdout.as_str(), Some("0 1 2\n0 1 2\n0 1 2\n0 1 2\n"));
}

/// Without pipefail the last stage decides, as a shell's `$?`; with it, the rightmost failing
/// stage. Each stage's stderr is collected on its own.
#[tokio::test]
async fn statuses_of_every_stage_and_pipefail() {
    let _table = TABLE.read().await;
    let three = |a: &str, b: &str, c: &str| {
        Pipeline::new()
            .pipe(cmd(
                "sh",
                &["-c", &format!("echo one; echo e0 >&2; exit {a}")],
            ))
            .pipe(cmd("sh", &["-c", &format!("cat; echo e1 >&2; exit {b}")]))
            .pipe(cmd("sh", &["-c", &format!("cat; exit {c}")]))
    };
    let out = guard(three("3", "4", "0")).await.unwrap();
    assert_eq!(out.stdout.as_str(), Some("one\n"));
    let codes: Vec<_> = out.status.stages().iter().map(|s| s.code()).collect();
    assert_eq!(codes, [Some(3), Some(4), Some(0)]);
    assert_eq!(out.status.pipefail().unwrap().code(), Some(4));
    let stderr: Vec<_> = out.stderr.iter().map(|d| d.to_string_lossy()).collect();
    assert_eq!(stderr, ["e0\n", "e1\n", ""]);

    let err = guard(three("3", "4", "0").pipefail(true))
        .await
        .unwrap_err();
    assert!(matches!(err.reason, ExecFailure::Exit), "{err:?}");
    assert_eq!(
        (err.stage, err.status().unwrap().code()),
        (Some(1), Some(4))
    );
    assert!(err.to_string().ends_with("\ne1\n"), "{err}");

    let err = guard(three("0", "0", "5")).await.unwrap_err();
    assert_eq!(
        (err.stage, err.status().unwrap().code()),
        (Some(2), Some(5))
    );
    let out = guard(three("0", "0", "0").pipefail(true)).await.unwrap();
    assert!(out.status.stages().iter().all(|s| s.success()));
}

/// The first stdin and the last stdout are the pipeline's; a borrowed command is left as it
/// was, so the same pipeline can be spawned again; a stage's stderr can join the link
/// (`2>&1 |`) or the parent's stderr.
#[tokio::test]
async fn stdin_and_stdout_are_the_ends_and_commands_stay_reusable() {
    let _table = TABLE.read().await;
    let mut sort = Command::new("sort");
    for _ in 0..2 {
        let out = guard(
            Pipeline::new()
                .pipe(fixture(&["cat"]))
                .pipe(&mut sort)
                .input("b\nc\na\n"),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout.as_str(), Some("a\nb\nc\n"));
    }
    let out = guard(
        Pipeline::new()
            .pipe(fixture(&["out-err", "to-out", "to-err"]).stderr(Stdio::SameAs(1)))
            .pipe(Command::new("sort"))
            .pipe(fixture(&["count"]).stderr(Stdio::Inherit)),
    )
    .await
    .unwrap();
    assert_eq!(
        out.stdout.as_str(),
        Some("14\n"),
        "both lines went down the link"
    );
    assert_eq!(out.stderr[0].len() + out.stderr[2].len(), 0);
}

/// A stage that cannot start: the stages before it are killed and reaped before `spawn`
/// returns, no fd is left behind, and the error names the stage and its program. Run with
/// the fd table to itself.
#[tokio::test]
async fn a_stage_that_fails_to_start_leaves_no_child_and_no_fd() {
    let _table = TABLE.write().await;
    // Warm up: the shared /dev/null and the runtime's own fds are opened once.
    guard(
        Pipeline::new()
            .pipe(fixture(&["exit", "0"]))
            .pipe(fixture(&["cat"])),
    )
    .await
    .unwrap();
    let before = fds_and_children();
    for _ in 0..20 {
        let err = Pipeline::new()
            .pipe(fixture(&["sleep", "60000"]))
            .pipe(Command::new("no-such-program-in-a-pipeline"))
            .pipe(Command::new("cat"))
            .spawn()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert!(
            err.to_string()
                .starts_with("pipeline stage 1: spawn no-such-program-in-a-pipeline: "),
            "{err}"
        );
        let Error::Pipeline { stage: 1, source } = &err else {
            panic!("{err:?}")
        };
        assert!(matches!(**source, Error::Spawn { .. }), "{source:?}");
        // Reaped before spawn returned: no zombie, nothing running.
        assert_eq!(fds_and_children(), before);

        // A bad cwd in the last stage; awaited, the same error in the exec-style result.
        let err = guard(
            Pipeline::new()
                .pipe(fixture(&["sleep", "60000"]))
                .pipe(Command::new("cat"))
                .pipe(Command::new("cat").current_dir("/no/such/dir")),
        )
        .await
        .unwrap_err();
        assert!(matches!(err.reason, ExecFailure::Spawn(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("stage 2: spawn cat: cannot use cwd"),
            "{err}"
        );
        assert_eq!(fds_and_children(), before);

        // And a pipeline that runs leaves nothing behind either.
        guard(
            Pipeline::new()
                .pipe(Command::new("yes"))
                .pipe(Command::new("true")),
        )
        .await
        .unwrap();
        assert_eq!(fds_and_children(), before);
    }
}
