'use strict';
// threadSnapshot()/runInThreadSnapshot(): the JS counterpart of
// uvw_to_thread's detached fork, carried to a worker_threads Worker as data.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Worker } = require('node:worker_threads');
const { uvwool, pkg, freshVar, HEX32 } = require('./helpers');

const { ContextVar, threadSnapshot, runInThreadSnapshot, Context, chainId } = uvwool;
const user = new ContextVar('snap', 'user', { default: 'nobody' });
const big = new ContextVar('snap', 'big');
const blob = new ContextVar('snap', 'blob');
const handle = new ContextVar('snap', 'handle');

test('a worker thread runs in the values of the snapshot, on a chain of its own', async () => {
  const { snap, mainChain } = new Context().run(() => {
    user.set('ann');
    big.set(2n ** 60n);
    blob.set(Buffer.from('bytes'));
    handle.set({ not: 'wire' });
    return { snap: threadSnapshot(), mainChain: chainId() };
  });
  assert.deepEqual(snap.left, ['(snap, handle)']);
  assert.equal(snap.chainId, mainChain);
  const body = `
    const { parentPort, workerData } = require('node:worker_threads');
    const u = require(workerData.pkg);
    const user = new u.ContextVar('snap', 'user', { default: 'nobody' });
    const big = new u.ContextVar('snap', 'big');
    const blob = new u.ContextVar('snap', 'blob');
    const handle = new u.ContextVar('snap', 'handle');
    const out = u.runInThreadSnapshot(workerData.snap, (suffix) => {
      const seen = [user.get() + suffix, big.get(), Buffer.from(blob.get()).toString(), handle.get('left behind'), u.chainId()];
      user.set('changed in the worker');
      return seen;
    }, '!');
    out.push(user.get());
    parentPort.postMessage(out);
  `;
  const w = new Worker(body, { eval: true, workerData: { pkg, snap } });
  const got = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  const [name, b, bytes, left, workerChain, after] = got;
  assert.deepEqual([name, b, bytes, left, after], ['ann!', 2n ** 60n, 'bytes', 'left behind', 'nobody']);
  assert.match(workerChain, HEX32);
  assert.notEqual(workerChain, mainChain, 'a detached fork: a new chain id');
  await w.terminate();
});

test('on the same thread: a fork whose writes reach nothing, variables this env lacks skipped', () => {
  new Context().run(() => {
    const v = freshVar();
    v.set('mine');
    const snap = threadSnapshot();
    snap.bindings.push(['snap', 'never_declared_here', 1]);
    const inside = runInThreadSnapshot(snap, () => {
      const seen = [v.get(), uvwool.copyContext().size, chainId()];
      v.set('fork');
      return seen;
    });
    assert.equal(inside[0], 'mine');
    assert.equal(inside[1], 1, 'the undeclared binding is skipped');
    assert.notEqual(inside[2], chainId());
    assert.equal(v.get(), 'mine');
  });
  assert.deepEqual(new Context().run(() => threadSnapshot()), { chainId: null, bindings: [], left: [] });
  assert.equal(new Context().run(() => runInThreadSnapshot(threadSnapshot(), chainId)), null, 'unarmed stays unarmed');
});

test('bad snapshots and functions are TypeErrors', () => {
  const ok = { chainId: null, bindings: [] };
  assert.throws(() => runInThreadSnapshot(null, () => 1), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => runInThreadSnapshot({ bindings: 'x', chainId: null }, () => 1), { name: 'TypeError' });
  assert.throws(() => runInThreadSnapshot({ chainId: null, bindings: [['a', 'b']] }, () => 1), { name: 'TypeError' });
  assert.throws(() => runInThreadSnapshot({ chainId: null, bindings: [['snap', 'user', {}]] }, () => 1), { name: 'TypeError' });
  assert.throws(() => runInThreadSnapshot({ chainId: null, bindings: [['snap', 'user', 2n ** 70n]] }, () => 1), { name: 'RangeError' });
  assert.throws(() => runInThreadSnapshot(ok, 'nope'), { name: 'TypeError' });
  assert.equal(runInThreadSnapshot(ok, (a, b) => a + b, 2, 3), 5);
});
