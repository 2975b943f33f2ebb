//! Beyond Node on termination: whole-tree kill, SIGTERM→SIGKILL escalation, kill on parent
//! death, group kill on drop.

mod common;
mod scenarios;

use std::time::Duration;

use childproc::{Command, Signal};
use common::{guard, FIXTURE};
use scenarios::{sh_script, sh_with_grandchild, until_dead};
use tokio::io::AsyncBufReadExt;

#[tokio::test]
async fn kill_tree_ends_the_sh_grandchild_of_the_manual_in_one_call() {
    scenarios::kill_tree().await;
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
    scenarios::escalation().await;
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
    scenarios::parent_death().await;
}
