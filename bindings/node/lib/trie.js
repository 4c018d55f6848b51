'use strict';
// A persistent map from small integer keys (a variable's id) to values: a
// bitmap-compressed 32-way trie on the key's bits (a HAMT whose hash is the
// key), the path copied on write. A node holds only its used slots, so a
// write copies O(log32 n) short arrays and a read is a few loads, whatever
// the number of bound variables; two states share every untouched branch.

class Leaf {
  constructor(id, value) {
    this.id = id;
    this.value = value;
  }
}

class Node {
  constructor(bitmap, slots) {
    this.bitmap = bitmap;
    this.slots = slots; // Leaf | Node, one per set bit, in bit order
  }
}

const NOT_FOUND = Symbol('uvwool.notFound');

function popcount(x) {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function lookup(node, id) {
  let shift = 0;
  while (node !== null) {
    const bit = 1 << ((id >>> shift) & 31);
    if ((node.bitmap & bit) === 0) return NOT_FOUND;
    const slot = node.slots[popcount(node.bitmap & (bit - 1))];
    if (slot instanceof Leaf) return slot.id === id ? slot.value : NOT_FOUND;
    node = slot;
    shift += 5;
  }
  return NOT_FOUND;
}

function pair(a, b, shift) {
  const ia = (a.id >>> shift) & 31;
  const ib = (b.id >>> shift) & 31;
  if (ia === ib) return new Node(1 << ia, [pair(a, b, shift + 5)]);
  return new Node((1 << ia) | (1 << ib), ia < ib ? [a, b] : [b, a]);
}

function insert(node, id, value, shift) {
  const leaf = new Leaf(id, value);
  if (node === null) return new Node(1 << ((id >>> shift) & 31), [leaf]);
  const bit = 1 << ((id >>> shift) & 31);
  const pos = popcount(node.bitmap & (bit - 1));
  const slots = node.slots;
  if ((node.bitmap & bit) === 0) {
    const copy = new Array(slots.length + 1);
    for (let i = 0; i < pos; i++) copy[i] = slots[i];
    copy[pos] = leaf;
    for (let i = pos; i < slots.length; i++) copy[i + 1] = slots[i];
    return new Node(node.bitmap | bit, copy);
  }
  const slot = slots[pos];
  const copy = slots.slice();
  if (slot instanceof Leaf) copy[pos] = slot.id === id ? leaf : pair(slot, leaf, shift + 5);
  else copy[pos] = insert(slot, id, value, shift + 5);
  return new Node(node.bitmap, copy);
}

function remove(node, id, shift) {
  if (node === null) return null;
  const bit = 1 << ((id >>> shift) & 31);
  if ((node.bitmap & bit) === 0) return node;
  const pos = popcount(node.bitmap & (bit - 1));
  const slot = node.slots[pos];
  let replacement;
  if (slot instanceof Leaf) {
    if (slot.id !== id) return node;
    replacement = null;
  } else {
    replacement = remove(slot, id, shift + 5);
    if (replacement === slot) return node;
  }
  if (replacement !== null) {
    const copy = node.slots.slice();
    copy[pos] = replacement;
    return new Node(node.bitmap, copy);
  }
  if (node.bitmap === bit) return null;
  const copy = node.slots.slice();
  copy.splice(pos, 1);
  return new Node(node.bitmap & ~bit, copy);
}

function forEach(node, fn) {
  if (node === null) return;
  for (const slot of node.slots) {
    if (slot instanceof Leaf) fn(slot.id, slot.value);
    else forEach(slot, fn);
  }
}

module.exports = { NOT_FOUND, lookup, insert: (n, id, v) => insert(n, id, v, 0), remove: (n, id) => remove(n, id, 0), forEach };
