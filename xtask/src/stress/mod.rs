//! `cargo xtask stress [N]`: the whole test suite N times on a loaded machine, to find the
//! tests that flake.
//!
//! The test binaries are built once (`cargo test --workspace --no-run`), then each run
//! executes every one of them as `cargo test` would (in its package's directory, libtest's
//! default parallelism), followed by the doc tests (`cargo test --doc --workspace`, which
//! compiles them again each run: they are few and quick). Meanwhile hog processes keep every
//! CPU busy at the tests' own priority (see [`hog`]). Every test that failed at least once is
//! listed with its failure count and its first failure's output, and the task fails.

mod hog;
mod libtest;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{workspace_root, BoxError};

pub(crate) use hog::{spin as hog_main, Hogs, SUBCOMMAND as HOG_SUBCOMMAND};

/// Runs when no N is given.
const DEFAULT_RUNS: u32 = 30;

/// How long one test binary may run before it counts as hung and is killed.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The name under which `--test` selects the doc tests.
const DOC: &str = "doc";

/// How many lines of a failed test's output the summary shows.
const SHOWN_LINES: usize = 40;

/// `cargo xtask stress` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// How many times the suite runs.
    runs: u32,
    /// How many hog processes; default: one per CPU.
    hogs: usize,
    /// Only these test binaries (target names, or `doc`); empty: all.
    tests: Vec<String>,
    /// libtest filters passed to every binary; empty: every test.
    filters: Vec<String>,
    /// The hang limit of one binary.
    timeout: Duration,
}

impl Options {
    /// Parses `[N] [--hog K] [--test NAME].. [--filter PATTERN].. [--timeout SECS]`.
    pub(crate) fn parse(args: &[String]) -> Result<Options, BoxError> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut opts = Options {
            runs: DEFAULT_RUNS,
            hogs: cpus,
            tests: Vec::new(),
            filters: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        };
        let mut args = args.iter();
        let mut runs_given = false;
        while let Some(arg) = args.next() {
            let mut value = |what: &str| {
                args.next()
                    .ok_or_else(|| format!("stress: {arg} needs {what}"))
            };
            match arg.as_str() {
                "--hog" => opts.hogs = number(value("a count")?, "--hog")?,
                "--test" => opts.tests.push(value("a test binary name")?.clone()),
                "--filter" => opts.filters.push(value("a pattern")?.clone()),
                "--timeout" => {
                    let secs = number(value("seconds")?, "--timeout")?;
                    if secs == 0 {
                        return Err("stress: --timeout must be positive".into());
                    }
                    opts.timeout = Duration::from_secs(secs as u64);
                }
                n if !runs_given && !n.starts_with('-') => {
                    opts.runs = match number(n, "N")? {
                        0 => return Err("stress: N must be positive".into()),
                        n => u32::try_from(n).map_err(|_| "stress: N is too large")?,
                    };
                    runs_given = true;
                }
                other => return Err(format!("stress: unexpected argument `{other}`").into()),
            }
        }
        Ok(opts)
    }
}

/// Parses a count.
fn number(s: &str, what: &str) -> Result<usize, BoxError> {
    s.parse()
        .map_err(|_| format!("stress: {what} must be a number, not `{s}`").into())
}

/// One thing a run executes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A test binary built by cargo.
    Binary {
        /// Its target name (`spawn`, `childproc`…), as `--test` selects it.
        name: String,
        /// The name shown: the target name, with its kind unless it is an integration test.
        shown: String,
        /// The executable.
        path: PathBuf,
        /// Its package's directory, where `cargo test` runs it.
        dir: PathBuf,
    },
    /// `cargo test --doc --workspace`.
    Doc,
}

impl Target {
    fn shown(&self) -> &str {
        match self {
            Target::Binary { shown, .. } => shown,
            Target::Doc => DOC,
        }
    }

    fn selected(&self, tests: &[String]) -> bool {
        let name = match self {
            Target::Binary { name, .. } => name.as_str(),
            Target::Doc => DOC,
        };
        tests.is_empty() || tests.iter().any(|t| t == name || t == self.shown())
    }
}

/// Builds the test binaries and lists them from cargo's JSON messages.
fn build(cargo: &Path, root: &Path) -> Result<Vec<Target>, BoxError> {
    let shown = "cargo test --workspace --no-run --message-format=json";
    println!("xtask stress: {shown}");
    let out = Command::new(cargo)
        .args(["test", "--workspace", "--no-run", "--message-format=json"])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{shown}` failed ({})", out.status).into());
    }
    let mut targets: Vec<Target> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] != true {
            continue;
        }
        let (Some(exe), Some(name), Some(manifest)) = (
            msg["executable"].as_str(),
            msg["target"]["name"].as_str(),
            msg["manifest_path"].as_str(),
        ) else {
            continue;
        };
        let kind = msg["target"]["kind"][0].as_str().unwrap_or("test");
        let shown = if kind == "test" {
            name.to_owned()
        } else {
            format!("{name} ({kind})")
        };
        let path = PathBuf::from(exe);
        if targets
            .iter()
            .any(|t| matches!(t, Target::Binary { path: p, .. } if *p == path))
        {
            continue;
        }
        let dir = Path::new(manifest)
            .parent()
            .map_or_else(|| root.to_owned(), Path::to_owned);
        targets.push(Target::Binary {
            name: name.to_owned(),
            shown,
            path,
            dir,
        });
    }
    targets.sort_by(|a, b| a.shown().cmp(b.shown()));
    targets.push(Target::Doc);
    Ok(targets)
}

/// What one execution of a target printed and how it ended.
struct Outcome {
    /// libtest's account.
    report: libtest::Report,
    /// The exit status, or `None` when it hung and was killed.
    status: Option<ExitStatus>,
    /// The end of its stdout and stderr (for a crash or a hang).
    ends: String,
}

/// Runs one target with the hang limit.
fn execute(
    target: &Target,
    opts: &Options,
    cargo: &Path,
    root: &Path,
) -> Result<Outcome, BoxError> {
    let mut cmd = match target {
        Target::Binary { path, dir, .. } => {
            let mut cmd = Command::new(path);
            cmd.args(&opts.filters)
                .current_dir(dir)
                .env("CARGO_MANIFEST_DIR", dir);
            cmd
        }
        Target::Doc => {
            let mut cmd = Command::new(cargo);
            cmd.args(["test", "--doc", "--workspace", "--"])
                .args(&opts.filters)
                .current_dir(root);
            cmd
        }
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", target.shown()))?;
    let stdout = Collector::start(child.stdout.take());
    let stderr = Collector::start(child.stderr.take());
    let deadline = Instant::now() + opts.timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A grandchild that inherited the pipes may hold them open: wait a little, not forever.
    let out = stdout.finish(Duration::from_secs(5));
    let err = stderr.finish(Duration::from_secs(5));
    Ok(Outcome {
        ends: format!(
            "stdout ends:\n{}\nstderr ends:\n{}",
            tail(&out, 10),
            tail(&err, 10)
        ),
        report: libtest::parse(&out),
        status,
    })
}

/// A thread reading a pipe into a buffer the caller can take at any time.
struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Collector {
    fn start<R: Read + Send + 'static>(pipe: Option<R>) -> Collector {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let shared = Arc::clone(&buf);
        std::thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    if let Ok(mut b) = shared.lock() {
                        b.extend_from_slice(&chunk[..n]);
                    }
                }
            }
            let _ = tx.send(());
        });
        Collector { buf, done }
    }

    /// What was read, once the pipe closed or `patience` passed.
    fn finish(self, patience: Duration) -> String {
        let _ = self.done.recv_timeout(patience);
        let bytes = self.buf.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The failures of one target's execution: (test shown as `target: name`, its output).
fn failures(target: &Target, outcome: &Outcome, opts: &Options) -> Vec<(String, String)> {
    let name = |test: &str| format!("{}: {test}", target.shown());
    let report = &outcome.report;
    let mut found: Vec<(String, String)> = report
        .failed
        .iter()
        .map(|t| {
            let output = report
                .output
                .get(t)
                .cloned()
                .unwrap_or_else(|| "(no output captured)".into());
            (name(t), output)
        })
        .collect();
    match outcome.status {
        None => {
            let secs = opts.timeout.as_secs();
            let why = format!("hung: killed after {secs}s (the whole binary's limit)");
            found.extend(report.slow.iter().map(|t| (name(t), why.clone())));
            if report.slow.is_empty() {
                found.push((name("(binary)"), format!("{why}\n{}", outcome.ends)));
            }
        }
        Some(status) if !status.success() && report.failed.is_empty() => {
            let why = format!(
                "exited with {status} and no failed test (a crash?)\n{}",
                outcome.ends
            );
            found.push((name("(binary)"), why));
        }
        Some(_) => {}
    }
    found
}

/// One failing test's record over the runs.
struct Record {
    count: u32,
    first_run: u32,
    output: String,
}

/// The 1-minute load average, where the system says it.
fn load() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

/// Runs the suite `opts.runs` times under load and reports the failures.
pub(crate) fn run(opts: &Options) -> Result<(), BoxError> {
    let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    let root = workspace_root();
    let targets: Vec<Target> = build(&cargo, &root)?
        .into_iter()
        .filter(|t| t.selected(&opts.tests))
        .collect();
    if targets.is_empty() {
        return Err(format!("stress: no test binary is named {}", opts.tests.join(", ")).into());
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let names: Vec<&str> = targets.iter().map(Target::shown).collect();
    println!(
        "xtask stress: {} runs of {} targets ({}), {} hog processes on {cpus} CPUs",
        opts.runs,
        targets.len(),
        names.join(", "),
        opts.hogs
    );
    let mut hogs = hog::Hogs::start(opts.hogs)?;
    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    let started = Instant::now();
    for run in 1..=opts.runs {
        let t0 = Instant::now();
        let (mut passed, mut failed) = (0, Vec::new());
        for target in &targets {
            let outcome = execute(target, opts, &cargo, &root)?;
            passed += outcome.report.passed;
            for (test, output) in failures(target, &outcome, opts) {
                let record = records.entry(test.clone()).or_insert_with(|| {
                    println!("  new failure: {test}: {}", libtest::gist(&output));
                    Record {
                        count: 0,
                        first_run: run,
                        output,
                    }
                });
                record.count += 1;
                failed.push(test);
            }
        }
        println!(
            "xtask stress: run {run}/{}: {passed} passed, {} failed{} ({:.1}s, {} hogs, load {})",
            opts.runs,
            failed.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(" [{}]", failed.join("; "))
            },
            t0.elapsed().as_secs_f64(),
            hogs.alive(),
            load().unwrap_or_else(|| "?".into()),
        );
    }
    drop(hogs);
    summarize(opts, &records, started.elapsed())
}

/// Prints the table of failures and fails if there is any.
fn summarize(
    opts: &Options,
    records: &BTreeMap<String, Record>,
    took: Duration,
) -> Result<(), BoxError> {
    let runs = opts.runs;
    let minutes = took.as_secs_f64() / 60.0;
    if records.is_empty() {
        println!(
            "xtask stress: {runs} of {runs} runs passed ({} hogs, {minutes:.1} min)",
            opts.hogs
        );
        return Ok(());
    }
    let width = records.keys().map(|k| k.chars().count()).max().unwrap_or(4);
    println!(
        "\nxtask stress: tests that failed in {runs} runs ({} hogs, {minutes:.1} min):",
        opts.hogs
    );
    println!("{:<width$}  failed  first message", "test");
    for (test, r) in records {
        let count = format!("{}/{runs}", r.count);
        println!("{test:<width$}  {count:>6}  {}", libtest::gist(&r.output));
    }
    for (test, r) in records {
        println!("\n---- {test} (first failed in run {}) ----", r.first_run);
        println!("{}", libtest::without_backtrace(&r.output, SHOWN_LINES));
    }
    Err(format!(
        "{} tests failed at least once in {runs} runs",
        records.len()
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options_parse() {
        let o = Options::parse(&args("")).unwrap();
        assert_eq!(o.runs, DEFAULT_RUNS);
        assert!(o.hogs >= 1);
        let o = Options::parse(&args(
            "5 --hog 0 --test spawn --test doc --filter kill --timeout 9",
        ))
        .unwrap();
        assert_eq!(o.runs, 5);
        assert_eq!(o.hogs, 0);
        assert_eq!(o.tests, ["spawn", "doc"]);
        assert_eq!(o.filters, ["kill"]);
        assert_eq!(o.timeout, Duration::from_secs(9));
        for bad in [
            "0",
            "x",
            "5 6",
            "--hog",
            "--hog -1",
            "--timeout 0",
            "--what",
        ] {
            assert!(Options::parse(&args(bad)).is_err(), "`{bad}` was accepted");
        }
    }

    #[test]
    fn a_crash_and_a_hang_are_failures_too() {
        use std::os::unix::process::ExitStatusExt;
        let target = Target::Doc;
        let opts = Options::parse(&[]).unwrap();
        let crashed = Outcome {
            report: libtest::parse("running 2 tests\ntest a ... ok\n"),
            status: Some(ExitStatus::from_raw(11)),
            ends: "segfault".into(),
        };
        let found = failures(&target, &crashed, &opts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "doc: (binary)");
        assert!(found[0].1.ends_with("segfault"), "{}", found[0].1);
        let hung = Outcome {
            report: libtest::parse("test b has been running for over 60 seconds\n"),
            status: None,
            ends: String::new(),
        };
        let found = failures(&target, &hung, &opts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "doc: b");
        let passed = Outcome {
            report: libtest::parse("test a ... ok\n\ntest result: ok.\n"),
            status: Some(ExitStatus::from_raw(0)),
            ends: String::new(),
        };
        assert!(failures(&target, &passed, &opts).is_empty());
    }

    #[test]
    fn selection_by_target_name() {
        let spawn = Target::Binary {
            name: "childproc".into(),
            shown: "childproc (lib)".into(),
            path: "/x".into(),
            dir: "/".into(),
        };
        assert!(spawn.selected(&[]));
        assert!(spawn.selected(&args("childproc")));
        assert!(!spawn.selected(&args("doc")));
        assert!(Target::Doc.selected(&args("doc")));
    }
}
