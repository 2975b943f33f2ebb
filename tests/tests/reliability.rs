//! Thousands of spawns with failures mixed in leave no zombie and no fd behind; every option
//! goes through the vfork-class engine. One test binary, run alone, so the counts are exact.

mod common;

use std::time::Duration;

use childproc::{Command, Stdio};
use common::{guard, FIXTURE};

/// This process's open fds and what they point at.
fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| {
            format!(
                "{} -> {:?}",
                e.file_name().to_string_lossy(),
                std::fs::read_link(e.path()).ok()
            )
        })
        .filter(|l| !l.contains("/proc/"))
        .collect();
    fds.sort();
    fds
}

/// The fds once every finished child's watcher has let go of its pidfd (a task may still be
/// dropping its last reference for a moment after `closed()` resolved).
async fn settled_fds() -> Vec<String> {
    guard(async {
        loop {
            let fds = open_fds();
            if !fds.iter().any(|l| l.contains("pidfd")) {
                return fds;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Our children that are zombies right now.
fn zombies() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let after = stat.rsplit(')').next().unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 1 && fields[0] == "Z" && fields[1] == me {
            found.push(stat);
        }
    }
    found
}

/// One spawn of kind `i % 20`: about 10 % fail, some before creation and some in the child.
fn command(i: usize) -> Command {
    let mut c = Command::new(FIXTURE);
    match i % 20 {
        0 => c = Command::new("no-such-program-xyz"), // fails in the parent (PATH)
        1 => c = Command::new("/etc/passwd"),         // fails in the child: exec EACCES
        2 => drop(
            c.arg("exit")
                .arg("0")
                .uid(65534)
                .current_dir("/root")
                .env("HOME", "/"),
        ), // chdir EACCES in the child
        3 => drop(c.args(["exit", "0"]).detached(true)),
        4 => drop(c.args(["exit", "0"]).process_group(0)),
        5 => drop(
            c.args(["exit", "0"])
                .fd(3, Stdio::Pipe)
                .fd(5, Stdio::Ignore),
        ),
        6 => drop(c.args(["exit", "0"]).uid(65534).gid(65534)),
        7 => drop(c.args(["out-err", "o", "e"])),
        8 => drop(c.args(["exit", "0"]).kill_on_parent_death(true)),
        9 => drop(
            c.args(["exit", "0"])
                .stdio_all(childproc::StdioShorthand::Ignore),
        ),
        _ => drop(c.args(["exit", "3"]).env("X", "1").argv0("renamed")),
    }
    c
}

// The two parts share one test so nothing else in this process spawns while they count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability() {
    ten_thousand_spawns_with_failures_leave_nothing_behind().await;
    every_option_goes_through_the_vfork_engine_and_early_exits_are_seen().await;
}

async fn ten_thousand_spawns_with_failures_leave_nothing_behind() {
    // One round of every kind first: process-wide singletons (the shared /dev/null, the
    // parent-death keeper thread) exist from then on and are not leaks.
    for i in 0..20 {
        if let Ok(mut child) = command(i).spawn() {
            drop(child.stdout.take());
            guard(child.closed()).await.unwrap();
        }
    }
    let fds_before = settled_fds().await;
    let n = 10_000;
    let mut failures = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
        let mut running = Vec::new();
        for &i in chunk {
            match command(i).spawn() {
                Ok(child) => running.push(child),
                Err(_) => failures += 1,
            }
        }
        for mut child in running {
            // Read what there is, as a user would; then wait for Close.
            drop(child.stdout.take());
            guard(child.closed()).await.unwrap();
        }
    }
    assert!(
        (n / 20 * 2..=n / 20 * 3).contains(&failures),
        "{failures} failures"
    );
    assert_eq!(zombies(), Vec::<String>::new());
    assert_eq!(
        settled_fds().await,
        fds_before,
        "fds leaked (pidfds, pipes)"
    );
}

async fn every_option_goes_through_the_vfork_engine_and_early_exits_are_seen() {
    // Children that exit long before anyone awaits them.
    let early: Vec<_> = (0..50)
        .map(|_| Command::new(FIXTURE).args(["exit", "4"]).spawn().unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for c in &early {
        assert_eq!(guard(c.wait()).await.unwrap().code(), Some(4));
    }
    // Spawning from a spawn_blocking thread.
    let status =
        tokio::task::spawn_blocking(|| Command::new(FIXTURE).args(["exit", "5"]).spawn().unwrap())
            .await
            .unwrap();
    assert_eq!(guard(status.wait()).await.unwrap().code(), Some(5));

    let (engine, before) = childproc::__engine_stats();
    assert_eq!(engine, "clone-vfork");
    let kinds = 3..20; // every successful kind above, each option combination once
    for i in kinds.clone() {
        if let Ok(child) = command(i).spawn() {
            guard(child.closed()).await.unwrap();
        }
    }
    let (_, after) = childproc::__engine_stats();
    // Every child (kinds 3..20, none of which fails) was created by the vfork-class path.
    assert_eq!(after - before, kinds.len() as u64);
}
