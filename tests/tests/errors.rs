//! Bad input: a clear error that names the offending thing, and nothing lost.

mod common;
mod scenarios;

use std::io::ErrorKind;

use childproc::{Command, Error, Event, Signal};
use common::{guard, FIXTURE};

#[tokio::test]
async fn a_missing_program_is_not_found_and_named() {
    scenarios::missing_program().await;
}

#[tokio::test]
async fn a_file_that_is_not_executable_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("childproc-noexec-{}", std::process::id()));
    std::fs::write(&path, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Command::new(&path).spawn().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    // Found by PATH lookup but not executable: also EACCES, as execvp reports it.
    let name = path.file_name().unwrap();
    let err = Command::new(name)
        .env("PATH", path.parent().unwrap())
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn a_bad_cwd_is_named() {
    scenarios::bad_cwd().await;
}

#[tokio::test]
async fn interior_nul_bytes_are_rejected_naming_the_input() {
    scenarios::nul_bytes().await;
}

#[tokio::test]
async fn an_unknown_kill_signal_is_named() {
    let err = Command::new(FIXTURE)
        .kill_signal("SIGNOPE")
        .spawn()
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownSignal(ref s) if s == "SIGNOPE"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "Unknown signal: SIGNOPE");
    let err = Command::new(FIXTURE).kill_signal(99).spawn().unwrap_err();
    assert_eq!(err.to_string(), "Unknown signal: 99");
    assert_eq!(
        "SIGNOPE".parse::<Signal>().unwrap_err().to_string(),
        "Unknown signal: SIGNOPE"
    );
}

#[tokio::test]
async fn bad_stdio_entries_are_named() {
    scenarios::bad_stdio().await;
}

#[tokio::test]
async fn ids_that_cannot_be_set_are_named() {
    scenarios::ids_that_cannot_be_set().await;
}

#[tokio::test]
async fn an_undeliverable_kill_returns_false_and_emits_an_error() {
    let mut child = Command::new(FIXTURE).arg("kill-as-nobody").spawn().unwrap();
    let out = common::stdout_string(&mut child).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "delivered=false killed=false", "{out}");
    assert_eq!(lines[1], "first=Some(Spawn)", "{out}");
    assert!(lines[2].starts_with("error=kill SIGKILL to pid "), "{out}");
    assert!(
        lines[2].ends_with("Operation not permitted (os error 1) kind=PermissionDenied"),
        "{out}"
    );
}

#[tokio::test]
async fn failures_leave_no_child_and_no_fd_behind() {
    let fds_before = std::fs::read_dir("/proc/self/fd").unwrap().count();
    for _ in 0..50 {
        Command::new("no-such-program-xyz").spawn().unwrap_err();
        Command::new(FIXTURE)
            .current_dir("/no/such")
            .spawn()
            .unwrap_err();
        Command::new(FIXTURE).env("BAD", "\0").spawn().unwrap_err();
        let ok = Command::new(FIXTURE)
            .uid(65534)
            .args(["exit", "0"])
            .spawn()
            .unwrap();
        assert!(guard(ok.closed()).await.unwrap().success());
    }
    let fds_after = std::fs::read_dir("/proc/self/fd").unwrap().count();
    // Other tests run concurrently in this process; allow their pipes, but not 150 leaks.
    assert!(fds_after < fds_before + 20, "{fds_before} -> {fds_after}");
    let child = Command::new(FIXTURE).args(["exit", "0"]).spawn().unwrap();
    let events: Vec<Event> = guard(futures_util::StreamExt::collect(child.events())).await;
    assert_eq!(events.len(), 3);
}
