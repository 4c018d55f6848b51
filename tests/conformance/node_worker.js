'use strict';
// The Node worker of the conformance matrix: the routines every worker hosts
// (tests/conformance/README.md) on a uvwool.Worker, listening on argv[2].
//   UVWOOL_NODE_PACKAGE=... [UVWOOL_NODE_SAMPLE=...] node node_worker.js ADDRESS
// JavaScript runs on one thread: "another thread" is native code (the
// sample addon's pool work) or a worker_threads Worker given a snapshot.
const { Worker: ThreadWorker } = require('node:worker_threads');
const pkg = process.env.UVWOOL_NODE_PACKAGE || 'uvwool';
const wool = require(pkg);

const address = process.argv[2];
if (!address) {
  console.error('usage: node_worker.js ADDRESS');
  process.exit(2);
}

const V = {};
for (const name of ['request_id', 'tenant', 'counter', 'value', 'back', 'phase']) V[name] = new wool.ContextVar('conf', name);
let cancelledHangs = 0;

const w = new wool.Worker({ onError: (e) => console.error(`node_worker: ${e.message}`) });

w.routine('conf.echo', (v) => v);

w.routine('conf.reflect', () => {
  const v = V.value.get(wool.MISSING);
  if (v === wool.MISSING) return '<missing>';
  V.back.set(v);
  return v;
});

w.routine('conf.mutate', () => {
  V.tenant.set(`${V.tenant.get('')}+w`);
  V.counter.set(V.counter.get(0) + 1);
  return V.request_id.get('<missing>');
});

w.stream('conf.phases', async function* phases() {
  const token = V.phase.set('streaming');
  try {
    const sent = yield 1;
    yield `${sent}/${V.phase.get('')}`;
  } finally {
    V.phase.reset(token);
  }
  return 'done';
});

w.routine('conf.raise_after_set', () => {
  const before = V.tenant.get('');
  V.tenant.set('raised');
  throw new wool.RuntimeError('conf failure', 'UVW_EINVAL', { reason: 'asked', tenant: before });
});

// Native pool work in the routine's context, the plain way (uvw_queue_work
// captures the context; the read on the pool thread trips the guard).
w.routine('conf.offload_plain', () => {
  if (!process.env.UVWOOL_NODE_SAMPLE)
    throw new Error('unsupported: JavaScript runs on one thread; a plain offload is native pool work, and the sample addon that does it is not built');
  const sample = require(process.env.UVWOOL_NODE_SAMPLE);
  return new Promise((resolve, reject) => {
    sample.poolRead('conf', 'request_id', 'queue_work', (r) => {
      if (r.code === 'UVW_OK') resolve(r.value);
      else reject(new wool.ChainContention(`the pool thread's read of (conf, request_id) was refused (kind ${r.kind})`, r.code, { kind: r.kind }));
    });
  });
});

// Node's to_thread: the context's values as a threadSnapshot(), read back
// in a worker_threads Worker (runInThreadSnapshot).
w.routine('conf.offload_to_thread', () => {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const wool = require(workerData.pkg);
    const v = new wool.ContextVar('conf', 'request_id');
    parentPort.postMessage(wool.runInThreadSnapshot(workerData.snap, () => v.get('<missing>')));`;
  const thread = new ThreadWorker(code, { eval: true, workerData: { pkg, snap: wool.threadSnapshot() } });
  return new Promise((resolve, reject) => {
    thread.once('message', resolve);
    thread.once('error', reject);
  });
});

w.routine('conf.bind_opaque', () => {
  V.back.set({ native: 'no codec' });
  V.tenant.set('after-opaque');
  return 'bound';
});

w.routine('conf.hang', function hang() {
  return new Promise((resolve) => {
    this.signal.addEventListener('abort', () => {
      cancelledHangs += 1;
      resolve(null);
    });
  });
});

w.routine('conf.cancelled_count', () => cancelledHangs);

w.stream('conf.die_after_one', async function* dieAfterOne() {
  setTimeout(() => process.exit(0), 20);
  yield 1;
  process.exit(0); // a later step is never answered: the process ends
});

w.routine('conf.chain_id', () => wool.chainId() ?? '<unarmed>');

// A connection per hop, closed after it: a worker keeps no outgoing
// connection open.
w.routine('conf.hop', async (hopAddress, routine) => {
  const conn = wool.connect(hopAddress);
  let result;
  let failure = null;
  try {
    result = await conn.dispatch(routine);
  } catch (e) {
    failure = e;
  }
  await conn.close();
  V.tenant.set(`${V.tenant.get('')}+hop`);
  if (failure !== null) throw failure;
  return result;
});

w.listen(address).then(
  (bound) => {
    console.log(`listening on ${bound}`);
    process.once('SIGTERM', () => w.close());
  },
  (e) => {
    console.error(`node_worker: ${e.message}`);
    process.exit(1);
  },
);
