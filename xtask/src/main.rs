//! Project tasks, run as `cargo xtask <task>` (the alias lives in `.cargo/config.toml`).
//!
//! - `cargo xtask ci`: the checks CI runs, in order, stopping at the first failure.
//! - `cargo xtask bench [--quick] [SECTION..]`: childproc side by side with tokio::process,
//!   std::process and Node.js; prints the tables and rewrites their sections of
//!   docs/benchmarks.md. `--check`: the ratio gate against `xtask/bench/floors.txt`.
//! - `cargo xtask fuzz [SECONDS]`: every cargo-fuzz target in `fuzz/`, SECONDS each.
//! - `cargo xtask stress [N]`: the whole test suite N times with every CPU kept busy; lists
//!   the tests that failed at least once.
#![allow(clippy::print_stdout)]

mod bench;
mod ci;
mod fuzz;
mod stress;

use std::path::PathBuf;
use std::process::ExitCode;

/// The error type of every task: tasks report and stop, nobody matches on it.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The command-line help.
const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci                 cargo fmt --check, cargo clippy -D warnings (also for macOS and FreeBSD,
                     adding their targets with rustup), cargo test (stops at the first failure)
  bench [--quick] [--check] [SECTION..]
                     benchmarks vs tokio::process, std::process, Node.js (and C, Python);
                     writes docs/benchmarks.md (--quick: 10x fewer iterations;
                     SECTION: spawn, exec, engine, ipc, pipeline, pool, clone, typed, build;
                     default: all). --check: a quick pass of the gated rows, each ratio
                     against its floor in xtask/bench/floors.txt; writes nothing, fails
                     naming every row below its floor
  fuzz [SECONDS]     every cargo-fuzz target in fuzz/ for SECONDS each (default 10);
                     needs cargo-fuzz, fails on a crash
  stress [N] [--hog K] [--test NAME].. [--filter PATTERN].. [--timeout SECS]
                     the whole test suite (every test binary, then the doc tests) N times
                     (default 30) while K processes spin (default: one per CPU); prints
                     every test that failed at least once with its first message, fails if
                     any did (--test: only that binary, `doc` for the doc tests; --filter:
                     passed to libtest; --timeout: one binary's hang limit, default 300)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") if args.len() == 1 => ci::run(),
        Some("bench") => match bench::Options::parse(&args[1..]) {
            Ok(opts) => bench::run(&opts),
            Err(e) => Err(e),
        },
        Some("fuzz") => fuzz::parse(&args[1..]).and_then(fuzz::run),
        Some("stress") => stress::Options::parse(&args[1..]).and_then(|o| stress::run(&o)),
        // Hidden: one CPU hog of `stress`, spinning until its parent is gone.
        Some(stress::HOG_SUBCOMMAND) => stress::hog_main(&args[1..]),
        // Hidden: measurements in a process of their own (engine spawners, IPC children).
        Some("bench-worker") => bench::worker(&args[1..]),
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
