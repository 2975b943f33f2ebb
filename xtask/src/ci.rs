//! `cargo xtask ci`: the project's checks, in order. `.ci/run` runs the same list.

use std::process::Command;

use crate::{workspace_root, BoxError};

/// The checks CI runs, in order: each is a `cargo` argument list. Keep `.ci/run` in step.
pub(crate) fn steps() -> [&'static [&'static str]; 3] {
    [
        &["fmt", "--all", "--", "--check"],
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &["test", "--workspace"],
    ]
}

/// Runs every step of [`steps`] in the workspace root, stopping at the first that fails.
pub(crate) fn run() -> Result<(), BoxError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = workspace_root();
    for step in steps() {
        let shown = format!("cargo {}", step.join(" "));
        println!("xtask ci: {shown}");
        let status = Command::new(&cargo)
            .args(step)
            .current_dir(&root)
            .status()
            .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
        if !status.success() {
            return Err(format!("`{shown}` failed ({status})").into());
        }
    }
    println!("xtask ci: all checks passed");
    Ok(())
}
