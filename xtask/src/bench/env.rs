//! What every section is given: where the scripts are, Node.js if present, and the facts
//! about the machine that head docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::doc;
use crate::{workspace_root, BoxError};

/// What every section needs: where things are, the machine, and Node.js if present.
pub(crate) struct Env {
    /// The directory holding the Node.js scripts (`xtask/bench`).
    pub(crate) scripts: PathBuf,
    /// Node.js, if `node` runs.
    pub(crate) node: Option<Node>,
    /// Bun, if `bun` is on PATH: it runs the Node.js scripts unchanged.
    pub(crate) bun: Option<Node>,
    /// Deno, if `deno` is on PATH: it runs the Node.js scripts unchanged (as CommonJS).
    pub(crate) deno: Option<Node>,
    /// The facts printed above the tables.
    pub(crate) machine: Machine,
}

impl Env {
    /// Looks at the machine and for `node`.
    pub(super) fn probe() -> Result<Env, BoxError> {
        let node = Node::find();
        let bun = Node::find_runtime("bun", &[]);
        let deno = Node::find_runtime("deno", &["run", "-A", "--unstable-detect-cjs"]);
        let machine = Machine::probe(node.as_ref(), bun.as_ref(), deno.as_ref());
        Ok(Env {
            scripts: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench"),
            node,
            bun,
            deno,
            machine,
        })
    }
}

/// A JavaScript runtime found on PATH: Node.js, or Bun or Deno running the same scripts.
pub(crate) struct Node {
    /// `node --version`, e.g. `v20.11.1` (the first line of `--version` for the others).
    pub(crate) version: String,
    /// The program: `node`, `bun` or `deno`.
    program: &'static str,
    /// What goes before the script: `run -A --unstable-detect-cjs` for Deno.
    pre: &'static [&'static str],
}

impl Node {
    /// `node --version`, or `None` if `node` does not run.
    pub(super) fn find() -> Option<Node> {
        Node::find_runtime("node", &[])
    }

    /// `program --version`, or `None` if it does not run.
    pub(super) fn find_runtime(
        program: &'static str,
        pre: &'static [&'static str],
    ) -> Option<Node> {
        let version = command_output(program, &["--version"])?;
        // Deno's first line is `deno 2.9.6 (stable, release, ..)`: keep `2.9.6`.
        let first = version.lines().next().unwrap_or("");
        let first = first.strip_prefix(program).map_or(first, str::trim_start);
        let version = first.split(" (").next().unwrap_or(first).to_string();
        Some(Node {
            version,
            program,
            pre,
        })
    }

    /// Runs `node script args..` (or the runtime's equivalent) and returns its stdout; a
    /// non-zero exit is an error carrying stderr.
    pub(crate) fn run(&self, script: &Path, args: &[String]) -> Result<String, BoxError> {
        let out = Command::new(self.program)
            .args(self.pre)
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {} {}: {e}", self.program, script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} {} {} failed ({}): {}",
                self.program,
                script.display(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(String::from_utf8(out.stdout)?)
    }
}

/// Facts about the machine a run was measured on.
pub(crate) struct Machine {
    /// `(label, value)` pairs, in the order shown.
    facts: Vec<(&'static str, String)>,
}

impl Machine {
    /// Collects the facts; anything that cannot be read shows as `unknown`.
    pub(super) fn probe(node: Option<&Node>, bun: Option<&Node>, deno: Option<&Node>) -> Machine {
        let unknown = || "unknown".to_string();
        let cpus = std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| unknown());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(unknown);
        let kernel = command_output("uname", &["-r"]).unwrap_or_else(unknown);
        let rustc = command_output("rustc", &["--version"]).unwrap_or_else(unknown);
        let node = node.map_or_else(
            || "not found (column skipped)".to_string(),
            |n| n.version.clone(),
        );
        let runtime = |r: Option<&Node>| {
            r.map_or_else(
                || "not on PATH (its rows skipped)".to_string(),
                |r| r.version.clone(),
            )
        };
        let commit = match command_output("git", &["rev-parse", "--short", "HEAD"]) {
            // Uncommitted changes to the crates mean the numbers are not those of the commit.
            Some(c) => match command_output("git", &["status", "--porcelain", "--", "crates"]) {
                Some(changes) if !changes.is_empty() => format!("{c} + uncommitted changes"),
                _ => c,
            },
            None => unknown(),
        };
        Machine {
            facts: vec![
                ("CPUs (nproc)", cpus),
                ("CPU", cpu_model),
                ("Kernel (uname -r)", kernel),
                ("Node.js (node --version)", node),
                ("Bun (bun --version)", runtime(bun)),
                ("Deno (deno --version)", runtime(deno)),
                ("rustc", rustc),
                ("childproc commit", commit),
                ("Date (UTC)", today_utc()),
            ],
        }
    }

    /// The facts as a Markdown list.
    pub(super) fn render(&self) -> String {
        let mut out = String::from("Machine:\n\n");
        for (label, value) in &self.facts {
            out.push_str(&format!("- {label}: {value}\n"));
        }
        out
    }

    /// The facts as the `machine` section of docs/benchmarks.md.
    pub(super) fn section(&self) -> doc::Section {
        doc::Section {
            name: "machine",
            body: format!(
                "## Machine\n\n{}",
                self.render().trim_start_matches("Machine:\n\n")
            ),
        }
    }
}

/// The trimmed stdout of `program args..`, or `None` if it cannot run or fails.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Today's date in UTC as `YYYY-MM-DD`, from the system clock.
pub(crate) fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Converts days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_from_days_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }
}
