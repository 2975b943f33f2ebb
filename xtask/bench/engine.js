'use strict';
// The Node.js column of `cargo xtask bench`'s engine section (xtask/src/bench/engine.rs):
// spawn /bin/true and wait for 'exit', N times per kind with at most CONCURRENCY children
// in flight, after WARMUP untimed spawns, optionally from a parent holding BIG_GIB GiB of
// resident memory. Timed here, so Node's startup and the allocation are not counted.
//
// usage: node engine.js KINDS N WARMUP CONCURRENCY BIG_GIB
//
//   KINDS  comma-separated, each one of:
//            plain     { stdio: 'ignore' }
//            detached  { detached: true, stdio: 'ignore' }
//            fd        { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] }
//            ipc       { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }
//
// Prints one JSON line per kind:
//   {"kind":"plain","spawns":N,"elapsed_ns":T,"vmhwm_kb":K}

const { spawn } = require('node:child_process');
const fs = require('node:fs');

const OPTIONS = {
  plain: { stdio: 'ignore' },
  detached: { detached: true, stdio: 'ignore' },
  fd: { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] },
  ipc: { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] },
};

const args = process.argv.slice(2);
const kinds = (args[0] ?? '').split(',');
const [n, warmup, concurrency, bigGib] = args.slice(1).map(Number);
if (
  args.length !== 5 ||
  !kinds.every((k) => k in OPTIONS) ||
  ![n, warmup, concurrency, bigGib].every(Number.isInteger) ||
  concurrency < 1
) {
  console.error('usage: node engine.js KINDS N WARMUP CONCURRENCY BIG_GIB');
  process.exit(2);
}

function run(kind, total, inFlight) {
  return new Promise((resolve, reject) => {
    let started = 0;
    let finished = 0;
    if (total === 0) return resolve();
    const next = () => {
      started++;
      const child = spawn('/bin/true', [], OPTIONS[kind]);
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        // Release the parent's end of fd 3, as the Rust peers do once the child is reaped.
        if (kind === 'fd') child.stdio[3].destroy();
        if (kind === 'ipc' && child.connected) child.disconnect();
        if (code !== 0) {
          reject(new Error(`/bin/true ended with ${signal ?? code}`));
          return;
        }
        finished++;
        if (finished === total) resolve();
        else if (started < total) next();
      });
    };
    for (let i = 0; i < Math.min(inFlight, total); i++) next();
  });
}

function vmhwmKb() {
  const m = /VmHWM:\s*(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : -1;
}

// Outside V8's heap, so no heap flag is needed; fill() writes every page.
const keep = [];
for (let i = 0; i < bigGib; i++) keep.push(Buffer.allocUnsafe(1 << 30).fill(1));

(async () => {
  for (const kind of kinds) {
    await run(kind, warmup, concurrency);
    const start = process.hrtime.bigint();
    await run(kind, n, concurrency);
    const elapsed = process.hrtime.bigint() - start;
    console.log(JSON.stringify({
      kind,
      spawns: n,
      elapsed_ns: Number(elapsed),
      vmhwm_kb: vmhwmKb(),
    }));
  }
  // Keep the memory alive until the end.
  if (keep.length > 0 && keep[0][0] !== 1) process.exit(3);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
