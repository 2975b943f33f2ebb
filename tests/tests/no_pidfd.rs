//! The fallback for kernels without pidfds (forced): exit on SIGCHLD, kill under the reaping
//! lock. A test binary of its own, because the switch is process-wide.

mod common;

use std::time::Duration;

use childproc::{Command, Signal};
use common::{guard, stdout_string, timeline, FIXTURE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_wait_kill_and_timeout_work_without_pidfds() {
    childproc::__force_no_pidfd(true);

    let mut child = Command::new(FIXTURE)
        .args(["out-err", "hi", "x"])
        .spawn()
        .unwrap();
    assert!(child.pidfd().is_none());
    assert_eq!(stdout_string(&mut child).await, "hi\n");
    assert_eq!(
        timeline(&child).await,
        ["spawn", "exit code 0", "close code 0"]
    );

    let child = Command::new(FIXTURE)
        .args(["sleep", "30000"])
        .spawn()
        .unwrap();
    assert!(child.kill(Signal::SIGUSR2));
    assert_eq!(
        guard(child.wait()).await.unwrap().signal(),
        Some(Signal::SIGUSR2)
    );
    assert!(
        !child.kill(Signal::SIGTERM),
        "a reaped child is never signalled"
    );

    let child = Command::new(FIXTURE)
        .args(["sleep", "30000"])
        .timeout(Duration::from_millis(50))
        .spawn()
        .unwrap();
    assert_eq!(
        guard(child.wait()).await.unwrap().signal(),
        Some(Signal::SIGTERM)
    );

    // Many at once: every exit is seen even when SIGCHLDs coalesce.
    let children: Vec<_> = (0..40)
        .map(|i| {
            Command::new(FIXTURE)
                .args(["exit", &(i % 7).to_string()])
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.iter().enumerate() {
        assert_eq!(guard(c.wait()).await.unwrap().code(), Some(i as i32 % 7));
    }
}

/// Children moved between runtimes (as in `spawn.rs`), waited for on SIGCHLD: one whose
/// watcher had not started, one whose watcher died with the first runtime.
#[test]
fn children_are_waited_for_from_another_runtime_without_pidfds() {
    childproc::__force_no_pidfd(true);
    let runtime = common::runtime;
    let first = runtime();
    let (lazy, eager) = first.block_on(async {
        let lazy = Command::new(FIXTURE).args(["exit", "3"]).spawn().unwrap();
        let eager = Command::new(FIXTURE)
            .args(["exit", "4"])
            .timeout(Duration::from_secs(3600))
            .spawn()
            .unwrap();
        tokio::task::yield_now().await; // the eager watcher runs up to its first wait
        (lazy, eager)
    });
    drop(first);
    runtime().block_on(async {
        assert_eq!(guard(lazy.closed()).await.unwrap().code(), Some(3));
        assert_eq!(guard(eager.wait()).await.unwrap().code(), Some(4));
        assert_eq!(guard(eager.closed()).await.unwrap().code(), Some(4));
    });
}
