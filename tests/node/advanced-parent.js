// A Node.js parent in 'advanced' serialization driving a Rust child:
// `node advanced-parent.js <fixture>` spawns `<fixture> ipc-echo` with an 'ipc' stdio entry
// and `serialization: 'advanced'`, sends a value with every kind a Value carries, and prints
// (as JSON) what it saw: whether the echo is deep-equal to what it sent, the classes of the
// echoed values (and that the shared object is still one), then the child's disconnect and exit.
const { spawn } = require('node:child_process');
const util = require('node:util');
const child = spawn(process.argv[2], ['ipc-echo'], {
  stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  serialization: 'advanced',
});
const shared = { x: 1 };
const error = new RangeError('r'); error.stack = 'RangeError: r\n    at node';
const sent = {
  undef: undefined, nul: null, yes: true, int: -7, double: 0.5, nan: NaN, neg_zero: -0,
  inf: -Infinity, big: -(2n ** 100n), ascii: 'hi', latin1: 'é', two_byte: '€😀',
  buffer: Buffer.from([0, 1, 255]), array: [1, 'a', [null]], map: new Map([[1, { a: 1 }]]),
  set: new Set(['x', 2]), date: new Date(0), regexp: /a+b/gsu, error,
  a: shared, b: shared, 7: 'index key',
};
const seen = [];
child.on('message', (m) => {
  if (m.hello) {
    seen.push(`hello ${m.hello}`);
    child.send(sent);
    child.send('bye');
    return;
  }
  const e = m.echo;
  seen.push(util.isDeepStrictEqual(e, sent) ? 'echo equal' : `echo differs: ${util.inspect(e)}`);
  const classes = [
    Buffer.isBuffer(e.buffer), e.map instanceof Map, e.set instanceof Set, e.date instanceof Date,
    e.regexp instanceof RegExp, e.error instanceof RangeError, e.error.stack === error.stack,
    typeof e.big === 'bigint', Object.is(e.neg_zero, -0), Number.isNaN(e.nan),
    Object.hasOwn(e, 'undef'), e.a === e.b,
  ];
  seen.push(classes.every((ok) => ok) ? 'classes ok' : `classes wrong: ${classes}`);
});
child.on('disconnect', () => seen.push('disconnect'));
child.on('exit', (code) => seen.push(`exit ${code}`));
child.on('close', () => console.log(JSON.stringify(seen)));
