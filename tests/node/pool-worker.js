// A childproc::Pool worker in Node.js: the five lines of the pool's protocol (see
// crates/childproc-ipc/src/serve.rs), plus the tasks tests/tests/pool.rs sends.
'use strict';

// `{ hold: name }` waits for `{ release: name }`: with the pool's concurrency above one, the
// answers then go out in the order the test releases them, not the order the tasks came.
const held = new Map();

async function handle(task) {
  if (task && typeof task.hold === 'string') {
    return new Promise((resolve) => held.set(task.hold, () => resolve(task.hold)));
  }
  if (task && typeof task.release === 'string') {
    const release = held.get(task.release);
    if (!release) throw new Error('nothing held as ' + task.release);
    held.delete(task.release);
    release();
    return 'released';
  }
  if (task === 'pid') return process.pid;
  if (task && typeof task.double === 'number') return task.double * 2;
  if (task && typeof task.fail === 'string') throw new Error(task.fail);
  if (task && task.nothing) return undefined;
  if (task && task.echo !== undefined) return task.echo;
  throw new Error('unknown task ' + JSON.stringify(task));
}

process.on('message', async ({ id, task }) => {
  // Answers in shapes of their own: the keys the other way round, or one more key.
  if (task && task.reversed !== undefined) return process.send({ result: task.reversed, id });
  if (task && task.extra !== undefined) return process.send({ id, result: task.extra, note: 1 });
  try { process.send({ id, result: await handle(task) }); }
  catch (e) { process.send({ id, error: String(e && e.message || e) }); }
});
