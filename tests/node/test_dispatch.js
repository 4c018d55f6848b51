'use strict';
// Dispatch from Node to a real uvwool-worker (tests/dispatch/routines.c):
// results, apply-back into the awaiting context and nowhere else, streams as
// async iterators, remote errors, dead and closed connections, the pool.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Worker } = require('node:worker_threads');
const { uvwool, pkg, HEX32 } = require('./helpers');
const { startWorker } = require('./worker');

const { ContextVar, connect, pool, spawn, chainId } = uvwool;
// The routines' variables (namespace "t").
const requestId = new ContextVar('t', 'request_id', { default: '-' });
const tenant = new ContextVar('t', 'tenant', { default: '-' });
const counter = new ContextVar('t', 'counter', { default: 0 });

const rejections = [];
process.on('unhandledRejection', (e) => rejections.push(e));

let worker;
let conn;
test.before(async () => {
  worker = await startWorker();
  conn = connect(worker.address);
});
test.after(async () => {
  await conn.close();
  const how = await worker.stop();
  assert.deepEqual(how, { code: 0, signal: null }, 'the worker shut down cleanly');
  assert.deepEqual(rejections, [], 'no unhandled rejection');
});

// Runs fn in an empty context of its own (the tests share one process).
function fresh(fn) {
  return new uvwool.Context().run(fn);
}

test('a dispatch resolves with the result, and the worker changes are visible after the await', () =>
  fresh(async () => {
    requestId.set('r1');
    const chain = chainId();
    const result = await conn.dispatch('read_and_mutate', 41);
    assert.equal(result, 'saw:r1');
    assert.equal(requestId.get(), 'r1+worker');
    assert.equal(counter.get(), 42);
    assert.equal(chainId(), chain, 'the chain keeps its id across the dispatch');
    // The next dispatch carries the merged state.
    assert.equal(await conn.dispatch('read_and_mutate', 1), 'saw:r1+worker');
    assert.equal(requestId.get(), 'r1+worker+worker');
  }));

test('a dispatch from an unarmed context comes back armed with the id the worker minted', () =>
  fresh(async () => {
    assert.equal(chainId(), null);
    await conn.dispatch('read_and_mutate', 0);
    assert.match(chainId(), HEX32);
    assert.equal(requestId.get(), '-+worker');
  }));

test('the changes do not reach contexts that did not await the dispatch', () =>
  fresh(async () => {
    requestId.set('outer');
    const seen = {};
    const timerBefore = new Promise((resolve) => setTimeout(() => resolve(requestId.get()), 50));
    const sibling = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return requestId.get();
    })();
    const child = spawn(async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return requestId.get();
    });
    const before = uvwool.snapshot();
    await conn.dispatch('read_and_mutate', 0);
    seen.awaiter = requestId.get();
    seen.timer = await timerBefore;
    seen.sibling = await sibling;
    seen.task = await child;
    seen.snapshot = before(() => requestId.get());
    assert.deepEqual(seen, { awaiter: 'outer+worker', timer: 'outer', sibling: 'outer', task: 'outer', snapshot: 'outer' });
  }));

test('a dispatch inside a task applies to the task, not to its creator', () =>
  fresh(async () => {
    requestId.set('parent');
    const inTask = await spawn(async () => {
      await conn.dispatch('read_and_mutate', 0);
      return requestId.get();
    });
    assert.equal(inTask, 'parent+worker');
    assert.equal(requestId.get(), 'parent');
  }));

test('values cross both ways: int64 beyond 2^53 as BigInt, bytes as Buffer, doubles, null', async () => {
  assert.equal(await conn.dispatch('echo', 2n ** 60n), 2n ** 60n);
  assert.deepEqual(await conn.dispatch('echo', Buffer.from([0, 1, 255])), Buffer.from([0, 1, 255]));
  assert.equal(await conn.dispatch('echo', 1.5), 1.5);
  assert.equal(await conn.dispatch('echo', null), null);
  assert.equal(await conn.dispatch('echo'), null, 'no value: null');
});

test('a routine that raises rejects with a WoolError carrying its fields; what it set before raising comes back', () =>
  fresh(async () => {
    requestId.set('before');
    const e = await conn.dispatch('raise_after_set').then(
      () => assert.fail('resolved'),
      (err) => err,
    );
    assert.ok(e instanceof uvwool.WoolError);
    assert.equal(e.code, 'UVW_EREMOTE');
    assert.equal(e.status, 'UVW_EREMOTE');
    assert.equal(e.routine, 'raise_after_set');
    assert.equal(e.wireType, 'AppError');
    assert.equal(e.reason, 'asked to');
    assert.equal(e.message, 'the routine was asked to fail');
    assert.equal(requestId.get(), 'set-before-raise');
  }));

test('an unknown routine is refused (UVW_ENACK); a value that cannot cross the wire rejects and changes nothing', () =>
  fresh(async () => {
    await assert.rejects(conn.dispatch('no_such_routine'), (e) => e instanceof uvwool.WoolError && e.status === 'UVW_ENACK');
    requestId.set('kept');
    const chain = chainId();
    await assert.rejects(conn.dispatch('echo', { an: 'object' }), (e) => e instanceof uvwool.SerializationError);
    assert.equal(requestId.get(), 'kept');
    assert.equal(chainId(), chain);
  }));

test('bad arguments are TypeErrors thrown at the call', () => {
  assert.throws(() => conn.dispatch(42), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => conn.dispatch(''), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => conn.stream(null), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => connect(7), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => connect('pipe:/x', { timeoutMs: -1 }), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => pool([]), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => pool(['pipe:/x', 3]), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => connect('nonsense'), (e) => e instanceof uvwool.WoolError && e.code === 'UVW_EINVAL');
});

test('a stream is an async iterator; each step sees the worker changes of that step', () =>
  fresh(async () => {
    requestId.set('s');
    const seen = [];
    for await (const v of conn.stream('counter_stream')) seen.push([v, counter.get(), tenant.get()]);
    assert.deepEqual(seen, [
      ['1:s:stream-tenant', 1, 'stream-tenant'],
      ['reset:ok', 2, '-'],
      ['3:s:-', 3, '-'],
      ['4:s:-', 4, '-'],
      ['5:s:-', 5, '-'],
    ]);
  }));

test('every step of a stream runs on the JS chain: a token set before a yield is reset after it, across JS writes', () =>
  fresh(async () => {
    requestId.set('x');
    const s = conn.stream('counter_stream');
    assert.equal((await s.next()).value, '1:x:stream-tenant');
    // A JS write between the steps: a new state, mirrored into C afresh.
    requestId.set('y');
    assert.deepEqual(await s.next(), { value: 'reset:ok', done: false });
    assert.deepEqual(await s.next(), { value: '3:y:-', done: false });
    s.close();
  }));

test('send, throw and the end of a stream', () =>
  fresh(async () => {
    const s = conn.stream('counter_stream');
    await s.next();
    assert.deepEqual(await s.send(21), { value: 42, done: false });
    assert.equal(counter.get(), 21);
    assert.deepEqual(await s.next(5), { value: 10, done: false }, 'next(v) sends v');
    assert.deepEqual(await s.throw(new Error('boom')), { value: 'caught:boom', done: true });
    assert.deepEqual(await s.next(), { value: undefined, done: true });
    await assert.rejects(s.send(1), { name: 'RuntimeError', code: 'UVW_EINVAL' });
    await assert.rejects(s.throw('not an error'), { name: 'TypeError' });
  }));

test('breaking out of a stream closes it; a second step while one is pending is refused', async () => {
  const s = conn.stream('counter_stream');
  for await (const v of s) {
    assert.equal(v.slice(0, 2), '1:');
    break;
  }
  assert.deepEqual(await s.next(), { value: undefined, done: true });
  const t = conn.stream('counter_stream');
  const first = t.next();
  await assert.rejects(t.next(), { name: 'RuntimeError', code: 'UVW_EINVAL' });
  assert.equal((await first).done, false);
  t.close();
});

test('return() with a step pending rejects that step UVW_ECANCELED, once; the connection closes cleanly', async () => {
  // The step after a value was made from inside the previous step's reply
  // (microtasks run there): the stream used to be freed twice.
  const c = connect(worker.address);
  const s = c.stream('hang_after_one');
  assert.equal((await s.next()).value, 'one');
  const pending = s.next();
  assert.deepEqual(await s.return(), { value: undefined, done: true });
  await assert.rejects(pending, (e) => e instanceof uvwool.WoolError && e.code === 'UVW_ECANCELED');
  assert.deepEqual(await s.next(), { value: undefined, done: true });
  await c.close();
});

test('closing a connection rejects what it still waits for, then refuses dispatches', async () => {
  const c = connect(worker.address);
  const hanging = c.dispatch('hang');
  const streaming = c.stream('counter_stream');
  const closed = c.close();
  assert.equal(c.close(), closed, 'close is idempotent');
  await assert.rejects(hanging, (e) => e.status === 'UVW_ECANCELED');
  await closed;
  assert.equal(c.closed, true);
  assert.equal(c.dead, true);
  await assert.rejects(c.dispatch('echo', 1), (e) => {
    assert.equal(e.name, 'RuntimeError');
    assert.equal(e.code, 'UVW_ECONNRESET');
    assert.match(e.message, /is closed/);
    assert.ok(e.message.includes(worker.address));
    return true;
  });
  // A stream opened on it is detached: its steps are refused.
  await assert.rejects(streaming.next(), (e) => e instanceof uvwool.WoolError && e.code === 'UVW_ECANCELED' && /was closed/.test(e.message));
  await assert.rejects(c.stream('counter_stream').next(), { code: 'UVW_ECONNRESET' });
});

test('a connection to nowhere, and one whose worker dies, reject with UVW_ECONNRESET', async () => {
  const nowhere = connect('pipe:/nonexistent/uvwool.sock');
  await assert.rejects(nowhere.dispatch('echo', 1), (e) => {
    assert.ok(e instanceof uvwool.WoolError);
    assert.equal(e.code, 'UVW_ECONNRESET');
    assert.match(e.message, /nonexistent/);
    return true;
  });
  assert.equal(nowhere.dead, true);
  await assert.rejects(nowhere.dispatch('echo', 1), { code: 'UVW_ECONNRESET' });
  await nowhere.close();

  const doomed = await startWorker();
  const c = connect(doomed.address);
  assert.equal(await c.dispatch('echo', 'up'), 'up');
  // Handlers attached now: both reject while the worker is being killed.
  const hanging = c.dispatch('hang').then(() => assert.fail('resolved'), (e) => e);
  const stream = c.stream('hang_after_one');
  assert.equal((await stream.next()).value, 'one');
  const step = stream.next().then(() => assert.fail('resolved'), (e) => e);
  await doomed.kill();
  assert.equal((await hanging).code, 'UVW_ECONNRESET');
  assert.equal((await step).code, 'UVW_ECONNRESET');
  assert.equal(c.dead, true);
  await c.close();
});

test('a pool spreads dispatches over its workers and skips a dead one', async () => {
  const a = await startWorker();
  const b = await startWorker();
  const p = pool([a.address, b.address]);
  const pids = new Set();
  for (let i = 0; i < 4; i++) pids.add(await p.dispatch('whoami'));
  assert.deepEqual([...pids].sort(), [a.pid, b.pid].sort());
  await b.kill();
  // The death is noticed by a dispatch that fails on it; after that every
  // dispatch goes to the live worker.
  const after = [];
  for (let i = 0; i < 4; i++) after.push(await p.dispatch('whoami').catch((e) => e.code));
  assert.deepEqual(after.slice(-2), [a.pid, a.pid]);
  assert.ok(after.every((r) => r === a.pid || r === 'UVW_ECONNRESET'), JSON.stringify(after));
  for await (const v of p.stream('counter_stream')) if (v.startsWith('1:')) break;
  await p.close();
  await assert.rejects(p.dispatch('whoami'), { code: 'UVW_ECONNRESET' });
  await a.stop();
});

test('a worker thread dispatches on its own loop and exits with its connection open', async () => {
  const body = `
    const { parentPort, workerData } = require('node:worker_threads');
    const u = require(workerData.pkg);
    const rid = new u.ContextVar('t', 'request_id', { default: '-' });
    const c = u.connect(workerData.address);
    (async () => {
      rid.set('from-thread');
      const r = await c.dispatch('read_and_mutate', 1);
      parentPort.postMessage([r, rid.get()]);
      c.dispatch('hang').catch(() => {});
    })();
  `;
  const w = new Worker(body, { eval: true, workerData: { pkg, address: worker.address } });
  const msg = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  assert.deepEqual(msg, ['saw:from-thread', 'from-thread+worker']);
  assert.equal(await w.terminate(), 1);
});

// A child process whose only handle is the connection: does it end on its own?
function childWith(body) {
  const { spawn: spawnChild } = require('node:child_process');
  const child = spawnChild(process.execPath, ['-e', body], {
    env: { ...process.env, UVWOOL_PKG: pkg, UVWOOL_ADDRESS: worker.address },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  return {
    // {code, out} once it exited, or 'still running' after ms (then killed).
    exit: (ms) => new Promise((resolve) => {
      const t = setTimeout(() => { child.kill('SIGKILL'); resolve('still running'); }, ms);
      child.on('exit', (code) => { clearTimeout(t); resolve({ code, out }); });
    }),
  };
}
const childPrelude = `
  const u = require(process.env.UVWOOL_PKG);
  const rid = new u.ContextVar('t', 'request_id', { default: '-' });
  const c = u.connect(process.env.UVWOOL_ADDRESS);
`;

test('unref(): the process ends with the connection idle, never before an awaited reply', async () => {
  const unrefd = childWith(`${childPrelude}
    if (c.unref() !== c) throw new Error('unref() returns the connection');
    rid.run('child', async () => {
      const r = await c.dispatch('sleep', 300);   // nothing else holds the loop
      const s = c.stream('counter_stream');
      const step = await s.next();                 // a stream step holds it too
      console.log(JSON.stringify([r, rid.get(), step.value]));
    });
  `);
  const done = await unrefd.exit(20000);
  assert.notEqual(done, 'still running', 'an idle unref\'d connection kept the process alive');
  assert.equal(done.code, 0);
  assert.deepEqual(JSON.parse(done.out), ['slept', 'child', '1:child:stream-tenant'],
    'both awaited replies came before the process ended');

  // The default, and ref() after unref(): the open connection holds the process.
  for (const body of ['', 'c.unref().ref();']) {
    const held = childWith(`${childPrelude} ${body} c.dispatch('echo', 1).then((v) => console.log(v));`);
    assert.equal(await held.exit(1500), 'still running', `with ${body || 'the default'}, the process stayed`);
  }
});

test('streamWith: the handshake bound travels with the Task; an AbortSignal ends the stream', async () => {
  const plain = conn.stream('timeout_seen_stream');
  assert.equal((await plain.next()).value, 5000, "the connection's default");
  plain.close();
  const bounded = conn.streamWith({ timeoutMs: 4321 }, 'timeout_seen_stream');
  assert.equal((await bounded.next()).value, 4321);
  bounded.close();

  const told = await conn.dispatch('cancelled_count');
  const ac = new AbortController();
  const s = conn.streamWith({ signal: ac.signal }, 'hang_after_one');
  assert.equal((await s.next()).value, 'one');
  const pending = s.next();
  ac.abort();
  await assert.rejects(pending, (e) => e instanceof uvwool.WoolError && e.code === 'UVW_ECANCELED');
  assert.deepEqual(await s.next(), { value: undefined, done: true }, 'later steps: done');
  assert.equal(await conn.dispatch('cancelled_count'), told + 1, 'the routine was told');
  ac.abort(); // a second abort does nothing

  // A stream that ended first drops its listener: a later abort changes nothing.
  const later = new AbortController();
  const t = conn.streamWith({ signal: later.signal }, 'counter_stream');
  assert.equal((await t.next()).done, false);
  t.close();
  later.abort();
  assert.deepEqual(await t.next(), { value: undefined, done: true });

  const gone = new AbortController();
  gone.abort(new Error('before sending'));
  const never = conn.streamWith({ signal: gone.signal }, 'hang_after_one');
  await assert.rejects(never.next(), { message: 'before sending' });
  assert.deepEqual(await never.next(), { value: undefined, done: true });
  assert.equal(await conn.dispatch('cancelled_count'), told + 1, 'nothing was sent');
  assert.throws(() => conn.streamWith(null, 'counter_stream'), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => conn.streamWith({ signal: {} }, 'counter_stream'), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => conn.streamWith({ timeoutMs: -1 }, 'counter_stream'), { name: 'TypeError', code: 'UVW_EINVAL' });
});

test('dispatchWith: a per-dispatch handshake bound travels to the worker; an AbortSignal cancels', async () => {
  assert.equal(await conn.dispatch('timeout_seen'), 5000, "the connection's default");
  assert.equal(await conn.dispatchWith({ timeoutMs: 1234 }, 'timeout_seen'), 1234);
  const told = await conn.dispatch('cancelled_count');
  const ac = new AbortController();
  const hanging = conn.dispatchWith({ signal: ac.signal }, 'hang');
  ac.abort();
  await assert.rejects(hanging, (e) => e instanceof uvwool.WoolError && e.status === 'UVW_ECANCELED');
  assert.equal(await conn.dispatch('cancelled_count'), told + 1, 'the worker was told');
  ac.abort(); // a second abort of a settled dispatch does nothing
  const gone = new AbortController();
  gone.abort(new Error('before sending'));
  await assert.rejects(conn.dispatchWith({ signal: gone.signal }, 'hang'), { message: 'before sending' });
  assert.equal(await conn.dispatch('cancelled_count'), told + 1, 'nothing was sent');
  assert.throws(() => conn.dispatchWith(null, 'echo'), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => conn.dispatchWith({ signal: {} }, 'echo'), { name: 'TypeError', code: 'UVW_EINVAL' });
  assert.throws(() => conn.dispatchWith({ timeoutMs: 1.5 }, 'echo'), { name: 'TypeError', code: 'UVW_EINVAL' });
});
