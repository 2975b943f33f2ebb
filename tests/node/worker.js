// seeds/001's worker.js: sums msg.data and answers with the request's correlation id.
process.on('message', (msg) => {
  if (msg.cmd === 'sum') {
    try {
      const result = msg.data.reduce((a, b) => a + b, 0);
      process.send({ id: msg.id, result });
    } catch (err) {
      process.send({ id: msg.id, error: err.message });
    }
  }
});
