'use strict';
// The persistent map behind every state (lib/trie.js), against a Map model:
// every saved root keeps answering as it did when it was made.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { pkg } = require('./helpers');
const trie = require(path.join(pkg, 'lib', 'trie.js'));

test('inserts and removes, dense and sparse ids; old roots never change', () => {
  let root = null;
  const model = new Map();
  const saved = [];
  let seed = 7;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  for (let step = 0; step < 20000; step++) {
    const id = 1 + rnd(step % 3 === 0 ? 40000 : 70);
    if (rnd(3) === 0) {
      root = trie.remove(root, id);
      model.delete(id);
    } else {
      const v = rnd(1e6);
      root = trie.insert(root, id, v);
      model.set(id, v);
    }
    if (step % 500 === 0) saved.push([root, new Map(model)]);
  }
  for (const [r, m] of saved) {
    for (const id of [...m.keys(), 0, 1, 2, 33, 1025, 39999]) {
      assert.equal(trie.lookup(r, id), m.has(id) ? m.get(id) : trie.NOT_FOUND);
    }
    const seen = new Map();
    trie.forEach(r, (id, v) => seen.set(id, v));
    assert.deepEqual(seen, m);
  }
  assert.equal(trie.remove(trie.remove(trie.insert(null, 5, 'x'), 5), 5), null, 'removing the last key empties the map');
});
