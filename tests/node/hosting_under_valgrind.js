'use strict';
// Run under valgrind by CTest (node.hosting_valgrind): the addon's worker
// glue (src/worker.c, lib/worker.js) through its paths, a Node worker and
// its Node caller in this one process: a result with writes, a raise, a
// stream to its end with a reset after a yield, one broken off, a
// cancelled call, a routine that dispatches (its context sent, the reply
// adopted), close() with a stream waiting, and a worker collected without
// close(). Sanitizer builds leave the binding out (docs/node.md), so this
// is its memory check.
const assert = require('node:assert/strict');
const { uvwool } = require('./helpers');

const { ContextVar, Worker, Context, connect, currentCall, RuntimeError } = uvwool;
const tenant = new ContextVar('vgh', 'tenant');
const phase = new ContextVar('vgh', 'phase');
// valgrind slows the handshake far beyond the 5 s default.
const slow = { timeoutMs: 300000 };

let finished = false;
process.on('exit', () => assert.equal(finished, true, 'main() ran to its end'));

async function main() {
  const w = new Worker();
  let address;
  w.routine('vg.mutate', async (n) => {
    tenant.set(`${tenant.get('')}+w`);
    await new Promise((resolve) => setImmediate(resolve));
    return n + 1;
  });
  w.routine('vg.raise', () => {
    tenant.set('raised');
    throw new RuntimeError('asked', 'UVW_EINVAL', { reason: 'asked' });
  });
  w.routine('vg.hang', () => new Promise((resolve) => currentCall().signal.addEventListener('abort', () => resolve(null))));
  w.routine('vg.hop', async () => {
    const c = connect(address, slow);
    const out = await c.dispatch('vg.mutate', 1);
    await c.close();
    return out;
  });
  w.stream('vg.phases', async function* phases() {
    const token = phase.set('streaming');
    try {
      yield 1;
      yield 2;
    } finally {
      phase.reset(token);
    }
    return 'done';
  });
  address = await w.listen('tcp:127.0.0.1:0');
  const conn = connect(address, slow);
  await new Context().run(async () => {
    tenant.set('acme');
    assert.equal(await conn.dispatch('vg.mutate', 41), 42);
    assert.equal(tenant.get(), 'acme+w');
    await assert.rejects(conn.dispatch('vg.raise'), { code: 'UVW_EINVAL', reason: 'asked' });
    assert.equal(tenant.get(), 'raised');
    assert.equal(await conn.dispatch('vg.hop'), 2);
    assert.equal(tenant.get(), 'raised+w');
    const steps = [];
    for await (const v of conn.stream('vg.phases')) steps.push(v);
    assert.deepEqual(steps, [1, 2]);
    assert.equal(phase.get('<unbound>'), '<unbound>');
    const broken = conn.stream('vg.phases');
    assert.equal((await broken.next()).value, 1);
    broken.close();
    const ac = new AbortController();
    const aborted = conn.dispatchWith({ signal: ac.signal, timeoutMs: 300000 }, 'vg.hang').catch((e) => e.status);
    setTimeout(() => ac.abort(), 50);
    assert.equal(await aborted, 'UVW_ECANCELED');
    const waiting = conn.stream('vg.phases');
    assert.equal((await waiting.next()).value, 1);
  });
  await w.close();
  await conn.close();
  (() => new Worker().routine('vg.never', () => 1))();
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  finished = true;
  console.log('hosting paths ran clean');
}

main();
