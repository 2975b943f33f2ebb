'use strict';
// The Node.js row of `cargo xtask bench`'s pipeline section (xtask/src/bench/pipeline.rs):
// `head -c BYTES /dev/zero | cat | cat | cat`, the children joined by stream.pipeline over
// their stdio (every byte copied through this process), the last stdout counted here.
// Timed here, so Node's startup is not counted. Prints one JSON line:
// {"bytes":..,"elapsed_ns":..,"cpu_us":..} (cpu_us: this process's user + system time).
//
// usage: node pipeline.js BYTES

const { spawn } = require('node:child_process');
const { pipeline } = require('node:stream/promises');

const CATS = 3;

function exited(child, name) {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${name} failed: ${code} ${signal}`)));
  });
}

async function main() {
  const bytes = Number(process.argv[2]);
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    console.error('usage: node pipeline.js BYTES');
    process.exit(2);
  }
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const head = spawn('head', ['-c', String(bytes), '/dev/zero'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const children = [exited(head, 'head')];
  const links = [];
  let upstream = head.stdout;
  for (let i = 0; i < CATS; i++) {
    const cat = spawn('cat', [], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(exited(cat, 'cat'));
    links.push(pipeline(upstream, cat.stdin));
    upstream = cat.stdout;
  }
  let got = 0;
  upstream.on('data', (chunk) => { got += chunk.length; });
  const ended = new Promise((resolve) => upstream.on('end', resolve));
  await Promise.all([...links, ...children, ended]);
  const elapsed = process.hrtime.bigint() - start;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({
    bytes: got, elapsed_ns: Number(elapsed), cpu_us: used.user + used.system,
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
