'use strict';
// The Node.js column of `cargo xtask bench`'s spawn section (xtask/src/bench/spawn.rs):
// spawn /bin/true with stdio 'ignore' and wait for 'exit', N times with at most
// CONCURRENCY children in flight, after WARMUP untimed spawns. Timed here, so Node's own
// startup is not counted. Prints one JSON line (cpu_us: this process's user + system time
// over the timed spawns).
//
// usage: node spawn.js N CONCURRENCY WARMUP

const { spawn } = require('node:child_process');

const [n, concurrency, warmup] = process.argv.slice(2).map(Number);
if (![n, concurrency, warmup].every(Number.isInteger) || concurrency < 1) {
  console.error('usage: node spawn.js N CONCURRENCY WARMUP');
  process.exit(2);
}

function run(total, inFlight) {
  return new Promise((resolve, reject) => {
    let started = 0;
    let finished = 0;
    if (total === 0) return resolve();
    const next = () => {
      started++;
      const child = spawn('/bin/true', [], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code, signal) => {
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

(async () => {
  await run(warmup, concurrency);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await run(n, concurrency);
  const elapsed = process.hrtime.bigint() - start;
  const used = process.cpuUsage(cpu);
  const perSec = n / (Number(elapsed) / 1e9);
  console.log(JSON.stringify({
    spawns: n,
    concurrency,
    elapsed_ns: Number(elapsed),
    per_sec: Math.round(perSec),
    cpu_us: used.user + used.system,
  }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
