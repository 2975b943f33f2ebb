//! The exec section's rate part: exec of `/bin/true` per second at concurrency 1 and 8.

#[allow(unused_imports)]
use super::*;

/// One row of the rate table: every peer at one concurrency.
pub(super) struct RateRow {
    pub(super) concurrency: usize,
    /// Each peer's rounds, in [`Execs::ALL`] order (empty: not measured).
    pub(super) rounds: Vec<Vec<Rate>>,
}

impl RateRow {
    pub(super) fn median(&self, peer: Execs) -> Option<Rate> {
        median(&self.rounds[peer.index()])
    }
}

/// The results of the rate part.
pub(super) struct RateResults {
    pub(super) execs: u64,
    pub(super) rows: Vec<RateRow>,
}

impl RateResults {
    /// Execs per second of every peer at each concurrency, one row per peer, then the
    /// ratios, one row each.
    pub(super) fn table(&self) -> Table {
        /// The ratio rows: name, numerator, denominator.
        const RATIOS: [(&str, Execs, Execs); 6] = [
            (
                "childproc exec_file ÷ Node execFile",
                Execs::ExecFile,
                Execs::NodeExecFile,
            ),
            ("childproc exec ÷ Node exec", Execs::Exec, Execs::NodeExec),
            ("C sh ÷ Node exec", Execs::RawSh, Execs::NodeExec),
            ("childproc exec_file ÷ tokio", Execs::ExecFile, Execs::Tokio),
            (
                "childproc exec_file ÷ Bun execFile",
                Execs::ExecFile,
                Execs::BunExecFile,
            ),
            (
                "childproc exec_file ÷ Deno execFile",
                Execs::ExecFile,
                Execs::DenoExecFile,
            ),
        ];
        let rate = |r: Option<Rate>| r.map_or_else(dash, |r| format!("{:.0}", r.per_sec()));
        let mut header = vec!["Peer (execs/s), or ratio".to_string()];
        header.extend(
            self.rows
                .iter()
                .map(|r| format!("concurrency {}", r.concurrency)),
        );
        let measured = |p: Execs| self.rows.iter().any(|r| r.median(p).is_some());
        let mut rows: Vec<Vec<String>> = Execs::ALL
            .into_iter()
            .filter(|p| measured(*p))
            .map(|p| {
                let mut row = vec![p.name().to_string()];
                row.extend(self.rows.iter().map(|r| rate(r.median(p))));
                row
            })
            .collect();
        rows.extend(
            RATIOS
                .iter()
                .filter(|(_, a, b)| measured(*a) && measured(*b))
                .map(|(name, a, b)| {
                    let mut row = vec![(*name).to_string()];
                    row.extend(
                        self.rows
                            .iter()
                            .map(|r| ratio(r.median(*a), r.median(*b), Rate::per_sec)),
                    );
                    row
                }),
        );
        Table { header, rows }
    }

    /// The spread of the rounds.
    pub(super) fn spread_table(&self) -> Table {
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
    pub(super) fn render(&self) -> String {
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
             `exec('{RATE_PROGRAM}', cb)` (through `/bin/sh -c`); Bun and Deno execFile: the \
             same script under `bun` and `deno` when they are on PATH\n\
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
pub(super) fn rate(opts: &Options, env: &Env, rt: &Runtime) -> Result<RateResults, BoxError> {
    let execs = if opts.quick { EXECS / 10 } else { EXECS };
    let per_round = execs / RATE_ROUNDS;
    let rawspawn = match crate::bench::engine::compile_rawspawn(&env.scripts) {
        Ok(exe) => Some(exe),
        Err(e) => {
            println!("exec rate: no C sh column: {e}");
            None
        }
    };
    let peers: Vec<Execs> = Execs::ALL
        .into_iter()
        .filter(|p| !p.is_js() || p.runtime(env).is_some())
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
                // A fresh runtime each time: the script warms itself up, untimed.
                js if js.is_js() && warmup => Ok(Rate::default()),
                js if js.is_js() => node_rate(env, js, n, concurrency),
                Execs::RawSh if warmup => Ok(Rate::default()),
                Execs::RawSh => raw_sh_rate(rawspawn.as_deref(), n, concurrency),
                _ => Err(format!("{} has no runner", peer.name()).into()),
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
pub(super) fn check_empty(peer: &str, stdout: usize, stderr: usize) -> Result<(), BoxError> {
    if stdout == 0 && stderr == 0 {
        Ok(())
    } else {
        Err(format!("{peer}: {RATE_PROGRAM} wrote {stdout} + {stderr} bytes").into())
    }
}

/// One `childproc::exec_file` of [`RATE_PROGRAM`].
pub(super) async fn exec_file_once() -> Result<(), BoxError> {
    let out = childproc::exec_file(RATE_PROGRAM, [] as [&str; 0]).await?;
    check_empty("childproc exec_file", out.stdout.len(), out.stderr.len())
}

/// One `childproc::exec` of [`RATE_PROGRAM`], through the shell.
pub(super) async fn exec_once() -> Result<(), BoxError> {
    let out = childproc::exec(RATE_PROGRAM).await?;
    check_empty("childproc exec", out.stdout.len(), out.stderr.len())
}

/// One tokio::process `output()` of [`RATE_PROGRAM`].
pub(super) async fn tokio_once() -> Result<(), BoxError> {
    let out = tokio::process::Command::new(RATE_PROGRAM).output().await?;
    if !out.status.success() {
        return Err(format!("tokio: {RATE_PROGRAM} ended with {}", out.status).into());
    }
    check_empty("tokio output()", out.stdout.len(), out.stderr.len())
}

/// Runs `rawspawn posix_spawn sh` for `n` timed spawns of `/bin/sh -c /bin/true` (after its
/// own warm-up).
pub(super) fn raw_sh_rate(
    exe: Option<&Path>,
    n: u64,
    concurrency: usize,
) -> Result<Rate, BoxError> {
    let exe = exe.ok_or("rawspawn was not built")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["posix_spawn", "sh"])
        .args([n, WARMUP, concurrency as u64, 0].map(|v| v.to_string()));
    let text = crate::bench::engine::output(&mut cmd, "rawspawn sh")?;
    let count = json_u64(&text, "spawns", "rawspawn")?;
    Ok(Rate {
        count,
        elapsed: std::time::Duration::from_nanos(json_u64(&text, "elapsed_ns", "rawspawn")?),
    })
}

/// Runs `xtask/bench/exec.js rate FN ..` under the peer's JavaScript runtime for `n` timed
/// execs (after its own warm-up).
pub(super) fn node_rate(
    env: &Env,
    peer: Execs,
    n: u64,
    concurrency: usize,
) -> Result<Rate, BoxError> {
    let (node, function) = peer.runtime(env).ok_or("the runtime was not found")?;
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
