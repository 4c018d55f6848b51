'use strict';
// uvwool for Node: Python-contextvars semantics on Node's own async context
// machinery. The current context is an immutable State held by one
// AsyncLocalStorage; a write installs a new State (enterWith) for the rest
// of the running callback and what it registers, so every callback, promise
// reaction, timer and I/O completion runs in the State current when it was
// registered and its writes never flow back (docs/node.md). Reads never call
// into C; the addon mirrors a State into a C context only when native code
// needs it.
const { AsyncLocalStorage } = require('node:async_hooks');
const os = require('node:os');
const path = require('node:path');
const { randomFillSync } = require('node:crypto');
const trie = require('./lib/trie');
const errors = require('./lib/errors');

const binding = loadBinding();
binding.setErrorFactory(errors.fromNative);
const { classes } = errors;
const NOT_FOUND = trie.NOT_FOUND;

// RTLD_GLOBAL: addons loaded later resolve their uvw_* calls to this copy of
// the core (one variable registry; include/uvwool/node.h).
function loadBinding() {
  const file = process.env.UVWOOL_NODE_ADDON || path.join(__dirname, 'build', 'Release', 'uvwool.node');
  const module = { exports: {} };
  const { RTLD_NOW, RTLD_GLOBAL } = os.constants.dlopen;
  try {
    process.dlopen(module, file, RTLD_NOW | RTLD_GLOBAL);
  } catch (e) {
    e.message = `uvwool: cannot load the native addon ${file} (run \`node-gyp rebuild\` in the package folder): ${e.message}`;
    throw e;
  }
  return module.exports;
}

// "No binding": the old value of a token whose variable was unbound.
const MISSING = Object.freeze({ [Symbol.toStringTag]: 'uvwool.MISSING', toString: () => 'MISSING' });

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

let nextTaskId = 1;
class Task {
  constructor() {
    this.id = nextTaskId++;
    this.done = false;
  }
}

// The chain record: immutable, replaced when the owner changes (§3).
class Chain {
  constructor(id, owner) {
    this.id = id;
    this.owner = owner; // the Task that wrote last, or null (no task)
  }
}

// What the AsyncLocalStorage holds: bindings, chain, the Context object it
// belongs to (tokens check it) and the task running.
class State {
  constructor(root, size, chain, ctx, task) {
    this.root = root;
    this.size = size;
    this.chain = chain;
    this.ctx = ctx;
    this.task = task;
  }
}

const als = new AsyncLocalStorage();

// 128-bit chain ids from a pool of random bytes: one randomFillSync per 256 ids.
const idPool = Buffer.alloc(4096);
let idOffset = idPool.length;
function mintChainId() {
  if (idOffset === idPool.length) {
    randomFillSync(idPool);
    idOffset = 0;
  }
  idOffset += 16;
  return idPool.toString('hex', idOffset - 16, idOffset);
}

function checkValue(value) {
  if (value === undefined) throw errors.typeError('uvwool: undefined cannot be bound; use null, or reset() with the token');
  if (value === MISSING) throw errors.typeError('uvwool: MISSING cannot be bound');
  if (typeof value === 'bigint' && (value < INT64_MIN || value > INT64_MAX)) {
    const e = new RangeError(`uvwool: BigInt ${value} does not fit in a signed 64-bit integer`);
    e.code = 'UVW_EINVAL';
    throw e;
  }
}

function checkFunction(fn, what) {
  if (typeof fn !== 'function') throw errors.typeError(`uvwool: ${what} must be a function, got ${typeof fn}`);
}

function varLabel(v) {
  return v === null ? '' : `(${v.namespace}, ${v.name})`;
}

// §4's task check; a thread check cannot fire: one isolate is one thread.
function guardSlow(s, operation, v) {
  const owner = s.chain.owner;
  if (owner === null || s.task === null || owner.done) return;
  throw new classes.ChainContention(
    `uvwool: ${operation} of ${varLabel(v) || 'the context'} by task ${s.task.id} on chain ${s.chain.id}, ` +
      `which task ${owner.id} still drives; copy the context (copyContext) or spawn() a task instead of sharing it`,
    'UVW_ECONTENTION',
    {
      chain_id: s.chain.id,
      kind: 'task',
      owner_task: String(owner.id),
      offending_task: String(s.task.id),
      operation,
      variable: varLabel(v),
      hint: 'a task runs in a context of its own: use spawn() or copyContext()',
    },
  );
}

function current() {
  const s = als.getStore();
  return s === undefined ? BASE : s;
}

// The chain after a write: armed at the first set, owner stamped again.
function writtenChain(s) {
  const c = s.chain;
  if (c === null) return new Chain(mintChainId(), s.task);
  return c.owner === s.task ? c : new Chain(c.id, s.task);
}

const varsById = [null];
// The C handles of varsById[1..], in order: what a C context is read
// back through (lib/dispatch.js).
const handles = [];
// Identities declared in this env (this module instance): a second
// declaration here is a collision; another worker thread's is shared.
const declared = new Map();

class ContextVar {
  constructor(namespace, name, options) {
    for (const [what, v] of [['namespace', namespace], ['name', name]]) {
      if (typeof v !== 'string' || v === '' || v.includes('\0'))
        throw errors.typeError(`uvwool: ContextVar ${what} must be a non-empty string without NUL, got ${typeof v === 'string' ? JSON.stringify(v) : typeof v}`);
    }
    if (options !== undefined && (options === null || typeof options !== 'object'))
      throw errors.typeError('uvwool: ContextVar options must be an object');
    const hasDefault = options !== undefined && Object.prototype.hasOwnProperty.call(options, 'default');
    if (hasDefault) checkValue(options.default);
    const key = `${namespace}\0${name}`;
    if (declared.has(key))
      throw new classes.ContextVarCollision(
        `uvwool: context variable (${namespace}, ${name}) is already declared`,
        'UVW_ECOLLISION',
        { namespace, name, first_declared_by: 'declaration' },
      );
    this._handle = hasDefault ? binding.declare(namespace, name, options.default) : binding.declare(namespace, name);
    this._id = varsById.length;
    varsById.push(this);
    handles.push(this._handle);
    declared.set(key, this);
    this.namespace = namespace;
    this.name = name;
    this._hasDefault = hasDefault;
    this._default = hasDefault ? options.default : undefined;
    this._seenRoot = undefined; // get()'s one-entry cache (never a root: roots are null or nodes)
    this._seenValue = NOT_FOUND;
  }

  get(fallback) {
    const s = als.getStore() ?? BASE;
    if (s.chain !== null && s.chain.owner !== s.task) guardSlow(s, 'get', this);
    // The last lookup, by trie root: tries are persistent (a write makes a
    // new root, nothing is changed in place), so a root maps this
    // variable to one value forever. Saves the walk on repeated reads; the
    // price is that the last value read stays reachable until the next
    // read of this variable under another root.
    let v;
    if (this._seenRoot === s.root) v = this._seenValue;
    else {
      v = trie.lookup(s.root, this._id);
      this._seenRoot = s.root;
      this._seenValue = v;
    }
    if (v !== NOT_FOUND) return v;
    if (arguments.length > 0) return fallback;
    if (this._hasDefault) return this._default;
    throw new classes.LookupError(
      `uvwool: context variable (${this.namespace}, ${this.name}) has no value and no default`,
      'UVW_ELOOKUP',
      { namespace: this.namespace, name: this.name },
    );
  }

  set(value) {
    checkValue(value);
    const s = current();
    if (s.chain !== null && s.chain.owner !== s.task) guardSlow(s, 'set', this);
    const old = trie.lookup(s.root, this._id);
    const root = trie.insert(s.root, this._id, value);
    // In a hosted routine's context the write is also the answer's (lib/worker.js).
    const native = s.ctx._call === null ? null : s.ctx._call.set(this._handle, value);
    als.enterWith(new State(root, old === NOT_FOUND ? s.size + 1 : s.size, writtenChain(s), s.ctx, s.task));
    return new Token(this, old === NOT_FOUND ? MISSING : old, s.ctx, native);
  }

  reset(token) {
    if (!(token instanceof Token)) throw errors.typeError('uvwool: reset() takes the Token that set() returned');
    const s = current();
    if (s.chain !== null && s.chain.owner !== s.task) guardSlow(s, 'reset', this);
    if (token._used)
      throw new classes.RuntimeError(`uvwool: token for ${varLabel(this)} has already been used once`, 'UVW_ETOKEN_USED', {
        namespace: this.namespace,
        name: this.name,
      });
    if (token._var !== this)
      throw new classes.ValueError(`uvwool: token was created by ${varLabel(token._var)}, not ${varLabel(this)}`, 'UVW_ETOKEN_VAR', {
        namespace: this.namespace,
        name: this.name,
      });
    if (token._ctx !== s.ctx)
      throw new classes.ValueError(`uvwool: token for ${varLabel(this)} was created in a different Context`, 'UVW_ETOKEN_CONTEXT', {
        namespace: this.namespace,
        name: this.name,
      });
    if (token._native !== null) s.ctx._call.reset(this._handle, token._native);
    token._used = true;
    const had = trie.lookup(s.root, this._id) !== NOT_FOUND;
    let root, size;
    if (token._old === MISSING) {
      root = trie.remove(s.root, this._id);
      size = had ? s.size - 1 : s.size;
    } else {
      root = trie.insert(s.root, this._id, token._old);
      size = had ? s.size : s.size + 1;
    }
    als.enterWith(new State(root, size, s.chain, s.ctx, s.task));
  }

  // Scoped set: fn(...args) sees value; nothing of it outlives the call.
  run(value, fn, ...args) {
    checkValue(value);
    checkFunction(fn, 'ContextVar.run: fn');
    const s = current();
    if (s.chain !== null && s.chain.owner !== s.task) guardSlow(s, 'set', this);
    const old = trie.lookup(s.root, this._id);
    const st = new State(trie.insert(s.root, this._id, value), old === NOT_FOUND ? s.size + 1 : s.size, writtenChain(s), s.ctx, s.task);
    const call = s.ctx._call;
    if (call === null) return args.length === 0 ? als.run(st, fn) : als.run(st, fn, ...args);
    // A hosted routine's context holds the value for fn's synchronous extent.
    const native = call.set(this._handle, value);
    try {
      return als.run(st, fn, ...args);
    } finally {
      if (native !== null) call.reset(this._handle, native);
    }
  }

  toString() {
    return `ContextVar${varLabel(this)}`;
  }
}
ContextVar.MISSING = MISSING;

class Token {
  constructor(v, old, ctx, native) {
    this._var = v;
    this._old = old;
    this._ctx = ctx;
    this._native = native; // the C token of the same write in a hosted routine's context, or null
    this._used = false;
  }
  get var() {
    return this._var;
  }
  get oldValue() {
    return this._old;
  }
  get used() {
    return this._used;
  }
}
Token.MISSING = MISSING;

// Python's Context: a mutable holder of bindings. run() enters it for the
// synchronous extent of fn and keeps what fn wrote.
class Context {
  constructor(root = null, size = 0, chain = null) {
    this._root = root;
    this._size = size;
    this._chain = chain;
    this._entered = false;
    this._call = null; // a hosted routine's call (lib/worker.js): its writes are also made in C
  }

  run(fn, ...args) {
    checkFunction(fn, 'Context.run: fn');
    if (this._entered)
      throw new classes.RuntimeError('uvwool: this Context is already entered; copy it (copyContext) to run it again', 'UVW_EENTERED');
    const st = new State(this._root, this._size, this._chain, this, current().task);
    this._entered = true;
    try {
      return als.run(st, runKeeping, this, fn, args);
    } finally {
      this._entered = false;
    }
  }

  get(v, fallback) {
    if (!(v instanceof ContextVar)) throw errors.typeError('uvwool: Context.get takes a ContextVar');
    const value = trie.lookup(this._root, v._id);
    return value !== NOT_FOUND ? value : fallback;
  }

  has(v) {
    if (!(v instanceof ContextVar)) throw errors.typeError('uvwool: Context.has takes a ContextVar');
    return trie.lookup(this._root, v._id) !== NOT_FOUND;
  }

  get size() {
    return this._size;
  }

  entries() {
    const out = [];
    trie.forEach(this._root, (id, value) => out.push([varsById[id], value]));
    return out;
  }

  copy() {
    return new Context(this._root, this._size, this._chain);
  }

  chainId() {
    return this._chain === null ? null : this._chain.id;
  }
}

function runKeeping(ctx, fn, args) {
  try {
    return fn(...args);
  } finally {
    const e = als.getStore();
    if (e !== undefined && e.ctx === ctx) {
      ctx._root = e.root;
      ctx._size = e.size;
      ctx._chain = e.chain;
    }
  }
}

const BASE_CONTEXT = new Context();
BASE_CONTEXT._entered = true; // the thread's own context counts as entered (§1)
const BASE = new State(null, 0, null, BASE_CONTEXT, null);

function copyContext() {
  const s = current();
  return new Context(s.root, s.size, s.chain);
}

// Capture now, run later: the returned function runs fn in the State current
// at the snapshot, with the task that was current then (§5).
function snapshot() {
  const s = current();
  return function runInSnapshot(fn, ...args) {
    checkFunction(fn, 'snapshot: fn');
    return als.run(s, fn, ...args);
  };
}

function wrap(fn) {
  checkFunction(fn, 'wrap: fn');
  const s = current();
  return function wrapped(...args) {
    return als.run(s, Reflect.apply, fn, this, args);
  };
}

// A task: fn runs now in a fork of the current context (new chain id when
// armed, owned by the task), so its writes never reach its creator (§6). The
// task finishes when fn's result settles. Returns a Promise of that result.
function spawn(fn, ...args) {
  checkFunction(fn, 'spawn: fn');
  const s = current();
  const task = new Task();
  const chain = s.chain === null ? null : new Chain(mintChainId(), task);
  const ctx = new Context(s.root, s.size, chain);
  let result;
  try {
    result = als.run(new State(s.root, s.size, chain, ctx, task), fn, ...args);
  } catch (e) {
    task.done = true;
    return Promise.reject(e);
  }
  return Promise.resolve(result).finally(() => {
    task.done = true;
  });
}

// JS functions cannot run on libuv's pool threads (an isolate is one
// thread), so there is no toThread(fn) for JavaScript: what crosses to a
// worker_threads Worker is data. threadSnapshot() is the detached fork
// uvw_to_thread gives C, as a structured-cloneable object for postMessage
// or workerData: the wire values bound now, keyed by (namespace, name);
// opaque values stay behind (listed in `left`), as they never cross the wire.
function threadSnapshot() {
  const s = current();
  if (s.chain !== null && s.chain.owner !== s.task) guardSlow(s, 'serialize', null);
  const bindings = [];
  const left = [];
  trie.forEach(s.root, (id, value) => {
    const v = varsById[id];
    if (isWireValue(value)) bindings.push([v.namespace, v.name, value]);
    else left.push(varLabel(v));
  });
  return { chainId: s.chain === null ? null : s.chain.id, bindings, left };
}

function isWireValue(value) {
  const t = typeof value;
  return value === null || t === 'boolean' || t === 'number' || t === 'bigint' || t === 'string' || value instanceof Uint8Array;
}

// Runs fn(...args) in a detached fork made from a threadSnapshot() (in any
// env: the main thread or a worker): a new Context holding the snapshot's
// values of the variables this env declared (others are skipped), a new
// chain id when the snapshot was armed, no task. Its writes reach nothing
// else; returns fn's result.
function runInThreadSnapshot(snap, fn, ...args) {
  if (snap === null || typeof snap !== 'object' || !Array.isArray(snap.bindings) || (snap.chainId !== null && typeof snap.chainId !== 'string'))
    throw errors.typeError('uvwool: runInThreadSnapshot takes what threadSnapshot() returned');
  checkFunction(fn, 'runInThreadSnapshot: fn');
  let root = null;
  let size = 0;
  for (const entry of snap.bindings) {
    if (!Array.isArray(entry) || entry.length !== 3 || typeof entry[0] !== 'string' || typeof entry[1] !== 'string' || !isWireValue(entry[2]))
      throw errors.typeError('uvwool: a threadSnapshot binding is [namespace, name, wire value]');
    checkValue(entry[2]);
    const v = declared.get(`${entry[0]}\0${entry[1]}`);
    if (v === undefined) continue;
    if (trie.lookup(root, v._id) === NOT_FOUND) size++;
    root = trie.insert(root, v._id, entry[2]);
  }
  const chain = snap.chainId === null && root === null ? null : new Chain(mintChainId(), null);
  return new Context(root, size, chain).run(fn, ...args);
}

function chainId() {
  const c = current().chain;
  return c === null ? null : c.id;
}

// The C mirror of a State, built when native code needs it and cached per
// immutable bindings root.
const mirrors = new WeakMap();
let emptyMirror = null;
function mirrorOf(s) {
  // A hosted routine's context: its bindings over the C context its call
  // answers from (never cached: that one changes under the same root).
  if (s.ctx._call !== null) {
    const entries = [];
    trie.forEach(s.root, (id, value) => entries.push(varsById[id]._handle, value));
    return s.ctx._call.mirror(entries);
  }
  if (s.root === null) return emptyMirror ?? (emptyMirror = binding.mirror([]));
  let m = mirrors.get(s.root);
  if (m === undefined) {
    const entries = [];
    trie.forEach(s.root, (id, value) => entries.push(varsById[id]._handle, value));
    m = binding.mirror(entries);
    mirrors.set(s.root, m);
  }
  return m;
}

binding.setCurrentMirror(() => mirrorOf(current()));

// What a C context (a dispatch's merged reply, a hosted routine's step)
// binds for every JS variable, as a trie, and its chain id or null.
function readBack(cctx) {
  const got = binding.readBack(cctx, handles);
  let root = null;
  let size = 0;
  for (let id = 1; id < got.length; id++) {
    if (got[id] === undefined) continue;
    root = trie.insert(root, id, got[id]);
    size++;
  }
  return { root, size, chainId: got[0] };
}

const dispatch = require('./lib/dispatch')({
  binding,
  als,
  current,
  guard(s, operation) {
    if (s.chain !== null && s.chain.owner !== s.task) guardSlow(s, operation, null);
  },
  State,
  Chain,
  mirrorOf,
  // A C context known to hold exactly these bindings (a dispatch's merged
  // reply) serves as their mirror.
  remember(root, mirror) {
    mirrors.set(root, mirror);
  },
  // A reply merged into a hosted routine's context becomes the context its
  // call answers from (the other worker's changes are the routine's).
  adopt(target, merged) {
    if (target.ctx._call !== null) target.ctx._call.adopt(merged);
  },
  readBack,
});

const worker = require('./lib/worker')({ binding, als, State, Chain, Context, readBack, isWireValue, checkValue });

// What native code sees: the variable read through the C core (uvw_get) in
// the mirror of the current context.
const native = {
  get(v) {
    if (!(v instanceof ContextVar)) throw errors.typeError('uvwool: native.get takes a ContextVar');
    const s = current();
    if (s.chain !== null && s.chain.owner !== s.task) guardSlow(s, 'get', v);
    return binding.nativeGet(mirrorOf(s), v._handle);
  },
  size() {
    return binding.mirrorSize(mirrorOf(current()));
  },
  // [the uv.h the addon was compiled against, the libuv it runs on]
  uvVersions() {
    return binding.uvVersions();
  },
};

module.exports = {
  ContextVar,
  Token,
  Context,
  MISSING,
  copyContext,
  snapshot,
  wrap,
  spawn,
  chainId,
  threadSnapshot,
  runInThreadSnapshot,
  connect: dispatch.connect,
  pool: dispatch.pool,
  Connection: dispatch.Connection,
  Pool: dispatch.Pool,
  Stream: dispatch.Stream,
  Worker: worker.Worker,
  currentCall: worker.currentCall,
  native,
  ...classes,
};
