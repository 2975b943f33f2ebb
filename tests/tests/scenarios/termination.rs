//! Ending children: kill, timeout, process groups and sessions, escalation, parent death.

use std::time::Duration;

use childproc::{exec_file, Command, Signal};
use tokio::io::AsyncBufReadExt;

use super::{engine, FIXTURE_ENGINE};
use crate::common::{guard, timeline, FIXTURE, STARTUP};

/// Timeout kills with the kill signal (`options.rs`).
pub async fn timeout() {
    let child = Command::new(FIXTURE)
        .args(["sleep", "30000"])
        .timeout(Duration::from_millis(100))
        .spawn()
        .unwrap();
    assert_eq!(
        guard(child.closed()).await.unwrap().signal(),
        Some(Signal::SIGTERM)
    );
    assert_eq!(
        timeline(&child).await,
        ["spawn", "exit signal SIGTERM", "close signal SIGTERM"]
    );

    let child = Command::new(FIXTURE)
        .args(["sleep", "30000"])
        .timeout(Duration::from_millis(100))
        .kill_signal("SIGINT")
        .spawn()
        .unwrap();
    assert_eq!(
        guard(child.wait()).await.unwrap().signal(),
        Some(Signal::SIGINT)
    );
    assert!(
        child.killed(),
        "a timeout kill counts as killed, as in Node"
    );

    // A child that exits first is not killed.
    let child = Command::new(FIXTURE)
        .args(["exit", "0"])
        .timeout(Duration::from_secs(60))
        .spawn()
        .unwrap();
    assert!(guard(child.wait()).await.unwrap().success());
    assert!(!child.killed());
}

/// `kill(SIGHUP)`: SIGHUP is the Close signal (`spawn.rs`).
pub async fn kill_sighup() {
    // Node: grep.kill('SIGHUP'); 'close' reports signal SIGHUP.
    let child = Command::new("grep").arg("ssh").spawn().unwrap();
    assert!(child.kill(Signal::SIGHUP));
    assert!(child.killed());
    let status = guard(child.closed()).await.unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGHUP));
    assert_eq!(status.code(), None);
    assert_eq!(child.signal_code(), Some(Signal::SIGHUP));
    assert_eq!(
        timeline(&child).await,
        ["spawn", "exit signal SIGHUP", "close signal SIGHUP"]
    );
    // Killing an exited child is not an error: false, and no Error event.
    assert!(!child.kill(Signal::SIGTERM));
    assert_eq!(timeline(&child).await.len(), 3);
}

/// Whether `pid` is running (a zombie counts as dead).
pub fn alive(pid: u32) -> bool {
    // A zombie is dead for our purposes (it is its init's to reap).
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with(['Z', 'X']),
        Err(_) => false,
    }
}

/// Waits until `pid` is no longer [`alive`].
pub async fn until_dead(pid: u32) {
    guard(async {
        while alive(pid) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// `sh -c '<fixture> <role…> & echo $!; wait'`: returns the child and the grandchild's pid.
/// A grandchild that announces itself ("ready", printed by `ignore-term` once SIGTERM is
/// ignored) may do so before or after the shell's `echo`: both lines are awaited.
pub async fn sh_with_grandchild(
    cmd: &mut Command,
    announces: bool,
) -> (childproc::ChildProcess, u32) {
    let mut child = cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut pid, mut ready) = (None, !announces);
    while pid.is_none() || !ready {
        let line = guard(lines.next_line()).await.unwrap().unwrap();
        match line.trim() {
            "ready" => ready = true,
            number => pid = Some(number.parse::<u32>().unwrap()),
        }
    }
    let pid = pid.unwrap();
    assert!(alive(pid));
    (child, pid)
}

/// The `sh -c` script that starts the fixture in `role` in the background and waits.
pub fn sh_script(role: &str) -> String {
    format!("{FIXTURE} {role} & echo $!; wait")
}

/// `kill_tree` ends the `sh` grandchild of the manual in one call (`engine.rs`).
pub async fn kill_tree() {
    // The manual's example: kill() on `sh -c` leaves the grandchild running. With a process
    // group, kill_tree() ends both.
    let (child, grandchild) = sh_with_grandchild(
        Command::new("sh")
            .args(["-c", &sh_script("sleep 30000")])
            .process_group(0),
        false,
    )
    .await;
    assert!(child.kill_tree(Signal::SIGTERM).unwrap());
    assert_eq!(
        guard(child.closed()).await.unwrap().signal(),
        Some(Signal::SIGTERM)
    );
    until_dead(grandchild).await;

    // The same for a detached child (its own session).
    let (child, grandchild) = sh_with_grandchild(
        Command::new("sh")
            .args(["-c", &sh_script("sleep 30000")])
            .detached(true),
        false,
    )
    .await;
    assert!(child.kill_tree(Signal::SIGKILL).unwrap());
    guard(child.closed()).await.unwrap();
    until_dead(grandchild).await;
    // After the child is reaped the group is never signalled again (its id could be reused).
    assert!(!child.kill_tree(Signal::SIGKILL).unwrap());
}

/// A child ignoring SIGTERM is killed after the grace period (`engine.rs`).
pub async fn escalation() {
    let child = Command::new(FIXTURE)
        .args(["ignore-term", "30000"])
        .timeout(STARTUP)
        .escalate_after(Duration::from_millis(100))
        .spawn()
        .unwrap();
    assert_eq!(
        guard(child.wait()).await.unwrap().signal(),
        Some(Signal::SIGKILL)
    );
    assert!(child.escalated());

    // A child that obeys SIGTERM is not escalated.
    let child = Command::new(FIXTURE)
        .args(["sleep", "30000"])
        .timeout(Duration::from_millis(50))
        .escalate_after(Duration::from_secs(30))
        .spawn()
        .unwrap();
    assert_eq!(
        guard(child.wait()).await.unwrap().signal(),
        Some(Signal::SIGTERM)
    );
    assert!(!child.escalated());

    // exec reports it as a typed flag.
    let err = guard(
        exec_file(FIXTURE, ["ignore-term", "30000"])
            .timeout(STARTUP)
            .escalate_after(Duration::from_millis(50)),
    )
    .await
    .unwrap_err();
    assert!(err.is_timeout() && err.escalated, "{err:?}");
    assert_eq!(err.signal, Some(Signal::SIGKILL));
}

/// Children die with their parent even when it is SIGKILLed (`engine.rs`).
pub async fn parent_death() {
    let mut parent = tokio::process::Command::new(FIXTURE)
        .arg("orphan-maker")
        .env(FIXTURE_ENGINE, engine())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(parent.stdout.take().unwrap()).lines();
    assert_eq!(
        guard(lines.next_line()).await.unwrap().as_deref(),
        Some("alive-after-thread-exit=true")
    );
    let line = guard(lines.next_line()).await.unwrap().unwrap();
    let pid: u32 = line.strip_prefix("pid=").unwrap().parse().unwrap();
    assert!(alive(pid));
    parent.kill().await.unwrap(); // SIGKILL: no cleanup code runs in the parent
    until_dead(pid).await;
}
