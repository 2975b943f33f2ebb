//! The "exec" section: buffered exec, as Node's `execFile`/`exec`, side by side with
//! tokio::process's `output()`, a raw pipe read loop and Node.js.
//!
//! Two parts:
//! - throughput: a child writes 1 GiB of zeros (`head -c 1073741824 /dev/zero`) and every
//!   peer collects all of it; MiB/s, with a raw blocking pipe read loop as the limit;
//! - rate: exec of `/bin/true` per second at concurrency 1 and 8.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use tokio::io::AsyncReadExt;
use tokio::runtime::Runtime;

use super::doc::{Section, Table};
use super::{json_u64, median, rotation, spread, time_async, Env, Options, Rate};
use crate::BoxError;

/// The program every throughput peer runs, with [`bulk_args`].
const BULK_PROGRAM: &str = "head";
/// The bytes the child writes in a full run: 1 GiB.
const BULK_BYTES: u64 = 1 << 30;
/// The bytes the child writes with `--quick`: 64 MiB.
const QUICK_BULK_BYTES: u64 = 64 << 20;
/// The bytes of the untimed warm-up run of each peer.
const BULK_WARMUP_BYTES: u64 = 16 << 20;
/// Timed runs per throughput peer, one per round (`--quick`: 3).
const BULK_ROUNDS: usize = 5;
/// childproc's `maxBuffer` for the throughput runs: above the output, so nothing is cut.
const MAX_BUFFER: usize = 2 << 30;
/// Below this the Node.js throughput run does not fall back to a smaller size any more.
const NODE_MIN_BYTES: u64 = 16 << 20;
/// The reused buffer of the "counting" raw pipe loop.
const COUNT_BUF: usize = 1 << 20;

/// The program of the rate part.
const RATE_PROGRAM: &str = "/bin/true";
/// Execs timed per rate peer and concurrency in a full run (`--quick`: a tenth).
const EXECS: u64 = 1000;
/// Untimed execs per rate peer and concurrency before timing starts.
const WARMUP: u64 = 20;
/// The concurrency levels of the rate part.
const CONCURRENCY: [usize; 2] = [1, 8];
/// Rounds per concurrency of the rate part (see `spawn::ROUNDS`).
const RATE_ROUNDS: u64 = 10;

/// The arguments of `head` that make it write `bytes` zeros.
fn bulk_args(bytes: u64) -> [String; 3] {
    ["-c".to_string(), bytes.to_string(), "/dev/zero".to_string()]
}

/// A way of collecting the child's whole stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bulk {
    /// `childproc::exec_file(..).max_buffer(2 GiB).encoding(Encoding::Buffer).await`.
    Exec,
    /// [`Bulk::Exec`] on a current-thread runtime.
    ExecCurrent,
    /// `childproc::Command::spawn` + tokio `read_to_end` of `child.stdout` + `wait`.
    Pipe,
    /// `tokio::process::Command::output()`.
    Tokio,
    /// [`Bulk::Tokio`] on a current-thread runtime.
    TokioCurrent,
    /// std::process, a blocking `read` loop into one preallocated Vec of the output's size.
    RawVec,
    /// std::process, a blocking `read` loop into one reused 1 MiB buffer, counting bytes.
    RawCount,
    /// Node.js `execFile(.., { encoding: 'buffer', maxBuffer: 2 ** 31 })`.
    Node,
}

impl Bulk {
    /// Every throughput peer, in table order.
    const ALL: [Bulk; 8] = [
        Bulk::Exec,
        Bulk::ExecCurrent,
        Bulk::Pipe,
        Bulk::Tokio,
        Bulk::TokioCurrent,
        Bulk::RawVec,
        Bulk::RawCount,
        Bulk::Node,
    ];

    /// The name shown in output.
    fn name(self) -> &'static str {
        match self {
            Bulk::Exec => "childproc exec_file (Buffer)",
            Bulk::ExecCurrent => "childproc exec_file, current-thread",
            Bulk::Pipe => "childproc spawn + read_to_end",
            Bulk::Tokio => "tokio::process output()",
            Bulk::TokioCurrent => "tokio output(), current-thread",
            Bulk::RawVec => "raw pipe → preallocated Vec",
            Bulk::RawCount => "raw pipe → reused 1 MiB buffer",
            Bulk::Node => "Node.js execFile (buffer)",
        }
    }

    fn index(self) -> usize {
        Bulk::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// A peer of the rate part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Execs {
    /// `childproc::exec_file("/bin/true", []).await`.
    ExecFile,
    /// `childproc::exec("/bin/true").await`, through `/bin/sh -c`.
    Exec,
    /// `tokio::process::Command::new("/bin/true").output().await`.
    Tokio,
    /// Node.js `execFile('/bin/true')`.
    NodeExecFile,
    /// Node.js `exec('/bin/true')`, through `/bin/sh -c`.
    NodeExec,
    /// C `posix_spawn` of `/bin/sh -c /bin/true` and `waitpid` (xtask/bench/rawspawn.c), no
    /// pipes: the shell's own cost, which bounds every `exec`.
    RawSh,
}

impl Execs {
    /// Every rate peer, in table order.
    const ALL: [Execs; 6] = [
        Execs::ExecFile,
        Execs::Exec,
        Execs::Tokio,
        Execs::NodeExecFile,
        Execs::NodeExec,
        Execs::RawSh,
    ];

    /// The name shown in output.
    fn name(self) -> &'static str {
        match self {
            Execs::ExecFile => "childproc exec_file",
            Execs::Exec => "childproc exec",
            Execs::Tokio => "tokio output()",
            Execs::NodeExecFile => "Node.js execFile",
            Execs::NodeExec => "Node.js exec",
            Execs::RawSh => "C posix_spawn sh -c",
        }
    }

    fn is_node(self) -> bool {
        matches!(self, Execs::NodeExecFile | Execs::NodeExec)
    }

    fn index(self) -> usize {
        Execs::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// Measures both parts and returns the section for the docs.
pub(super) fn run(opts: &Options, env: &Env) -> Result<Section, BoxError> {
    let rts = Runtimes {
        multi: tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        current: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    let workers = rts.multi.metrics().num_workers();
    let started = Instant::now();
    let bulk = throughput(opts, env, &rts)?;
    let rate = rate(opts, env, &rts.multi)?;
    println!(
        "exec: measured in {:.0} s\n",
        started.elapsed().as_secs_f64()
    );

    let node = env
        .node
        .as_ref()
        .map_or("not found", |n| n.version.as_str());
    let body = format!(
        "## Exec\n\n\
         Buffered exec — run a child and collect all of its output — as Node's\n\
         `execFile`/`exec`, next to tokio::process's `output()`, a raw pipe read loop and\n\
         Node.js {node} (timed inside `xtask/bench/exec.js`, so Node's startup is not\n\
         counted). childproc and tokio run on one multi-thread runtime ({workers} worker\n\
         threads) unless a row says current-thread. A ratio above 1 means childproc is faster.\n\n\
         ### Throughput\n\n{}\n\
         ### Rate\n\n{}",
        bulk.render(),
        rate.render()
    );
    Ok(Section { name: "exec", body })
}

/// The results of the throughput part.
struct Throughput {
    /// The bytes each Rust peer collected per run.
    bytes: u64,
    /// The bytes Node.js collected per run (less than `bytes` only after a fallback).
    node_bytes: u64,
    /// Why Node.js fell back to a smaller size, if it did.
    node_fallback: Option<String>,
    /// The rounds in which it ran.
    rounds: usize,
    /// Each peer's runs, in [`Bulk::ALL`] order (empty: not measured).
    runs: Vec<Vec<Rate>>,
}

impl Throughput {
    fn median(&self, peer: Bulk) -> Option<Rate> {
        median(&self.runs[peer.index()])
    }

    /// The table: one row per peer, with its MiB/s, its spread and childproc exec ÷ it.
    fn table(&self) -> Table {
        let ours = self.median(Bulk::Exec);
        Table {
            header: [
                "Collector",
                "MiB/s (median)",
                "slowest–fastest",
                "childproc exec ÷ this",
            ]
            .map(String::from)
            .to_vec(),
            rows: Bulk::ALL
                .into_iter()
                .map(|peer| {
                    let runs = &self.runs[peer.index()];
                    let name = if peer == Bulk::Node && self.node_bytes != self.bytes {
                        format!("{} ({})", peer.name(), size(self.node_bytes))
                    } else {
                        peer.name().to_string()
                    };
                    vec![
                        name,
                        mib_cell(median(runs)),
                        spread(runs)
                            .map_or_else(dash, |(lo, hi)| format!("{:.0}–{:.0}", mib(lo), mib(hi))),
                        ratio(ours, median(runs), mib),
                    ]
                })
                .collect(),
        }
    }

    /// The Markdown of the throughput part.
    fn render(&self) -> String {
        let bytes = self.bytes;
        let vs = |ours: Bulk, theirs: Bulk| ratio(self.median(ours), self.median(theirs), mib);
        let node_note = match &self.node_fallback {
            Some(why) => format!(
                "\nNode.js could not collect {}: {why}; its row is measured at {}.\n",
                size(bytes),
                size(self.node_bytes)
            ),
            None => String::new(),
        };
        format!(
            "`{BULK_PROGRAM} -c {bytes} /dev/zero` writes {} to stdout and each peer collects\n\
             all of it; the time runs from before the spawn until the output is in hand and the\n\
             child is reaped (dropping the buffer afterwards is not timed). Each peer runs once\n\
             untimed on {} first, then once per round for {} rounds; the rounds interleave the\n\
             peers in a rotating order and the table shows each peer's median run. The async\n\
             peers run as a task (`tokio::spawn`) on their runtime, as application code would.\n\n\
             - childproc exec_file: `exec_file(\"{BULK_PROGRAM}\", [\"-c\", \"{bytes}\", \"/dev/zero\"])\
             .max_buffer(2 << 30).encoding(Encoding::Buffer).await`\n  \
               (stdin, stdout, stderr piped; stdin closed at once)\n\
             - childproc spawn + read_to_end: `Command::new(\"{BULK_PROGRAM}\")` with stdout piped,\n  \
               stdin and stderr ignored, `spawn()`, tokio `read_to_end` of `child.stdout` into a\n  \
               `Vec`, then `wait()`\n\
             - tokio::process output(): `Command::new(\"{BULK_PROGRAM}\")`, stdin null, `.output().await`\n  \
               (which pipes stdout and stderr)\n\
             - current-thread: the same code on `new_current_thread()` instead of the\n  \
               multi-thread runtime\n\
             - raw pipe → preallocated Vec: `std::process::Command`, stdout piped, the others\n  \
               null, a blocking `read` loop on one thread into `vec![0; {bytes}]` allocated inside\n  \
               the timing — the physical limit for collecting everything\n\
             - raw pipe → reused 1 MiB buffer: the same loop into one 1 MiB buffer, counting\n  \
               bytes — the pipe alone, no memory to fill\n\
             - Node.js: `execFile('{BULK_PROGRAM}', ['-c', '{}', '/dev/zero'], \
             {{ encoding: 'buffer', maxBuffer: 2 ** 31 }})`\n\
             {node_note}\n{}\n\
             childproc exec ÷ raw pipe into a preallocated Vec (target ≥ 0.90×): **{}** on the\n\
             multi-thread runtime, **{}** on a current-thread runtime. childproc exec ÷ tokio\n\
             output(): {} (multi-thread), {} (current-thread); ÷ Node.js execFile: {}.\n\n\
             The current-thread rows run the same code with the task, the I/O driver and the\n\
             reads on one thread; on the multi-thread runtime the workers share this machine's\n\
             {} cores with the writing child, and every pipe-full is a wake-up through the I/O\n\
             driver. Multi-thread ÷ current-thread: {} for childproc exec, {} for tokio output().\n",
            size(bytes),
            size(BULK_WARMUP_BYTES.min(bytes)),
            self.rounds,
            self.node_bytes,
            self.table().render(),
            vs(Bulk::Exec, Bulk::RawVec),
            vs(Bulk::ExecCurrent, Bulk::RawVec),
            vs(Bulk::Exec, Bulk::Tokio),
            vs(Bulk::ExecCurrent, Bulk::TokioCurrent),
            vs(Bulk::Exec, Bulk::Node),
            std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
            vs(Bulk::Exec, Bulk::ExecCurrent),
            vs(Bulk::Tokio, Bulk::TokioCurrent),
        )
    }
}

/// The runtimes the async throughput peers run on.
struct Runtimes {
    /// The multi-thread runtime every other section uses too.
    multi: Runtime,
    /// A current-thread runtime: the task, the I/O driver and the reads on one thread.
    current: Runtime,
}

/// Runs the throughput part.
fn throughput(opts: &Options, env: &Env, rts: &Runtimes) -> Result<Throughput, BoxError> {
    let bytes = if opts.quick {
        QUICK_BULK_BYTES
    } else {
        BULK_BYTES
    };
    let rounds = if opts.quick { 3 } else { BULK_ROUNDS };
    let peers: Vec<Bulk> = Bulk::ALL
        .into_iter()
        .filter(|p| *p != Bulk::Node || env.node.is_some())
        .collect();
    println!(
        "exec throughput: `{BULK_PROGRAM} -c {bytes} /dev/zero`, {rounds} rounds, one run per \
         peer per round\n"
    );
    let warmup = BULK_WARMUP_BYTES.min(bytes);
    for &peer in &peers {
        if peer != Bulk::Node {
            bulk_once(peer, warmup, rts)?;
        }
    }
    let mut node_bytes = bytes;
    let mut node_fallback = None;
    let mut runs = vec![Vec::new(); Bulk::ALL.len()];
    for round in 0..rounds {
        for peer in rotation(&peers, round) {
            let rate = if peer == Bulk::Node {
                node_bulk(env, &mut node_bytes, &mut node_fallback)?
            } else {
                bulk_once(peer, bytes, rts)?
            };
            println!(
                "  round {}: {:<36} {:>6.0} MiB/s",
                round + 1,
                peer.name(),
                mib(rate)
            );
            runs[peer.index()].push(rate);
        }
    }
    let result = Throughput {
        bytes,
        node_bytes,
        node_fallback,
        rounds,
        runs,
    };
    println!("\n{}", result.table().render());
    Ok(result)
}

/// One timed run of `peer` collecting `bytes`; checks that it got all of them.
fn bulk_once(peer: Bulk, bytes: u64, rts: &Runtimes) -> Result<Rate, BoxError> {
    let args = bulk_args(bytes);
    let expected = usize::try_from(bytes)?;
    let rt = match peer {
        Bulk::ExecCurrent | Bulk::TokioCurrent => &rts.current,
        _ => &rts.multi,
    };
    let start = Instant::now();
    // Each arm returns what it collected, so dropping it happens after the clock stops.
    let (got, collected): Collected = match peer {
        Bulk::Exec | Bulk::ExecCurrent => in_task(rt, exec_collect(args.clone()))?,
        Bulk::Pipe => in_task(rt, pipe_collect(args.clone()))?,
        Bulk::Tokio | Bulk::TokioCurrent => in_task(rt, tokio_collect(args.clone()))?,
        Bulk::RawVec => raw_pipe(&args, |stdout| {
            // Zeroed allocation: fresh pages from the OS, faulted in by the reads.
            let mut buf = vec![0u8; expected];
            let mut filled = 0;
            loop {
                if filled == buf.len() {
                    // Full: the next read must be EOF, or the child wrote too much.
                    let extra = stdout.read(&mut [0u8; 1])?;
                    return Ok((filled + extra, Some(buf)));
                }
                match stdout.read(&mut buf[filled..])? {
                    0 => {
                        buf.truncate(filled);
                        return Ok((filled, Some(buf)));
                    }
                    n => filled += n,
                }
            }
        })?,
        Bulk::RawCount => raw_pipe(&args, |stdout| {
            let mut buf = vec![0u8; COUNT_BUF];
            let mut total = 0;
            loop {
                match stdout.read(&mut buf)? {
                    0 => return Ok((total, None)),
                    n => total += n,
                }
            }
        })?,
        Bulk::Node => return Err("Node.js runs through node_bulk".into()),
    };
    let elapsed = start.elapsed();
    drop(collected);
    if got != expected {
        return Err(format!(
            "{}: collected {got} bytes, expected {expected}",
            peer.name()
        )
        .into());
    }
    Ok(Rate {
        count: bytes,
        elapsed,
    })
}

/// What an async throughput peer returns: the bytes it collected and the buffer holding them.
type Collected = (usize, Option<Vec<u8>>);

/// Runs `fut` as a task on `rt` (as an application's code runs, and as the rate part and
/// the spawn section run theirs) and waits for it.
fn in_task<F>(rt: &Runtime, fut: F) -> Result<Collected, BoxError>
where
    F: std::future::Future<Output = Result<Collected, BoxError>> + Send + 'static,
{
    rt.block_on(async { tokio::spawn(fut).await? })
}

/// [`Bulk::Exec`]: `childproc::exec_file` with the Buffer encoding.
async fn exec_collect(args: [String; 3]) -> Result<Collected, BoxError> {
    let out = childproc::exec_file(BULK_PROGRAM, &args)
        .max_buffer(MAX_BUFFER)
        .encoding(childproc::Encoding::Buffer)
        .await?;
    Ok((out.stdout.len(), Some(out.stdout.into_bytes())))
}

/// [`Bulk::Pipe`]: `childproc::Command::spawn` and tokio's `read_to_end` of its stdout.
async fn pipe_collect(args: [String; 3]) -> Result<Collected, BoxError> {
    let mut child = childproc::Command::new(BULK_PROGRAM)
        .args(&args)
        .stdin(childproc::Stdio::Ignore)
        .stdout(childproc::Stdio::Pipe)
        .stderr(childproc::Stdio::Ignore)
        .spawn()?;
    let mut stdout = child.stdout.take().ok_or("childproc: no stdout pipe")?;
    let mut buf = Vec::new();
    stdout.read_to_end(&mut buf).await?;
    let status = child.wait().await?;
    if !status.success() {
        return Err(format!("childproc: {BULK_PROGRAM} ended with {status}").into());
    }
    Ok((buf.len(), Some(buf)))
}

/// [`Bulk::Tokio`]: `tokio::process::Command::output`.
async fn tokio_collect(args: [String; 3]) -> Result<Collected, BoxError> {
    let out = tokio::process::Command::new(BULK_PROGRAM)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!("tokio: {BULK_PROGRAM} ended with {}", out.status).into());
    }
    Ok((out.stdout.len(), Some(out.stdout)))
}

/// Spawns `head args..` with std::process (stdout piped, the others null), hands its stdout
/// to `read`, then reaps it.
fn raw_pipe(
    args: &[String],
    read: impl FnOnce(&mut std::process::ChildStdout) -> std::io::Result<Collected>,
) -> Result<Collected, BoxError> {
    let mut child = std::process::Command::new(BULK_PROGRAM)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = child.stdout.take().ok_or("std: no stdout pipe")?;
    let got = read(&mut stdout)?;
    drop(stdout);
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("std: {BULK_PROGRAM} ended with {status}").into());
    }
    Ok(got)
}

/// One timed Node.js run; if Node fails on `bytes`, halves it (down to [`NODE_MIN_BYTES`]),
/// records why in `fallback` and keeps the smaller size for the later rounds.
fn node_bulk(env: &Env, bytes: &mut u64, fallback: &mut Option<String>) -> Result<Rate, BoxError> {
    let node = env.node.as_ref().ok_or("node was not found")?;
    let script = env.scripts.join("exec.js");
    loop {
        let args = [
            "bytes".to_string(),
            bytes.to_string(),
            BULK_WARMUP_BYTES.min(*bytes).to_string(),
        ];
        match node.run(&script, &args) {
            Ok(out) => {
                let got = json_u64(&out, "bytes", "exec.js")?;
                if got != *bytes {
                    return Err(format!("exec.js collected {got} bytes, expected {bytes}").into());
                }
                return Ok(Rate {
                    count: got,
                    elapsed: std::time::Duration::from_nanos(json_u64(
                        &out,
                        "elapsed_ns",
                        "exec.js",
                    )?),
                });
            }
            Err(e) if *bytes / 2 >= NODE_MIN_BYTES => {
                // `node … failed (exit status: 1): CODE: message`, then the stack.
                let why = e.to_string();
                let why = why.lines().next().unwrap_or("");
                let why = why
                    .split_once("): ")
                    .map_or(why, |(_, msg)| msg)
                    .to_string();
                println!(
                    "  Node.js failed on {}: {why}; trying {}",
                    size(*bytes),
                    size(*bytes / 2)
                );
                fallback.get_or_insert(why);
                *bytes /= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One row of the rate table: every peer at one concurrency.
struct RateRow {
    concurrency: usize,
    /// Each peer's rounds, in [`Execs::ALL`] order (empty: not measured).
    rounds: Vec<Vec<Rate>>,
}

impl RateRow {
    fn median(&self, peer: Execs) -> Option<Rate> {
        median(&self.rounds[peer.index()])
    }
}

/// The results of the rate part.
struct RateResults {
    execs: u64,
    rows: Vec<RateRow>,
}

impl RateResults {
    /// Execs per second of every peer, and the ratios.
    fn table(&self) -> Table {
        /// The ratio columns: name, numerator, denominator.
        const RATIOS: [(&str, Execs, Execs); 4] = [
            (
                "exec_file ÷ Node execFile",
                Execs::ExecFile,
                Execs::NodeExecFile,
            ),
            ("exec ÷ Node exec", Execs::Exec, Execs::NodeExec),
            ("C sh ÷ Node exec", Execs::RawSh, Execs::NodeExec),
            ("exec_file ÷ tokio", Execs::ExecFile, Execs::Tokio),
        ];
        let rate = |r: Option<Rate>| r.map_or_else(dash, |r| format!("{:.0}", r.per_sec()));
        let mut header = vec!["Concurrency".to_string()];
        header.extend(Execs::ALL.map(|p| p.name().to_string()));
        header.extend(RATIOS.map(|(name, _, _)| name.to_string()));
        header[1] = "childproc exec_file (execs/s)".to_string();
        Table {
            header,
            rows: self
                .rows
                .iter()
                .map(|r| {
                    let mut row = vec![r.concurrency.to_string()];
                    row.extend(Execs::ALL.map(|p| rate(r.median(p))));
                    row.extend(
                        RATIOS.map(|(_, a, b)| ratio(r.median(a), r.median(b), Rate::per_sec)),
                    );
                    row
                })
                .collect(),
        }
    }

    /// The spread of the rounds.
    fn spread_table(&self) -> Table {
        let mut header = vec!["Concurrency".to_string()];
        header.extend(Execs::ALL.map(|p| p.name().to_string()));
        Table {
            header,
            rows: self
                .rows
                .iter()
                .map(|r| {
                    let mut row = vec![r.concurrency.to_string()];
                    row.extend(r.rounds.iter().map(|rounds| {
                        spread(rounds).map_or_else(dash, |(lo, hi)| {
                            format!("{:.0}–{:.0}", lo.per_sec(), hi.per_sec())
                        })
                    }));
                    row
                })
                .collect(),
        }
    }

    /// The Markdown of the rate part.
    fn render(&self) -> String {
        let execs = self.execs;
        let per_round = execs / RATE_ROUNDS;
        format!(
            "Exec `{RATE_PROGRAM}` and collect its (empty) output, over and over. Per peer and\n\
             concurrency: {WARMUP} untimed warm-up execs, then {execs} timed execs in {RATE_ROUNDS}\n\
             rounds of {per_round}, interleaved in a rotating order as in the spawn section; the\n\
             table shows each peer's median round. Concurrency 8 means 8 loops pulling from one\n\
             shared counter (8 tokio tasks; 8 promise chains in Node.js, whose script does its\n\
             own {WARMUP} warm-up execs before each round).\n\n\
             - childproc exec_file: `exec_file(\"{RATE_PROGRAM}\", [] as [&str; 0]).await`\n\
             - childproc exec: `exec(\"{RATE_PROGRAM}\").await` (through `/bin/sh -c`)\n\
             - tokio output(): `tokio::process::Command::new(\"{RATE_PROGRAM}\").output().await`\n\
             - Node.js execFile: `execFile('{RATE_PROGRAM}', cb)`; Node.js exec: \
             `exec('{RATE_PROGRAM}', cb)` (through `/bin/sh -c`)\n\
             - C posix_spawn sh -c: `posix_spawn` of `/bin/sh -c {RATE_PROGRAM}` with stdio on\n\
             `/dev/null`, then `waitpid`, from C on as many threads as the concurrency\n\
             (`xtask/bench/rawspawn.c`, kind `sh`): no runtime, no pipes, nothing collected.\n\
             It is what the shell alone costs, so \"C sh ÷ Node exec\" is the most any `exec`\n\
             could gain on Node's: `/bin/sh` starts (and forks {RATE_PROGRAM}) on both sides.\n\n\
             Execs per second; targets: childproc exec ÷ Node.js exec ≥ 2× (bounded by the\n\
             C sh column), and childproc exec_file ÷ Node.js execFile ≥ 2×.\n\n{}\n\
             The spread of the rounds (slowest–fastest execs/s):\n\n{}",
            self.table().render(),
            self.spread_table().render()
        )
    }
}

/// Runs the rate part.
fn rate(opts: &Options, env: &Env, rt: &Runtime) -> Result<RateResults, BoxError> {
    let execs = if opts.quick { EXECS / 10 } else { EXECS };
    let per_round = execs / RATE_ROUNDS;
    let rawspawn = match super::engine::compile_rawspawn(&env.scripts) {
        Ok(exe) => Some(exe),
        Err(e) => {
            println!("exec rate: no C sh column: {e}");
            None
        }
    };
    let peers: Vec<Execs> = Execs::ALL
        .into_iter()
        .filter(|p| !p.is_node() || env.node.is_some())
        .filter(|p| *p != Execs::RawSh || rawspawn.is_some())
        .collect();
    println!(
        "exec rate: {RATE_PROGRAM}, {RATE_ROUNDS} rounds of {per_round} execs per peer and \
         concurrency ({WARMUP} warm-up execs first)\n"
    );
    let mut rows = Vec::new();
    for concurrency in CONCURRENCY {
        let measure = |peer: Execs, n: u64, warmup: bool| -> Result<Rate, BoxError> {
            match peer {
                Execs::ExecFile => time_async(rt, n, concurrency, exec_file_once),
                Execs::Exec => time_async(rt, n, concurrency, exec_once),
                Execs::Tokio => time_async(rt, n, concurrency, tokio_once),
                // A fresh `node` each time: the script warms itself up, untimed.
                Execs::NodeExecFile | Execs::NodeExec if warmup => Ok(Rate::default()),
                Execs::NodeExecFile => node_rate(env, "execFile", n, concurrency),
                Execs::NodeExec => node_rate(env, "exec", n, concurrency),
                Execs::RawSh if warmup => Ok(Rate::default()),
                Execs::RawSh => raw_sh_rate(rawspawn.as_deref(), n, concurrency),
            }
        };
        for &peer in &peers {
            measure(peer, WARMUP, true)?;
        }
        let mut rounds = vec![Vec::new(); Execs::ALL.len()];
        for round in 0..RATE_ROUNDS {
            for peer in rotation(&peers, usize::try_from(round).unwrap_or(0)) {
                rounds[peer.index()].push(measure(peer, per_round, false)?);
            }
        }
        for peer in Execs::ALL {
            let runs = &rounds[peer.index()];
            if let Some(m) = median(runs) {
                let all: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.per_sec())).collect();
                println!(
                    "  concurrency {concurrency}: {:<20} {:>6.0} execs/s  (rounds: {})",
                    peer.name(),
                    m.per_sec(),
                    all.join(", ")
                );
            }
        }
        rows.push(RateRow {
            concurrency,
            rounds,
        });
    }
    let result = RateResults { execs, rows };
    println!(
        "\n{}\n{}",
        result.table().render(),
        result.spread_table().render()
    );
    Ok(result)
}

/// An error unless an exec of [`RATE_PROGRAM`] produced no output, as `/bin/true` does.
fn check_empty(peer: &str, stdout: usize, stderr: usize) -> Result<(), BoxError> {
    if stdout == 0 && stderr == 0 {
        Ok(())
    } else {
        Err(format!("{peer}: {RATE_PROGRAM} wrote {stdout} + {stderr} bytes").into())
    }
}

/// One `childproc::exec_file` of [`RATE_PROGRAM`].
async fn exec_file_once() -> Result<(), BoxError> {
    let out = childproc::exec_file(RATE_PROGRAM, [] as [&str; 0]).await?;
    check_empty("childproc exec_file", out.stdout.len(), out.stderr.len())
}

/// One `childproc::exec` of [`RATE_PROGRAM`], through the shell.
async fn exec_once() -> Result<(), BoxError> {
    let out = childproc::exec(RATE_PROGRAM).await?;
    check_empty("childproc exec", out.stdout.len(), out.stderr.len())
}

/// One tokio::process `output()` of [`RATE_PROGRAM`].
async fn tokio_once() -> Result<(), BoxError> {
    let out = tokio::process::Command::new(RATE_PROGRAM).output().await?;
    if !out.status.success() {
        return Err(format!("tokio: {RATE_PROGRAM} ended with {}", out.status).into());
    }
    check_empty("tokio output()", out.stdout.len(), out.stderr.len())
}

/// Runs `rawspawn posix_spawn sh` for `n` timed spawns of `/bin/sh -c /bin/true` (after its
/// own warm-up).
fn raw_sh_rate(exe: Option<&Path>, n: u64, concurrency: usize) -> Result<Rate, BoxError> {
    let exe = exe.ok_or("rawspawn was not built")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["posix_spawn", "sh"])
        .args([n, WARMUP, concurrency as u64, 0].map(|v| v.to_string()));
    let text = super::engine::output(&mut cmd, "rawspawn sh")?;
    let count = json_u64(&text, "spawns", "rawspawn")?;
    Ok(Rate {
        count,
        elapsed: std::time::Duration::from_nanos(json_u64(&text, "elapsed_ns", "rawspawn")?),
    })
}

/// Runs `xtask/bench/exec.js rate FN ..` for `n` timed execs (after its own warm-up).
fn node_rate(env: &Env, function: &str, n: u64, concurrency: usize) -> Result<Rate, BoxError> {
    let node = env.node.as_ref().ok_or("node was not found")?;
    let mut args = vec!["rate".to_string(), function.to_string()];
    args.extend([n, concurrency as u64, WARMUP].map(|v| v.to_string()));
    let out = node.run(&env.scripts.join("exec.js"), &args)?;
    let count = json_u64(&out, "execs", "exec.js")?;
    if count != n {
        return Err(format!("exec.js timed {count} execs, expected {n}").into());
    }
    Ok(Rate {
        count,
        elapsed: std::time::Duration::from_nanos(json_u64(&out, "elapsed_ns", "exec.js")?),
    })
}

/// A rate of bytes in MiB/s.
fn mib(rate: Rate) -> f64 {
    rate.per_sec() / f64::from(1u32 << 20)
}

/// A MiB/s cell.
fn mib_cell(rate: Option<Rate>) -> String {
    rate.map_or_else(dash, |r| format!("{:.0}", mib(r)))
}

/// `ours ÷ theirs` by `metric`, as `0.95×`, or a dash if either is missing.
fn ratio(ours: Option<Rate>, theirs: Option<Rate>, metric: fn(Rate) -> f64) -> String {
    match (ours, theirs) {
        (Some(o), Some(t)) if metric(t) > 0.0 => format!("{:.2}×", metric(o) / metric(t)),
        _ => dash(),
    }
}

fn dash() -> String {
    "—".to_string()
}

/// A byte count as `1 GiB`, `64 MiB` or `N bytes`.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.trailing_zeros() >= 30 {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.trailing_zeros() >= 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(1 << 30), "1 GiB");
        assert_eq!(size(64 << 20), "64 MiB");
        assert_eq!(size(1000), "1000 bytes");
    }

    #[test]
    fn ratios() {
        let r = |count| {
            Some(Rate {
                count,
                elapsed: std::time::Duration::from_secs(1),
            })
        };
        assert_eq!(ratio(r(3), r(2), Rate::per_sec), "1.50×");
        assert_eq!(ratio(r(3), None, Rate::per_sec), "—");
        assert_eq!(ratio(r(3), r(0), Rate::per_sec), "—");
    }
}
