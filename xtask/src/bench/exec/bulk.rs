//! The exec section's throughput part: a child writes 1 GiB and each peer collects it.

#[allow(unused_imports)]
use super::*;

/// The results of the throughput part.
pub(super) struct Throughput {
    /// The bytes each Rust peer collected per run.
    pub(super) bytes: u64,
    /// The bytes each peer collected per run, in [`Bulk::ALL`] order (less than `bytes` only
    /// for a JavaScript runtime that fell back).
    pub(super) peer_bytes: Vec<u64>,
    /// Why each peer fell back to a smaller size, if it did.
    pub(super) fallbacks: Vec<Option<String>>,
    /// The rounds in which it ran.
    pub(super) rounds: usize,
    /// Each peer's runs, in [`Bulk::ALL`] order (empty: not measured).
    pub(super) runs: Vec<Vec<Rate>>,
}

impl Throughput {
    pub(super) fn median(&self, peer: Bulk) -> Option<Rate> {
        median(&self.runs[peer.index()])
    }

    /// The table: one row per peer, with its MiB/s, its spread and childproc exec ÷ it.
    pub(super) fn table(&self) -> Table {
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
                    let got = self.peer_bytes[peer.index()];
                    let name = if got != self.bytes {
                        format!("{} ({})", peer.name(), size(got))
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

    /// The Markdown of the loaded run: its table and the ratios that matter, the method
    /// being the quiet run's.
    pub(super) fn render_loaded(&self) -> String {
        let vs = |ours: Bulk, theirs: Bulk| ratio(self.median(ours), self.median(theirs), mib);
        format!(
            "The same, with one more process spinning on a CPU beside the bench (the stress \
             run's hog, at the bench's own priority), as on a busy machine:\n\n{}\n\
             Loaded, childproc exec ÷ tokio output(): **{}** (multi-thread), {} \
             (current-thread); ÷ raw pipe into a preallocated Vec: **{}**, {} \
             (current-thread). The reactor's floor ÷ the blocking read: {}; childproc exec ÷ \
             that floor: **{}**, {} (current-thread). exec_file_sync ÷ raw pipe into a \
             preallocated Vec: **{}**.\n",
            self.table().render(),
            vs(Bulk::Exec, Bulk::Tokio),
            vs(Bulk::ExecCurrent, Bulk::TokioCurrent),
            vs(Bulk::Exec, Bulk::RawVec),
            vs(Bulk::ExecCurrent, Bulk::RawVec),
            vs(Bulk::RawEpoll, Bulk::RawVec),
            vs(Bulk::Exec, Bulk::RawEpoll),
            vs(Bulk::ExecCurrent, Bulk::RawEpoll),
            vs(Bulk::ExecSync, Bulk::RawVec),
        )
    }

    /// The Markdown of the throughput part.
    pub(super) fn render(&self) -> String {
        let bytes = self.bytes;
        let vs = |ours: Bulk, theirs: Bulk| ratio(self.median(ours), self.median(theirs), mib);
        let node_note: String = Bulk::ALL
            .iter()
            .filter_map(|p| {
                let why = self.fallbacks[p.index()].as_ref()?;
                Some(format!(
                    "\n{} could not collect {}: {why}; its row is measured at {}.\n",
                    p.name(),
                    size(bytes),
                    size(self.peer_bytes[p.index()])
                ))
            })
            .collect();
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
             - childproc exec_file_sync: the same call's blocking twin, `exec_file_sync(..)\
             .max_buffer(2 << 30).encoding(Encoding::Buffer).run()`, on the bench's own thread\n\
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
             - raw pipe → preallocated Vec, epoll: the same, the pipe non-blocking: `read` until\n  \
               it would block, then `epoll_wait` (level-triggered), on one thread — what any\n  \
               reactor's collector does at the least\n\
             - raw pipe → reused 1 MiB buffer: the same loop into one 1 MiB buffer, counting\n  \
               bytes — the pipe alone, no memory to fill\n\
             - Node.js: `execFile('{BULK_PROGRAM}', ['-c', '{}', '/dev/zero'], \
             {{ encoding: 'buffer', maxBuffer: 2 ** 31 }})`\n\
             - Bun, Deno: the same script under `bun` and `deno`, when they are on PATH\n\
             {node_note}\n{}\n\
             childproc exec ÷ raw pipe into a preallocated Vec (target ≥ 0.95×): **{}** on the\n\
             multi-thread runtime, **{}** on a current-thread runtime. childproc exec ÷ tokio\n\
             output() (target ≥ 1.0×): {} (multi-thread), {} (current-thread); ÷ Node.js\n\
             execFile: {}. The reactor's floor (the epoll row) ÷ the blocking read: {}; childproc\n\
             exec ÷ that floor: **{}** (multi-thread), {} (current-thread). childproc \
             exec_file_sync ÷ raw pipe into a preallocated Vec: **{}**.\n\n\
             The current-thread rows run the same code with the task, the I/O driver and the\n\
             reads on one thread; on the multi-thread runtime the workers share this machine's\n\
             {} cores with the writing child, and every pipe-full is a wake-up through the I/O\n\
             driver. Multi-thread ÷ current-thread: {} for childproc exec, {} for tokio output().\n",
            size(bytes),
            size(BULK_WARMUP_BYTES.min(bytes)),
            self.rounds,
            self.peer_bytes[Bulk::Node.index()],
            self.table().render(),
            vs(Bulk::Exec, Bulk::RawVec),
            vs(Bulk::ExecCurrent, Bulk::RawVec),
            vs(Bulk::Exec, Bulk::Tokio),
            vs(Bulk::ExecCurrent, Bulk::TokioCurrent),
            vs(Bulk::Exec, Bulk::Node),
            vs(Bulk::RawEpoll, Bulk::RawVec),
            vs(Bulk::Exec, Bulk::RawEpoll),
            vs(Bulk::ExecCurrent, Bulk::RawEpoll),
            vs(Bulk::ExecSync, Bulk::RawVec),
            std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
            vs(Bulk::Exec, Bulk::ExecCurrent),
            vs(Bulk::Tokio, Bulk::TokioCurrent),
        )
    }
}

/// The runtimes the async throughput peers run on.
pub(super) struct Runtimes {
    /// The multi-thread runtime every other section uses too.
    pub(super) multi: Runtime,
    /// A current-thread runtime: the task, the I/O driver and the reads on one thread.
    pub(super) current: Runtime,
}

/// Runs the throughput part; with `loaded`, while one process spins on a CPU beside it (the
/// stress run's hog), as on a busy machine.
pub(super) fn throughput(
    opts: &Options,
    env: &Env,
    rts: &Runtimes,
    loaded: bool,
) -> Result<Throughput, BoxError> {
    let _hog = if loaded {
        Some(crate::stress::Hogs::start(1)?)
    } else {
        None
    };
    let bytes = if opts.quick {
        QUICK_BULK_BYTES
    } else {
        BULK_BYTES
    };
    // The gate's pass takes more (short) rounds: three swing by ±25% on two cores.
    let rounds = if opts.check {
        9
    } else if opts.quick {
        3
    } else {
        BULK_ROUNDS
    };
    let peers: Vec<Bulk> = Bulk::ALL
        .into_iter()
        .filter(|p| !p.is_js() || p.runtime(env).is_some())
        .collect();
    println!(
        "exec throughput{}: `{BULK_PROGRAM} -c {bytes} /dev/zero`, {rounds} rounds, one run \
         per peer per round\n",
        if loaded { " with a CPU hog" } else { "" }
    );
    let warmup = BULK_WARMUP_BYTES.min(bytes);
    for &peer in &peers {
        if !peer.is_js() {
            bulk_once(peer, warmup, rts)?;
        }
    }
    let mut peer_bytes = vec![bytes; Bulk::ALL.len()];
    let mut fallbacks = vec![None; Bulk::ALL.len()];
    let mut runs = vec![Vec::new(); Bulk::ALL.len()];
    for round in 0..rounds {
        for peer in rotation(&peers, round) {
            let rate = if let Some(runtime) = peer.runtime(env) {
                let i = peer.index();
                node_bulk(env, runtime, &mut peer_bytes[i], &mut fallbacks[i])?
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
        peer_bytes,
        fallbacks,
        rounds,
        runs,
    };
    println!("\n{}", result.table().render());
    let vs = |ours: Bulk, theirs: Bulk| {
        let (o, t) = (result.median(ours)?, result.median(theirs)?);
        (t.per_sec() > 0.0).then(|| o.per_sec() / t.per_sec())
    };
    let load = if loaded { "_loaded" } else { "" };
    super::super::record(
        format!("exec.exec_file_vs_tokio{load}"),
        vs(Bulk::Exec, Bulk::Tokio),
    );
    super::super::record(
        format!("exec.exec_file_vs_raw_vec{load}"),
        vs(Bulk::Exec, Bulk::RawVec),
    );
    super::super::record(
        format!("exec.exec_file_sync_vs_raw_vec{load}"),
        vs(Bulk::ExecSync, Bulk::RawVec),
    );
    super::super::record(
        format!("exec.exec_file_vs_epoll_floor{load}"),
        vs(Bulk::Exec, Bulk::RawEpoll),
    );
    Ok(result)
}

/// One timed run of `peer` collecting `bytes`; checks that it got all of them.
pub(super) fn bulk_once(peer: Bulk, bytes: u64, rts: &Runtimes) -> Result<Rate, BoxError> {
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
        Bulk::ExecSync => {
            let out = childproc::exec_file_sync(BULK_PROGRAM, &args)
                .max_buffer(MAX_BUFFER)
                .encoding(childproc::Encoding::Buffer)
                .run()?
                .into_bytes();
            (out.len(), Some(out))
        }
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
        Bulk::RawEpoll => raw_pipe(&args, |stdout| {
            let mut buf = vec![0u8; expected];
            let filled = epoll_fill(stdout, &mut buf)?;
            buf.truncate(filled);
            Ok((filled, Some(buf)))
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
        Bulk::Node | Bulk::Bun | Bulk::Deno => {
            return Err("the JavaScript runtimes run through node_bulk".into())
        }
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

/// [`Bulk::RawEpoll`]: fills `buf` from the non-blocking `stdout`, waiting in `epoll_wait`
/// whenever a read would block; the bytes read (one more than `buf` holds if the child wrote
/// too much).
fn epoll_fill(stdout: &mut std::process::ChildStdout, buf: &mut [u8]) -> std::io::Result<usize> {
    use super::super::epoll::{set_nonblocking, Epoll};
    set_nonblocking(stdout)?;
    let epoll = Epoll::new()?;
    epoll.add(stdout, 0)?;
    let mut filled = 0;
    loop {
        let room = if filled == buf.len() {
            &mut [0u8; 1][..] // full: the next read must be EOF
        } else {
            &mut buf[filled..]
        };
        match stdout.read(room) {
            Ok(0) => return Ok(filled),
            Ok(n) if filled == buf.len() => return Ok(filled + n),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                epoll.wait()?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// What an async throughput peer returns: the bytes it collected and the buffer holding them.
pub(super) type Collected = (usize, Option<Vec<u8>>);

/// Runs `fut` as a task on `rt` (as an application's code runs, and as the rate part and
/// the spawn section run theirs) and waits for it.
pub(super) fn in_task<F>(rt: &Runtime, fut: F) -> Result<Collected, BoxError>
where
    F: std::future::Future<Output = Result<Collected, BoxError>> + Send + 'static,
{
    rt.block_on(async { tokio::spawn(fut).await? })
}

/// [`Bulk::Exec`]: `childproc::exec_file` with the Buffer encoding.
pub(super) async fn exec_collect(args: [String; 3]) -> Result<Collected, BoxError> {
    let out = childproc::exec_file(BULK_PROGRAM, &args)
        .max_buffer(MAX_BUFFER)
        .encoding(childproc::Encoding::Buffer)
        .await?;
    Ok((out.stdout.len(), Some(out.stdout.into_bytes())))
}

/// [`Bulk::Pipe`]: `childproc::Command::spawn` and tokio's `read_to_end` of its stdout.
pub(super) async fn pipe_collect(args: [String; 3]) -> Result<Collected, BoxError> {
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
pub(super) async fn tokio_collect(args: [String; 3]) -> Result<Collected, BoxError> {
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
pub(super) fn raw_pipe(
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

/// One timed run of `exec.js` under `node` (or Bun, or Deno); if it fails on `bytes`, halves
/// it (down to [`NODE_MIN_BYTES`]), records why in `fallback` and keeps the smaller size for
/// the later rounds.
pub(super) fn node_bulk(
    env: &Env,
    node: &super::super::Node,
    bytes: &mut u64,
    fallback: &mut Option<String>,
) -> Result<Rate, BoxError> {
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
                    "  {} failed on {}: {why}; trying {}",
                    node.version,
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
