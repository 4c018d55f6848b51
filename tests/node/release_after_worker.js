'use strict';
// Run under valgrind by CTest (node.release_after_worker): a worker thread
// binds a JS object, the sample addon keeps a C reference to it, the worker
// exits (its env is torn down), then the main thread drops that reference
// on a pool thread. The release must not touch the dead env's memory.
const assert = require('node:assert/strict');
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const pkg = process.env.UVWOOL_NODE_PACKAGE;
const sample = path.join(process.env.UVWOOL_NODE_SAMPLE, 'index.js');
const s = require(sample);
require(pkg);
const body = `const u = require(${JSON.stringify(pkg)}); const s = require(${JSON.stringify(sample)});
const v = new u.ContextVar('release', 'after_worker');
v.run({ big: 1 }, () => s.hold('release', 'after_worker'));`;
let released = false;
new Worker(body, { eval: true }).on('exit', (code) => {
  assert.equal(code, 0);
  s.releaseOnPool(() => { released = true; });
});
process.on('exit', () => {
  assert.equal(released, true, 'the pool release ran and called back');
  console.log('released after the worker env is gone');
});
