//! Beyond Node on termination: whole-tree kill, SIGTERM→SIGKILL escalation, kill on parent
//! death, group kill on drop.

mod common;

use std::time::Duration;

use childproc::{exec_file, Command, Signal};
use common::{guard, FIXTURE};
use tokio::io::AsyncBufReadExt;

fn alive(pid: u32) -> bool {
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

async fn until_dead(pid: u32) {
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
async fn sh_with_grandchild(cmd: &mut Command, announces: bool) -> (childproc::ChildProcess, u32) {
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

fn sh_script(role: &str) -> String {
    format!("{FIXTURE} {role} & echo $!; wait")
}

#[tokio::test]
async fn kill_tree_ends_the_sh_grandchild_of_the_manual_in_one_call() {
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

#[tokio::test]
async fn kill_tree_needs_a_group_leader_and_says_so() {
    let child = Command::new(FIXTURE)
        .args(["sleep", "30000"])
        .spawn()
        .unwrap();
    let err = child.kill_tree(Signal::SIGTERM).unwrap_err();
    assert!(
        err.to_string().contains("does not lead a process group"),
        "{err}"
    );
    child.kill(Signal::SIGKILL);
    guard(child.wait()).await.unwrap();
    let err = Command::new(FIXTURE).kill_group(true).spawn().unwrap_err();
    assert!(
        err.to_string().starts_with("invalid option kill_group"),
        "{err}"
    );
    let err = Command::new(FIXTURE)
        .detached(true)
        .process_group(0)
        .spawn()
        .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid option process_group"),
        "{err}"
    );
}

#[tokio::test]
async fn a_child_ignoring_sigterm_is_killed_after_the_grace_period() {
    let child = Command::new(FIXTURE)
        .args(["ignore-term", "30000"])
        .timeout(Duration::from_millis(100))
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
            .timeout(Duration::from_millis(50))
            .escalate_after(Duration::from_millis(50)),
    )
    .await
    .unwrap_err();
    assert!(err.is_timeout() && err.escalated, "{err:?}");
    assert_eq!(err.signal, Some(Signal::SIGKILL));
}

#[tokio::test]
async fn cancellation_escalates_too() {
    let token = childproc::CancellationToken::new();
    let mut child = Command::new(FIXTURE)
        .args(["ignore-term", "30000"])
        .abort_signal(token.clone())
        .escalate_after(Duration::from_millis(50))
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(
        guard(out.next_line()).await.unwrap().as_deref(),
        Some("ready")
    );
    token.cancel();
    assert_eq!(
        guard(child.wait()).await.unwrap().signal(),
        Some(Signal::SIGKILL)
    );
    assert!(child.escalated());
}

#[tokio::test]
async fn kill_on_drop_kills_the_whole_group_and_escalates() {
    let (child, grandchild) = sh_with_grandchild(
        Command::new("sh")
            .args(["-c", &sh_script("ignore-term 30000")])
            .process_group(0)
            .kill_group(true)
            .kill_on_drop(true)
            .escalate_after(Duration::from_millis(100)),
        true,
    )
    .await;
    let events = child.events();
    drop(child);
    let last = guard(futures_util::StreamExt::collect::<Vec<_>>(events))
        .await
        .pop();
    assert!(matches!(last, Some(childproc::Event::Close(_))), "{last:?}");
    // The grandchild ignored SIGTERM; the group SIGKILL after the grace period ended it.
    until_dead(grandchild).await;
}

#[tokio::test]
async fn children_die_with_their_parent_even_when_it_is_sigkilled() {
    let mut parent = tokio::process::Command::new(FIXTURE)
        .arg("orphan-maker")
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
