//! The memory rows of the ipc section (issue 13): a Rust child floods its parent with
//! numbered messages of 110 characters while the parent holds its `events()` stream without
//! reading for a few seconds, then reads them all. How much the parent's RSS grows, with
//! childproc's receive bound (the default marks) and with the bound lifted (marks at their
//! maximum: what every message queued for a stream costs).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use childproc::ipc::Value;
use childproc::{ChildProcess, Event, Events};
use futures_util::StreamExt;

use super::super::doc::Table;
use super::children::count_value;
use super::GUARD;
use crate::BoxError;

/// The characters of each message (its JSON frame is 2 bytes more).
const SIZE: usize = 110;
/// The growth the bound must stay under.
const TARGET_MIB: f64 = 16.0;

/// One parent's run.
pub(super) struct Row {
    label: &'static str,
    messages: u64,
    pause: Duration,
    /// RSS growth at the end of the pause, and the peak growth until every message was read.
    paused_growth: u64,
    peak_growth: Option<u64>,
    read: Duration,
}

/// The runs of the section: bounded (default marks), then unbounded.
pub(super) struct Memory {
    rows: Vec<Row>,
}

/// The two parents: the label, and the marks to set (`None`: the defaults).
const RUNS: [(&str, Option<(usize, usize)>); 2] = [
    ("default marks (1024 messages, 1 MiB)", None),
    (
        "marks at their maximum (no bound)",
        Some((usize::MAX, usize::MAX)),
    ),
];

/// Measures both parents, each in a fresh process (`xtask bench-worker ipc-memory`), so that
/// nothing measured before has grown its heap; `quick` sends a tenth of the messages and
/// pauses 1 s.
pub(super) fn measure(xtask: &Path, quick: bool) -> Result<Memory, BoxError> {
    let (messages, pause) = if quick {
        (100_000u64, Duration::from_secs(1))
    } else {
        (1_000_000, Duration::from_secs(3))
    };
    let mut rows = Vec::new();
    for (run, (label, _)) in RUNS.iter().enumerate() {
        let out = std::process::Command::new(xtask)
            .args(["bench-worker", "ipc-memory"])
            .args([
                run.to_string(),
                messages.to_string(),
                pause.as_millis().to_string(),
            ])
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "ipc-memory ({label}) failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| -> Option<u64> {
            text.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
        };
        let (Some(paused_growth), Some(read_ns)) = (field("paused_growth"), field("read_ns"))
        else {
            return Err(format!("ipc-memory printed {text:?}").into());
        };
        let row = Row {
            label,
            messages,
            pause,
            paused_growth,
            peak_growth: field("peak_growth"),
            read: Duration::from_nanos(read_ns),
        };
        println!(
            "  memory: {label}: +{:.1} MiB after {} s unread, peak +{}, all {} read in {:.2} s, in order",
            mib(row.paused_growth),
            row.pause.as_secs(),
            row.peak_growth
                .map_or_else(|| "?".to_string(), |p| format!("{:.1} MiB", mib(p))),
            row.messages,
            row.read.as_secs_f64()
        );
        rows.push(row);
    }
    println!();
    Ok(Memory { rows })
}

/// `xtask bench-worker ipc-memory RUN MESSAGES PAUSE_MS`: one parent of [`RUNS`], on a
/// multi-thread runtime with 2 workers like the rest of the section; prints
/// `paused_growth=<bytes> peak_growth=<bytes> read_ns=<ns>`.
pub(crate) fn worker(args: &[String]) -> Result<(), BoxError> {
    let [_, run, messages, pause_ms] = args else {
        return Err("usage: xtask bench-worker ipc-memory RUN MESSAGES PAUSE_MS".into());
    };
    let (label, marks) = *RUNS.get(run.parse::<usize>()?).ok_or("no such run")?;
    let (messages, pause) = (messages.parse()?, Duration::from_millis(pause_ms.parse()?));
    let mut fork = childproc::fork_exe(std::env::current_exe()?, ["bench-worker", "ipc-child"])
        .kill_on_drop(true);
    if let Some((m, b)) = marks {
        fork = fork.ipc_high_water(m, b);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let row = rt.block_on(async move {
        let child = fork.spawn()?;
        let run = tokio::spawn(async move { flood(&child, label, messages, pause).await });
        tokio::time::timeout(GUARD, run)
            .await
            .map_err(|_| format!("ipc memory, {label}: timed out"))??
    })?;
    let peak = row
        .peak_growth
        .map_or_else(String::new, |p| format!(" peak_growth={p}"));
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "paused_growth={}{peak} read_ns={}",
        row.paused_growth,
        row.read.as_nanos()
    )?;
    Ok(())
}

/// One run: the stream held unread for `pause`, then every message read and checked.
async fn flood(
    child: &ChildProcess,
    label: &'static str,
    messages: u64,
    pause: Duration,
) -> Result<Row, BoxError> {
    let mut events = child.events();
    // One round trip first: the child runs and the channel is warm.
    child.send("x".repeat(16)).await?;
    next_string(&mut events).await?;
    let before = rss()?;
    let peak_reset = reset_peak();
    let request = Value::object([
        ("numbered", count_value(messages)),
        ("size", count_value(SIZE as u64)),
    ]);
    child.send(request).await?;
    tokio::time::sleep(pause).await;
    let paused = rss()?;
    let start = Instant::now();
    for i in 0..messages {
        let s = next_string(&mut events).await?;
        let seq: Option<u64> = s.get(..10).and_then(|d| d.parse().ok());
        if s.len() != SIZE || seq != Some(i) {
            return Err(format!("message {i} was {:?}", s.get(..20)).into());
        }
    }
    let read = start.elapsed();
    let peak = peak_reset.then(peak_rss).transpose()?;
    child.disconnect();
    let status = child.closed().await?;
    if !status.success() {
        return Err(format!("the IPC child ended with {status}").into());
    }
    Ok(Row {
        label,
        messages,
        pause,
        paused_growth: paused.saturating_sub(before),
        peak_growth: peak.map(|p| p.saturating_sub(before)),
        read,
    })
}

/// The next message, a string, skipping `Spawn`.
async fn next_string(events: &mut Events) -> Result<String, BoxError> {
    loop {
        match events.next().await {
            Some(Event::Message(Value::String(s))) => return Ok(s),
            Some(Event::Spawn) => {}
            Some(other) => return Err(format!("expected a string, got {other:?}").into()),
            None => return Err("the child's events ended".into()),
        }
    }
}

/// A field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .ok_or_else(|| format!("no {field} in /proc/self/status"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse()?;
    Ok(kib * 1024)
}

/// The resident set size now.
fn rss() -> Result<u64, BoxError> {
    status_bytes("VmRSS:")
}

/// The peak resident set size since [`reset_peak`].
fn peak_rss() -> Result<u64, BoxError> {
    status_bytes("VmHWM:")
}

/// Resets the peak RSS to the current RSS (Linux: `5` to `/proc/self/clear_refs`); false
/// where that is not possible.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Memory {
    /// The Markdown: the table and the target.
    pub(super) fn render(&self) -> String {
        let table = Table {
            header: [
                "Parent",
                "messages",
                "not read for",
                "RSS growth then",
                "peak RSS growth",
                "then all read in",
            ]
            .map(String::from)
            .to_vec(),
            rows: self
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.label.to_string(),
                        r.messages.to_string(),
                        format!("{} s", r.pause.as_secs()),
                        format!("{:.1} MiB", mib(r.paused_growth)),
                        r.peak_growth
                            .map_or_else(|| "—".to_string(), |p| format!("{:.1} MiB", mib(p))),
                        format!("{:.2} s", r.read.as_secs_f64()),
                    ]
                })
                .collect(),
        };
        let bounded = self.rows.first();
        let verdict = bounded.map_or_else(String::new, |r| {
            let worst = r.peak_growth.unwrap_or(r.paused_growth);
            format!(
                "Target, in this run: growth under {TARGET_MIB} MiB with the default marks: \
                 {:.1} MiB ({}).\n",
                mib(worst),
                if mib(worst) < TARGET_MIB {
                    "met"
                } else {
                    "missed"
                }
            )
        });
        format!(
            "\n### Memory while the parent does not read\n\n\
             A Rust child (`ipc-child`, json) sends numbered strings of {SIZE} characters as \
             fast as\nits flow control lets it (`send_nowait`, then an awaited `send` after a \
             false); the\nparent holds its `events()` stream without reading for the pause, then \
             reads every\nmessage and checks that all arrived in order. Each parent is a fresh \
             process\n(`xtask bench-worker ipc-memory`, a runtime with 2 worker threads); RSS \
             is its `VmRSS`\ngrowth since just before the request, the peak its `VmHWM`, \
             reset then\n(`/proc/self/clear_refs`). With the bound, the parent stops \
             reading the channel while the\nstream is full, so the child's sends wait \
             (docs/ipc.md, \
             \"Receive backpressure\").\n\n{}\n{verdict}",
            table.render()
        )
    }
}
