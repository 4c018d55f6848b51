'use strict';
// The sample addon (samples/node-addon) on uvwool's C API for addons: C sees
// the JS context current at the call; a libuv timer on Node's loop calls JS
// back in the context captured at registration, uvwool's and a plain
// AsyncLocalStorage's alike, through one async context per registration.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const async_hooks = require('node:async_hooks');
const { uvwool, samplePath, freshVar } = require('./helpers');

const skip = !samplePath && 'the sample addon was not built (UVWOOL_NODE_SAMPLE unset)';
const sample = samplePath ? require(path.join(samplePath, 'index.js')) : null;

test('C reads what JS set at the call, and its writes stay in C', { skip }, () => {
  const v = freshVar({ default: 'dflt' });
  assert.equal(sample.readVar(v.namespace, v.name), 'dflt', 'C sees the default declared in JS');
  v.run('from-js', () => {
    assert.equal(sample.readVar(v.namespace, v.name), 'from-js');
    assert.equal(sample.writeVar(v.namespace, v.name, 'from-c'), 'from-c');
    assert.equal(v.get(), 'from-js', 'a C write does not reach JS');
    assert.equal(sample.readVar(v.namespace, v.name), 'from-js');
  });
  assert.equal(sample.readVar('nosuch', 'var'), null);
});

test('a native timer calls back in the registration context, ALS intact', { skip }, async () => {
  const v = freshVar({ default: 'none' });
  const als = new async_hooks.AsyncLocalStorage();
  const seen = await new Promise((resolve) => {
    als.run({ user: 'als-store' }, () => {
      v.run('registered', () => {
        sample.after(v.namespace, v.name, 5, (fromC) => {
          resolve({ fromC, js: v.get(), als: als.getStore()?.user, chain: uvwool.chainId() });
        });
        v.set('later');
      });
    });
  });
  assert.deepEqual({ ...seen, chain: typeof seen.chain }, {
    fromC: 'registered',
    js: 'registered',
    als: 'als-store',
    chain: 'string',
  });
});

test('one async context per registration, destroyed exactly once', { skip }, async () => {
  const ids = new Map();
  const hook = async_hooks.createHook({
    init(id, type) {
      if (type === 'uvwool.sample.after') ids.set(id, (ids.get(id) ?? 0));
    },
    destroy(id) {
      if (ids.has(id)) ids.set(id, ids.get(id) + 1);
    },
  }).enable();
  try {
    await Promise.all([1, 2, 3].map((n) => new Promise((r) => sample.after('x', 'y', n, r))));
    for (let i = 0; i < 5 && [...ids.values()].some((d) => d === 0); i++) await new Promise((r) => setTimeout(r, 5));
  } finally {
    hook.disable();
  }
  assert.equal(ids.size, 3, 'three registrations, three async contexts');
  assert.deepEqual([...ids.values()], [1, 1, 1], 'each destroyed once');
});

test('a callback that throws reaches uncaughtException, and the loop goes on', { skip }, async () => {
  const caught = await new Promise((resolve) => {
    const prev = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.once('uncaughtException', (e) => {
      for (const l of prev) process.on('uncaughtException', l);
      resolve(e.message);
    });
    sample.after('x', 'y', 1, () => { throw new Error('from the callback'); });
  });
  assert.equal(caught, 'from the callback');
});

test('pool work: uvw_queue_work trips the thread guard, uvw_to_thread sees a fork', { skip }, async () => {
  const v = freshVar({ default: 'dflt' });
  const poolRead = (mode) => new Promise((resolve) => v.run(`js-${mode}`, () => sample.poolRead(v.namespace, v.name, mode, resolve)));
  const queued = await poolRead('queue_work');
  assert.equal(queued.code, 'UVW_ECONTENTION', 'the captured chain is the JS thread\'s');
  assert.equal(queued.kind, 'thread');
  assert.equal(queued.after, 'js-queue_work', 'the after-callback runs on the loop in the capture');
  const forked = await poolRead('to_thread');
  assert.deepEqual({ code: forked.code, value: forked.value, after: forked.after },
    { code: 'UVW_OK', value: 'js-to_thread', after: 'js-to_thread' });
});

test('a repeating uvw_timer sees its previous tick\'s C write on every line', { skip }, async () => {
  const v = freshVar({ default: 'dflt' });
  const seen = await new Promise((resolve) => {
    const out = [];
    v.run('start', () => sample.ticker(v.namespace, v.name, 3, (fromC) => {
      out.push([fromC, v.get()]);
      if (out.length === 3) setImmediate(() => resolve(out));
    }));
  });
  // C: the registration's one context, written by each tick (§5 multi-shot);
  // JS: the state captured at registration, every time.
  assert.deepEqual(seen, [['start', 'start'], ['tick3', 'start'], ['tick2', 'start']]);
});

test('a JS value whose last C reference drops on a pool thread is released, on the JS thread', { skip: (skip || !globalThis.gc) && 'needs the sample and --expose-gc' }, async () => {
  const v = freshVar();
  const state = {};
  (() => {
    const o = { big: new Array(1000).fill(1) };
    state.ref = new WeakRef(o);
    v.run(o, () => sample.hold(v.namespace, v.name));
  })();
  const settle = async () => {
    for (let i = 0; i < 10; i++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 1));
    }
  };
  await settle();
  assert.notEqual(state.ref.deref(), undefined, 'the addon\'s reference keeps it alive');
  await new Promise((resolve) => sample.releaseOnPool(resolve));
  for (let i = 0; i < 30 && state.ref.deref() !== undefined; i++) await settle();
  assert.equal(state.ref.deref(), undefined, 'collected after the pool thread dropped it');
});
