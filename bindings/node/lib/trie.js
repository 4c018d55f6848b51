'use strict';
// A persistent map from small integer keys (a variable's id) to values: a
// 32-way trie on the key's bits, the path copied on write. A write costs
// O(log32 n) copies of 32-slot arrays and a read a few loads, whatever the
// number of bound variables, and two states share every untouched branch.

class Leaf {
  constructor(id, value) {
    this.id = id;
    this.value = value;
  }
}

const NOT_FOUND = Symbol('uvwool.notFound');

function lookup(node, id) {
  let shift = 0;
  while (node !== null) {
    const slot = node[(id >>> shift) & 31];
    if (slot === undefined) return NOT_FOUND;
    if (slot instanceof Leaf) return slot.id === id ? slot.value : NOT_FOUND;
    node = slot;
    shift += 5;
  }
  return NOT_FOUND;
}

function insert(node, id, value, shift) {
  const copy = node === null ? new Array(32).fill(undefined) : node.slice();
  const i = (id >>> shift) & 31;
  const slot = copy[i];
  if (slot === undefined || (slot instanceof Leaf && slot.id === id)) copy[i] = new Leaf(id, value);
  else if (slot instanceof Leaf) copy[i] = insert(insert(null, slot.id, slot.value, shift + 5), id, value, shift + 5);
  else copy[i] = insert(slot, id, value, shift + 5);
  return copy;
}

function remove(node, id, shift) {
  if (node === null) return null;
  const i = (id >>> shift) & 31;
  const slot = node[i];
  if (slot === undefined || (slot instanceof Leaf && slot.id !== id)) return node;
  const copy = node.slice();
  copy[i] = slot instanceof Leaf ? undefined : remove(slot, id, shift + 5);
  return copy;
}

function forEach(node, fn) {
  if (node === null) return;
  for (let i = 0; i < 32; i++) {
    const slot = node[i];
    if (slot === undefined) continue;
    if (slot instanceof Leaf) fn(slot.id, slot.value);
    else forEach(slot, fn);
  }
}

module.exports = { NOT_FOUND, lookup, insert: (n, id, v) => insert(n, id, v, 0), remove: (n, id) => remove(n, id, 0), forEach };
