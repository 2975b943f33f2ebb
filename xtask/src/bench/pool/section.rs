//! The pool section's table and the lines above it: per tiny setup what the floors allow
//! against the Node.js dispatcher and where the childproc pool is, then every peer's row.

use super::super::doc::{Section, Table};
use super::super::median_f64;
use super::{Kind, Peer, Placement, Row, Run, CLIENTS_PER_WORKER, FIB};

pub(super) fn section(rows: &[Row], quick: bool) -> Section {
    let mut table = Table {
        header: [
            "peer",
            "task",
            "workers",
            "in flight per worker",
            "tasks/s",
            "p50",
            "p99",
            "childproc (Rust) ÷ this",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    let ms = |d: f64| format!("{:.3} ms", d * 1e3);
    // Per tiny setup: what the floor allows against Node's dispatcher, and where we are.
    let mut ceilings = Vec::new();
    for (setup, peers, runs) in rows {
        let med =
            |i: usize, f: fn(&Run) -> f64| median_f64(&runs[i].iter().map(f).collect::<Vec<_>>());
        let ours = med(0, |r| r.per_sec);
        let rate_of = |peer: Peer| {
            let i = peers.iter().position(|p| *p == peer)?;
            Some(med(i, |r| r.per_sec))
        };
        if let (Some(floor), Some(node)) = (rate_of(Peer::RawFloor), rate_of(Peer::NodeDispatcher))
        {
            let tokio = rate_of(Peer::TokioFloor).map_or(String::new(), |t| {
                format!(
                    "; the tokio floor is {:.2}× Node.js, and the pool {:.2}× it",
                    t / node,
                    ours / t
                )
            });
            let hand = rate_of(Peer::Channels).map_or(String::new(), |c| {
                format!(
                    "; the same workers driven by hand on their channels (no pool) are {:.2}× \
                     Node.js, and the pool {:.2}× them",
                    c / node,
                    ours / c
                )
            });
            let placed = match setup.placement {
                Placement::Kernel => String::new(),
                p => format!(", workers {}", p.label()),
            };
            ceilings.push(format!(
                "- tiny ×{} with {} in flight{placed}: the floor is {:.2}× the Node.js dispatcher; the \
                 childproc pool is {:.2}× Node.js and {:.2}× the floor{tokio}{hand}",
                setup.workers,
                setup.depth,
                floor / node,
                ours / node,
                ours / floor
            ));
        }
        for (i, peer) in peers.iter().enumerate() {
            let rate = med(i, |r| r.per_sec);
            let gauge = match peer {
                Peer::NodeDispatcher => "node",
                Peer::Python => "python",
                _ => "",
            };
            if setup.kind == Kind::Tiny && !gauge.is_empty() && setup.placement == Placement::Kernel
            {
                let depth = if setup.depth > 1 { "_pipelined" } else { "" };
                super::super::record(
                    format!("pool.tiny{}{depth}_vs_{gauge}", setup.workers),
                    Some(ours / rate),
                );
            }
            table.rows.push(vec![
                peer.label().into(),
                setup.kind.name().into(),
                match setup.placement {
                    Placement::Kernel => setup.workers.to_string(),
                    p => format!("{}, {}", setup.workers, p.label()),
                },
                if *peer == Peer::Python {
                    "(one queue)".into()
                } else {
                    setup.depth.to_string()
                },
                format!("{rate:.0}"),
                ms(med(i, |r| r.p50.as_secs_f64())),
                ms(med(i, |r| r.p99.as_secs_f64())),
                if i == 0 {
                    "–".into()
                } else {
                    format!("{:.2}×", ours / rate)
                },
            ]);
        }
    }
    let tiny = Kind::Tiny.tasks(quick);
    let cpu = Kind::Cpu.tasks(quick);
    let body = format!(
        "## Pools: tasks through worker processes\n\n\
         tiny: echo `{{i, s: \"hello\"}}` ({tiny} tasks a run); cpu: a naive `fib({FIB})` in \
         the worker's language ({cpu} tasks). A closed loop of {CLIENTS_PER_WORKER} clients per \
         worker, each sending its next task when the last is answered. In flight per worker: \
         1 is a worker that gets its next task only after answering (the parent's round trip \
         between tasks); 4 is pipelined: the next tasks wait in the worker's socket while it \
         answers one (childproc `Pool::concurrency(4)`, the JavaScript dispatchers sending up \
         to 4; Bun and Deno run the Node.js dispatcher's script unchanged, when on PATH; \
         Python's `multiprocessing.Pool` always works so, from one shared queue). \
         \"childproc channels, no pool\" drives the same Rust workers with one loop per worker \
         keeping the row's tasks in flight on its channel, the next sent as each answer comes \
         (no queue, no callers to wake: the pool's protocol and codec with nothing of the \
         pool). Latency is \
         from a client's send to its answer. Median of the rounds; each round runs every peer \
         once, in a rotating order. Goals (tiny tasks): the childproc pool at least 3× the \
         Node.js dispatcher and at least Python's throughput, with p99 within 3× p50.\n\n\
         \"floor\" is the dispatcher with nothing in it but the OS (tiny tasks only): one thread \
         blocking in `epoll_wait` over socketpairs to `xtask bench-worker ipc-raw` children, \
         which block in `read` for 16 bytes and write them back; each task is those 16 bytes, \
         no framing, no encoding, no runtime; what a turn frees is refilled with one `write` \
         per worker. No pool can beat it on this machine, so it bounds every ratio to \
         Node.js. \"tokio floor\" drives the same children from the multi-thread runtime as \
         a pool's callers are: each client a task awaiting a oneshot, one task per worker \
         writing what the queue holds and settling answers (`pool/tokio_floor.rs`); no \
         framing, no encoding, no pool.\n\n\
         On two CPUs the pipelined ×2 row is decided by where the kernel puts the two \
         workers, which it chooses anew each run: so it is run a second and a third time with \
         the workers of the floors, the pool and the Node.js dispatcher pinned \
         (`taskset -c`, the same for every peer, the parent left free), both to one CPU and \
         one per CPU (`pool/placement.rs`):\n\n{}\n\n{}",
        ceilings.join("\n"),
        table.render()
    );
    Section { name: "pool", body }
}
