'use strict';
// GC safety (--expose-gc): values held by a context, a token or the C
// mirror stay alive while reachable and are collected once nothing holds
// them, also after native code read them through the mirror (the addon
// deletes its references on the JS thread, from Node's loop).
const test = require('node:test');
const assert = require('node:assert/strict');
const { uvwool, freshVar } = require('./helpers');

const gc = globalThis.gc;
const skip = !gc && 'needs --expose-gc';
const tick = () => new Promise((r) => setTimeout(r, 1));

async function collectedAll(refs) {
  for (let i = 0; i < 30 && refs.some((r) => r.deref() !== undefined); i++) {
    gc();
    await tick();
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}

// Reads return primitives only: a value a test function held in a local
// could stay alive in the test's own frame.
test('a bound object survives forced GCs between events, in JS and in the C mirror', { skip }, async () => {
  const v = freshVar({ default: null });
  const ctx = new uvwool.Context();
  const state = {};
  ctx.run(() => {
    const o = { payload: new Array(1000).fill(7) };
    state.ref = new WeakRef(o);
    state.token = v.set(o);
  });
  const viaJs = () => ctx.run(() => v.get() === state.ref.deref() && v.get().payload.length === 1000);
  const viaC = () => ctx.run(() => uvwool.native.get(v) === state.ref.deref());
  for (let i = 0; i < 5; i++) {
    gc();
    await tick();
    assert.equal(viaJs(), true, 'still reachable through the context');
    assert.equal(viaC(), true, 'and through the C mirror');
  }
  ctx.run(() => v.reset(state.token));
  assert.equal(ctx.run(() => v.get()), null);
});

test('a captured callback keeps its context alive until it has run', { skip }, async () => {
  const v = freshVar({ default: null });
  let ref;
  const seen = await new Promise((resolve) => {
    const o = { id: 'kept' };
    ref = new WeakRef(o);
    v.run(o, () => setTimeout(() => resolve(v.get().id), 30));
    setTimeout(() => {
      gc();
      assert.notEqual(ref.deref(), undefined, 'held by the pending timer only');
    }, 5);
  });
  assert.equal(seen, 'kept');
});

// V8 may keep the last value a loop touched alive for a while: compare the
// native path with the same loop reading in JS only.
async function aliveAfter(read) {
  const v = freshVar();
  const refs = [];
  for (let i = 0; i < 50; i++) {
    const o = { i };
    refs.push(new WeakRef(o));
    if (v.run(o, read, v).i !== i) throw new Error('wrong value read');
  }
  return collectedAll(refs);
}

test('mirrors of dropped states are freed: native reads keep no value alive', { skip }, async () => {
  const js = await aliveAfter((v) => v.get());
  const native = await aliveAfter((v) => uvwool.native.get(v));
  assert.ok(js <= 2, `JS-only baseline: ${js} of 50 alive`);
  assert.ok(native <= js, `native path: ${native} of 50 alive, JS-only: ${js}`);
});

async function aliveAfterReset(read) {
  const v = freshVar({ default: null });
  const refs = [];
  for (let i = 0; i < 50; i++) {
    const ctx = new uvwool.Context();
    ctx.run(() => {
      const o = { i };
      refs.push(new WeakRef(o));
      const token = v.set(o);
      if (read(v).i !== i) throw new Error('wrong value read');
      v.reset(token);
    });
    // The context lives on: only the reset let go of the value.
    refs.push(ctx);
  }
  const weak = refs.filter((r) => r instanceof WeakRef);
  return collectedAll(weak);
}

test('values are collected after reset, also once native code read them', { skip }, async () => {
  const js = await aliveAfterReset((v) => v.get());
  const native = await aliveAfterReset((v) => uvwool.native.get(v));
  assert.ok(js <= 2, `JS-only baseline: ${js} of 50 alive`);
  assert.ok(native <= js, `native path: ${native} of 50 alive, JS-only: ${js}`);
});
