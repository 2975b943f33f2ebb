// A Node child that receives handles from a Rust parent (tests/tests/ipc_handles.rs):
// `{kind:'server'}` + net.Server: answers one connection with a greeting;
// `{kind:'socket'}` + net.Socket: writes a greeting into it and ends it;
// `{kind:'dgram'}` + dgram.Socket: answers one datagram with `pong:<datagram>`.
// Every message is reported back, in the order it was received, with the handle's class.
process.on('message', (msg, handle) => {
  const kind = msg && msg.kind;
  if (kind === 'server') {
    handle.once('connection', (s) => s.end('hello from the node child\n'));
  } else if (kind === 'socket') {
    handle.end('hello over the passed socket\n');
  } else if (kind === 'dgram') {
    handle.once('message', (m, rinfo) => handle.send(`pong:${m}`, rinfo.port, rinfo.address));
  }
  const type = handle ? handle.constructor.name : null;
  const family = kind === 'dgram' ? handle.address().family : undefined;
  process.send({ got: msg, type, family });
});
