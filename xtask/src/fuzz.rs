//! `cargo xtask fuzz [SECONDS]`: every cargo-fuzz target in `fuzz/` for a short while.
//!
//! The targets live in `fuzz/fuzz_targets/` (one per IPC decoder); `fuzz/` is a workspace
//! of its own, outside the main one. cargo-fuzz needs nightly flags; on a stable toolchain
//! they are unlocked with `RUSTC_BOOTSTRAP=1`, which is set for the runs. Needs
//! `cargo install cargo-fuzz`. Not part of `cargo xtask ci`.

use std::path::Path;
use std::process::Command;

use crate::{workspace_root, BoxError};

/// How long each target runs when no SECONDS is given.
const DEFAULT_SECONDS: u64 = 10;

/// Parses `[SECONDS]`.
pub(crate) fn parse(args: &[String]) -> Result<u64, BoxError> {
    match args {
        [] => Ok(DEFAULT_SECONDS),
        [s] => match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("fuzz: SECONDS must be a positive integer, not `{s}`").into()),
        },
        _ => Err("fuzz: usage: cargo xtask fuzz [SECONDS]".into()),
    }
}

/// The target names: the `.rs` files of `fuzz/fuzz_targets/`, sorted.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>, BoxError> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_owned());
            }
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(format!("no fuzz targets in {}", dir.display()).into());
    }
    Ok(names)
}

/// Runs `cargo fuzz run <target> -- -max_total_time=<seconds>` for every target (all of
/// them, even after a failure), then fails if any found a crash or could not run.
pub(crate) fn run(seconds: u64) -> Result<(), BoxError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let fuzz_dir = workspace_root().join("fuzz");
    let targets = targets(&fuzz_dir)?;
    let mut failed = Vec::new();
    for target in &targets {
        let max_time = format!("-max_total_time={seconds}");
        // --debug-assertions: arithmetic overflow in a length computation is a finding too.
        let args = ["fuzz", "run", "--debug-assertions", target, "--", &max_time];
        let shown = format!("cargo {}", args.join(" "));
        println!("xtask fuzz: {shown}");
        let status = Command::new(&cargo)
            .args(args)
            .env("RUSTC_BOOTSTRAP", "1")
            .current_dir(&fuzz_dir)
            .status()
            .map_err(|e| format!("cannot run `{shown}` (is cargo-fuzz installed?): {e}"))?;
        if !status.success() {
            println!(
                "xtask fuzz: {target} failed ({status}); crash inputs go to fuzz/artifacts/{target}/"
            );
            failed.push(target.as_str());
        }
    }
    if failed.is_empty() {
        println!(
            "xtask fuzz: {} targets, {seconds}s each, no crash",
            targets.len()
        );
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {}", failed.join(", ")).into())
    }
}
