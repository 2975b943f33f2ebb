//! The everyday paths, as a user of `childproc` with `default-features = false` runs them:
//! CI runs this file with `cargo test -p childproc --no-default-features` (and, like every
//! test, with the default features). Real programs (`sh`, `printf`, `cat`, `tr`); the IPC
//! behaviour itself is tested in the `tests` crate, with the feature.

use std::time::Duration;

use childproc::{exec, exec_sync, spawn_sync, Command, Event, Pipeline, Stdio};
use futures_util::StreamExt;

/// A guard against a hang, never a synchronisation.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[tokio::test]
async fn spawn_streams_lines_and_emits_nodes_lifecycle() {
    let run = async {
        let mut child = Command::new("printf").arg("one\ntwo\n").spawn().unwrap();
        let mut events = child.events();
        let lines: Vec<String> = child
            .stdout
            .take()
            .unwrap()
            .lines()
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(lines, ["one", "two"]);
        let status = child.closed().await.unwrap();
        assert!(status.success());
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            seen.push(match event {
                Event::Spawn => "spawn",
                Event::Exit(_) => "exit",
                Event::Close(_) => "close",
                other => panic!("unexpected event {other:?}"),
            });
        }
        assert_eq!(seen, ["spawn", "exit", "close"]);
        childproc::wait_referenced().await; // no channel to wait for: returns once closed
    };
    tokio::time::timeout(HANG_GUARD, run).await.unwrap();
}

#[tokio::test]
async fn exec_and_pipelines_collect_output_and_report_failures() {
    let run = async {
        let out = exec("echo hello; echo oops >&2").await.unwrap();
        assert_eq!(out.stdout.as_bytes(), b"hello\n");
        assert_eq!(out.stderr.as_bytes(), b"oops\n");
        let err = exec("exit 3").await.unwrap_err();
        assert_eq!(err.code, Some(3), "{err}");
        let out = Pipeline::new()
            .pipe(Command::new("printf").arg("b\na\n"))
            .pipe(Command::new("sort"))
            .await
            .unwrap();
        assert_eq!(out.stdout.as_bytes(), b"a\nb\n");
        let missing = Command::new("/nonexistent/childproc-test")
            .spawn()
            .unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    };
    tokio::time::timeout(HANG_GUARD, run).await.unwrap();
}

#[test]
fn the_sync_trio_runs_without_a_runtime() {
    let out = exec_sync("printf hi").run().unwrap();
    assert_eq!(out.as_bytes(), b"hi");
    let result = spawn_sync("tr", ["a-z", "A-Z"])
        .input("shout")
        .fd(2, Stdio::Inherit)
        .run();
    assert_eq!(result.status, Some(0), "{:?}", result.error);
    assert_eq!(result.stdout.unwrap().as_bytes(), b"SHOUT");
    let failed = exec_sync("exit 7").run().unwrap_err();
    assert_eq!(failed.result.status, Some(7), "{failed}");
}
