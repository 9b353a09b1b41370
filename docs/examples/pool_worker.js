// pool_worker.js - a pool-mode worker loop for an `exec` kind, in Node
// (docs/operations.md). One job per line on stdin, one answer per line on
// stdout; several jobs may be in flight when the kind sets jobs_per_process.
// Put the task in handle(); the process ends when stdin ends.
'use strict';
const crypto = require('crypto');
const readline = require('readline');

async function handle(job, progress) {
  progress(50, 'hashing');
  const data = JSON.stringify(job.payload);
  return { sha256: crypto.createHash('sha256').update(data).digest('hex') };
}

function send(msg) {
  process.stdout.write(JSON.stringify(msg) + '\n');
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const job = JSON.parse(line);
  try {
    const result = await handle(job, (pct, step) => send({ id: job.id, progress: pct, step }));
    send({ id: job.id, ok: true, result });
  } catch (e) {
    send({ id: job.id, ok: false, error: String(e), retry: true });
  }
});
