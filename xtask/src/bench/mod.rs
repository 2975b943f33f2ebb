//! `cargo xtask bench`: childproc side by side with tokio::process, std::process and
//! Node.js, all measured in one run on one machine.
//!
//! Each section (spawn, exec, engine, ipc) measures every peer on the same work and returns a
//! [`doc::Section`]; the run prints each table and rewrites only those sections of
//! docs/benchmarks.md, between `<!-- bench:NAME -->` markers, keeping the rest of the file.
//! A new section is a new module with a `run` returning a `Section`, added to [`SECTIONS`]
//! and to the match in [`run`]. Sections whose measurements need a process of their own
//! run this binary as `xtask bench-worker ROLE ..` (see [`worker`]).

mod build;
mod clone;
mod doc;
mod engine;
mod exec;
mod ipc;
mod spawn;
mod typed;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::{workspace_root, BoxError};

/// The sections, in the order a full run measures them.
pub(crate) const SECTIONS: [&str; 7] =
    ["spawn", "exec", "engine", "ipc", "clone", "typed", "build"];

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// `--quick`: a tenth of the iterations (and smaller payloads), for a smoke run.
    pub(crate) quick: bool,
    /// The sections named on the command line, in [`SECTIONS`] order; empty means all.
    pub(crate) only: Vec<&'static str>,
}

impl Options {
    /// Parses the arguments after `bench`: `--quick` and any section names.
    pub(crate) fn parse(args: &[String]) -> Result<Options, BoxError> {
        let mut opts = Options {
            quick: false,
            only: Vec::new(),
        };
        for arg in args {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                name => match SECTIONS.iter().find(|s| **s == name) {
                    Some(section) => opts.only.push(section),
                    None => {
                        return Err(format!(
                            "bench: unknown argument `{name}` (sections: {})",
                            SECTIONS.join(", ")
                        )
                        .into())
                    }
                },
            }
        }
        opts.only
            .sort_by_key(|s| SECTIONS.iter().position(|t| t == s));
        opts.only.dedup();
        Ok(opts)
    }

    /// The sections this run measures, in order.
    fn sections(&self) -> Vec<&'static str> {
        if self.only.is_empty() {
            SECTIONS.to_vec()
        } else {
            self.only.clone()
        }
    }
}

/// Runs the requested benchmark sections, prints the tables, and updates
/// docs/benchmarks.md after each section, so a failure later keeps what was measured.
pub(crate) fn run(opts: &Options) -> Result<(), BoxError> {
    let env = Env::probe()?;
    println!("{}", env.machine.render());
    if env.node.is_none() {
        println!("note: `node` was not found on PATH; the Node.js column is skipped\n");
    }

    let path = workspace_root().join("docs").join("benchmarks.md");
    doc::update_file(&path, &[env.machine.section()])?;
    for name in opts.sections() {
        let section = match name {
            "spawn" => spawn::run(opts, &env)?,
            "exec" => exec::run(opts, &env)?,
            "engine" => engine::run(opts, &env)?,
            "ipc" => ipc::run(opts, &env)?,
            "clone" => clone::run(opts.quick, &env)?,
            "typed" => typed::run(opts.quick)?,
            "build" => build::run(opts.quick)?,
            other => return Err(format!("bench: no section `{other}`").into()),
        };
        doc::update_file(&path, &[section])?;
        println!("wrote the {name} section of {}\n", path.display());
    }
    Ok(())
}

/// `xtask bench-worker ROLE ..`: the measurements a section runs in a process of its own
/// (`engine`: the Rust spawners; `spawn-loop`: one peer's spawn loop, to profile under `perf`
/// or `strace`; `spawn-paired`: the spawn section's paired run alone; `spawn-phases`: where
/// the time of a spawn-and-wait goes; `ipc-child`, `ipc-raw`, `ipc-tokio`: the IPC section's
/// children).
pub(crate) fn worker(args: &[String]) -> Result<(), BoxError> {
    match args.first().map(String::as_str) {
        Some("engine") => engine::worker(args),
        Some("engine-paired") => engine::paired::worker(args),
        Some("spawn-loop") => spawn::loop_worker(args),
        Some("spawn-paired") => spawn::paired_worker(args),
        Some("spawn-phases") => spawn::phases_worker(args),
        Some("ipc-child" | "ipc-raw" | "ipc-tokio" | "ipc-memory") => ipc::worker(args),
        _ => Err(
            "usage: xtask bench-worker engine|engine-paired|spawn-loop|spawn-paired|spawn-phases|ipc-child|ipc-raw|ipc-tokio ..".into(),
        ),
    }
}

/// What every section needs: where things are, the machine, and Node.js if present.
pub(crate) struct Env {
    /// The directory holding the Node.js scripts (`xtask/bench`).
    pub(crate) scripts: PathBuf,
    /// Node.js, if `node` runs.
    pub(crate) node: Option<Node>,
    /// The facts printed above the tables.
    pub(crate) machine: Machine,
}

impl Env {
    /// Looks at the machine and for `node`.
    fn probe() -> Result<Env, BoxError> {
        let node = Node::find();
        let machine = Machine::probe(node.as_ref());
        Ok(Env {
            scripts: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench"),
            node,
            machine,
        })
    }
}

/// A Node.js found on PATH.
pub(crate) struct Node {
    /// `node --version`, e.g. `v20.11.1`.
    pub(crate) version: String,
}

impl Node {
    /// `node --version`, or `None` if `node` does not run.
    fn find() -> Option<Node> {
        let version = command_output("node", &["--version"])?;
        Some(Node { version })
    }

    /// Runs `node script args..` and returns its stdout; a non-zero exit is an error
    /// carrying stderr.
    pub(crate) fn run(&self, script: &Path, args: &[String]) -> Result<String, BoxError> {
        let out = Command::new("node")
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run node {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "node {} {} failed ({}): {}",
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
    fn probe(node: Option<&Node>) -> Machine {
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
                ("rustc", rustc),
                ("childproc commit", commit),
                ("Date (UTC)", today_utc()),
            ],
        }
    }

    /// The facts as a Markdown list.
    fn render(&self) -> String {
        let mut out = String::from("Machine:\n\n");
        for (label, value) in &self.facts {
            out.push_str(&format!("- {label}: {value}\n"));
        }
        out
    }

    /// The facts as the `machine` section of docs/benchmarks.md.
    fn section(&self) -> doc::Section {
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
fn today_utc() -> String {
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

/// A throughput measurement: `count` operations in `elapsed`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rate {
    /// Operations timed.
    pub(crate) count: u64,
    /// Wall-clock time they took.
    pub(crate) elapsed: Duration,
}

impl Rate {
    /// Operations per second.
    pub(crate) fn per_sec(self) -> f64 {
        // Counts are far below 2^52, so the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let count = self.count as f64;
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            count / secs
        } else {
            0.0
        }
    }
}

/// The median of `rates` by rate (the upper middle one for an even count).
pub(crate) fn median(rates: &[Rate]) -> Option<Rate> {
    let mut sorted = rates.to_vec();
    sorted.sort_by(|a, b| a.per_sec().total_cmp(&b.per_sec()));
    sorted.get(sorted.len() / 2).copied()
}

/// The slowest and fastest of `rates`.
pub(crate) fn spread(rates: &[Rate]) -> Option<(Rate, Rate)> {
    let by_rate = |a: &&Rate, b: &&Rate| a.per_sec().total_cmp(&b.per_sec());
    Some((
        *rates.iter().min_by(by_rate)?,
        *rates.iter().max_by(by_rate)?,
    ))
}

/// The order peers run in during round `round`: `peers` rotated by the round number, so no
/// peer always runs first (or right after the same neighbour).
pub(crate) fn rotation<T: Copy>(peers: &[T], round: usize) -> Vec<T> {
    if peers.is_empty() {
        return Vec::new();
    }
    let start = round % peers.len();
    peers[start..]
        .iter()
        .chain(&peers[..start])
        .copied()
        .collect()
}

/// Runs `op` `n` times on `rt` from `concurrency` tasks pulling from one counter.
pub(crate) fn time_async<F, Fut>(
    rt: &Runtime,
    n: u64,
    concurrency: usize,
    op: F,
) -> Result<Rate, BoxError>
where
    F: Fn() -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    rt.block_on(async move {
        let next = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let next = Arc::clone(&next);
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        op().await?;
                    }
                    Ok::<(), BoxError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok(Rate {
            count: n,
            elapsed: start.elapsed(),
        })
    })
}

/// The unsigned integer field `name` of the one-line JSON object a Node.js script printed
/// (`{"spawns":200,"elapsed_ns":5000}`); `script` names the script in errors.
pub(crate) fn json_u64(out: &str, name: &str, script: &str) -> Result<u64, BoxError> {
    let key = format!("\"{name}\":");
    let at = out
        .find(&key)
        .ok_or_else(|| format!("{script} printed no `{name}`: {out:?}"))?;
    let digits: String = out[at + key.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Ok(digits
        .parse()
        .map_err(|e| format!("{script} `{name}`: {e}: {out:?}"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_starts_at_the_round() {
        assert_eq!(rotation(&[1, 2, 3], 0), [1, 2, 3]);
        assert_eq!(rotation(&[1, 2, 3], 1), [2, 3, 1]);
        assert_eq!(rotation(&[1, 2, 3], 5), [3, 1, 2]);
        assert!(rotation::<u8>(&[], 3).is_empty());
    }

    #[test]
    fn json_fields() {
        let out = "{\"bytes\":1024,\"elapsed_ns\": 77}\n";
        assert_eq!(json_u64(out, "bytes", "x.js").unwrap(), 1024);
        assert_eq!(json_u64(out, "elapsed_ns", "x.js").unwrap(), 77);
        assert!(json_u64(out, "nope", "x.js").is_err());
        assert!(json_u64("{\"bytes\":-1}", "bytes", "x.js").is_err());
    }

    #[test]
    fn civil_from_days_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn options_parse() {
        let all = Options::parse(&[]).unwrap();
        assert!(!all.quick);
        assert_eq!(all.sections(), SECTIONS);
        assert!(Options::parse(&["--quick".into()]).unwrap().quick);
        assert!(Options::parse(&["--nope".into()]).is_err());
        let some = Options::parse(&["exec".into(), "--quick".into(), "spawn".into()]).unwrap();
        assert!(some.quick);
        assert_eq!(some.sections(), ["spawn", "exec"]);
        assert_eq!(
            Options::parse(&["exec".into()]).unwrap().sections(),
            ["exec"]
        );
    }
}
