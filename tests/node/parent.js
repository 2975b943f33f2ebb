// A Node.js parent driving a Rust child over IPC: `node parent.js <fixture>` spawns
// `<fixture> ipc-echo` with an 'ipc' stdio entry, exchanges messages, prints what it saw.
const { spawn } = require('node:child_process');
const child = spawn(process.argv[2], ['ipc-echo'], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
const seen = [];
child.on('message', (m) => {
  seen.push(m);
  if (m.hello) {
    child.send({ n: 1, s: 'é€😀', a: [true, null, 1.5] });
    child.send('bye');
  }
});
child.on('disconnect', () => seen.push('disconnect'));
child.on('exit', (code) => seen.push(`exit ${code}`));
child.on('close', () => console.log(JSON.stringify(seen)));
