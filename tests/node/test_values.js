'use strict';
// Values between JS and the C core: set in JS, read back through uvw_get in
// the C mirror (what a native addon sees).
const test = require('node:test');
const assert = require('node:assert/strict');
const { uvwool, freshVar } = require('./helpers');

function throughC(value) {
  const v = freshVar();
  return v.run(value, () => uvwool.native.get(v));
}

test('integers within +-2^53 stay numbers, beyond come back as BigInt', () => {
  for (const n of [0, 1, -1, 42, 2 ** 53, -(2 ** 53)]) assert.equal(throughC(n), n);
  assert.equal(throughC(2n ** 60n), 2n ** 60n);
  assert.equal(throughC(-(2n ** 63n)), -(2n ** 63n));
  assert.equal(throughC(2n ** 63n - 1n), 2n ** 63n - 1n);
  assert.equal(throughC(5n), 5, 'a small BigInt is an int64: it comes back as a number');
});

test('other numbers are doubles, -0 and NaN included', () => {
  assert.equal(throughC(1.5), 1.5);
  assert.equal(throughC(2 ** 60), 2 ** 60);
  assert.ok(Object.is(throughC(-0), -0));
  assert.ok(Number.isNaN(throughC(NaN)));
  assert.equal(throughC(Infinity), Infinity);
});

test('BigInt outside int64 is a RangeError at set, and nothing is bound', () => {
  const v = freshVar({ default: 'd' });
  assert.throws(() => v.set(2n ** 63n), (e) => e instanceof RangeError && e.code === 'UVW_EINVAL');
  assert.throws(() => v.run(-(2n ** 63n) - 1n, () => 0), RangeError);
  assert.throws(() => new uvwool.ContextVar('test', 'bigdefault', { default: 2n ** 64n }), RangeError);
  assert.equal(v.get(), 'd');
});

test('strings, bytes, null and booleans cross as themselves', () => {
  assert.equal(throughC('héllo ☃'), 'héllo ☃');
  assert.equal(throughC('a\0b'), 'a\0b');
  assert.equal(throughC(''), '');
  const b = throughC(Buffer.from([0, 1, 255]));
  assert.ok(Buffer.isBuffer(b));
  assert.deepEqual([...b], [0, 1, 255]);
  assert.deepEqual([...throughC(new Uint8Array([7, 8]))], [7, 8]);
  assert.equal(throughC(null), null);
  assert.equal(throughC(true), true);
  assert.equal(throughC(false), false);
});

test('other JS values are opaque: the same object comes back', () => {
  const o = { deep: [1, 2] };
  const f = () => 1;
  const sym = Symbol('s');
  assert.equal(throughC(o), o);
  assert.equal(throughC(f), f);
  assert.equal(throughC(sym), sym);
  const other = new Float64Array(2);
  assert.equal(throughC(other), other, 'only Uint8Array is bytes');
});

test('undefined and MISSING cannot be bound', () => {
  const v = freshVar();
  assert.throws(() => v.set(undefined), (e) => e instanceof TypeError && e.code === 'UVW_EINVAL' && /undefined/.test(e.message));
  assert.throws(() => v.set(uvwool.MISSING), TypeError);
  assert.throws(() => new uvwool.ContextVar('test', 'undefdefault', { default: undefined }), TypeError);
  assert.throws(() => v.get(), uvwool.LookupError);
});

test('the C mirror holds exactly the JS bindings', () => {
  const a = freshVar();
  const b = freshVar({ default: 9 });
  const before = uvwool.native.size();
  a.run(1, () => {
    assert.equal(uvwool.native.size(), before + 1);
    assert.equal(uvwool.native.get(b), 9, 'C sees the default declared from JS');
    b.run(2, () => {
      assert.equal(uvwool.native.size(), before + 2);
      assert.equal(uvwool.native.get(b), 2);
    });
  });
  assert.throws(() => uvwool.native.get(a), (e) => e instanceof uvwool.LookupError && e.code === 'UVW_ELOOKUP');
});
