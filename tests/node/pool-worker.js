// A childproc::Pool worker in Node.js: the five lines of the pool's protocol (see
// crates/childproc-ipc/src/serve.rs), plus the tasks tests/tests/pool.rs sends.
'use strict';

async function handle(task) {
  if (task === 'pid') return process.pid;
  if (task && typeof task.double === 'number') return task.double * 2;
  if (task && typeof task.fail === 'string') throw new Error(task.fail);
  if (task && task.nothing) return undefined;
  throw new Error('unknown task ' + JSON.stringify(task));
}

process.on('message', async ({ id, task }) => {
  try { process.send({ id, result: await handle(task) }); }
  catch (e) { process.send({ id, error: String(e && e.message || e) }); }
});
