//! The "build" section: what childproc costs a user to compile, with and without its `ipc`
//! feature, beside tokio with only its `process` feature and beside no dependency at all.
//!
//! Each peer is a scratch crate in a temporary directory: the same minimal program (a
//! current-thread runtime that spawns `true` and waits for it), with the workspace's
//! Cargo.lock copied in so every peer resolves the same versions. Each timed build is a clean
//! `cargo build --offline` (dev profile) into a fresh target directory; the rounds interleave
//! the peers in a rotating order and the table shows each peer's median. The dependency count
//! is `cargo tree -e normal --prefix none` deduplicated, the scratch crate itself not counted.
//!
//! The rounds use the shared harness's rotation and median.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::doc::{Section, Table};
use super::{median_duration, rotation};
use crate::{workspace_root, BoxError};

/// Timed clean builds per peer, one per round (`--quick`: 1, with no warm-up round).
const ROUNDS: usize = 5;

/// One scratch crate.
struct Peer {
    /// The row's label.
    label: &'static str,
    /// The scratch crate's directory and package name.
    name: &'static str,
    /// Its `[dependencies]` lines; `{childproc}` stands for the path of crates/childproc.
    deps: &'static str,
    /// Its `src/main.rs`.
    main: &'static str,
}

/// The peers, in table order; the ratios are to [`BASELINE`].
const PEERS: [Peer; 4] = [
    Peer {
        label: "childproc (default features)",
        name: "build-childproc",
        deps: "childproc = { path = \"{childproc}\" }\n\
               tokio = { version = \"1\", default-features = false, features = [\"rt\"] }\n",
        main: CHILDPROC_MAIN,
    },
    Peer {
        label: "childproc without `ipc`",
        name: "build-childproc-no-ipc",
        deps: "childproc = { path = \"{childproc}\", default-features = false }\n\
               tokio = { version = \"1\", default-features = false, features = [\"rt\"] }\n",
        main: CHILDPROC_MAIN,
    },
    Peer {
        label: "tokio, features `process` + `rt`",
        name: "build-tokio-process",
        deps: "tokio = { version = \"1\", default-features = false, features = [\"rt\", \"process\"] }\n",
        main: "fn main() {\n\
               \x20   let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();\n\
               \x20   let status = rt.block_on(async { tokio::process::Command::new(\"true\").status().await.unwrap() });\n\
               \x20   assert!(status.success());\n\
               }\n",
    },
    Peer {
        label: "std::process (no dependency)",
        name: "build-std-process",
        deps: "",
        main: "fn main() {\n\
               \x20   assert!(std::process::Command::new(\"true\").status().unwrap().success());\n\
               }\n",
    },
];

/// The index in [`PEERS`] of the peer the ratios divide by: tokio with `process`.
const BASELINE: usize = 2;

/// The program of both childproc peers.
const CHILDPROC_MAIN: &str = "fn main() {\n\
    \x20   let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();\n\
    \x20   let status = rt.block_on(async { childproc::Command::new(\"true\").spawn().unwrap().wait().await.unwrap() });\n\
    \x20   assert!(status.success());\n\
    }\n";

/// What one peer measured.
struct Measured {
    /// Distinct crates in its normal dependency tree, itself not counted.
    crates: usize,
    /// One clean build time per round.
    builds: Vec<Duration>,
}

/// Runs the section: writes the scratch crates, counts their trees, then times clean builds.
pub(super) fn run(quick: bool) -> Result<Section, BoxError> {
    let scratch =
        std::env::temp_dir().join(format!("childproc-bench-build-{}", std::process::id()));
    let result = measure(&scratch, quick);
    let _ = fs::remove_dir_all(&scratch);
    let (measured, load) = result?;
    Ok(section(&measured, quick, &load))
}

/// Writes the scratch crates under `scratch` and measures every peer.
fn measure(scratch: &Path, quick: bool) -> Result<(Vec<Measured>, [String; 2]), BoxError> {
    let root = workspace_root();
    let lock = fs::read_to_string(root.join("Cargo.lock"))?;
    let childproc = root.join("crates").join("childproc");
    let mut measured = Vec::new();
    for peer in &PEERS {
        let dir = scratch.join(peer.name);
        write_crate(&dir, peer, &childproc, &lock)?;
        let crates = count_crates(&dir, peer.name)?;
        println!("build: {} has {crates} crates in its tree", peer.label);
        measured.push(Measured {
            crates,
            builds: Vec::new(),
        });
    }
    let load_before = load_average();
    let rounds = if quick { 1 } else { ROUNDS };
    // Round 0 (full runs only) is an untimed warm-up: it brings the sources and the
    // toolchain into the page cache, and proves each program builds and runs.
    let first = usize::from(quick);
    for round in first..=rounds {
        for i in rotation(&(0..PEERS.len()).collect::<Vec<_>>(), round) {
            let peer = &PEERS[i];
            let dir = scratch.join(peer.name);
            let target = scratch.join(format!("target-{}-{round}", peer.name));
            let took = clean_build(&dir, &target)?;
            if round == first {
                run_program(&target, peer)?;
            }
            let _ = fs::remove_dir_all(&target);
            if round == 0 {
                println!("build: warm-up {}: {:.1} s", peer.label, took.as_secs_f64());
            } else {
                println!(
                    "build: round {round}/{rounds} {}: {:.1} s",
                    peer.label,
                    took.as_secs_f64()
                );
                measured[i].builds.push(took);
            }
        }
    }
    Ok((measured, [load_before, load_average()]))
}

/// Writes the scratch crate of `peer` into `dir`.
fn write_crate(dir: &Path, peer: &Peer, childproc: &Path, lock: &str) -> Result<(), BoxError> {
    fs::create_dir_all(dir.join("src"))?;
    let deps = peer
        .deps
        .replace("{childproc}", &childproc.display().to_string());
    // `[workspace]`: the crate is a workspace of its own, whatever directory it sits in.
    let manifest = format!(
        "[package]\nname = \"{}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\n{deps}\n[workspace]\n",
        peer.name
    );
    fs::write(dir.join("Cargo.toml"), manifest)?;
    fs::write(dir.join("src").join("main.rs"), peer.main)?;
    // The workspace's versions; cargo drops what this crate does not use.
    fs::write(dir.join("Cargo.lock"), lock)?;
    Ok(())
}

/// `cargo` for a scratch crate: offline, no compiler wrapper (a cache would make a clean
/// build not clean), and no incremental compilation (a path dependency would otherwise get
/// it, which a crate from crates.io does not).
fn cargo(dir: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(dir)
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS")
        .env("CARGO_INCREMENTAL", "0")
        .stdin(Stdio::null());
    command
}

/// The distinct crates (name and version) `cargo tree -e normal` lists for the crate in
/// `dir`, the crate `name` itself not counted.
fn count_crates(dir: &Path, name: &str) -> Result<usize, BoxError> {
    let out = cargo(dir)
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .env("CARGO_TARGET_DIR", dir.join("target-tree"))
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "build: `cargo tree` in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(distinct_crates(&String::from_utf8_lossy(&out.stdout), name))
}

/// The distinct `name version` pairs of a `cargo tree --prefix none` output, `root` not
/// counted (lines repeat with ` (*)` for crates shown before).
fn distinct_crates(tree: &str, root: &str) -> usize {
    let mut seen: Vec<(&str, &str)> = tree
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .filter(|(name, _)| *name != root)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// One clean dev build of the crate in `dir` into the fresh directory `target`; its wall time.
fn clean_build(dir: &Path, target: &Path) -> Result<Duration, BoxError> {
    let _ = fs::remove_dir_all(target);
    let start = Instant::now();
    let out = cargo(dir)
        .args(["build", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", target)
        .stdout(Stdio::null())
        .output()?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "build: `cargo build --offline` in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(took)
}

/// Runs the program just built into `target`: it spawns `true` and fails unless that exits 0.
fn run_program(target: &Path, peer: &Peer) -> Result<(), BoxError> {
    let exe: PathBuf = target.join("debug").join(peer.name);
    let status = Command::new(&exe).stdin(Stdio::null()).status()?;
    if !status.success() {
        return Err(format!("build: {} ({}) failed: {status}", peer.label, exe.display()).into());
    }
    Ok(())
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg has them, or `unknown`.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Seconds with one decimal.
fn secs(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}

/// The section's Markdown.
fn section(measured: &[Measured], quick: bool, load: &[String; 2]) -> Section {
    let base = median_duration(&measured[BASELINE].builds);
    let rows = PEERS
        .iter()
        .zip(measured)
        .map(|(peer, m)| {
            let mid = median_duration(&m.builds);
            let ratio = match (mid, base) {
                (Some(mid), Some(base)) if !base.is_zero() => {
                    format!("{:.2}×", mid.as_secs_f64() / base.as_secs_f64())
                }
                _ => "n/a".to_string(),
            };
            let (lo, hi) = (m.builds.iter().min(), m.builds.iter().max());
            vec![
                peer.label.to_string(),
                m.crates.to_string(),
                mid.map_or("n/a".to_string(), secs),
                ratio,
                match (lo, hi) {
                    (Some(lo), Some(hi)) => format!("{}–{}", secs(*lo), secs(*hi)),
                    _ => "n/a".to_string(),
                },
            ]
        })
        .collect();
    let table = Table {
        header: vec![
            "Build".into(),
            "crates in the tree".into(),
            "clean dev build (s, median)".into(),
            "÷ tokio's time".into(),
            "slowest–fastest (s)".into(),
        ],
        rows,
    };
    let rounds = if quick { 1 } else { ROUNDS };
    let warmup = if quick {
        "with no warm-up (`--quick`)"
    } else {
        "after one untimed warm-up round"
    };
    let jobs = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = super::today_utc();
    Section {
        name: "build",
        body: format!(
            "## Build cost\n\n\
             What each choice costs a user to compile: a scratch crate whose `main` builds a\n\
             current-thread runtime, spawns `true` and waits for it, with childproc (default\n\
             features, and `default-features = false`), with tokio and only its `process`\n\
             and `rt` features, and with std::process alone. Each is a clean\n\
             `cargo build --offline` (dev profile, `CARGO_INCREMENTAL=0`, {jobs} jobs) into a\n\
             fresh target directory, {rounds} per peer {warmup}, the peers interleaved in a\n\
             rotating order; the table shows each peer's median. The workspace's Cargo.lock\n\
             is copied into each scratch crate, so all resolve the same versions. \"crates in\n\
             the tree\" is `cargo tree -e normal --prefix none` deduplicated, the scratch\n\
             crate not counted (childproc itself and proc-macro crates are). Here a ratio is\n\
             the build's time divided by tokio's: above 1, the build takes longer.\n\n\
             Measured {date} on the machine above; load average (1, 5, 15 min) {} before\n\
             the timed rounds and {} after (other work shares these CPUs).\n\n{}",
            load[0],
            load[1],
            table.render()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_are_counted_once_and_the_root_not_at_all() {
        let tree = "build-childproc v0.0.0 (/tmp/x)\n\
                    childproc v0.1.0 (/w/crates/childproc)\n\
                    tokio v1.54.1\n\
                    tokio-macros v2.7.2 (proc-macro)\n\
                    proc-macro2 v1.0.107\n\
                    proc-macro2 v1.0.107 (*)\n\
                    tokio v1.54.1 (*)\n";
        assert_eq!(distinct_crates(tree, "build-childproc"), 4);
        assert_eq!(
            distinct_crates("build-std-process v0.0.0 (/tmp/y)\n", "build-std-process"),
            0
        );
    }

    #[test]
    fn every_peer_is_first_once_in_as_many_rounds() {
        let peers: Vec<usize> = (0..PEERS.len()).collect();
        let firsts: Vec<usize> = (0..PEERS.len()).map(|r| rotation(&peers, r)[0]).collect();
        assert_eq!(firsts, [0, 1, 2, 3]);
    }

    #[test]
    fn the_baseline_is_tokio() {
        assert!(PEERS[BASELINE].deps.starts_with("tokio"));
        assert!(PEERS[BASELINE].deps.contains("\"process\""));
    }
}
