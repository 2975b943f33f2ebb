'use strict';
// The Node.js parts of `cargo xtask bench`'s pool section (xtask/src/bench/pool.rs).
//
// usage:
//   node pool.js worker
//     A pool worker speaking childproc's pool protocol ({id, task} → {id, result}): the
//     workers of the "childproc Pool, Node.js workers" rows and of the dispatcher below.
//     Tasks: {echo: v} → v; {fib: n} → a naive fib(n).
//   node pool.js dispatch tiny|cpu WORKERS TASKS CLIENTS FIB DEPTH [CPUS]
//     A Node.js parent forking WORKERS of those workers and dispatching TASKS tasks to them,
//     at most DEPTH in flight per worker, from a closed loop of CLIENTS clients (each sends
//     its next task when the last is answered). Timed here, after a warm-up, so startup is not
//     counted. Prints {"tasks":..,"elapsed_ns":..,"p50_ns":..,"p99_ns":..}.
//     CPUS (e.g. `0,1`): worker i runs pinned to the i-th CPU of the list, started through
//     `taskset -c` (the channel's fd and NODE_CHANNEL_FD pass through its exec).

const { fork } = require('node:child_process');

function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

function handle(task) {
  if (task && task.echo !== undefined) return task.echo;
  if (task && typeof task.fib === 'number') return fib(task.fib);
  throw new Error('unknown task ' + JSON.stringify(task));
}

function worker() {
  process.on('message', ({ id, task }) => {
    try { process.send({ id, result: handle(task) }); }
    catch (e) { process.send({ id, error: String(e && e.message || e) }); }
  });
}

async function dispatch([kind, workers, tasks, clients, fibN, depth, cpus]) {
  const pinned = cpus ? cpus.split(',') : null;
  [workers, tasks, clients, fibN, depth] = [workers, tasks, clients, fibN, depth].map(Number);
  const taskOf = (i) => (kind === 'tiny' ? { echo: { i, s: 'hello' } } : { fib: fibN });
  const expect = kind === 'tiny' ? null : fib(fibN);
  const pending = new Map();
  const queue = [];
  const idle = [];
  let nextId = 0;
  // `idle` holds a worker once per free place (of DEPTH): a worker with two places free is
  // in it twice.
  const send = (w) => {
    const job = queue.shift();
    w.send({ id: job.id, task: job.task });
  };
  const procs = [];
  for (let i = 0; i < workers; i++) {
    const options = { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] };
    if (pinned) {
      options.execPath = 'taskset';
      options.execArgv = ['-c', pinned[i % pinned.length], process.execPath];
    }
    const w = fork(__filename, ['worker'], options);
    w.on('message', ({ id, result, error }) => {
      const done = pending.get(id);
      pending.delete(id);
      if (queue.length > 0) send(w); else idle.push(w);
      if (error !== undefined) done.reject(new Error(error)); else done.resolve(result);
    });
    for (let d = 0; d < depth; d++) idle.push(w);
    procs.push(w);
  }
  const run = (task) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    queue.push({ id, task });
    if (idle.length > 0) send(idle.pop());
  });
  const check = (answer) => {
    if (expect === null ? answer.s !== 'hello' : answer !== expect) {
      throw new Error('a wrong answer: ' + JSON.stringify(answer));
    }
  };
  const loop = async (count, latencies) => {
    for (let i = 0; i < count; i++) {
      const t = process.hrtime.bigint();
      check(await run(taskOf(i)));
      if (latencies) latencies.push(Number(process.hrtime.bigint() - t));
    }
  };
  const clientsRun = (total, latencies) => Promise.all(Array.from({ length: clients },
    (_, c) => loop(Math.floor(total / clients) + (c < total % clients ? 1 : 0), latencies)));
  await clientsRun(clients * 5, null);
  const latencies = [];
  const start = process.hrtime.bigint();
  await clientsRun(tasks, latencies);
  const elapsed = Number(process.hrtime.bigint() - start);
  for (const w of procs) w.disconnect();
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.round((latencies.length - 1) * q)];
  console.log(JSON.stringify({
    tasks: latencies.length, elapsed_ns: elapsed, p50_ns: at(0.5), p99_ns: at(0.99),
  }));
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'worker') worker();
else if (mode === 'dispatch' && (rest.length === 6 || rest.length === 7)) {
  dispatch(rest).catch((e) => { console.error(e); process.exit(1); });
} else {
  console.error('usage: node pool.js worker | dispatch tiny|cpu WORKERS TASKS CLIENTS FIB DEPTH [CPUS]');
  process.exit(2);
}
