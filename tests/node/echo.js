// A Node.js child for childproc's IPC tests: greets, echoes every message, and on 'bye'
// disconnects. `node echo.js count N` instead sends N numbered messages and disconnects.
if (process.argv[2] === 'count') {
  // Node's disconnect() drops sends still queued, so disconnect from the last callback.
  const n = Number(process.argv[3]);
  for (let i = 0; i < n - 1; i++) process.send({ i });
  process.send({ i: n - 1 }, () => process.disconnect());
} else {
  process.send({ hello: 'from node', pid: process.pid });
  process.on('message', (m) => {
    if (m === 'bye') { process.disconnect(); return; }
    process.send({ echo: m });
  });
}
