'use strict';
// Hosting routines in Node (uvwool.Worker): the Node caller dispatching to
// a Node worker in a child process (hosted_worker.js): values both ways,
// the caller's context inside the routine and its writes back, streams,
// errors, cancellation; and, in this process, bad registrations and what a
// worker does to the process's lifetime.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const { uvwool, pkg, HEX32 } = require('./helpers');
const { startNodeWorker } = require('./worker');

const { ContextVar, Context, Worker, connect, chainId } = uvwool;
const tenant = new ContextVar('h', 'tenant');
const counter = new ContextVar('h', 'counter');
const kinds = new ContextVar('h', 'kinds');
const phase = new ContextVar('h', 'phase');

let worker;
let conn;
test.before(async () => {
  worker = await startNodeWorker(path.join(__dirname, 'hosted_worker.js'));
  conn = connect(worker.address);
});
test.after(async () => {
  await conn.close();
  assert.deepEqual(await worker.stop(), { code: 0, signal: null }, 'the Node worker closed and exited 0 on SIGTERM');
});

const fresh = (fn) => new Context().run(fn);

test('every kind of value crosses to a JS routine and back unchanged', () =>
  fresh(async () => {
    const values = [null, true, false, 0, -42, 2 ** 53, 1.5, -0.25, '', 'héllo ✓', 2n ** 63n - 1n, -(2n ** 63n), 2n ** 60n];
    for (const v of values) assert.deepEqual(await conn.dispatch('h.echo', v), v, `echo ${String(v)}`);
    const bytes = await conn.dispatch('h.echo', Buffer.from([0, 255, 16]));
    assert.ok(Buffer.isBuffer(bytes), 'bytes come back as bytes, not a string');
    assert.deepEqual([...bytes], [0, 255, 16]);
    assert.equal((await conn.dispatch('h.echo', new Uint8Array(0))).length, 0);
    assert.equal(await conn.dispatch('h.echo', 1, 'two', null), 3, 'every argument reaches the routine');
  }));

test('the routine reads the caller context and its bindings of every kind come back', () =>
  fresh(async () => {
    kinds.set('from-caller');
    assert.equal(await conn.dispatch('h.kinds', 1, 'a', Buffer.from('b'), 2n ** 60n, true, null), 'from-caller');
    assert.equal(kinds.get(), 'number,string,bytes,bigint,boolean,object');
    for (const v of [null, false, -7, 0.5, 'text', 2n ** 62n]) {
      await conn.dispatch('h.bind', v);
      assert.deepEqual(kinds.get(), v, `a routine's binding of ${String(v)} comes back`);
    }
    await conn.dispatch('h.bind', Buffer.from('xy'));
    assert.ok(Buffer.isBuffer(kinds.get()));
  }));

test('writes made before and after the routine awaits all come back; the chain is the caller one', () =>
  fresh(async () => {
    tenant.set('acme');
    const chain = chainId();
    assert.equal(await conn.dispatch('h.mutate_across_awaits'), 'acme');
    assert.equal(tenant.get(), 'acme+first+second');
    assert.equal(counter.get(), 1);
    assert.equal(chainId(), chain);
    assert.match(chain, HEX32);
  }));

test('a reset to unbound crosses as unbound; a scoped run leaves nothing behind', () =>
  fresh(async () => {
    assert.equal(await conn.dispatch('h.reset_to_missing'), '<missing>');
    assert.equal(tenant.get('<unbound>'), '<unbound>');
    tenant.set('kept');
    assert.equal(await conn.dispatch('h.scoped'), 'scoped');
    assert.equal(tenant.get(), 'kept', 'ContextVar.run inside the routine is not part of its answer');
  }));

test('a routine that dispatches: the other reply is part of its answer, and its token resets after it', () =>
  fresh(async () => {
    tenant.set('caller');
    assert.equal(await conn.dispatch('h.token_across_dispatch', worker.address), 'caller|from-inner');
    assert.equal(tenant.get(), 'caller', 'the reset restored the caller value');
    assert.equal(kinds.get(), 'from-inner', 'the inner dispatch binding came back through both');
  }));

test('a stream: set before its first yield, SEND, THROW caught by the generator, reset after its last', () =>
  fresh(async () => {
    phase.set('before');
    const s = conn.stream('h.phases', 'x');
    assert.deepEqual(await s.next(), { value: 1, done: false });
    assert.equal(phase.get(), 'streaming:x', 'the set before the yield is visible between steps');
    assert.deepEqual(await s.send('ping'), { value: 'ping/streaming:x', done: false });
    assert.deepEqual(await s.throw(new Error('recover')), { value: 'recovered:recover', done: false });
    assert.deepEqual(await s.send('pong'), { value: 'pong/streaming:x', done: false });
    assert.deepEqual(await s.next(), { value: 'done:before', done: true });
    assert.equal(phase.get(), 'before', 'the reset after the last yield restores the caller value');
  }));

test('a THROW the generator does not catch ends the stream with that error and its reset', () =>
  fresh(async () => {
    const s = conn.stream('h.phases', 'y');
    await s.next();
    await assert.rejects(s.throw(new Error('stop here')), (e) => e.status === 'UVW_EREMOTE' && /stop here/.test(e.message));
    assert.equal(phase.get('<unbound>'), '<unbound>');
  }));

test('a WoolError crosses with its class, code and fields, and the writes made before it', () =>
  fresh(async () => {
    counter.set(7);
    await assert.rejects(conn.dispatch('h.wool_error'), (e) => {
      assert.ok(e instanceof uvwool.RuntimeError);
      assert.equal(e.code, 'UVW_EINVAL');
      assert.equal(e.status, 'UVW_EREMOTE');
      assert.equal(e.message, 'asked to fail');
      assert.deepEqual({ reason: e.fields.reason, seen: e.fields.seen }, { reason: 'asked', seen: '7' });
      return true;
    });
    assert.equal(tenant.get(), 'raised');
  }));

test('another Error crosses with its message and name; a thrown string with its text', () =>
  fresh(async () => {
    await assert.rejects(conn.dispatch('h.type_error'), (e) => e.message === 'not a number' && e.fields.wire_type === 'TypeError');
    await assert.rejects(conn.dispatch('h.throw_string'), (e) => e.message === 'plain text' && e.status === 'UVW_EREMOTE');
  }));

test('a returned value with no codec reaches the caller as a clear error', () =>
  fresh(() =>
    assert.rejects(conn.dispatch('h.no_codec'), (e) => e instanceof uvwool.SerializationError && /h\.no_codec answered a value of type Object, which has no codec/.test(e.message)),
  ));

test('the call: this and currentCall() are the same, with the routine name and the handshake bound', () =>
  fresh(async () => {
    assert.equal(await conn.dispatch('h.call_info'), 'true,h.call_info,5000,true,false');
    assert.equal(await conn.dispatchWith({ timeoutMs: 1234 }, 'h.call_info'), 'true,h.call_info,1234,true,false');
    assert.equal(uvwool.currentCall(), null, 'no call outside a routine');
  }));

test('a cancelled dispatch aborts the routine signal; a stream closed mid-way runs the generator finally', () =>
  fresh(async () => {
    const ac = new AbortController();
    const pending = conn.dispatchWith({ signal: ac.signal }, 'h.wait_cancel');
    setTimeout(() => ac.abort(), 30);
    await assert.rejects(pending, (e) => e.code === 'UVW_ECANCELED');
    const s = conn.stream('h.slow');
    assert.deepEqual(await s.next(), { value: 'one', done: false });
    s.close();
    // The tests above ended two h.phases streams; h.slow is the third.
    const want = '1,3';
    let counts;
    for (let i = 0; i < 100 && counts !== want; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 10));
      counts = await conn.dispatch('h.counts');
    }
    assert.equal(counts, want, 'routines that saw their cancellation, generators whose finally ran');
  }));

// ---- in this process ---------------------------------------------------------

test('bad registrations and options get clear errors', async () => {
  const w = new Worker();
  assert.throws(() => w.routine('x', 42), { code: 'UVW_EINVAL', message: /routine x must be a function, got number/ });
  assert.throws(() => w.routine('', () => 1), /non-empty string/);
  assert.throws(() => w.routine('g', async function* gen() {}), /generator function: register it with stream\(\)/);
  assert.throws(() => w.stream('s', async () => 1), /must be an async generator function .* got a plain AsyncFunction/);
  w.routine('dup', () => 1);
  assert.throws(() => w.routine('dup', () => 2), /routine dup is already registered/);
  assert.throws(() => w.stream('dup', async function* gen() {}), /already registered/);
  assert.throws(() => new Worker({ limit: {} }), /unknown Worker option "limit"/);
  assert.throws(() => new Worker({ limits: { maxChain: 1 } }), /unknown limit "maxChain"/);
  assert.throws(() => new Worker({ limits: { maxChains: -1 } }), /limits.maxChains must be an integer/);
  assert.throws(() => new Worker({ limits: { maxChains: 65 } }), (e) => e.code === 'UVW_EINVAL', 'the core refuses over 64 chains');
  assert.throws(() => new Worker({ socketMode: 0o1777 }), /socketMode must be an integer from 0 to 511/);
  assert.throws(() => new Worker({ allowUids: 5 }), /allowUids must be an array/);
  assert.throws(() => new Worker({ onError: 'log' }), /onError must be a function/);
  await assert.rejects(w.listen('nowhere'), (e) => e.code === 'UVW_EINVAL');
  await assert.rejects(w.listen('tcp:8.8.8.8:0'), (e) => e.code === 'UVW_EINVAL', 'a remote address needs allowRemote');
  await w.close();
  assert.throws(() => w.routine('late', () => 1), /a closed Worker cannot register a routine/);
  await assert.rejects(w.listen('tcp:127.0.0.1:0'), /closed Worker/);
});

test('limits, options and stats are the C worker ones', async () => {
  const w = new Worker({ limits: { maxChains: 3, idleTimeoutMs: 1000 }, socketMode: 0o660, allowRemote: false });
  const limits = w.limits();
  assert.equal(limits.maxChains, 3);
  assert.equal(limits.idleTimeoutMs, 1000);
  assert.equal(limits.maxDispatches, 1024, 'a limit left out keeps the C default');
  const bound = await w.listen('tcp:127.0.0.1:0');
  assert.match(bound, /^tcp:127\.0\.0\.1:\d+$/);
  assert.equal(w.address(0), bound);
  assert.throws(() => w.address(1), (e) => e.code === 'UVW_EINVAL');
  w.routine('late.echo', (v) => v);
  const c = connect(bound);
  assert.equal(await c.dispatch('late.echo', 'registered after listen'), 'registered after listen');
  assert.equal(w.stats().connections, 1);
  await c.close();
  await w.close();
});

test('socket mode and peer lists: the socket file gets the mode, the worker own uid is served, close removes the file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvwool-hosting-'));
  const file = path.join(dir, 'w.sock');
  const w = new Worker({ socketMode: 0o660, socketGroup: -1, allowUids: [12345], allowGids: [12345] });
  w.routine('mode.echo', (v) => v);
  assert.equal(await w.listen(`pipe:${file}`), `pipe:${file}`);
  assert.equal(fs.statSync(file).mode & 0o777, 0o660);
  const c = connect(`pipe:${file}`);
  assert.equal(await c.dispatch('mode.echo', 'same uid'), 'same uid');
  await c.close();
  await w.close();
  assert.equal(fs.existsSync(file), false, 'the socket file is removed at close');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('close() while a stream waits: the generator hears of it from the loop, after close() returned', async () => {
  const w = new Worker();
  const events = [];
  w.stream('wait.stream', async function* waiting() {
    try {
      yield 1;
    } catch (e) {
      events.push(`thrown:${e.code}`);
      throw e;
    }
  });
  const bound = await w.listen('tcp:127.0.0.1:0');
  const c = connect(bound);
  const s = c.stream('wait.stream');
  assert.deepEqual(await s.next(), { value: 1, done: false });
  const closed = w.close();
  events.push('close returned');
  await closed;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(events, ['close returned', 'thrown:UVW_ECONNRESET']);
  await c.close();
});

test('a peer sending garbage is dropped and reported to onError, from the loop', async () => {
  const reported = [];
  const w = new Worker({ onError: (e) => reported.push(e) });
  w.routine('still.here', () => 'served');
  const bound = await w.listen('tcp:127.0.0.1:0');
  const [host, port] = bound.slice('tcp:'.length).split(':');
  const peer = net.connect(Number(port), host);
  await new Promise((resolve) => peer.once('connect', resolve));
  const closed = new Promise((resolve) => peer.once('close', resolve));
  peer.write(Buffer.alloc(64, 0xff));
  await closed;
  for (let i = 0; i < 50 && reported.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(reported.length, 1, 'one report for the dropped peer');
  assert.ok(reported[0] instanceof uvwool.WoolError, String(reported[0]));
  assert.match(reported[0].code, /^UVW_E/);
  const c = connect(bound);
  assert.equal(await c.dispatch('still.here'), 'served', 'the worker serves everyone else');
  await c.close();
  await w.close();
});

// A child process: does a listening worker keep it alive?
function lifetime(body) {
  const script = `const { Worker } = require(${JSON.stringify(pkg)}); const w = new Worker(); ${body}`;
  return spawnSync(process.execPath, ['-e', script], { timeout: 3000, encoding: 'utf8' });
}

test('a listening worker keeps the process alive; unref() lets it exit, ref() keeps it again', () => {
  const alive = lifetime("w.listen('tcp:127.0.0.1:0')");
  assert.equal(alive.signal, 'SIGTERM', 'killed by the timeout: the worker kept the process alive');
  const unrefd = lifetime("w.listen('tcp:127.0.0.1:0').then(() => { w.unref(); console.log('unrefd'); })");
  assert.equal(unrefd.status, 0, unrefd.stderr);
  assert.equal(unrefd.stdout.trim(), 'unrefd');
  const reref = lifetime("w.unref(); w.listen('tcp:127.0.0.1:0').then(() => w.ref())");
  assert.equal(reref.signal, 'SIGTERM', 'ref() after unref() keeps the process alive again');
  const idle = lifetime("w.routine('x', () => 1)");
  assert.equal(idle.status, 0, 'a worker that never listened keeps nothing alive');
});
