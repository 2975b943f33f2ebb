//! The "pipeline" section: 1 GiB through `head -c N /dev/zero | cat | cat | cat`, the parent
//! reading the last stage's stdout, four ways:
//! - a childproc [`Pipeline`] (the stages linked by pipes the kernel moves bytes through);
//! - `sh -c '…'`: the shell builds the same pipeline, the OS floor;
//! - tokio::process children with every link copied through the parent (64 KiB reads);
//! - Node.js: the same children joined by `stream.pipeline` over their stdio
//!   (`xtask/bench/pipeline.js`, timing itself).
//!
//! Each round runs every peer once, in a rotating order; the table shows each peer's median
//! throughput and the parent's own CPU time per GiB (its children not counted), and the
//! ratios to the shell and to the copying peer.

use std::process::Stdio;
use std::time::{Duration, Instant};

use childproc::{Command, Pipeline};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::runtime::Runtime;

use super::cpu::with_cpu;
use super::doc::{Section, Table};
use super::{json_u64, median_duration, median_f64, rotation, Env, Options};
use crate::BoxError;

/// The bytes through the pipeline in a full run: 1 GiB (`--quick`: 64 MiB).
const BYTES: u64 = 1 << 30;
const QUICK_BYTES: u64 = 64 << 20;
/// Rounds (`--quick`: 2).
const ROUNDS: usize = 5;
/// The `cat` stages after `head`.
const CATS: usize = 3;
/// The parent's read (and copy) size.
const CHUNK: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Childproc,
    Shell,
    TokioCopy,
    Node,
    Bun,
    Deno,
}

impl Peer {
    fn label(self) -> &'static str {
        match self {
            Peer::Childproc => "childproc Pipeline",
            Peer::Shell => "sh -c 'head | cat | cat | cat' (OS floor)",
            Peer::TokioCopy => "tokio::process, copied through the parent",
            Peer::Node => "Node.js stream.pipeline over child stdio",
            Peer::Bun => "Bun, the same script",
            Peer::Deno => "Deno, the same script",
        }
    }

    /// The JavaScript runtime that runs `pipeline.js` for this peer, if it is one.
    fn runtime(self, env: &Env) -> Option<&super::Node> {
        match self {
            Peer::Node => env.node.as_ref(),
            Peer::Bun => env.bun.as_ref(),
            Peer::Deno => env.deno.as_ref(),
            _ => None,
        }
    }
}

/// One timed run: bytes per second and the parent's CPU time.
#[derive(Debug, Clone, Copy)]
struct Run {
    rate: f64,
    cpu: Duration,
}

pub(super) fn run(opts: &Options, env: &Env) -> Result<Section, BoxError> {
    let bytes = if opts.quick { QUICK_BYTES } else { BYTES };
    // The gate's pass takes more (short) rounds: two swing by ±10%.
    let rounds = if opts.check {
        7
    } else if opts.quick {
        2
    } else {
        ROUNDS
    };
    let mut peers = vec![Peer::Childproc, Peer::Shell, Peer::TokioCopy];
    for js in [Peer::Node, Peer::Bun, Peer::Deno] {
        if js.runtime(env).is_some() {
            peers.push(js);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // One untimed run each, so the first timed one does not pay for cold caches.
    for &peer in &peers {
        once(peer, 16 << 20, &rt, env)?;
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); peers.len()];
    for round in 0..rounds {
        for peer in rotation(&peers, round) {
            let at = peers.iter().position(|p| *p == peer).unwrap_or(0);
            let run = once(peer, bytes, &rt, env)?;
            println!(
                "  pipeline round {round}: {:<44} {:>8.0} MiB/s, parent CPU {:?}",
                peer.label(),
                run.rate / f64::from(1 << 20),
                run.cpu
            );
            runs[at].push(run);
        }
    }
    Ok(section(&peers, &runs, bytes))
}

fn once(peer: Peer, bytes: u64, rt: &Runtime, env: &Env) -> Result<Run, BoxError> {
    if let Some(node) = peer.runtime(env) {
        let out = node.run(&env.scripts.join("pipeline.js"), &[bytes.to_string()])?;
        let got = json_u64(&out, "bytes", "pipeline.js")?;
        if got != bytes {
            return Err(format!("pipeline.js read {got} bytes, expected {bytes}").into());
        }
        let elapsed = Duration::from_nanos(json_u64(&out, "elapsed_ns", "pipeline.js")?);
        let cpu = Duration::from_micros(json_u64(&out, "cpu_us", "pipeline.js")?);
        return Ok(Run {
            rate: per_sec(bytes, elapsed),
            cpu,
        });
    }
    let start = Instant::now();
    let (got, cpu) = with_cpu(|| {
        rt.block_on(async move {
            tokio::spawn(async move {
                match peer {
                    Peer::Childproc => childproc_pipeline(bytes).await,
                    Peer::Shell => shell(bytes).await,
                    _ => tokio_copy(bytes).await,
                }
            })
            .await?
        })
    });
    let got = got?;
    let elapsed = start.elapsed();
    if got != bytes {
        return Err(format!("{} read {got} bytes, expected {bytes}", peer.label()).into());
    }
    Ok(Run {
        rate: per_sec(bytes, elapsed),
        cpu,
    })
}

fn per_sec(bytes: u64, elapsed: Duration) -> f64 {
    // Byte counts are far below 2^52: exact.
    #[allow(clippy::cast_precision_loss)]
    let bytes = bytes as f64;
    bytes / elapsed.as_secs_f64().max(1e-9)
}

fn head_args(bytes: u64) -> [String; 3] {
    ["-c".into(), bytes.to_string(), "/dev/zero".into()]
}

/// Reads `from` to its end in [`CHUNK`] reads: the bytes read.
async fn drain(mut from: impl AsyncRead + Unpin) -> Result<u64, BoxError> {
    let mut buf = vec![0; CHUNK];
    let mut total = 0;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

async fn childproc_pipeline(bytes: u64) -> Result<u64, BoxError> {
    let mut head = Command::new("head");
    head.args(head_args(bytes))
        .stderr(childproc::Stdio::Inherit);
    let mut pipeline = Pipeline::new().pipe(head);
    for _ in 0..CATS {
        let mut cat = Command::new("cat");
        cat.stderr(childproc::Stdio::Inherit);
        pipeline = pipeline.pipe(cat);
    }
    let mut child = pipeline.spawn()?;
    let got = drain(child.stdout.take().ok_or("no stdout")?).await?;
    let status = child.wait().await?;
    if !status.stages().iter().all(childproc::ExitStatus::success) {
        return Err(format!("the pipeline failed: {status:?}").into());
    }
    Ok(got)
}

async fn shell(bytes: u64) -> Result<u64, BoxError> {
    let script = format!("head -c {bytes} /dev/zero{}", " | cat".repeat(CATS));
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let got = drain(child.stdout.take().ok_or("no stdout")?).await?;
    let status = child.wait().await?;
    if !status.success() {
        return Err(format!("sh -c {script:?} failed: {status}").into());
    }
    Ok(got)
}

async fn tokio_copy(bytes: u64) -> Result<u64, BoxError> {
    let mut head = tokio::process::Command::new("head")
        .args(head_args(bytes))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut upstream = head.stdout.take().ok_or("no stdout")?;
    let mut children = vec![head];
    let mut copies = Vec::new();
    let mut last = None;
    for stage in 0..CATS {
        let mut cat = tokio::process::Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdin = cat.stdin.take().ok_or("no stdin")?;
        let from = upstream;
        copies.push(tokio::spawn(async move {
            let mut from = BufReader::with_capacity(CHUNK, from);
            tokio::io::copy_buf(&mut from, &mut stdin).await?;
            stdin.shutdown().await?;
            Ok::<(), std::io::Error>(())
        }));
        let out = cat.stdout.take().ok_or("no stdout")?;
        children.push(cat);
        if stage + 1 == CATS {
            last = Some(out);
            break;
        }
        upstream = out;
    }
    let got = drain(last.ok_or("no last stage")?).await?;
    for copy in copies {
        copy.await??;
    }
    for mut child in children {
        let status = child.wait().await?;
        if !status.success() {
            return Err(format!("a stage failed: {status}").into());
        }
    }
    Ok(got)
}

fn section(peers: &[Peer], runs: &[Vec<Run>], bytes: u64) -> Section {
    let rate = |p: Peer| {
        peers
            .iter()
            .position(|q| *q == p)
            .map(|i| median_f64(&runs[i].iter().map(|r| r.rate).collect::<Vec<_>>()))
    };
    let mut table = Table {
        header: [
            "peer",
            "MiB/s",
            "parent CPU per GiB",
            "÷ sh floor",
            "÷ copied through parent",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    let shell = rate(Peer::Shell);
    let copied = rate(Peer::TokioCopy);
    let ours = rate(Peer::Childproc);
    let vs = |base: Option<f64>| Some(ours? / base?);
    super::record("pipeline.vs_shell", vs(shell));
    super::record("pipeline.vs_copy", vs(copied));
    let gib = f64::from(1 << 30);
    for (i, peer) in peers.iter().enumerate() {
        let r = rate(*peer).unwrap_or(f64::NAN);
        let cpus: Vec<Duration> = runs[i].iter().map(|r| r.cpu).collect();
        // Byte counts are far below 2^52: exact.
        #[allow(clippy::cast_precision_loss)]
        let per_gib =
            median_duration(&cpus).map_or(f64::NAN, |c| c.as_secs_f64() * gib / bytes as f64);
        let ratio = |base: Option<f64>| base.map_or("–".into(), |b| format!("{:.2}×", r / b));
        table.rows.push(vec![
            peer.label().into(),
            format!("{:.0}", r / f64::from(1 << 20)),
            format!("{:.1} ms", per_gib * 1e3),
            ratio(shell),
            ratio(copied),
        ]);
    }
    let body = format!(
        "## Pipelines: {} MiB through `head | cat | cat | cat`\n\n\
         The parent reads the last stage's stdout ({} KiB reads) and counts it. Median of the \
         rounds; each round runs every peer once, in a rotating order. Parent CPU is this \
         process's own (user + system, every thread; the children's is not counted), per GiB \
         moved; Node's (and Bun's and Deno's, running the same script, when on PATH) is \
         `process.cpuUsage()` in the script. Goals: the childproc Pipeline at \
         least 0.95× the shell's pipeline (the OS floor) and at least 2× copying through the \
         parent.\n\n{}",
        bytes >> 20,
        CHUNK >> 10,
        table.render()
    );
    Section {
        name: "pipeline",
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rust_peer_moves_every_byte() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        for peer in [Peer::Childproc, Peer::Shell, Peer::TokioCopy] {
            let got = rt
                .block_on(async move {
                    match peer {
                        Peer::Childproc => childproc_pipeline(100_000).await,
                        Peer::Shell => shell(100_000).await,
                        _ => tokio_copy(100_000).await,
                    }
                })
                .unwrap();
            assert_eq!(got, 100_000, "{peer:?}");
        }
    }
}
