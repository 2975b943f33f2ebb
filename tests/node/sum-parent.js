// seeds/001's parent.js, forking a worker given as `node sum-parent.js <execPath> <module>`:
// with execPath = the Rust fixture and module = 'sum-worker', fork() runs the Rust worker.
const { fork } = require('node:child_process');
const child = fork(process.argv[3], [], { execPath: process.argv[2] });
let messageId = 0;
const pending = new Map();
function calculate(data) {
  return new Promise((resolve, reject) => {
    const id = ++messageId;
    pending.set(id, { resolve, reject });
    child.send({ id, cmd: 'sum', data });
  });
}
child.on('message', (msg) => {
  const handler = pending.get(msg.id);
  if (!handler) return;
  pending.delete(msg.id);
  msg.error ? handler.reject(new Error(msg.error)) : handler.resolve(msg.result);
});
child.on('error', (err) => console.error('Worker failed to start:', err));
Promise.all([calculate([1, 2, 3, 4, 5]), calculate([10, 20]), calculate('not a list').catch((e) => e.message)])
  .then(([a, b, c]) => {
    console.log('Sum:', a);
    console.log('Sum:', b);
    console.log('Error:', c);
    child.kill();
  });
