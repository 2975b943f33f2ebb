'use strict';
// The Node.js rows of `cargo xtask bench`'s scale section (xtask/src/bench/scale.rs): start
// LIVE children (`sleep 3600`, stdio piped or ignored), time SPAWNS spawns of /bin/true (stdio
// 'ignore', one at a time, until 'exit') beside them, then SIGKILL them all and time until
// every 'exit'. Prints one JSON line with the same fields as the Rust workers.
//
// usage: node scale.js LIVE SPAWNS piped|ignore (the live children's stdio)

const { spawn } = require('node:child_process');
const fs = require('node:fs');

function once() {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/true', [], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`/bin/true ended with ${signal ?? code}`)));
  });
}

const rssAndFds = () => [process.memoryUsage().rss, fs.readdirSync('/proc/self/fd').length];

async function main() {
  const [live, spawns] = process.argv.slice(2, 4).map(Number);
  const stdio = process.argv[4] === 'ignore' ? 'ignore' : 'pipe';
  if (![live, spawns].every(Number.isSafeInteger)) {
    console.error('usage: node scale.js LIVE SPAWNS piped|ignore');
    process.exit(2);
  }
  for (let i = 0; i < 20; i++) await once();
  const before = rssAndFds();
  const children = [];
  for (let i = 0; i < live; i++) {
    const child = spawn('sleep', ['3600'], { stdio });
    child.on('error', (e) => { console.error(e); process.exit(1); });
    children.push(child);
  }
  const after = rssAndFds();
  let start = process.hrtime.bigint();
  for (let i = 0; i < spawns; i++) await once();
  const spawnNs = process.hrtime.bigint() - start;
  start = process.hrtime.bigint();
  const exited = children.map((c) => new Promise((resolve) => c.on('exit', resolve)));
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(exited);
  const reapNs = process.hrtime.bigint() - start;
  console.log(JSON.stringify({
    live, spawns, spawn_ns: Number(spawnNs), rss_before: before[0], rss_after: after[0],
    fds_before: before[1], fds_after: after[1], reap_ns: Number(reapNs),
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
