'use strict';
// uvwool/otel's ContextManager under @opentelemetry/api (installed by the
// otel.setup fixture, tests/otel/package.json pins the versions): OTel's
// context follows awaits, timers and uvwool tasks; bind, enable/disable; and
// baggage extracted by @opentelemetry/core's W3CBaggagePropagator comes back
// out of inject unchanged after crossing async edges in this manager.
const test = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const { setTimeout: sleep } = require('node:timers/promises');
const api = require('@opentelemetry/api');
const { W3CBaggagePropagator } = require('@opentelemetry/core');
const { uvwool, pkg } = require('./helpers');
const { UvwoolContextManager } = require(`${pkg}/otel`);

const manager = new UvwoolContextManager();
assert.equal(api.context.setGlobalContextManager(manager.enable()), true, 'registered as the global manager');
const KEY = api.createContextKey('uvwool test key');
const withValue = (v) => api.ROOT_CONTEXT.setValue(KEY, v);
const seen = () => api.context.active().getValue(KEY);

test('with() makes a context active for fn, its awaits, timers and callbacks, and only there', async () => {
  assert.equal(api.context.active(), api.ROOT_CONTEXT);
  const result = await api.context.with(withValue('a'), async (x) => {
    const out = [seen(), x];
    await sleep(1);
    out.push(seen());
    out.push(await new Promise((resolve) => setImmediate(() => resolve(seen()))));
    out.push(await new Promise((resolve) => process.nextTick(() => resolve(seen()))));
    out.push(api.context.with(withValue('b'), () => seen()));
    out.push(seen());
    return out;
  }, undefined, 'arg');
  assert.deepEqual(result, ['a', 'arg', 'a', 'a', 'a', 'b', 'a']);
  assert.equal(api.context.active(), api.ROOT_CONTEXT);
});

test('with() passes thisArg and returns what fn returns', () => {
  const self = { tag: 'self' };
  assert.equal(manager.with(withValue(1), function () { return this.tag; }, self), 'self');
  assert.throws(() => manager.with(withValue(1), 'not a function'), { name: 'TypeError', code: 'UVW_EINVAL' });
});

test('the OTel context is a uvwool value: a task forks it, and what a task sets does not reach its creator', async () => {
  await api.context.with(withValue('parent'), async () => {
    const inTask = await uvwool.spawn(async () => {
      const before = seen();
      return api.context.with(withValue('task'), async () => {
        await sleep(1);
        return [before, seen()];
      });
    });
    assert.deepEqual(inTask, ['parent', 'task']);
    assert.equal(seen(), 'parent');
  });
});

test('bind(): a function and an EventEmitter run in the bound context wherever they fire', async () => {
  const fn = manager.bind(withValue('bound'), function (a, b) { return [seen(), a + b, this]; });
  assert.equal(fn.length, 2);
  assert.deepEqual(fn.call('me', 1, 2), ['bound', 3, 'me']);
  const ee = manager.bind(withValue('emitter'), new EventEmitter());
  const got = [];
  const listener = (x) => got.push([x, seen()]);
  ee.on('e', listener);
  ee.once('e', (x) => got.push(['once', x, seen()]));
  api.context.with(withValue('emit-site'), () => ee.emit('e', 1));
  ee.removeListener('e', listener);
  ee.emit('e', 2);
  assert.deepEqual(got, [[1, 'emitter'], ['once', 1, 'emitter']]);
  assert.equal(ee.listenerCount('e'), 0);
  assert.equal(manager.bind(withValue('x'), 42), 42, 'anything else is returned as it is');
});

test('disable(): active() is the root and with() only calls fn; enable() brings the contexts back', () => {
  api.context.with(withValue('on'), () => {
    manager.disable();
    try {
      assert.equal(api.context.active(), api.ROOT_CONTEXT);
      assert.equal(manager.with(withValue('ignored'), () => seen()), undefined);
    } finally {
      manager.enable();
    }
    assert.equal(seen(), 'on');
  });
});

test('a span set in the context survives awaits', async () => {
  const spanContext = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
  const ctx = api.trace.setSpanContext(api.ROOT_CONTEXT, spanContext);
  const traceId = await api.context.with(ctx, async () => {
    await sleep(1);
    return api.trace.getSpanContext(api.context.active())?.traceId;
  });
  assert.equal(traceId, spanContext.traceId);
});

test('baggage: extract, carry across async edges in this manager, inject: the same header as OTel makes', async () => {
  const propagator = new W3CBaggagePropagator();
  api.propagation.setGlobalPropagator(propagator);
  const header = 'user=ann,tenant=acme;prop=1,request%20id=r%2042';
  const extracted = api.propagation.extract(api.ROOT_CONTEXT, { baggage: header });
  // The oracle: OTel's own inject of the context it extracted.
  const expected = {};
  api.propagation.inject(extracted, expected);
  assert.ok(expected.baggage.includes('user=ann'));
  const carried = await api.context.with(extracted, async () => {
    await sleep(1);
    const out = await uvwool.spawn(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      const carrier = {};
      api.propagation.inject(api.context.active(), carrier);
      return carrier;
    });
    return out;
  });
  assert.deepEqual(carried, expected);
  const back = api.propagation.getBaggage(api.propagation.extract(api.ROOT_CONTEXT, carried));
  assert.equal(back.getEntry('request id').value, 'r 42');
  assert.equal(back.getEntry('tenant').metadata.toString(), 'prop=1');
});

test('without @opentelemetry/api at hand a root can be passed in', () => {
  const root = { getValue: () => 'root-value' };
  const m = new UvwoolContextManager({ root }).enable();
  assert.equal(m.active(), root);
  assert.throws(() => new UvwoolContextManager(null), { name: 'TypeError' });
});
