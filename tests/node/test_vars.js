'use strict';
// Variables, tokens, contexts and chains (docs/semantics.md §1-§3) from JS.
const test = require('node:test');
const assert = require('node:assert/strict');
const { uvwool, freshVar, HEX32 } = require('./helpers');
const { ContextVar, Context, copyContext, MISSING } = uvwool;

test('get: bound value, else fallback, else default, else LookupError', () => {
  const v = freshVar({ default: 'dflt' });
  const bare = freshVar();
  assert.equal(v.get(), 'dflt');
  assert.equal(v.get('fb'), 'fb');
  assert.equal(bare.get(undefined), undefined, 'an explicit undefined fallback is a real one');
  assert.throws(
    () => bare.get(),
    (e) => e instanceof uvwool.LookupError && e instanceof uvwool.WoolError && e.code === 'UVW_ELOOKUP' &&
      e.namespace === 'test' && e.varName === bare.name && e.name === 'LookupError',
  );
  bare.run(0, () => assert.equal(bare.get('fb'), 0, 'a binding wins over the fallback'));
});

test('set returns a single-use token; reset restores', () => {
  const v = freshVar({ default: 0 });
  new Context().run(() => {
    const t1 = v.set(1);
    assert.equal(t1.var, v);
    assert.equal(t1.oldValue, MISSING);
    assert.equal(ContextVar.MISSING, MISSING);
    assert.equal(uvwool.Token.MISSING, MISSING);
    const t2 = v.set(2);
    assert.equal(t2.oldValue, 1);
    v.reset(t2);
    assert.equal(v.get(), 1);
    assert.equal(t2.used, true);
    assert.throws(() => v.reset(t2), (e) => e instanceof uvwool.RuntimeError && e.code === 'UVW_ETOKEN_USED');
    assert.equal(v.get(), 1, 'a refused reset changes nothing');
    v.reset(t1);
    assert.equal(v.get(), 0, 'reset to MISSING unbinds: the default shows');
    assert.equal(copyContext().has(v), false);
  });
});

test('reset refuses a token of another variable or another context', () => {
  const a = freshVar();
  const b = freshVar();
  new Context().run(() => {
    const ta = a.set(1);
    assert.throws(() => b.reset(ta), (e) => e instanceof uvwool.ValueError && e.code === 'UVW_ETOKEN_VAR');
    let inner;
    new Context().run(() => {
      assert.throws(() => a.reset(ta), (e) => e instanceof uvwool.ValueError && e.code === 'UVW_ETOKEN_CONTEXT');
      inner = a.set(5);
    });
    assert.throws(() => a.reset(inner), (e) => e.code === 'UVW_ETOKEN_CONTEXT');
    assert.equal(a.get(), 1);
    a.reset(ta);
    assert.equal(ta.used, true);
  });
});

test('wrong types are TypeErrors with a clear message', () => {
  const v = freshVar();
  for (const bad of [undefined, null, {}, 'tok', 1]) {
    assert.throws(() => v.reset(bad), (e) => e instanceof TypeError && e.code === 'UVW_EINVAL' && /Token/.test(e.message));
  }
  assert.throws(() => new ContextVar('', 'x'), /namespace must be a non-empty string/);
  assert.throws(() => new ContextVar('ns', 3), /name must be a non-empty string/);
  assert.throws(() => new ContextVar('ns', 'a\0b'), TypeError);
  assert.throws(() => new ContextVar('ns', 'opt', 5), /options must be an object/);
  assert.throws(() => v.run(1, 'notfn'), /fn must be a function/);
  assert.throws(() => new Context().run(42), TypeError);
  assert.throws(() => uvwool.wrap(null), TypeError);
  assert.throws(() => copyContext().get({}), TypeError);
});

test('declaring an identity twice is ContextVarCollision; another namespace is another variable', () => {
  const v = freshVar({}, 'collide');
  assert.throws(
    () => new ContextVar('collide', v.name),
    (e) => e instanceof uvwool.ContextVarCollision && e instanceof uvwool.WoolError && e.code === 'UVW_ECOLLISION' &&
      e.namespace === 'collide' && e.varName === v.name && e.name === 'ContextVarCollision' && e.fields.name === v.name,
  );
  const w = new ContextVar('collide2', v.name, { default: 1 });
  assert.equal(w.get(), 1);
});

test('Context.run returns fn\'s result, passes args and keeps what fn wrote', () => {
  const v = freshVar({ default: 0 });
  const ctx = new Context();
  assert.equal(ctx.run((a, b) => a + b, 2, 3), 5);
  ctx.run(() => v.set(7));
  assert.equal(v.get(), 0, 'the write stayed in ctx');
  assert.equal(ctx.get(v), 7);
  assert.equal(ctx.run(() => v.get()), 7);
  assert.equal(ctx.size, 1);
  assert.deepEqual(ctx.entries(), [[v, 7]]);
  assert.throws(() => ctx.run(() => ctx.run(() => 0)), (e) => e instanceof uvwool.RuntimeError && e.code === 'UVW_EENTERED');
  assert.throws(() => ctx.run(() => { throw new Error('boom'); }), /boom/);
  assert.equal(ctx.run(() => 1), 1, 'a throwing fn leaves ctx enterable');
});

test('copies never see each other\'s later writes', () => {
  const v = freshVar({ default: 0 });
  const ctx = new Context();
  ctx.run(() => v.set(1));
  const copy = ctx.copy();
  ctx.run(() => v.set(2));
  copy.run(() => v.set(3));
  assert.equal(ctx.get(v), 2);
  assert.equal(copy.get(v), 3);
});

test('var.run is scoped and flat: nothing outlives the call', () => {
  const v = freshVar({ default: 'out' });
  const w = freshVar({ default: 'w' });
  const r = v.run('in', (x) => {
    assert.equal(v.get(), 'in');
    w.set('written');
    return x * 2;
  }, 21);
  assert.equal(r, 42);
  assert.equal(v.get(), 'out');
  assert.equal(w.get(), 'w');
});

test('many bound variables: each keeps its value', () => {
  const vars = Array.from({ length: 200 }, () => freshVar());
  new Context().run(() => {
    vars.forEach((v, i) => v.set(i));
    vars.forEach((v, i) => assert.equal(v.get(), i));
    assert.equal(copyContext().size, 200);
    assert.equal(uvwool.native.size(), 200);
    assert.equal(uvwool.native.get(vars[137]), 137);
  });
});

test('chain ids: unarmed is null; the first set arms; copy and run keep the id', () => {
  const v = freshVar();
  const ctx = new Context();
  assert.equal(ctx.chainId(), null);
  ctx.run(() => {
    assert.equal(uvwool.chainId(), null);
    v.get('x');
    assert.equal(uvwool.chainId(), null, 'a read never arms');
    v.set(1);
    assert.match(uvwool.chainId(), HEX32);
  });
  const id = ctx.chainId();
  assert.match(id, HEX32);
  assert.equal(ctx.copy().chainId(), id);
  ctx.run(() => {
    v.set(2);
    assert.equal(uvwool.chainId(), id, 'a later set keeps the id');
  });
  const other = new Context();
  other.run(() => v.set(1));
  assert.notEqual(other.chainId(), id, 'every arming mints a new id');
});

test('the read, write and capture paths never call into the addon', () => {
  // The addon is reached only through `binding.`; these paths must not name it.
  const paths = {
    'ContextVar#get': ContextVar.prototype.get,
    'ContextVar#set': ContextVar.prototype.set,
    'ContextVar#reset': ContextVar.prototype.reset,
    'ContextVar#run': ContextVar.prototype.run,
    'Context#run': Context.prototype.run,
    copyContext,
    snapshot: uvwool.snapshot,
    wrap: uvwool.wrap,
    spawn: uvwool.spawn,
  };
  for (const [name, fn] of Object.entries(paths)) {
    assert.doesNotMatch(fn.toString(), /binding\.|mirrorOf/, `${name} calls into C`);
  }
  assert.match(uvwool.native.get.toString(), /binding\.nativeGet/, 'the check can see a native call');
});
