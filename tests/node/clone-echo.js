// A Node.js child in 'advanced' serialization for the structured-clone battery (see
// clone-kinds.js). `{ check: name, value }`: answers `{ name, verdict }` ('' when JavaScript
// sees exactly the kind), then echoes `value` as a message of its own. `{ want: name }`:
// sends a fresh value of that kind, as a message of its own. `{ stringify: name }`: answers
// `{ json }`, JSON.stringify of a fresh value (what 'json' mode sends), or `{ throws }`, its
// error's message. 'bye' disconnects.
const { kinds, verdict } = require('./clone-kinds.js');

process.on('message', (m) => {
  if (m === 'bye') { process.disconnect(); return; }
  if (m.want !== undefined) { process.send(kinds[m.want]()); return; }
  if (m.stringify !== undefined) {
    try {
      process.send({ json: JSON.stringify(kinds[m.stringify]()) });
    } catch (e) {
      process.send({ throws: e.message });
    }
    return;
  }
  process.send({ name: m.check, verdict: verdict(m.check, m.value) });
  process.send(m.value);
});
process.send({ names: Object.keys(kinds) });
