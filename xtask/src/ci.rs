//! `cargo xtask ci`: the project's checks, in order. `.ci/run` runs the same list (a test
//! below holds the two in step).

use std::process::Command;

use crate::{workspace_root, BoxError};

/// The non-Linux targets whose build of the library crates (the portable engine) clippy checks.
/// Only their Rust standard library is needed: nothing is linked.
pub(crate) const CROSS_TARGETS: [&str; 2] = ["x86_64-apple-darwin", "x86_64-unknown-freebsd"];

/// One check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `cargo` with these arguments.
    Cargo(Vec<String>),
    /// `cargo` with these arguments and one environment variable set.
    CargoEnv(&'static str, &'static str, Vec<String>),
    /// Install the Rust standard library for this target with rustup, if it is missing.
    AddTarget(&'static str),
}

impl Step {
    fn cargo(args: &[&str]) -> Step {
        Step::Cargo(args.iter().map(|a| a.to_string()).collect())
    }

    /// The command line, as shown and as `.ci/run` spells it.
    fn shown(&self) -> String {
        match self {
            Step::Cargo(args) => format!("cargo {}", args.join(" ")),
            Step::CargoEnv(key, value, args) => {
                format!("{key}=\"{value}\" cargo {}", args.join(" "))
            }
            Step::AddTarget(target) => format!("rustup target add {target}"),
        }
    }
}

/// The checks CI runs, in order. Keep `.ci/run` in step.
pub(crate) fn steps() -> Vec<Step> {
    let mut steps = vec![
        Step::cargo(&["fmt", "--all", "--", "--check"]),
        Step::cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    ];
    for target in CROSS_TARGETS {
        steps.push(Step::AddTarget(target));
        steps.push(Step::cargo(&[
            "clippy",
            "-p",
            "childproc",
            "-p",
            "childproc-ipc",
            "--target",
            target,
            "--",
            "-D",
            "warnings",
        ]));
    }
    // The docs build without a warning, and both crates package and verify for crates.io.
    let crates = ["-p", "childproc", "-p", "childproc-ipc"];
    let doc = ["doc", "--no-deps"].iter().chain(&crates);
    steps.push(Step::CargoEnv(
        "RUSTDOCFLAGS",
        "-D warnings",
        doc.map(|a| a.to_string()).collect(),
    ));
    let package: Vec<&str> = std::iter::once("package").chain(crates).collect();
    steps.push(Step::cargo(&package));
    steps.push(Step::cargo(&["test", "--workspace"]));
    steps
}

/// Runs every step of [`steps`] in the workspace root, stopping at the first that fails.
pub(crate) fn run() -> Result<(), BoxError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = workspace_root();
    for step in steps() {
        let shown = step.shown();
        let (env, args) = match &step {
            Step::Cargo(args) => (None, args),
            Step::CargoEnv(key, value, args) => (Some((key, value)), args),
            Step::AddTarget(target) => {
                add_target(target, &root)?;
                continue;
            }
        };
        println!("xtask ci: {shown}");
        let mut command = Command::new(&cargo);
        command.args(args).current_dir(&root);
        if let Some((key, value)) = env {
            command.env(key, value);
        }
        let status = command
            .status()
            .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
        if !status.success() {
            return Err(format!("`{shown}` failed ({status})").into());
        }
    }
    println!("xtask ci: all checks passed");
    Ok(())
}

/// Installs the standard library for `target` unless the active toolchain has it.
fn add_target(target: &str, root: &std::path::Path) -> Result<(), BoxError> {
    let cannot = |why: String| -> BoxError {
        format!(
            "cannot install the Rust standard library for {target} ({why}); the cross-target \
             clippy check needs it: run `rustup target add {target}`"
        )
        .into()
    };
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root)
        .output()
        .map_err(|e| cannot(format!("rustup: {e}")))?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return Ok(());
    }
    println!("xtask ci: rustup target add {target}");
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .current_dir(root)
        .status()
        .map_err(|e| cannot(format!("rustup: {e}")))?;
    if !status.success() {
        return Err(cannot(format!(
            "`rustup target add {target}` failed: {status}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_run_runs_every_step_in_the_same_order() {
        let script = std::fs::read_to_string(workspace_root().join(".ci/run")).unwrap();
        // `.ci/run` loops over the targets; expand its loop variable to compare.
        let mut at = 0;
        for step in steps() {
            let shown = step.shown();
            let target = match &step {
                Step::AddTarget(t) => Some(*t),
                Step::Cargo(args) | Step::CargoEnv(_, _, args) => CROSS_TARGETS
                    .into_iter()
                    .find(|t| args.iter().any(|a| a == t)),
            };
            let spelled = match target {
                Some(t) => shown.replace(t, "\"$target\""),
                None => shown.clone(),
            };
            let found = script[at..]
                .find(&spelled)
                .unwrap_or_else(|| panic!("`.ci/run` lacks `{spelled}` (for `{shown}`) here"));
            if target.is_none() {
                at += found + spelled.len();
            }
        }
        for target in CROSS_TARGETS {
            assert!(
                script.contains(target),
                "`.ci/run` lacks the target {target}"
            );
        }
    }
}
