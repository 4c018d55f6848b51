'use strict';
// Run under valgrind by CTest (node.dispatch_valgrind): the addon's
// dispatch glue (src/dispatch.c, src/peer.c) through its paths, on a real
// uvwool-worker: a result and apply-back, a stream to its end and one
// broken off, a remote error, a dispatch aborted and one cancelled by close, a dead
// connection, and a Connection dropped without close() and collected.
// Sanitizer builds leave the binding out (docs/node.md), so this is its
// memory check.
const assert = require('node:assert/strict');
const { uvwool } = require('./helpers');
const { startWorker } = require('./worker');

const requestId = new uvwool.ContextVar('t', 'request_id', { default: '-' });
const counter = new uvwool.ContextVar('t', 'counter', { default: 0 });
// valgrind slows the handshake far beyond the 5 s default.
const slow = { timeoutMs: 300000 };

let finished = false;
process.on('exit', () => assert.equal(finished, true, 'main() ran to its end'));

async function main() {
  const worker = await startWorker();
  const conn = uvwool.connect(worker.address, slow);
  requestId.set('vg');
  assert.equal(await conn.dispatch('read_and_mutate', 1), 'saw:vg');
  assert.deepEqual([requestId.get(), counter.get()], ['vg+worker', 2]);
  const steps = [];
  for await (const v of conn.stream('counter_stream')) steps.push(v);
  assert.equal(steps.length, 5);
  const broken = conn.stream('counter_stream');
  assert.equal((await broken.next()).done, false);
  broken.close();
  await assert.rejects(conn.dispatch('raise_after_set'), { code: 'UVW_EREMOTE', wireType: 'AppError' });
  const ac = new AbortController();
  const aborted = conn.dispatchWith({ signal: ac.signal, timeoutMs: 300000 }, 'hang').catch((e) => e.status);
  ac.abort();
  assert.equal(await aborted, 'UVW_ECANCELED');
  const hanging = conn.dispatch('hang').catch((e) => e.status);
  await conn.close();
  assert.equal(await hanging, 'UVW_ECANCELED');
  const nowhere = uvwool.connect('pipe:/nonexistent/uvwool.sock');
  await assert.rejects(nowhere.dispatch('echo', 1), { code: 'UVW_ECONNRESET' });
  await nowhere.close();
  (() => uvwool.connect(worker.address, slow))();
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.deepEqual(await worker.stop(), { code: 0, signal: null });
  finished = true;
  console.log('dispatch paths ran clean');
}

main();
