'use strict';
// The Node.js columns of `cargo xtask bench`'s exec section (xtask/src/bench/exec.rs).
// Timed here, so Node's own startup is not counted. Prints one JSON line.
//
// usage:
//   node exec.js bytes BYTES WARMUP_BYTES
//     execFile('head', ['-c', BYTES, '/dev/zero'], { encoding: 'buffer', maxBuffer: 2 ** 31 })
//     once, after one untimed run of WARMUP_BYTES; checks that stdout holds BYTES bytes.
//   node exec.js rate execFile|exec N CONCURRENCY WARMUP
//     execFile('/bin/true') or exec('/bin/true') (through /bin/sh), N times with at most
//     CONCURRENCY in flight, after WARMUP untimed runs.

const { exec, execFile } = require('node:child_process');

function usage() {
  console.error('usage: node exec.js bytes BYTES WARMUP_BYTES\n' +
    '       node exec.js rate execFile|exec N CONCURRENCY WARMUP');
  process.exit(2);
}

function headZero(bytes) {
  return new Promise((resolve, reject) => {
    execFile('head', ['-c', String(bytes), '/dev/zero'],
      { encoding: 'buffer', maxBuffer: 2 ** 31 },
      (err, stdout) => {
        if (err) return reject(err);
        if (stdout.length !== bytes) {
          return reject(new Error(`stdout held ${stdout.length} bytes, expected ${bytes}`));
        }
        resolve();
      });
  });
}

async function bytesMode(args) {
  const [bytes, warmup] = args.map(Number);
  if (![bytes, warmup].every(Number.isSafeInteger) || bytes < 1) usage();
  if (warmup > 0) await headZero(warmup);
  const start = process.hrtime.bigint();
  await headZero(bytes);
  const elapsed = process.hrtime.bigint() - start;
  console.log(JSON.stringify({ bytes, elapsed_ns: Number(elapsed) }));
}

function trueOnce(fn) {
  return new Promise((resolve, reject) => {
    const done = (err) => (err ? reject(err) : resolve());
    if (fn === 'exec') exec('/bin/true', done);
    else execFile('/bin/true', done);
  });
}

async function run(fn, total, inFlight) {
  let next = 0;
  const loop = async () => {
    while (next < total) {
      next++;
      await trueOnce(fn);
    }
  };
  const loops = [];
  for (let i = 0; i < Math.min(inFlight, total); i++) loops.push(loop());
  await Promise.all(loops);
}

async function rateMode(args) {
  const fn = args[0];
  const [n, concurrency, warmup] = args.slice(1).map(Number);
  if (!['exec', 'execFile'].includes(fn) ||
      ![n, concurrency, warmup].every(Number.isInteger) || concurrency < 1) usage();
  await run(fn, warmup, concurrency);
  const start = process.hrtime.bigint();
  await run(fn, n, concurrency);
  const elapsed = process.hrtime.bigint() - start;
  console.log(JSON.stringify({ execs: n, concurrency, elapsed_ns: Number(elapsed) }));
}

const [mode, ...rest] = process.argv.slice(2);
const modes = { bytes: bytesMode, rate: rateMode };
if (!modes[mode]) usage();
modes[mode](rest).catch((err) => {
  // One line first (exec.rs quotes it when Node falls back to a smaller size), then detail.
  console.error(`${err.code ? `${err.code}: ` : ''}${err.message.split('\n')[0]}`);
  console.error(err.stack);
  process.exit(1);
});
