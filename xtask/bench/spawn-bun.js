'use strict';
// Bun's fast path in `cargo xtask bench`'s spawn section (xtask/src/bench/spawn.rs): the
// same loop as spawn.js with `Bun.spawn` instead of child_process: spawn /bin/true with
// stdio 'ignore' and await `exited`, N times with at most CONCURRENCY in flight, after
// WARMUP untimed spawns. Prints the same JSON line.
//
// usage: bun spawn-bun.js N CONCURRENCY WARMUP

const [n, concurrency, warmup] = process.argv.slice(2).map(Number);
if (![n, concurrency, warmup].every(Number.isInteger) || concurrency < 1) {
  console.error('usage: bun spawn-bun.js N CONCURRENCY WARMUP');
  process.exit(2);
}

async function run(total, inFlight) {
  let next = 0;
  const loop = async () => {
    while (next < total) {
      next++;
      const child = Bun.spawn(['/bin/true'], { stdio: ['ignore', 'ignore', 'ignore'] });
      const code = await child.exited;
      if (code !== 0) throw new Error(`/bin/true ended with ${code}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, loop));
}

(async () => {
  await run(warmup, concurrency);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await run(n, concurrency);
  const elapsed = process.hrtime.bigint() - start;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({
    spawns: n,
    concurrency,
    elapsed_ns: Number(elapsed),
    per_sec: Math.round(n / (Number(elapsed) / 1e9)),
    cpu_us: used.user + used.system,
  }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
