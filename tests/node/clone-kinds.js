// The structured-clone battery shared by clone-echo.js and clone-parent.js: every kind V8's
// serializer carries between Node processes, each with a maker (a fresh value each call)
// and a check of what util.isDeepStrictEqual does not see (classes of boxed values, a
// resizable buffer's maximum, an Error's cause, holes, and object identity).
const util = require('node:util');

const kinds = {
  int8: () => new Int8Array([-1, 2]),
  uint8: () => new Uint8Array([1, 255]),
  uint8_clamped: () => new Uint8ClampedArray([0, 255]),
  int16: () => new Int16Array([-2, 300]),
  uint16: () => new Uint16Array([65535]),
  int32: () => new Int32Array([-1e9]),
  uint32: () => new Uint32Array([4e9]),
  float32: () => new Float32Array([0.5, -0]),
  float64: () => new Float64Array([NaN, -0, 1e300]),
  bigint64: () => new BigInt64Array([-5n]),
  biguint64: () => new BigUint64Array([2n ** 64n - 1n]),
  empty_typed: () => new Float64Array(0),
  subarray: () => new Int16Array([1, 2, 3, 4]).subarray(1, 3),
  data_view: () => new DataView(new Uint8Array([1, 2, 3]).buffer),
  array_buffer: () => new Uint8Array([9, 8]).buffer,
  resizable: () => new ArrayBuffer(2, { maxByteLength: 16 }),
  buffer: () => Buffer.from('hi'),
  boxed_number: () => new Number(-0),
  boxed_string: () => new String('s€'),
  boxed_true: () => new Boolean(true),
  boxed_false: () => new Boolean(false),
  boxed_bigint: () => Object(5n),
  error_cause: () => new Error('outer', { cause: new TypeError('inner') }),
  error_cause_value: () => new RangeError('r', { cause: { code: 42 } }),
  sparse: () => { const a = []; a[1e9] = 1; return a; },
  holey: () => [1, , 3], // eslint-disable-line no-sparse-arrays
  array_props: () => { const a = [1, 2]; a.foo = 'x'; return a; },
  shared: () => { const o = { x: 1 }; return { a: o, b: o }; },
  cycle: () => { const c = {}; c.self = c; return c; },
  array_cycle: () => { const s = [1]; s.push(s); return s; },
  map_cycle: () => { const m = new Map(); m.set('me', m); m.set(m, 1); return m; },
  set_cycle: () => { const s = new Set(); s.add(s); return s; },
  shared_typed: () => { const t = new Uint8Array([7]); return [t, t]; },
  shared_across: () => { const o = {}; return [o, new Map([[o, o]]), new Set([o])]; },
};

// Errors: stacks differ between processes, so they are set.
for (const name of ['error_cause', 'error_cause_value']) {
  const make = kinds[name];
  kinds[name] = () => {
    const e = make();
    e.stack = `${e.name}: stack`;
    if (e.cause instanceof Error) e.cause.stack = `${e.cause.name}: stack`;
    return e;
  };
}

const checks = {
  boxed_number: (v) => typeof v === 'object' && Object.is(v.valueOf(), -0),
  boxed_string: (v) => typeof v === 'object' && v.valueOf() === 's€',
  boxed_true: (v) => typeof v === 'object' && v.valueOf() === true,
  boxed_false: (v) => typeof v === 'object' && v.valueOf() === false,
  boxed_bigint: (v) => typeof v === 'object' && v.valueOf() === 5n,
  resizable: (v) => v.resizable === true && v.maxByteLength === 16 && v.byteLength === 2,
  array_buffer: (v) => v instanceof ArrayBuffer && !v.resizable,
  buffer: (v) => Buffer.isBuffer(v),
  uint8: (v) => !Buffer.isBuffer(v) && v.constructor === Uint8Array,
  error_cause: (v) => v.cause instanceof TypeError && v.cause.message === 'inner'
    && v.cause.stack === 'TypeError: stack' && v.stack === 'Error: stack',
  error_cause_value: (v) => v instanceof RangeError && v.cause.code === 42,
  sparse: (v) => v.length === 1e9 + 1 && v[1e9] === 1 && !(0 in v) && Object.keys(v).length === 1,
  holey: (v) => v.length === 3 && !(1 in v),
  array_props: (v) => v.foo === 'x' && v.length === 2,
  shared: (v) => v.a === v.b,
  cycle: (v) => v.self === v,
  array_cycle: (v) => v[1] === v,
  map_cycle: (v) => v.get('me') === v && v.get(v) === 1,
  set_cycle: (v) => v.has(v) && v.size === 1,
  shared_typed: (v) => v[0] === v[1],
  shared_across: (v) => v[1].get(v[0]) === v[0] && v[2].has(v[0]),
};

// Whether `v` is the kind `name`: deep-equal to a fresh one, and its own check. Returns ''
// when it is, else what differs.
function verdict(name, v) {
  if (!(name in kinds)) return `unknown kind ${name}`;
  const want = kinds[name]();
  if (!util.isDeepStrictEqual(v, want)) {
    return `not deep-equal: got ${util.inspect(v, { depth: 3 })}, want ${util.inspect(want, { depth: 3 })}`;
  }
  if (name in checks && !checks[name](v)) return `check failed: ${util.inspect(v, { depth: 3 })}`;
  return '';
}

module.exports = { kinds, verdict };
