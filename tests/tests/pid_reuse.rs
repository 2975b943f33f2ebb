//! A kill can never reach a recycled PID: once our child is reaped and another process gets
//! its PID, `kill` and `kill_tree` on the old child return false and the new process lives.
//! Its own test binary: it steers the kernel's next PID (root only) and must not race.

mod common;

use childproc::{Command, Signal};
use common::{guard, FIXTURE};

fn next_pid_is(pid: u32) -> bool {
    std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_ok()
}

#[tokio::test]
async fn a_reaped_childs_pid_reused_by_another_process_is_never_signalled() {
    for attempt in 0..50 {
        let old = Command::new(FIXTURE)
            .args(["sleep", "30000"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = old.pid();
        assert!(old.kill(Signal::SIGKILL));
        guard(old.wait()).await.unwrap();
        if !next_pid_is(pid) {
            eprintln!(
                "skipping: cannot steer PIDs here (needs root and /proc/sys/kernel/ns_last_pid)"
            );
            return;
        }
        let mut stranger = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        if stranger.id() != pid {
            stranger.kill().unwrap();
            stranger.wait().unwrap();
            eprintln!("attempt {attempt}: another process took pid {pid}; retrying");
            continue;
        }
        // Same number, different process: nothing may reach it.
        assert!(!old.kill(Signal::SIGKILL), "kill reached the stranger");
        assert!(
            !old.kill_tree(Signal::SIGKILL).unwrap(),
            "kill_tree reached the stranger"
        );
        assert!(
            stranger.try_wait().unwrap().is_none(),
            "the stranger was signalled"
        );
        stranger.kill().unwrap();
        stranger.wait().unwrap();
        return;
    }
    panic!("could not get a PID reused in 50 attempts");
}
