// The clone section's Node.js side: `node clone.js DIR ROUNDS SCALE`. Builds the three
// payloads (typed-array heavy, object heavy, string heavy), writes each as the bytes Node's
// IPC channel sends in 'advanced' mode (V8's format with the channel's host-object framing)
// to DIR/NAME.bin, and times Node's own v8.serialize / v8.deserialize on the same values:
// one line of JSON per round, {name: {bytes, encode_ns, decode_ns}} (ns per call).
const v8 = require('node:v8');
const fs = require('node:fs');
const path = require('node:path');

const [dir, roundsArg, scaleArg] = process.argv.slice(2);
const rounds = Number(roundsArg);
const scale = Number(scaleArg);

const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'request', 'response', 'status'];
const payloads = {
  // Samples, a matrix and bytes: what a worker computing on numbers sends.
  typed: () => ({
    samples: Float64Array.from({ length: 16384 * scale }, (_, i) => Math.sin(i) * 1e3),
    ids: Int32Array.from({ length: 8192 * scale }, (_, i) => i * 7),
    image: new Uint8Array(65536 * scale).map((_, i) => i & 0xff),
    rows: Array.from({ length: 32 }, (_, r) => Float32Array.from({ length: 256 }, (_, i) => r + i / 256)),
  }),
  // Records: what a service sends about its jobs.
  objects: () => Array.from({ length: 1000 * scale }, (_, i) => ({
    id: i, name: `job-${i}`, score: i / 7, done: i % 3 === 0,
    tags: [words[i % 8], words[(i + 3) % 8]],
    owner: { user: `u${i % 50}`, team: words[i % 5], since: new Date(1.7e12 + i * 1000) },
    retries: i % 4, note: null,
  })),
  // Log lines: mostly ASCII, some Latin-1, a few with CJK or emoji.
  strings: () => Array.from({ length: 2000 * scale }, (_, i) => {
    const base = `2026-12-03T12:00:${String(i % 60).padStart(2, '0')}Z INFO request ${i} took ${i % 97} ms path=/api/v1/items/${i}`;
    if (i % 10 === 0) return `${base} user=José café`;
    if (i % 25 === 0) return `${base} 用户=张伟 ✓`;
    return base;
  }),
  // The same lines, each with CJK text: V8 holds and writes them as UTF-16.
  cjk: () => Array.from({ length: 2000 * scale }, (_, i) =>
    `2026-12-03T12:00:${String(i % 60).padStart(2, '0')}Z 信息 请求 ${i} 用时 ${i % 97} 毫秒 path=/api/v1/items/${i}`),
};

class IpcSerializer extends v8.DefaultSerializer {
  _writeHostObject(o) { this.writeUint32(0); return super._writeHostObject(o); }
}
function ipcBytes(v) {
  const s = new IpcSerializer();
  s.writeHeader();
  s.writeValue(v);
  return s.releaseBuffer();
}

const built = {};
for (const [name, make] of Object.entries(payloads)) {
  const value = make();
  fs.writeFileSync(path.join(dir, `${name}.bin`), ipcBytes(value));
  const bytes = v8.serialize(value);
  // About 50 ms a call batch, at least 5 calls.
  let n = 1;
  const t0 = process.hrtime.bigint();
  v8.deserialize(v8.serialize(value));
  const once = Number(process.hrtime.bigint() - t0);
  n = Math.max(5, Math.round(5e7 / Math.max(once, 1)));
  built[name] = { value, bytes, n };
}

function time(f, n) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  return Number(process.hrtime.bigint() - t) / n;
}

for (let r = 0; r < rounds; r++) {
  const out = {};
  for (const [name, { value, bytes, n }] of Object.entries(built)) {
    const encode_ns = time(() => v8.serialize(value), n);
    const decode_ns = time(() => v8.deserialize(bytes), n);
    out[name] = { bytes: bytes.length, encode_ns, decode_ns };
  }
  console.log(JSON.stringify(out));
}
