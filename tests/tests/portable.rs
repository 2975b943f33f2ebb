//! The portable engine (`fork` + `execve`, the only one on Unixes other than Linux), forced on
//! Linux so the suite runs it: every spawn option, every error, an IPC fork, termination, and
//! a few hundred spawns with failures mixed in, through the shared scenarios. Children have no
//! pidfd here, as on those systems: waits and signals take the SIGCHLD path.
//!
//! One test, so nothing else in this process spawns while it counts children and fds.

mod common;
mod scenarios;

use childproc::{Command, Signal};
use common::{guard, FIXTURE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_through_the_portable_engine() {
    childproc::__force_portable_engine(true);
    let (engine, before) = childproc::__engine_stats();
    assert_eq!(engine, "fork");

    let child = Command::new(FIXTURE).args(["exit", "7"]).spawn().unwrap();
    assert!(
        child.pidfd().is_none(),
        "the portable engine makes no pidfd"
    );
    assert_eq!(guard(child.wait()).await.unwrap().code(), Some(7));
    assert!(
        !child.kill(Signal::SIGKILL),
        "a reaped child is never signalled"
    );

    // Options.
    scenarios::argv_and_argv0().await;
    scenarios::cwd().await;
    scenarios::env().await;
    scenarios::shell().await;
    scenarios::detached().await;
    scenarios::pty_is_the_controlling_terminal().await;
    scenarios::pty_size_and_resize().await;
    scenarios::pty_dropped_first_hangs_up().await;
    scenarios::uid_and_gid().await;
    scenarios::exact_fds().await;
    scenarios::signals_reset().await;
    scenarios::ipc_fork_rust_child().await;
    // Termination: kill, timeout, process groups and sessions, escalation, parent death.
    scenarios::kill_sighup().await;
    scenarios::timeout().await;
    scenarios::kill_tree().await;
    scenarios::escalation().await;
    scenarios::parent_death().await;
    // Errors, in the parent and reported by the child through the error pipe.
    scenarios::missing_program().await;
    scenarios::bad_cwd().await;
    scenarios::ids_that_cannot_be_set().await;
    scenarios::bad_stdio().await;
    scenarios::nul_bytes().await;

    let (engine, after) = childproc::__engine_stats();
    assert_eq!(engine, "fork");
    assert!(after - before >= 20, "{before} -> {after}");

    scenarios::spawns_with_failures_leave_nothing_behind(400).await;
    scenarios::every_option_goes_through("fork").await;
}
