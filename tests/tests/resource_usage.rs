//! What each child cost (`ResourceUsage`): gathered at reap time from the kernel, on the exit
//! status of spawn, the sync trio's result, exec's result and error, and per pool worker;
//! children with a known cost, with generous bounds for a loaded machine.

mod common;

use std::time::Duration;

use childproc::{exec_file, fork_exe, spawn_sync, Command, Pool, Signal};
use common::{guard, FIXTURE};

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn a_child_that_burns_cpu_shows_its_cpu_time() {
    let child = Command::new(FIXTURE).args(["burn", "300"]).spawn().unwrap();
    let status = guard(child.wait()).await.unwrap();
    let usage = status.resource_usage().expect("gathered at reap time");
    // 300 ms of CPU, counted in clock ticks: at least 250 ms, and not wildly more.
    assert!(usage.cpu_time() >= Duration::from_millis(250), "{usage:?}");
    assert!(usage.user_time >= Duration::from_millis(200), "{usage:?}");
    assert!(usage.cpu_time() < Duration::from_secs(30), "{usage:?}");
    assert_eq!(usage.cpu_time(), usage.user_time + usage.system_time);
}

#[tokio::test]
async fn a_child_that_touches_memory_shows_its_max_rss() {
    let child = Command::new(FIXTURE).args(["touch", "64"]).spawn().unwrap();
    let usage = guard(child.wait()).await.unwrap().resource_usage().unwrap();
    assert!(usage.max_rss >= 64 * MIB, "{usage:?}");
    assert!(usage.minor_page_faults >= 64 * MIB / 4096 / 2, "{usage:?}");
}

#[tokio::test]
async fn a_sleeping_child_shows_little_cpu() {
    let child = Command::new("sleep").arg("0.2").spawn().unwrap();
    let usage = guard(child.wait()).await.unwrap().resource_usage().unwrap();
    assert!(usage.cpu_time() < Duration::from_millis(150), "{usage:?}");
    assert!(
        usage.voluntary_context_switches >= 1,
        "it waited: {usage:?}"
    );
}

#[tokio::test]
async fn a_killed_child_has_its_usage_too() {
    let child = Command::new(FIXTURE)
        .args(["burn", "60000"])
        .spawn()
        .unwrap();
    assert!(child.kill(Signal::SIGKILL));
    let status = guard(child.wait()).await.unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL));
    let usage = status
        .resource_usage()
        .expect("a killed child is reaped like any other");
    assert!(usage.cpu_time() < Duration::from_secs(30), "{usage:?}");
}

#[tokio::test]
async fn exec_and_its_errors_carry_it() {
    let out = guard(exec_file(FIXTURE, ["burn", "100"])).await.unwrap();
    let usage = out.resource_usage.expect("on the result");
    assert!(usage.cpu_time() >= Duration::from_millis(80), "{usage:?}");

    let err = guard(exec_file(FIXTURE, ["exit", "3"])).await.unwrap_err();
    assert_eq!(err.code, Some(3));
    assert!(err.resource_usage.is_some(), "on the error: {err:?}");
}

#[tokio::test]
async fn the_sync_trio_carries_it() {
    let result = spawn_sync(FIXTURE, ["burn", "100"]).run();
    assert_eq!(result.status, Some(0));
    let usage = result.resource_usage.expect("on spawnSync's result");
    assert!(usage.cpu_time() >= Duration::from_millis(80), "{usage:?}");
    // A failing child: the error carries spawnSync's whole result.
    let failed = childproc::exec_sync(format!("{FIXTURE} touch 32; exit 1"))
        .run()
        .unwrap_err();
    let usage = failed.result.resource_usage.expect("on the error's result");
    assert!(usage.max_rss >= 32 * MIB, "{usage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pool_worker_that_ends_has_its_usage_recorded() {
    let pool = Pool::builder(|| fork_exe(FIXTURE, ["pool-worker"]))
        .size(2)
        .build()
        .unwrap();
    for i in 0..4 {
        guard(pool.run(childproc::ipc::Value::object([(
            "echo",
            childproc::ipc::Value::from(i),
        )])))
        .await
        .unwrap();
    }
    assert!(pool.worker_usage().is_empty(), "no worker has ended yet");
    let summary = guard(pool.close()).await;
    let ended = summary.worker_usage;
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert!(ended.iter().all(|u| u.max_rss > 0), "{ended:?}");
    let total = summary.stats.workers_usage;
    assert_eq!(
        total.max_rss,
        ended.iter().map(|u| u.max_rss).max().unwrap()
    );
    assert_eq!(total.user_time, ended.iter().map(|u| u.user_time).sum());
}
