//! `cargo xtask bench`: childproc side by side with tokio::process, std::process and
//! Node.js (and C, Bun or Deno where a section has them), all measured in one run on one
//! machine.
//!
//! The layout: [`harness`] is how every section measures (a [`Rate`], medians and spreads of
//! interleaved rounds, the rotating order of peers, timing a batch or async operations from
//! several tasks, the numbers a Node.js script prints); `doc.rs` writes the tables and the
//! sections of docs/benchmarks.md; `env.rs` finds Node.js and describes the machine. Each
//! section is only what it measures: `spawn/`, `exec/`, `engine/`, `ipc/`, `scale.rs`,
//! `pipeline.rs`, `pool.rs`, `clone.rs`, `typed.rs`, `build.rs`; `cpu.rs` is the parent's CPU clock.
//!
//! Each section returns a [`doc::Section`]; the run prints each table and rewrites only those
//! sections of docs/benchmarks.md, between `<!-- bench:NAME -->` markers, keeping the rest of
//! the file. To add a section: a module with a `run` returning a `Section` (measuring with
//! the harness), its name in [`SECTIONS`], and a line in the match in [`run`]. Sections whose
//! measurements need a process of their own run this binary as `xtask bench-worker ROLE ..`
//! (see [`worker`]).

mod build;
mod clone;
mod cpu;
mod doc;
mod engine;
mod env;
mod epoll;
mod exec;
mod gate;
mod harness;
mod ipc;
mod pipeline;
mod pool;
mod scale;
mod spawn;
mod typed;

pub(crate) use env::{today_utc, Env, Node};
pub(crate) use gate::record;
pub(crate) use harness::{
    batch, json_u64, median, median_duration, median_f64, rotation, spread, time_async, Rate,
};

use crate::{workspace_root, BoxError};

/// The sections, in the order a full run measures them.
pub(crate) const SECTIONS: [&str; 10] = [
    "spawn", "exec", "engine", "scale", "ipc", "pipeline", "pool", "clone", "typed", "build",
];

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// `--quick`: a tenth of the iterations (and smaller payloads), for a smoke run.
    pub(crate) quick: bool,
    /// `--check`: the ratio gate: a quick pass of the sections with gated rows, each ratio
    /// against its floor in `xtask/bench/floors.txt`, docs/benchmarks.md left alone.
    pub(crate) check: bool,
    /// The sections named on the command line, in [`SECTIONS`] order; empty means all.
    pub(crate) only: Vec<&'static str>,
}

impl Options {
    /// Parses the arguments after `bench`: `--quick` and any section names.
    pub(crate) fn parse(args: &[String]) -> Result<Options, BoxError> {
        let mut opts = Options {
            quick: false,
            check: false,
            only: Vec::new(),
        };
        for arg in args {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--check" => {
                    opts.check = true;
                    opts.quick = true;
                }
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
/// With `--check`, runs the sections that have gated rows (or the named ones), writes
/// nothing, and fails naming every ratio below its floor.
pub(crate) fn run(opts: &Options) -> Result<(), BoxError> {
    let env = Env::probe()?;
    println!("{}", env.machine.render());
    if env.node.is_none() {
        println!("note: `node` was not found on PATH; the Node.js column is skipped\n");
    }

    let path = workspace_root().join("docs").join("benchmarks.md");
    let mut sections = opts.sections();
    let mut floors = Vec::new();
    if opts.check {
        floors = gate::floors()?;
        floors.retain(|f| opts.only.is_empty() || opts.only.contains(&f.section()));
        sections.retain(|s| floors.iter().any(|f| f.section() == *s));
    } else {
        doc::update_file(&path, &[env.machine.section()])?;
    }
    for name in sections {
        let section = run_section(name, opts, &env)?;
        if !opts.check {
            doc::update_file(&path, &[section])?;
            println!("wrote the {name} section of {}\n", path.display());
        }
    }
    if opts.check {
        // A second pass of the sections with a row below its floor (see `gate.rs`).
        for name in gate::to_measure_again(&floors) {
            println!("bench --check: a row of {name} is below its floor: measuring {name} again\n");
            run_section(name, opts, &env)?;
        }
        gate::judge(&floors)?;
    }
    Ok(())
}

/// Runs one section.
fn run_section(name: &str, opts: &Options, env: &Env) -> Result<doc::Section, BoxError> {
    Ok(match name {
        "spawn" => spawn::run(opts, env)?,
        "exec" => exec::run(opts, env)?,
        "engine" => engine::run(opts, env)?,
        "ipc" => ipc::run(opts, env)?,
        "scale" => scale::run(opts, env)?,
        "pipeline" => pipeline::run(opts, env)?,
        "pool" => pool::run(opts, env)?,
        "clone" => clone::run(opts.quick, env)?,
        "typed" => typed::run(opts.quick)?,
        "build" => build::run(opts.quick)?,
        other => return Err(format!("bench: no section `{other}`").into()),
    })
}

/// `xtask bench-worker ROLE ..`: the measurements a section runs in a process of its own
/// (`engine`: the Rust spawners; `spawn-loop`: one peer's spawn loop, to profile under `perf`
/// or `strace`; `spawn-paired`: the spawn section's paired run alone; `spawn-phases`: where
/// the time of a spawn-and-wait goes; `ipc-child`, `ipc-raw`, `ipc-tokio`: the IPC section's
/// children; `pool-worker`: the pool section's Rust worker; `pool-run`: its
/// childproc row alone, to profile; `scale`: one peer's run of the scale section).
pub(crate) fn worker(args: &[String]) -> Result<(), BoxError> {
    match args.first().map(String::as_str) {
        Some("engine") => engine::worker(args),
        Some("engine-paired") => engine::paired::worker(args),
        Some("spawn-loop") => spawn::loop_worker(args),
        Some("spawn-paired") => spawn::paired_worker(args),
        Some("spawn-phases") => spawn::phases_worker(args),
        Some("ipc-child" | "ipc-raw" | "ipc-tokio" | "ipc-memory") => ipc::worker(args),
        Some("pool-worker") => pool::worker(),
        Some("pool-run") => pool::run_alone(args),
        Some("scale") => scale::worker(args),
        _ => Err(
            "usage: xtask bench-worker engine|engine-paired|spawn-loop|spawn-paired|spawn-phases|ipc-child|ipc-raw|ipc-tokio|pool-worker|pool-run|scale ..".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let all = Options::parse(&[]).unwrap();
        assert!(!all.quick);
        assert_eq!(all.sections(), SECTIONS);
        assert!(Options::parse(&["--quick".into()]).unwrap().quick);
        assert!(Options::parse(&["--nope".into()]).is_err());
        let check = Options::parse(&["--check".into()]).unwrap();
        assert!(check.check && check.quick);
        let some = Options::parse(&["exec".into(), "--quick".into(), "spawn".into()]).unwrap();
        assert!(some.quick);
        assert_eq!(some.sections(), ["spawn", "exec"]);
        assert_eq!(
            Options::parse(&["exec".into()]).unwrap().sections(),
            ["exec"]
        );
    }
}
