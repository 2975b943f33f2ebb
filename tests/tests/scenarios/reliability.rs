//! Many spawns with failures mixed in; which engine created every child. Each scenario
//! here must run alone in its process, so its counts are exact.

use std::time::Duration;

use childproc::{Command, Stdio};

use crate::common::{guard, FIXTURE};

/// This process's open fds and what they point at.
pub fn open_fds() -> Vec<String> {
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
pub async fn settled_fds() -> Vec<String> {
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
pub fn zombies() -> Vec<String> {
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
pub fn command(i: usize) -> Command {
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

/// Spawns `n` children of the kinds of [`command`], 16 at a time, about 10 % of which fail
/// (before creation and in the child); then no zombie is left and the fd table is as it was.
/// Alone in its process: other tests' children and pipes would blur the counts.
pub async fn spawns_with_failures_leave_nothing_behind(n: usize) {
    // One round of every kind first: process-wide singletons (the shared /dev/null, the
    // parent-death keeper thread) exist from then on and are not leaks.
    for i in 0..20 {
        if let Ok(mut child) = command(i).spawn() {
            drop(child.stdout.take());
            guard(child.closed()).await.unwrap();
        }
    }
    let fds_before = settled_fds().await;
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

/// Children that exit before anyone awaits them and children spawned from a `spawn_blocking`
/// thread are seen; then every option combination of [`command`] is created by `engine`
/// (counted). Alone in its process, so the count is exact.
pub async fn every_option_goes_through(expected_engine: &str) {
    // Children that exit long before anyone awaits them.
    let early: Vec<_> = (0..50)
        .map(|_| Command::new(FIXTURE).args(["exit", "4"]).spawn().unwrap())
        .collect();
    // Each has exited (or been reaped already) before its wait() below is called.
    for c in &early {
        super::until_dead(c.pid()).await;
    }
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
    assert_eq!(engine, expected_engine);
    let kinds = 3..20; // every successful kind of `command`, each option combination once
    for i in kinds.clone() {
        if let Ok(child) = command(i).spawn() {
            guard(child.closed()).await.unwrap();
        }
    }
    let (_, after) = childproc::__engine_stats();
    // Every child (kinds 3..20, none of which fails) was created by that engine.
    assert_eq!(after - before, kinds.len() as u64);
}
