// A Node.js parent in 'advanced' serialization for the structured-clone battery (see
// clone-kinds.js): `node clone-parent.js <fixture>` spawns `<fixture> ipc-echo` (a Rust
// child that echoes each message as `{ echo: m }`), sends every kind, and prints as JSON
// `{ name: verdict }` for the echoes ('' when the echo is exactly the kind), then exits.
const { spawn } = require('node:child_process');
const { kinds, verdict } = require('./clone-kinds.js');

const child = spawn(process.argv[2], ['ipc-echo'], {
  stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  serialization: 'advanced',
});
const names = Object.keys(kinds);
const verdicts = {};
child.on('message', (m) => {
  if (m.hello) {
    for (const name of names) child.send({ name, value: kinds[name]() });
    return;
  }
  verdicts[m.echo.name] = verdict(m.echo.name, m.echo.value);
  if (Object.keys(verdicts).length === names.length) child.send('bye');
});
child.on('close', () => console.log(JSON.stringify(verdicts)));
