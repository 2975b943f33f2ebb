//! The "scale" section: many live children at once. With 0, 1 000 and up to 10 000 children
//! alive (each `sleep` with stdin, stdout and stderr piped, as many as the fd limit allows;
//! then 10 000 with stdio ignored, which needs few fds), per peer:
//! - the spawn rate of `/bin/true` (stdio ignored, spawned and waited one at a time) beside
//!   them, against the rate with none;
//! - the parent's RSS and open fds per live child;
//! - the time to kill (SIGKILL) and reap them all, and per child.
//!
//! Each peer and count runs in a process of its own, so RSS and fds are that peer's alone:
//! childproc and tokio::process as `xtask bench-worker scale PEER LIVE SPAWNS STDIO`,
//! Node.js as `xtask/bench/scale.js`, and C (`xtask/bench/scale.c`: posix_spawn and a pidfd
//! per child, the kernel's floor). The fd limit is raised to what the children need
//! first, as far as the system lets (the workers inherit it).

use std::time::{Duration, Instant};

use super::doc::{Section, Table};
use super::{json_u64, median_f64, Env, Options};
use crate::BoxError;

/// Live children in a full run (`--quick`: a tenth).
const MOST: u64 = 10_000;
/// The parent's fds for everything but the live children.
const SPARE_FDS: u64 = 512;
/// Fds per live child with piped stdio, at most (three pipes and a pidfd).
const PIPED_FDS: u64 = 4;
/// Spawns timed beside the live children, in batches.
const SPAWNS: u64 = 300;
/// Rounds (a fresh process each; `--quick`: 1).
const ROUNDS: usize = 2;
/// The program the live children run.
const LIVE_ARGS: [&str; 2] = ["sleep", "3600"];

/// The live children's stdio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stdio {
    Piped,
    Ignored,
}

impl Stdio {
    fn key(self) -> &'static str {
        match self {
            Stdio::Piped => "piped",
            Stdio::Ignored => "ignore",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Childproc,
    Tokio,
    Node,
    /// `xtask/bench/scale.c`: posix_spawn, waitpid, and a pidfd per live child as childproc
    /// holds: the kernel's own cost.
    C,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Childproc => "childproc",
            Peer::Tokio => "tokio::process",
            Peer::Node => "Node.js",
            Peer::C => "C posix_spawn",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Peer::Childproc => "childproc",
            Peer::Tokio => "tokio",
            Peer::Node => "node",
            Peer::C => "c",
        }
    }
}

/// What one process measured (the fields every peer prints).
#[derive(Debug, Clone, Copy, Default)]
struct Measured {
    spawn_rate: f64,
    rss_per_child: f64,
    fds_per_child: f64,
    reap: Duration,
}

pub(super) fn run(opts: &Options, env: &Env) -> Result<Section, BoxError> {
    let most = if opts.quick { MOST / 10 } else { MOST };
    let rounds = if opts.quick { 1 } else { ROUNDS };
    let limit = raise_fd_limit(most * PIPED_FDS + SPARE_FDS);
    // With piped stdio, as many as the limit allows (in thousands); then `most` with none.
    let piped_most = (limit.saturating_sub(SPARE_FDS) / PIPED_FDS).min(most) / 1000 * 1000;
    let mut plan = vec![(0, Stdio::Piped), (most / 10, Stdio::Piped)];
    if piped_most > most / 10 {
        plan.push((piped_most, Stdio::Piped));
    }
    if most + SPARE_FDS <= limit {
        plan.push((most, Stdio::Ignored));
    }
    let mut peers = vec![Peer::Childproc, Peer::Tokio];
    if env.node.is_some() {
        peers.push(Peer::Node);
    }
    let c = super::engine::compile_c(&env.scripts, "scale");
    match &c {
        Ok(_) => peers.push(Peer::C),
        Err(e) => println!("note: the C row is skipped: {e}\n"),
    }
    let xtask = std::env::current_exe()?;
    let mut rows = Vec::new();
    for &(n, stdio) in &plan {
        for &peer in &peers {
            let mut runs = Vec::new();
            let args = [n.to_string(), SPAWNS.to_string(), stdio.key().to_string()];
            for _ in 0..rounds {
                let out = match peer {
                    Peer::Node => env
                        .node
                        .as_ref()
                        .ok_or("no node")?
                        .run(&env.scripts.join("scale.js"), &args)?,
                    Peer::C => super::engine::output(
                        std::process::Command::new(c.as_ref().map_err(|e| e.to_string())?)
                            .args(&args),
                        "scale.c",
                    )?,
                    _ => super::engine::output(
                        std::process::Command::new(&xtask)
                            .args(["bench-worker", "scale", peer.key()])
                            .args(&args),
                        "the scale worker",
                    )?,
                };
                let m = parse(&out, n, peer)?;
                println!(
                    "  scale {:<15} {n:>6} live ({}): {:>6.0} spawns/s, {:>7.0} B RSS and {:.2} \
                     fds per child, kill + reap {:?}",
                    peer.name(),
                    stdio.key(),
                    m.spawn_rate,
                    m.rss_per_child,
                    m.fds_per_child,
                    m.reap
                );
                runs.push(m);
            }
            rows.push((peer, n, stdio, runs));
        }
    }
    Ok(section(&rows, limit, most))
}

/// Raises this process's soft (and if need be hard) limit on open files to at least
/// `want`, as far as the system allows; the limit it has now.
#[allow(unsafe_code)]
fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit; the call writes only it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur >= want {
        return lim.rlim_cur;
    }
    let raised = libc::rlimit {
        rlim_cur: want.max(lim.rlim_cur),
        rlim_max: want.max(lim.rlim_max),
    };
    // SAFETY: `raised` is a valid rlimit; raising the hard limit needs privilege and fails
    // cleanly (EPERM) without it.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return raised.rlim_cur;
    }
    let soft = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above; the soft limit may always go up to the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } == 0 {
        return soft.rlim_cur;
    }
    lim.rlim_cur
}

/// A worker's line: `{"live":..,"spawns":..,"spawn_ns":..,"rss_before":..,"rss_after":..,
/// "fds_before":..,"fds_after":..,"reap_ns":..}`.
fn parse(out: &str, live: u64, peer: Peer) -> Result<Measured, BoxError> {
    let field = |name| json_u64(out, name, peer.name());
    let got = field("live")?;
    if got != live {
        return Err(format!("{}: {got} children alive, expected {live}", peer.name()).into());
    }
    // Counts and byte sizes are far below 2^52: exact.
    #[allow(clippy::cast_precision_loss)]
    let per = |after: u64, before: u64| {
        if live == 0 {
            f64::NAN
        } else {
            after.saturating_sub(before) as f64 / live as f64
        }
    };
    #[allow(clippy::cast_precision_loss)]
    let spawn_rate = field("spawns")? as f64 / (field("spawn_ns")? as f64 / 1e9).max(1e-9);
    Ok(Measured {
        spawn_rate,
        rss_per_child: per(field("rss_after")?, field("rss_before")?),
        fds_per_child: per(field("fds_after")?, field("fds_before")?),
        reap: Duration::from_nanos(field("reap_ns")?),
    })
}

type Row = (Peer, u64, Stdio, Vec<Measured>);

fn section(rows: &[Row], limit: u64, most: u64) -> Section {
    let med = |runs: &[Measured], f: fn(&Measured) -> f64| {
        median_f64(&runs.iter().map(f).collect::<Vec<_>>())
    };
    let rate_with_none = |peer: Peer| {
        rows.iter()
            .find(|(p, n, _, _)| *p == peer && *n == 0)
            .map(|(_, _, _, runs)| med(runs, |m| m.spawn_rate))
    };
    let rate_of = |peer: Peer, live: u64, stdio: Stdio| {
        rows.iter()
            .find(|(p, n, s, _)| *p == peer && *n == live && *s == stdio)
            .map(|(_, _, _, runs)| med(runs, |m| m.spawn_rate))
    };
    let rss_of = |peer: Peer, live: u64, stdio: Stdio| {
        rows.iter()
            .find(|(p, n, s, _)| *p == peer && *n == live && *s == stdio)
            .map(|(_, _, _, runs)| med(runs, |m| m.rss_per_child))
    };
    let mut table = Table {
        header: [
            "peer",
            "live children",
            "their stdio",
            "spawns/s beside them",
            "÷ with none",
            "÷ C, same children",
            "parent RSS per live child",
            "fds per live child",
            "kill + reap all",
            "per child",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    let piped_most = rows
        .iter()
        .filter(|(_, _, s, _)| *s == Stdio::Piped)
        .map(|(_, n, _, _)| *n)
        .max()
        .unwrap_or(0);
    for (peer, n, stdio, runs) in rows {
        let rate = med(runs, |m| m.spawn_rate);
        let vs_none = rate_with_none(*peer).map(|none| rate / none);
        let reap = med(runs, |m| m.reap.as_secs_f64());
        #[allow(clippy::cast_precision_loss)]
        let per_child = if *n == 0 { f64::NAN } else { reap / *n as f64 };
        let cell = |v: f64, f: &dyn Fn(f64) -> String| if v.is_nan() { "–".into() } else { f(v) };
        if *peer == Peer::Childproc && *n == piped_most && *stdio == Stdio::Piped && *n > 0 {
            super::record("scale.rate_live_vs_none", vs_none);
            super::record(
                "scale.rate_live_vs_c",
                rate_of(Peer::C, *n, *stdio).map(|c| rate / c),
            );
            let ours = rss_of(*peer, *n, *stdio);
            let node = rss_of(Peer::Node, *n, *stdio);
            super::record("scale.rss_vs_node", node.zip(ours).map(|(n, o)| n / o));
        }
        table.rows.push(vec![
            peer.name().into(),
            n.to_string(),
            stdio.key().into(),
            format!("{rate:.0}"),
            vs_none.map_or("–".into(), |r| format!("{r:.2}×")),
            rate_of(Peer::C, *n, *stdio).map_or("–".into(), |c| format!("{:.2}×", rate / c)),
            cell(med(runs, |m| m.rss_per_child), &|v| {
                format!("{:.1} KiB", v / 1024.0)
            }),
            cell(med(runs, |m| m.fds_per_child), &|v| format!("{v:.2}")),
            format!("{:.1} ms", reap * 1e3),
            cell(per_child, &|v| format!("{:.1} µs", v * 1e6)),
        ]);
    }
    let body = format!(
        "## Scale: many live children\n\n\
         Children alive at once (each `{}`, its stdin, stdout and stderr piped, or all three \
         ignored), each peer in a process of its own: the rate of spawning `/bin/true` (stdio \
         ignored, spawned and waited one at a time, {SPAWNS} timed) beside them; the parent's \
         RSS and open fds per live child (after minus before, over the count); and the time \
         from the first SIGKILL to the last child reaped. The C row does the same with \
         `posix_spawn` and `waitpid`, holding a pidfd per live child as childproc does: what \
         the kernel itself costs. The fd limit was {limit}{}. Median \
         of the rounds. Goals: childproc's spawn rate with {most} live children at least 0.9× \
         its rate with none, its memory per live child at most a quarter of Node's, and a \
         kill-and-reap cost per child that does not grow with the count.\n\n{}",
        LIVE_ARGS.join(" "),
        if piped_most < most {
            format!(
                " (the hard limit, which this process may not raise): piped stdio takes up to \
                 {PIPED_FDS} fds per child, so at most {piped_most} children with piped stdio \
                 fit, and the {most} run with stdio ignored"
            )
        } else {
            String::new()
        },
        table.render()
    );
    Section {
        name: "scale",
        body,
    }
}

/// `xtask bench-worker scale childproc|tokio LIVE SPAWNS piped|ignore`: starts LIVE
/// children, times SPAWNS spawn-and-waits beside them, kills and reaps them all; prints one
/// JSON line.
pub(crate) fn worker(args: &[String]) -> Result<(), BoxError> {
    let usage = "usage: xtask bench-worker scale childproc|tokio LIVE SPAWNS piped|ignore";
    let peer = match args.get(1).map(String::as_str) {
        Some("childproc") => Peer::Childproc,
        Some("tokio") => Peer::Tokio,
        _ => return Err(usage.into()),
    };
    let number = |i: usize| -> Result<u64, BoxError> {
        Ok(args.get(i).ok_or(usage)?.parse().map_err(|_| usage)?)
    };
    let (live, spawns) = (number(2)?, number(3)?);
    let stdio = match args.get(4).map(String::as_str) {
        Some("piped") => Stdio::Piped,
        Some("ignore") => Stdio::Ignored,
        _ => return Err(usage.into()),
    };
    raise_fd_limit(live * PIPED_FDS + SPARE_FDS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let line = rt.block_on(async move {
        tokio::spawn(async move {
            match peer {
                Peer::Childproc => childproc_scale(live, spawns, stdio).await,
                _ => tokio_scale(live, spawns, stdio).await,
            }
        })
        .await?
    })?;
    println!("{line}");
    Ok(())
}

/// The process's resident set and open fds now.
fn rss_and_fds() -> Result<(u64, u64), BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmRSS in /proc/self/status")?;
    let fds = std::fs::read_dir("/proc/self/fd")?.count() as u64;
    Ok((kb * 1024, fds))
}

/// The JSON line of a Rust worker.
fn line(
    live: u64,
    spawns: u64,
    spawn: Duration,
    before: (u64, u64),
    after: (u64, u64),
    reap: Duration,
) -> String {
    format!(
        "{{\"live\":{live},\"spawns\":{spawns},\"spawn_ns\":{},\"rss_before\":{},\"rss_after\":{},\
         \"fds_before\":{},\"fds_after\":{},\"reap_ns\":{}}}",
        spawn.as_nanos(),
        before.0,
        after.0,
        before.1,
        after.1,
        reap.as_nanos()
    )
}

/// Runs `once` `n` times, one after another: how long that took.
async fn repeat<F, Fut>(n: u64, once: &F) -> Result<Duration, BoxError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    let start = Instant::now();
    for _ in 0..n {
        once().await?;
    }
    Ok(start.elapsed())
}

async fn childproc_scale(live: u64, spawns: u64, stdio: Stdio) -> Result<String, BoxError> {
    use childproc::{Command, Signal, StdioShorthand};
    let once = || async {
        let status = Command::new("/bin/true")
            .stdio_all(StdioShorthand::Ignore)
            .spawn()?
            .wait()
            .await?;
        if !status.success() {
            return Err(BoxError::from(format!("/bin/true ended with {status:?}")));
        }
        Ok(())
    };
    repeat(20, &once).await?;
    let before = rss_and_fds()?;
    let mut children = Vec::with_capacity(usize::try_from(live)?);
    for _ in 0..live {
        let mut command = Command::new(LIVE_ARGS[0]);
        command.arg(LIVE_ARGS[1]);
        if stdio == Stdio::Ignored {
            command.stdio_all(StdioShorthand::Ignore);
        }
        children.push(command.spawn()?);
    }
    let after = rss_and_fds()?;
    let spawn = repeat(spawns, &once).await?;
    let start = Instant::now();
    for child in &children {
        child.kill(Signal::SIGKILL);
    }
    futures_util::future::try_join_all(children.iter().map(childproc::ChildProcess::wait)).await?;
    let reap = start.elapsed();
    Ok(line(live, spawns, spawn, before, after, reap))
}

async fn tokio_scale(live: u64, spawns: u64, stdio: Stdio) -> Result<String, BoxError> {
    let pipe = || {
        if stdio == Stdio::Piped {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        }
    };
    let once = || async {
        let status = tokio::process::Command::new("/bin/true")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await?;
        if !status.success() {
            return Err(BoxError::from(format!("/bin/true ended with {status}")));
        }
        Ok(())
    };
    repeat(20, &once).await?;
    let before = rss_and_fds()?;
    let mut children = Vec::with_capacity(usize::try_from(live)?);
    for _ in 0..live {
        children.push(
            tokio::process::Command::new(LIVE_ARGS[0])
                .arg(LIVE_ARGS[1])
                .stdin(pipe())
                .stdout(pipe())
                .stderr(pipe())
                .spawn()?,
        );
    }
    let after = rss_and_fds()?;
    let spawn = repeat(spawns, &once).await?;
    let start = Instant::now();
    for child in &mut children {
        child.start_kill()?;
    }
    futures_util::future::try_join_all(children.iter_mut().map(tokio::process::Child::wait))
        .await?;
    let reap = start.elapsed();
    Ok(line(live, spawns, spawn, before, after, reap))
}
