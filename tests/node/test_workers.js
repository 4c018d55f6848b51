'use strict';
// worker_threads: the package (and its addon, per-env instance data) loads
// in a worker; the worker's contexts are its own; the same module code
// declaring the same variables in a worker shares them instead of colliding.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Worker } = require('node:worker_threads');
const { uvwool, pkg, samplePath } = require('./helpers');

const body = `
const { parentPort, workerData } = require('node:worker_threads');
const u = require(workerData.pkg);
const v = new u.ContextVar('workers', 'shared', { default: 'worker-default' });
const out = { before: v.get(), nativeBefore: u.native.get(v) };
v.run('in-worker', () => { out.inside = v.get(); out.native = u.native.get(v); out.chain = u.chainId(); });
try { new u.ContextVar('workers', 'shared'); } catch (e) { out.again = e.name; }
if (workerData.sample) {
  const s = require(workerData.sample);
  out.sample = v.run('seen-by-c', () => s.readVar('workers', 'shared'));
}
parentPort.postMessage(out);
`;

function runWorker() {
  return new Promise((resolve, reject) => {
    const w = new Worker(body, { eval: true, workerData: { pkg, sample: samplePath && require('node:path').join(samplePath, 'index.js') } });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

test('the addon loads in worker threads; contexts stay per thread', async () => {
  const v = new uvwool.ContextVar('workers', 'shared', { default: 'main-default' });
  const out = await v.run('main-value', () => runWorker());
  assert.equal(out.before, 'worker-default', "the main thread's binding does not reach the worker");
  assert.equal(out.inside, 'in-worker');
  assert.equal(out.native, 'in-worker', "C in the worker sees the worker's context");
  assert.match(out.chain, /^[0-9a-f]{32}$/);
  assert.equal(out.again, 'ContextVarCollision', 'within one env a second declaration collides');
  if (samplePath) assert.equal(out.sample, 'seen-by-c', "an addon in the worker reads the worker's context");
  assert.equal(v.get(), 'main-default');
  const second = await runWorker();
  assert.equal(second.inside, 'in-worker', 'a second worker loads as well');
});
