// A Node parent handing a listening net.Server to a Rust child (tests/tests/ipc_handles.rs):
// `node handle-parent.js <fixture> [json|advanced]` forks `<fixture> ipc-handles`, sends
// {kind:'server'} with the server, closes its own copy once written, connects to the port
// and expects the Rust child's greeting. Prints what it saw as JSON; exits 0 only if right.
const { spawn } = require('node:child_process');
const net = require('node:net');
const serialization = process.argv[3] || 'json';
const child = spawn(process.argv[2], ['ipc-handles'], {
  stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  serialization,
});
const seen = { messages: [], greeting: null };
const server = net.createServer(() => {
  seen.parentAccepted = true; // must not happen: our copy is closed
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  child.send({ kind: 'server', port }, server, (err) => {
    if (err) throw err;
    server.close();
  });
});
child.on('message', (m) => {
  seen.messages.push(m);
  if (m.kind === 'TcpListener') {
    const c = net.connect(m.port, '127.0.0.1');
    let data = '';
    c.on('data', (d) => { data += d; });
    c.on('end', () => {
      seen.greeting = data;
      child.disconnect();
    });
  }
});
// Reported on 'exit', not 'close': a Node parent that calls child.disconnect() itself never
// gets 'close' for a child with inherited stdio, with or without a handle sent and with a
// Node child too (checked on Node v20), so waiting for it would hang.
child.on('exit', (code) => {
  console.log(JSON.stringify(seen));
  const ok = code === 0 && seen.greeting === 'hello from rust\n' && !seen.parentAccepted;
  process.exitCode = ok ? 0 : 1; // not process.exit(): it could cut the output short
});
