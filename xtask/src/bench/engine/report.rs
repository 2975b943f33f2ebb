//! The engine section's tables and text, from the samples.

#[allow(unused_imports)]
use super::*;

/// The tables of the section.
pub(super) struct Tables {
    /// Small parent, concurrency 1 and 8: rates and ratios.
    pub(super) small: Vec<(usize, Table)>,
    /// The big parent: rates and ratios.
    pub(super) big: Table,
    /// Peak RSS of each parent.
    pub(super) rss: Table,
    /// The spread of the rounds, concurrency 1.
    pub(super) spread: Table,
    /// Issue 6's targets, each with whether it holds.
    pub(super) targets: Vec<String>,
    /// childproc and posix_spawn paired in one process (small parent, concurrency 1).
    pub(super) paired: Option<Table>,
}

/// A rate cell.
pub(super) fn rate_cell(r: Option<Rate>) -> String {
    r.map_or_else(|| "—".to_string(), |r| format!("{:.0}", r.per_sec()))
}

/// `ours ÷ theirs`, or `None` if either is missing.
pub(super) fn ratio(ours: Option<Rate>, theirs: Option<Rate>) -> Option<f64> {
    let (o, t) = (ours?.per_sec(), theirs?.per_sec());
    (t > 0.0).then(|| o / t)
}

/// A ratio cell: two decimals below 10, none above.
pub(super) fn ratio_cell(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 10.0 => format!("{r:.0}×"),
        Some(r) => format!("{r:.2}×"),
        None => "—".to_string(),
    }
}

impl Tables {
    /// Builds the tables and checks the targets.
    pub(super) fn new(res: &Results) -> Tables {
        let header = |extra: &[&str]| -> Vec<String> {
            let mut h = vec!["Child".to_string()];
            h.extend(Peer::ALL.map(|p| p.name().to_string()));
            h.extend(extra.iter().map(|s| (*s).to_string()));
            h
        };
        let rates = |big: bool, c: usize, kind: Kind| -> Vec<String> {
            let mut row = vec![kind.label().to_string()];
            row.extend(Peer::ALL.map(|p| rate_cell(res.rate(big, c, p, kind))));
            row
        };
        let mut targets = Vec::new();
        let mut check = |what: String, value: Option<f64>, target: f64| {
            let verdict = match value {
                Some(v) if v >= target => "holds",
                Some(_) => "**missed**",
                None => "not measured",
            };
            targets.push(format!(
                "- {what}: {} (target ≥ {}) — {verdict}",
                ratio_cell(value),
                ratio_cell(Some(target))
            ));
        };

        let small = SMALL_CONCURRENCY
            .iter()
            .map(|&c| {
                let rows = Kind::ALL
                    .iter()
                    .map(|&kind| {
                        let ours = res.rate(false, c, Peer::Childproc, kind);
                        let vs_posix = ratio(ours, res.rate(false, c, Peer::PosixSpawn, kind));
                        let vs_tokio = ratio(ours, res.rate(false, c, Peer::Tokio, kind));
                        if c == 1 && kind == Kind::Plain {
                            super::super::record("engine.small_vs_posix_spawn", vs_posix);
                        }
                        if c == 1 {
                            check(
                                format!(
                                    "small parent, {}: childproc ÷ C posix_spawn",
                                    kind.label()
                                ),
                                vs_posix,
                                0.95,
                            );
                            check(
                                format!(
                                    "small parent, {}: childproc ÷ tokio::process",
                                    kind.label()
                                ),
                                vs_tokio,
                                1.1,
                            );
                        }
                        let mut row = rates(false, c, kind);
                        row.extend([ratio_cell(vs_posix), ratio_cell(vs_tokio)]);
                        row
                    })
                    .collect();
                let table = Table {
                    header: header(&["childproc ÷ posix_spawn", "childproc ÷ tokio"]),
                    rows,
                };
                (c, table)
            })
            .collect();

        let big_rows = Kind::ALL
            .iter()
            .map(|&kind| {
                let ours = res.rate(true, 1, Peer::Childproc, kind);
                let own = ratio(ours, res.rate(false, 1, Peer::Childproc, kind));
                let vs_tokio = ratio(ours, res.rate(true, 1, Peer::Tokio, kind));
                let vs_node = ratio(ours, res.rate(true, 1, Peer::Node, kind));
                if kind == Kind::Plain {
                    super::super::record("engine.big_parent_vs_node", vs_node);
                }
                if kind != Kind::Plain {
                    let label = kind.label();
                    check(
                        format!("{BIG_GIB} GiB parent, {label}: childproc ÷ childproc with a small parent"),
                        own,
                        0.8,
                    );
                    check(
                        format!("{BIG_GIB} GiB parent, {label}: childproc ÷ tokio::process"),
                        vs_tokio,
                        100.0,
                    );
                    check(
                        format!("{BIG_GIB} GiB parent, {label}: childproc ÷ Node.js"),
                        vs_node,
                        100.0,
                    );
                }
                let posix = res.rate(true, 1, Peer::PosixSpawn, kind);
                let posix_own = ratio(posix, res.rate(false, 1, Peer::PosixSpawn, kind));
                let vs_posix = ratio(ours, posix);
                let mut row = rates(true, 1, kind);
                row.extend([own, posix_own, vs_posix, vs_tokio, vs_node].map(ratio_cell));
                row
            })
            .collect();
        let big = Table {
            header: header(&[
                "childproc ÷ its small-parent rate",
                "posix_spawn ÷ its small-parent rate",
                "childproc ÷ posix_spawn",
                "childproc ÷ tokio",
                "childproc ÷ Node.js",
            ]),
            rows: big_rows,
        };

        let mib = |big: bool, peer: Peer| {
            res.vmhwm_kb.get(&(big, peer)).map_or_else(
                || "—".to_string(),
                // kB to MiB for display; a few MiB either way does not matter.
                |kb| format!("{:.0}", *kb as f64 / 1024.0),
            )
        };
        let rss = Table {
            header: [
                "Parent",
                "Rust worker (childproc, tokio, std)",
                "Node.js",
                "C posix_spawn",
                "C vfork",
            ]
            .map(String::from)
            .to_vec(),
            rows: [false, true]
                .iter()
                .map(|&big| {
                    vec![
                        if big {
                            format!("{BIG_GIB} GiB")
                        } else {
                            "small".to_string()
                        },
                        mib(big, Peer::Childproc),
                        mib(big, Peer::Node),
                        mib(big, Peer::PosixSpawn),
                        mib(big, Peer::Vfork),
                    ]
                })
                .collect(),
        };

        let spread_cell = |key: Key| {
            res.rounds.get(&key).and_then(|r| spread(r)).map_or_else(
                || "—".to_string(),
                |(lo, hi)| format!("{:.0}–{:.0}", lo.per_sec(), hi.per_sec()),
            )
        };
        let mut spread_rows = Vec::new();
        for big in [false, true] {
            for kind in Kind::ALL {
                let mut row = vec![format!(
                    "{}, {}",
                    if big { "4 GiB" } else { "small" },
                    kind.label()
                )];
                row.extend(Peer::ALL.map(|p| spread_cell((big, 1, p, kind))));
                spread_rows.push(row);
            }
        }
        let mut spread_header = vec!["Parent, child".to_string()];
        spread_header.extend(Peer::ALL.map(|p| p.name().to_string()));

        Tables {
            small,
            big,
            rss,
            spread: Table {
                header: spread_header,
                rows: spread_rows,
            },
            targets,
            paired: None,
        }
    }

    /// The tables for the terminal.
    /// Adds the paired table and its targets: childproc ÷ posix_spawn measured spawn by spawn
    /// in one process, the same target as the C column's but without the drift between runs.
    pub(super) fn add_paired(&mut self, pairs: &[paired::Paired]) {
        for p in pairs {
            let ratio = p.ratio();
            let verdict = if ratio >= 0.95 { "holds" } else { "**missed**" };
            self.targets.push(format!(
                "- small parent, {}: childproc ÷ C posix_spawn, paired in one process: {} \
                 (target ≥ 0.95×) — {verdict}",
                p.kind.label(),
                ratio_cell(Some(ratio))
            ));
        }
        self.paired = Some(paired::table(pairs));
    }

    pub(super) fn render_plain(&self) -> String {
        let mut out = String::new();
        for (c, t) in &self.small {
            let _ = writeln!(
                out,
                "Small parent, concurrency {c} (spawns/s):\n\n{}",
                t.render()
            );
        }
        if let Some(t) = &self.paired {
            let _ = writeln!(
                out,
                "Small parent, concurrency 1, paired with posix_spawn:\n\n{}",
                t.render()
            );
        }
        let _ = writeln!(
            out,
            "{BIG_GIB} GiB parent, concurrency 1 (spawns/s):\n\n{}",
            self.big.render()
        );
        let _ = writeln!(
            out,
            "Peak RSS of the parent (MiB):\n\n{}",
            self.rss.render()
        );
        let _ = writeln!(out, "Targets (issue 6):\n\n{}", self.targets.join("\n"));
        out
    }
}

/// The Markdown of the section.
pub(super) fn body(ctx: &Ctx<'_>, t: &Tables) -> String {
    let p = ctx.plan;
    let node = ctx.env.node.as_ref().map_or_else(
        || "not found, so its column is empty".to_string(),
        |n| n.version.clone(),
    );
    let c_note = if ctx.rawspawn.is_some() {
        ""
    } else {
        " (`cc` failed on this machine, so the C columns are empty)"
    };
    let paired = t.paired.as_ref().map_or_else(String::new, |table| {
        format!(
            "Small parent, concurrency 1, childproc and C `posix_spawn` *paired*: the columns\n\
             above come from different processes at different moments, and on this machine a\n\
             peer's speed drifts by up to 2× over seconds. So one worker process per kind and\n\
             round ({} rounds of {} pairs, {} warm-up) also alternates a childproc\n\
             spawn-and-wait with glibc's `posix_spawn` and a blocking `waitpid` of the same child\n\
             (the calls of `rawspawn.c`'s `posix_spawn` mode, made from Rust through `libc`),\n\
             swapping which goes first every time. Both create the same child: for extra fd\n\
             and IPC-like, a fresh pipe or socketpair end at fd 3 (childproc\n\
             `.fd(3, Stdio::from(end))`). Mean wall time per spawn; the ratio is\n\
             childproc's rate divided by posix_spawn's:\n\n{}\n",
            p.small_rounds,
            p.small_spawns,
            p.warmup,
            table.render()
        )
    });
    let small = t
        .small
        .iter()
        .map(|(c, table)| format!("Small parent, concurrency {c}:\n\n{}", table.render()))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "## Spawn engine: small and {BIG_GIB} GiB parents\n\n\
         Issue 6: spawn `{PROGRAM}` and wait for it to exit, from a small parent and from a\n\
         parent holding {BIG_GIB} GiB of resident memory (a {BIG_GIB} GiB buffer with one byte\n\
         written per 4 KiB page, so every page is really mapped), for four kinds of child.\n\
         Creating a child with `fork()` copies the parent's page tables, so its cost grows with\n\
         the parent's size; `vfork`-class creation shares the parent's memory until `execve` and\n\
         does not. childproc always uses `clone(CLONE_VM | CLONE_VFORK)`. tokio::process and\n\
         std::process use `posix_spawn` for a plain child but must `fork()` once a `pre_exec`\n\
         hook is needed (for a new session or an fd at 3). Node.js {node} (libuv) forks.\n\n\
         The kinds of child (stdin, stdout and stderr are `/dev/null` in all of them):\n\n\
         - plain: childproc `Command::new(\"{PROGRAM}\").stdio_all(StdioShorthand::Ignore)`;\n  \
           tokio/std `Stdio::null()` ×3; Node `{{ stdio: 'ignore' }}`\n\
         - detached: childproc `.detached(true)`; tokio/std `pre_exec(setsid)`; Node\n  \
           `{{ detached: true, stdio: 'ignore' }}`; C `POSIX_SPAWN_SETSID` / `setsid()`\n\
         - extra fd: childproc `.fd(3, Stdio::Pipe)` (a socketpair, as Node's `'pipe'` above\n  \
           fd 2); tokio/std a fresh pipe put at fd 3 by `pre_exec(dup2)`; Node\n  \
           `{{ stdio: ['ignore', 'ignore', 'ignore', 'pipe'] }}`; C a fresh pipe, `dup2` file\n  \
           action / `dup2`\n\
         - IPC-like: one end of a fresh `UnixStream::pair()` at fd 3 (childproc\n  \
           `.fd(3, Stdio::from(end))`, tokio/std `pre_exec(dup2)`); Node\n  \
           `{{ stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }}`; C a fresh socketpair\n\n\
         childproc waits with `.spawn()?.wait().await`, tokio::process with `.status().await`\n\
         (both on a multi-thread runtime), std::process with a blocking `.status()` (one OS\n\
         thread per loop); Node.js waits for `'exit'` and times itself in\n\
         `xtask/bench/engine.js`; raw C is `xtask/bench/rawspawn.c`, compiled with `cc -O2`{c_note},\n\
         `posix_spawn` or `vfork` + `execve`, then `waitpid` — the physical limit.\n\n\
         Every measurement runs in a fresh parent process per round: the Rust peers in a worker\n\
         (`cargo xtask` re-executing itself), Node.js and C in their own; a big parent\n\
         allocates its {BIG_GIB} GiB before timing starts. Small parent: {} rounds of {} timed\n\
         spawns per peer, kind and concurrency (after {} warm-up spawns). {BIG_GIB} GiB parent,\n\
         concurrency 1: {} rounds of {} spawns ({} warm-up) for peers that do not fork and of {}\n\
         ({} warm-up) for those that fork, which manage only a few per second there. The\n\
         rounds interleave the runners in a rotating order; tables show each peer's median\n\
         round, in spawns per second, and a ratio is childproc's rate divided by the other.\n\n\
         {small}\n\
         {paired}\
         {BIG_GIB} GiB parent, concurrency 1. \"its small-parent rate\" is the same peer and kind\n\
         in the small-parent table above; C `posix_spawn`'s own ratio shows what a big parent\n\
         costs on this machine even without any copying:\n\n{}\n\
         Peak RSS of the parent (VmHWM from `/proc/self/status`, MiB, largest over the\n\
         rounds):\n\n{}\n\
         The spread of the rounds at concurrency 1 (slowest–fastest spawns/s):\n\n{}\n\
         Issue 6's targets on this run:\n\n{}\n",
        p.small_rounds,
        p.small_spawns,
        p.warmup,
        p.big_rounds,
        p.big_fast_spawns,
        p.warmup,
        p.big_slow_spawns,
        p.slow_warmup,
        t.big.render(),
        t.rss.render(),
        t.spread.render(),
        t.targets.join("\n"),
    )
}
