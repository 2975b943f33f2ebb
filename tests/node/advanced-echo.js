// A Node.js child in 'advanced' serialization for childproc's tests (fork it with
// `.serialization(Serialization::Advanced)`). It first sends a value built in JavaScript with
// every structured-clone kind, as Node itself writes them; then it answers each message with
// `{checks, echo}`: `echo` is the message, `checks` says for each of its keys whether
// JavaScript sees what the Rust side meant (types, classes, Buffer.isBuffer, NaN, -0).
// `'internal'` makes it send Node-internal messages around a user one; `'bye'` disconnects.
const shared = { x: 1 };
const sparse = []; sparse[3] = 'x';
const cause = new TypeError('bad', { cause: 42 }); cause.stack = 'TypeError: bad';
const named = new Error('m'); named.name = 'MyError'; named.stack = 's';
process.send({
  hello: 'from node',
  int: 7, double: 0.1, neg_zero: -0, nan: NaN, big_int32: 2 ** 31, undef: undefined, nul: null,
  big: 2n ** 70n, neg_big: -5n,
  ascii: 'hi', latin1: 'é', two_byte: '€😀', sliced: ('€' + 'abc').slice(1),
  buffer: Buffer.from('hello world').subarray(6), u16: new Uint16Array([1, 258]),
  array_buffer: new Uint8Array([9, 8]).buffer, data_view: new DataView(new ArrayBuffer(2)),
  holey: [1, , 3], sparse, doubles: [1.5, 2],
  map: new Map([[1, 'a'], ['k', shared]]), set: new Set([1, 'a']),
  date: new Date('2020-01-02T03:04:05.678Z'), regexp: /x/dgimsuy,
  error: cause, named_error: named,
  boxed_number: new Number(1.5), boxed_string: new String('s'), boxed_false: new Boolean(false),
  shared_again: shared,
  instance: new (class Point { constructor() { this.y = 2; } })(),
  index_keys: { b: 1, 2: 'two', 1: 'one' },
});

const expected = {
  undefined: (v, m) => v === undefined && Object.hasOwn(m, 'undefined'),
  null: (v) => v === null,
  true: (v) => v === true,
  int: (v) => v === -42,
  double: (v) => v === 1.5,
  beyond_int32: (v) => v === 2 ** 53,
  nan: (v) => Number.isNaN(v),
  neg_zero: (v) => Object.is(v, -0),
  inf: (v) => v === Infinity,
  neg_inf: (v) => v === -Infinity,
  bigint: (v) => v === 123456789012345678901234567890n,
  neg_bigint: (v) => v === -(2n ** 64n),
  latin1: (v) => v === 'café ÿ',
  two_byte: (v) => v === 'a€😀',
  bytes: (v) => Buffer.isBuffer(v) && v.equals(Buffer.from([0, 1, 255])),
  array: (v) => Array.isArray(v) && v.length === 3 && v[0] === 1 && v[1] === 'two' && v[2] === null,
  object: (v) => Object.getPrototypeOf(v) === Object.prototype && v.nested.deep === true,
  map: (v) => v instanceof Map && v.get('k') === 1 && v.get(2) instanceof Set && v.get(2).has(3),
  set: (v) => v instanceof Set && v.size === 2 && v.has('a') && v.has(1),
  date: (v) => v instanceof Date && v.getTime() === 1577934245678,
  invalid_date: (v) => v instanceof Date && Number.isNaN(v.getTime()),
  regexp: (v) => v instanceof RegExp && v.source === 'ab+c' && v.flags === 'gi',
  error: (v) => v instanceof TypeError && v.message === 'bad' && v.stack === 'TypeError: bad\n    at rust',
  plain_error: (v) => Object.getPrototypeOf(v) === Error.prototype && v.message === 'x',
};

process.on('message', (m) => {
  if (m === 'bye') { process.disconnect(); return; }
  if (m === 'internal') {
    process.send({ cmd: 'NODE_FOO', secret: true });
    process.send({ cmd: 'NODE_' });
    process.send({ cmd: 'NODE_HANDLE_ACK' });
    process.send('after internal');
    return;
  }
  const checks = {};
  if (m !== null && typeof m === 'object' && !Array.isArray(m)) {
    for (const [k, v] of Object.entries(m)) {
      checks[k] = k in expected ? expected[k](v, m) : 'no check';
    }
  }
  process.send({ checks, echo: m });
});
