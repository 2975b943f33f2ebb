'use strict';
// The Node.js rows of `cargo xtask bench`'s ipc section (xtask/src/bench/ipc.rs).
//
// usage:
//   node ipc.js parent SERIALIZATION ROUND_TRIPS SMALL BIG WARMUP
//     fork()s this script as a child with { serialization: SERIALIZATION } ('json' or
//     'advanced') and, after WARMUP untimed round trips, times:
//       round_trips  ROUND_TRIPS ping-pongs of a 16-character string;
//       small_out    SMALL 16-character strings parent → child (the child answers once);
//       big_out      BIG 65536-character strings parent → child;
//       small_in     SMALL 16-character strings child → parent;
//       big_in       BIG 65536-character strings child → parent.
//     A count of 0 skips that measurement. Timed here, so Node's startup and the fork are
//     not counted. Prints one JSON line:
//       {"round_trips":N,"round_trips_ns":T,"small_out":N,"small_out_ns":T,...}
//   node ipc.js child
//     The child side, for the parent above and for the Rust parent of the bench (the same
//     protocol as `xtask bench-worker ipc-child`):
//       a string           is echoed back;
//       {sink: N}          the next N messages are counted, then {got: N} is sent;
//       {source: N, size}  N strings of `size` characters are sent;
//     and the child exits when the parent disconnects.
//
// Sending many messages follows Node's flow control: send() without a callback while it
// returns true; after a false (more than 128 KiB queued) the next message is sent with a
// callback and the loop resumes once it has been written.

const { fork } = require('node:child_process');

const SMALL_SIZE = 16;
const BIG_SIZE = 65536;

function usage() {
  console.error('usage: node ipc.js parent json|advanced ROUND_TRIPS SMALL BIG WARMUP\n' +
    '       node ipc.js child');
  process.exit(2);
}

// Sends n strings of `size` characters through `target` (a ChildProcess or `process`),
// then calls done().
function sendMany(target, n, size, done) {
  const msg = 'x'.repeat(size);
  let i = 0;
  const pump = () => {
    let blocked = false;
    while (i < n) {
      i++;
      if (blocked) {
        target.send(msg, (err) => {
          if (err) throw err;
          pump();
        });
        return;
      }
      blocked = !target.send(msg);
    }
    done();
  };
  pump();
}

function child() {
  let sinkLeft = 0;
  let sinkTotal = 0;
  process.on('message', (m) => {
    if (sinkLeft > 0) {
      if (--sinkLeft === 0) process.send({ got: sinkTotal });
      return;
    }
    if (typeof m === 'string') {
      process.send(m);
    } else if (m !== null && typeof m.sink === 'number') {
      sinkLeft = sinkTotal = m.sink;
      if (sinkLeft === 0) process.send({ got: 0 });
    } else if (m !== null && typeof m.source === 'number') {
      sendMany(process, m.source, m.size, () => {});
    } else {
      throw new Error(`ipc.js child: unexpected message ${JSON.stringify(m)}`);
    }
  });
  // The 'message' listener keeps the child alive until the parent disconnects.
}

// Resolves after n round trips of a 16-character string.
function roundTrips(sub, n) {
  return new Promise((resolve, reject) => {
    if (n === 0) return resolve();
    const ping = 'x'.repeat(SMALL_SIZE);
    let left = n;
    const onMessage = (m) => {
      if (m !== ping) return reject(new Error(`echo was ${JSON.stringify(m)}`));
      if (--left === 0) {
        sub.off('message', onMessage);
        resolve();
      } else {
        sub.send(m);
      }
    };
    sub.on('message', onMessage);
    sub.send(ping);
  });
}

// Resolves once the child has counted n messages of `size` characters from us.
function toChild(sub, n, size) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      sub.off('message', onMessage);
      if (m === null || m.got !== n) return reject(new Error(`child got ${JSON.stringify(m)}`));
      resolve();
    };
    sub.on('message', onMessage);
    sub.send({ sink: n });
    sendMany(sub, n, size, () => {});
  });
}

// Resolves once n messages of `size` characters have arrived from the child.
function fromChild(sub, n, size) {
  return new Promise((resolve, reject) => {
    let left = n;
    const onMessage = (m) => {
      if (typeof m !== 'string' || m.length !== size) {
        return reject(new Error(`unexpected message from the child: ${typeof m}`));
      }
      if (--left === 0) {
        sub.off('message', onMessage);
        resolve();
      }
    };
    sub.on('message', onMessage);
    sub.send({ source: n, size });
  });
}

// The nanoseconds `fn` takes; 0 without running it when there is nothing to time.
async function timed(count, fn) {
  if (count === 0) return 0;
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start);
}

async function parent(serialization, roundTripCount, small, big, warmup) {
  const sub = fork(__filename, ['child'], { serialization });
  const exited = new Promise((resolve, reject) => {
    sub.on('error', reject);
    sub.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`ipc.js child ended with ${signal ?? code}`));
    });
  });
  await roundTrips(sub, warmup);
  const out = {};
  out.round_trips = roundTripCount;
  out.round_trips_ns = await timed(roundTripCount, () => roundTrips(sub, roundTripCount));
  out.small_out = small;
  out.small_out_ns = await timed(small, () => toChild(sub, small, SMALL_SIZE));
  out.big_out = big;
  out.big_out_ns = await timed(big, () => toChild(sub, big, BIG_SIZE));
  out.small_in = small;
  out.small_in_ns = await timed(small, () => fromChild(sub, small, SMALL_SIZE));
  out.big_in = big;
  out.big_in_ns = await timed(big, () => fromChild(sub, big, BIG_SIZE));
  sub.disconnect();
  await exited;
  console.log(JSON.stringify(out));
}

const args = process.argv.slice(2);
if (args[0] === 'child' && args.length === 1) {
  child();
} else if (args[0] === 'parent' && args.length === 6 && ['json', 'advanced'].includes(args[1])) {
  const counts = args.slice(2).map(Number);
  if (!counts.every((c) => Number.isInteger(c) && c >= 0)) usage();
  parent(args[1], ...counts).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  usage();
}
