'use strict';
// A Node worker process hosting the routines test_hosting.js dispatches to
// (namespace "h"), listening on argv[2]; prints "listening on ADDRESS".
const { uvwool } = require('./helpers');

const { ContextVar, Worker, currentCall, RuntimeError, connect } = uvwool;
const tenant = new ContextVar('h', 'tenant');
const counter = new ContextVar('h', 'counter');
const kinds = new ContextVar('h', 'kinds');
const phase = new ContextVar('h', 'phase');
let cancelled = 0; // routines that saw their call cancelled
let streamsEnded = 0; // generators whose finally ran

const tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const w = new Worker({ limits: { maxChains: 4, maxDispatches: 64 }, dispatchTimeoutMs: 3000 });

w.routine('h.echo', (...args) => (args.length === 1 ? args[0] : args.length));
// Reads the caller's kinds, binds each argument's kind back.
w.routine('h.kinds', (...args) => {
  const seen = kinds.get('<none>');
  kinds.set(args.map((a) => (a instanceof Uint8Array ? 'bytes' : typeof a)).join(','));
  return seen;
});
w.routine('h.bind', (value) => {
  kinds.set(value);
  return null;
});
// Writes before and after awaits: both reach the caller.
w.routine('h.mutate_across_awaits', async () => {
  const before = tenant.get('');
  tenant.set(`${before}+first`);
  await tick(5);
  tenant.set(`${tenant.get()}+second`);
  counter.set(counter.get(0) + 1);
  await tick(5);
  return before;
});
w.routine('h.reset_to_missing', () => {
  const token = tenant.set('temporary');
  tenant.reset(token);
  return tenant.get('<missing>');
});
w.routine('h.scoped', () => tenant.run('scoped', () => tenant.get()));
w.routine('h.wool_error', () => {
  tenant.set('raised');
  throw new RuntimeError('asked to fail', 'UVW_EINVAL', { reason: 'asked', seen: String(counter.get(0)) });
});
w.routine('h.type_error', async () => {
  await tick(1);
  throw new TypeError('not a number');
});
w.routine('h.throw_string', () => {
  throw 'plain text'; // eslint-disable-line no-throw-literal
});
w.routine('h.no_codec', () => ({ an: 'object' }));
w.routine('h.call_info', function info() {
  const call = currentCall();
  return [call === this, call.routine, call.dispatchTimeoutMs, call.dispatchTimeoutSent, call.cancelled].join(',');
});
// Waits for its cancellation, then answers (dropped).
w.routine('h.wait_cancel', async () => {
  const call = currentCall();
  await new Promise((resolve) => call.signal.addEventListener('abort', resolve));
  if (call.cancelled && call.signal.reason.code === 'UVW_ECANCELED') cancelled += 1;
  return 'too late';
});
w.routine('h.counts', () => `${cancelled},${streamsEnded}`);
// A token set before a dispatch of its own resets after that reply.
w.routine('h.token_across_dispatch', async (address) => {
  const token = tenant.set('own');
  const conn = connect(address);
  await conn.dispatch('h.bind', 'from-inner');
  await conn.close();
  tenant.reset(token);
  return `${tenant.get('<missing>')}|${kinds.get()}`;
});

w.stream('h.phases', async function* phases(first) {
  const token = phase.set(`streaming:${first}`);
  try {
    let sent = yield 1;
    while (sent !== null && sent !== undefined) {
      try {
        sent = yield `${sent}/${phase.get()}`;
      } catch (e) {
        if (e.message !== 'recover') throw e;
        sent = yield `recovered:${e.message}`;
      }
    }
  } finally {
    phase.reset(token);
    streamsEnded += 1;
  }
  return `done:${phase.get('<missing>')}`;
});
// Waits (across awaits) between its steps, so a close finds it mid-stream.
w.stream('h.slow', async function* slow() {
  try {
    yield 'one';
    await tick(5);
    yield 'two';
  } finally {
    streamsEnded += 1;
  }
});

w.listen(process.argv[2]).then((bound) => {
  console.log(`listening on ${bound}`);
  process.once('SIGTERM', () => w.close().then(() => process.exit(0)));
});
