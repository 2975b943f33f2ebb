//! Each spawn option of Node's `spawn`, observed from inside a real child.

mod common;
mod scenarios;

use std::time::Duration;

use childproc::{Command, Event, Signal};
use common::{guard, stdout_string, timeline, FIXTURE, STARTUP};
use scenarios::output;

#[tokio::test]
async fn args_reach_the_child_verbatim_and_argv0_is_settable() {
    scenarios::argv_and_argv0().await;
}

#[tokio::test]
async fn cwd_is_the_childs_working_directory() {
    scenarios::cwd().await;
}

#[tokio::test]
async fn env_inherits_by_default_and_an_explicit_env_replaces_it() {
    scenarios::env().await;
}

#[tokio::test]
async fn a_parents_channel_variables_are_not_inherited() {
    // The fixture gets a channel's variables (as a child forked by Node would) and runs `env`
    // with the environment it inherited: every variable reaches the grandchild but those two,
    // which describe the fixture's own channel.
    let out = output(
        Command::new(FIXTURE)
            .args(["exec-sync", "env"])
            .env("NODE_CHANNEL_FD", "3")
            .env("NODE_CHANNEL_SERIALIZATION_MODE", "json")
            .env("CHILDPROC_MARKER", "kept"),
    )
    .await;
    assert!(out.contains("CHILDPROC_MARKER=kept"), "{out}");
    assert!(!out.contains("NODE_CHANNEL"), "{out}");
}

#[tokio::test]
async fn path_lookup_uses_the_given_env_else_the_default_path() {
    // An explicit env without PATH searches /usr/bin:/bin: `env` lives there.
    let out = output(Command::new("env").env_clear().env("A", "1")).await;
    assert_eq!(out, "A=1\n");
    // The given env's PATH is the one searched: the fixture's directory finds `fixture`.
    let dir = std::path::Path::new(FIXTURE).parent().unwrap();
    let out = output(
        Command::new("fixture")
            .arg("cwd")
            .env("PATH", dir)
            .current_dir("/"),
    )
    .await;
    assert_eq!(out.trim(), "/");
    // …and a PATH that lacks the program means NotFound, even though the parent's has it.
    let err = Command::new("sh")
        .env("PATH", "/nonexistent")
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn shell_true_runs_through_bin_sh_and_a_shell_path_is_honoured() {
    scenarios::shell().await;
}

#[tokio::test]
async fn uid_and_gid_drop_privileges() {
    scenarios::uid_and_gid().await;
}

#[tokio::test]
async fn timeout_kills_with_the_kill_signal() {
    scenarios::timeout().await;
}

#[tokio::test]
async fn a_child_ignoring_sigterm_outlives_the_timeout_until_killed() {
    // Node sends killSignal once; a child that ignores it keeps running. (SIGTERM→SIGKILL
    // escalation is an addition that the engine issue brings.)
    let mut child = Command::new(FIXTURE)
        .args(["ignore-term", "30000"])
        .timeout(STARTUP)
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    guard(tokio::io::AsyncReadExt::read_exact(&mut out, &mut ready))
        .await
        .unwrap();
    let mut events = child.events();
    use futures_util::StreamExt;
    assert!(matches!(guard(events.next()).await, Some(Event::Spawn)));
    // The timeout fires and is delivered (killed() becomes true) but the child lives on.
    guard(async {
        while !child.killed() {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(child.try_status(), None);
    assert!(child.kill(Signal::SIGKILL));
    assert_eq!(
        guard(child.wait()).await.unwrap().signal(),
        Some(Signal::SIGKILL)
    );
}

#[tokio::test]
async fn abort_signal_kills_and_reports_an_abort_error() {
    let token = childproc::CancellationToken::new();
    let child = Command::new(FIXTURE)
        .args(["sleep", "30000"])
        .abort_signal(token.clone())
        .spawn()
        .unwrap();
    token.cancel();
    let events = timeline(&child).await;
    assert_eq!(
        events,
        [
            "spawn",
            "error The operation was aborted",
            "exit signal SIGTERM",
            "close signal SIGTERM"
        ]
    );
}

#[tokio::test]
async fn kill_on_drop_is_opt_in_and_uses_the_kill_signal() {
    let child = Command::new(FIXTURE)
        .args(["sleep", "30000"])
        .kill_on_drop(true)
        .kill_signal(Signal::SIGUSR1)
        .spawn()
        .unwrap();
    let pid = child.pid();
    let mut events = child.events();
    drop(child);
    use futures_util::StreamExt;
    let mut last = None;
    while let Some(e) = guard(events.next()).await {
        last = Some(e);
    }
    match last {
        Some(Event::Close(s)) => assert_eq!(s.signal(), Some(Signal::SIGUSR1), "pid {pid}"),
        other => panic!("expected Close, got {other:?}"),
    }

    // Without it, dropping leaves the child running (and it is still reaped when it ends).
    let child = Command::new(FIXTURE)
        .args(["sleep", "200"])
        .spawn()
        .unwrap();
    let mut events = child.events();
    drop(child);
    let mut seen = Vec::new();
    while let Some(e) = guard(events.next()).await {
        seen.push(common::describe(&e));
    }
    assert_eq!(seen, ["spawn", "exit code 0", "close code 0"]);
}

#[tokio::test]
async fn close_waits_for_unread_output_to_be_closed_but_not_consumed() {
    // Like Node: a small unread output does not hold Close back; the bytes stay readable.
    let mut child = Command::new(FIXTURE)
        .args(["out-err", "kept", "e"])
        .spawn()
        .unwrap();
    guard(child.closed()).await.unwrap();
    assert_eq!(stdout_string(&mut child).await, "kept\n");
}

#[tokio::test]
async fn dropping_stdout_early_gives_the_writer_sigpipe_not_a_hang() {
    let mut child = Command::new(FIXTURE)
        .args(["spew", "100000000"])
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = guard(child.closed()).await.unwrap();
    // Rust programs ignore SIGPIPE and exit on the EPIPE error instead: either way, it ends.
    assert!(
        status.signal() == Some(Signal::SIGPIPE) || status.code() == Some(101),
        "{status}"
    );
}

#[tokio::test]
async fn windows_only_options_are_accepted_and_change_nothing() {
    let plain = output(Command::new(FIXTURE).args(["argv", "a \"b\""])).await;
    let with = output(
        Command::new(FIXTURE)
            .args(["argv", "a \"b\""])
            .windows_hide(true)
            .windows_verbatim_arguments(true),
    )
    .await;
    assert_eq!(plain, with);
    assert_eq!(with.lines().nth(2), Some("a \"b\""));
}
