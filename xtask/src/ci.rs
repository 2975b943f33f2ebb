//! `cargo xtask ci`: the project's checks, in order. `.ci/run` runs the same list (a test
//! below holds the two in step).

use std::process::Command;

use crate::{workspace_root, BoxError};

/// The non-Linux targets whose build of the library crates (the portable engine) clippy checks.
/// Only their Rust standard library is needed: nothing is linked.
pub(crate) const CROSS_TARGETS: [&str; 2] = ["x86_64-apple-darwin", "x86_64-unknown-freebsd"];

/// The crates childproc without its `ipc` feature must not depend on: childproc-ipc and its
/// codecs' dependencies. `.ci/run` spells the same list (the test below checks it).
pub(crate) const NOT_WITHOUT_IPC: [&str; 8] = [
    "childproc-ipc",
    "serde",
    "serde_core",
    "serde_derive",
    "serde_json",
    "rmp",
    "rmp-serde",
    "ryu-js",
];

/// One check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `cargo` with these arguments.
    Cargo(Vec<String>),
    /// `cargo` with these arguments and one environment variable set.
    CargoEnv(&'static str, &'static str, Vec<String>),
    /// Install the Rust standard library for this target with rustup, if it is missing.
    AddTarget(&'static str),
    /// `cargo` with these arguments (a `cargo tree --prefix none`), failing when a crate of
    /// the list is in what it prints.
    TreeLacks(Vec<String>, &'static [&'static str]),
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
            Step::TreeLacks(args, _) => format!("cargo {}", args.join(" ")),
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
        // childproc without the `ipc` feature: spawn, exec, sync, pipelines and lines build
        // clean and pass on their own, and none of the IPC crates is in its tree.
        Step::cargo(&[
            "clippy",
            "-p",
            "childproc",
            "--no-default-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
        Step::TreeLacks(
            [
                "tree",
                "-p",
                "childproc",
                "--no-default-features",
                "-e",
                "normal",
                "--prefix",
                "none",
            ]
            .map(String::from)
            .to_vec(),
            &NOT_WITHOUT_IPC,
        ),
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
        steps.push(Step::cargo(&[
            "clippy",
            "-p",
            "childproc",
            "--no-default-features",
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
    steps.push(Step::cargo(&[
        "test",
        "-p",
        "childproc",
        "--no-default-features",
    ]));
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
            Step::TreeLacks(args, forbidden) => {
                println!("xtask ci: {shown}");
                let output = Command::new(&cargo)
                    .args(args)
                    .current_dir(&root)
                    .output()
                    .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
                if !output.status.success() {
                    return Err(format!("`{shown}` failed ({})", output.status).into());
                }
                let found = tree_has(&String::from_utf8_lossy(&output.stdout), forbidden);
                if !found.is_empty() {
                    return Err(format!("`{shown}` lists {}", found.join(", ")).into());
                }
                continue;
            }
        };
        if args.first().is_some_and(|a| a == "package") {
            forget_packaged();
            // The verify build's compiled copies (see `.ci/run`): start it afresh.
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| root.join("target"), std::path::PathBuf::from);
            let _ = std::fs::remove_dir_all(target.join("package"));
        }
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

/// The crates of `forbidden` that a `cargo tree --prefix none` output lists, in list order.
/// Each line starts with the crate's name and then ` v` and its version.
fn tree_has<'a>(tree: &str, forbidden: &[&'a str]) -> Vec<&'a str> {
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split(" v").next())
        .collect();
    forbidden
        .iter()
        .copied()
        .filter(|krate| names.contains(krate))
        .collect()
}

/// Removes the copies of our crates that an earlier `cargo package` unpacked into CARGO_HOME
/// (`registry/src/-<hash of the target path>/childproc*`): cargo never unpacks a version
/// again, so a run from the same path would verify the old copy instead of this one. (As
/// `.ci/run` does before packaging.)
fn forget_packaged() {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(src) else {
        return;
    };
    for registry in registries.flatten() {
        // Local overlay registries are named `-<hash>`; crates.io's are not.
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for krate in crates.flatten() {
            if krate.file_name().to_string_lossy().starts_with("childproc") {
                let _ = std::fs::remove_dir_all(krate.path());
            }
        }
    }
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

    /// The minimum Rust version holds for what we depend on: every locked package declares
    /// a `rust-version` no newer than ours. (Our own code is held to it by clippy's
    /// `incompatible_msrv`, which the clippy steps run with warnings denied.)
    #[test]
    fn msrv_holds_for_every_locked_dependency() {
        let out = std::process::Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--locked"])
            .current_dir(workspace_root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let minor = |v: &str| -> (u32, u32) {
            let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
            (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
        };
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        let ours = manifest
            .lines()
            .find_map(|l| l.strip_prefix("rust-version = "))
            .map(|v| minor(v.trim_matches('"')))
            .expect("the workspace manifest declares rust-version");
        let packages = meta["packages"].as_array().unwrap();
        assert!(packages.len() > 10, "{} packages", packages.len());
        let newer: Vec<String> = packages
            .iter()
            .filter_map(|p| {
                let v = p["rust_version"].as_str()?;
                (minor(v) > ours).then(|| format!("{} {} needs {v}", p["name"], p["version"]))
            })
            .collect();
        assert!(newer.is_empty(), "newer than our MSRV {ours:?}: {newer:?}");
    }

    #[test]
    fn ci_run_runs_every_step_in_the_same_order() {
        let script = std::fs::read_to_string(workspace_root().join(".ci/run")).unwrap();
        // `.ci/run` loops over the targets; expand its loop variable to compare.
        let mut at = 0;
        for step in steps() {
            let shown = step.shown();
            let target = match &step {
                Step::AddTarget(t) => Some(*t),
                Step::Cargo(args) | Step::CargoEnv(_, _, args) | Step::TreeLacks(args, _) => {
                    CROSS_TARGETS
                        .into_iter()
                        .find(|t| args.iter().any(|a| a == t))
                }
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
            // `.ci/run` checks the tree against the same list, spelled as one line.
            if let Step::TreeLacks(_, forbidden) = &step {
                let list = forbidden.join(" ");
                assert!(
                    script.contains(&format!("forbidden=\"{list}\"")),
                    "`.ci/run` lacks `forbidden=\"{list}\"`"
                );
            }
        }
        for target in CROSS_TARGETS {
            assert!(
                script.contains(target),
                "`.ci/run` lacks the target {target}"
            );
        }
    }

    #[test]
    fn the_tree_check_names_each_forbidden_crate_it_finds_and_only_those() {
        let tree = "childproc v0.1.0 (/w/crates/childproc)\n\
                    serde_json v1.0.140\n\
                    serde v1.0.219\n\
                    serde v1.0.219 (*)\n\
                    serde_derive v1.0.219 (proc-macro)\n\
                    tokio v1.54.1\n";
        assert_eq!(
            tree_has(tree, &NOT_WITHOUT_IPC),
            ["serde", "serde_derive", "serde_json"]
        );
        // A name that only starts like a forbidden one is not it.
        let clean = "childproc v0.1.0 (/w/crates/childproc)\nrmpv v1.3.0\nserde-ish v0.1.0\n";
        assert!(tree_has(clean, &NOT_WITHOUT_IPC).is_empty());
    }
}
