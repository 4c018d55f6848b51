'use strict';
// Dispatch to uvwool-worker processes (docs/node.md, "Dispatch"): a
// Connection or a Pool, one-shot dispatches as Promises, streams as async
// iterators. Each dispatch (and each stream step) sends the JS state current
// at the call; the worker's changes are applied back into the State that
// call installed, so the code awaiting it sees them and nothing else does.
const errors = require('./errors');

module.exports = function makeDispatch(core) {
  const { binding, als, current, guard, State, Chain, mirrorOf, remember, adopt, readBack } = core;
  const { classes } = errors;

  function checkTimeout(options) {
    if (options === undefined) return 0;
    if (options === null || typeof options !== 'object') throw errors.typeError('uvwool: options must be an object');
    const t = options.timeoutMs ?? 0;
    if (!Number.isSafeInteger(t) || t < 0) throw errors.typeError(`uvwool: timeoutMs must be a non-negative integer, got ${t}`);
    return t;
  }

  const NO_OPTIONS = Object.freeze({ signal: undefined, timeoutMs: 0 });
  function checkDispatchOptions(options) {
    if (options === null || typeof options !== 'object') throw errors.typeError('uvwool: dispatchWith options must be an object');
    const signal = options.signal ?? undefined;
    if (signal !== undefined && (typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function'))
      throw errors.typeError('uvwool: options.signal must be an AbortSignal');
    return { signal, timeoutMs: checkTimeout(options) };
  }

  // What a step sends, and the State the reply is applied to: a fresh one,
  // installed for the rest of the calling callback (what its `await` captures).
  function capture() {
    const s = current();
    guard(s, 'serialize');
    return { s, target: new State(s.root, s.size, s.chain, s.ctx, s.task) };
  }

  // The merged C context, read back into target: every JS variable's value
  // there, the chain (same id: same record, owner stamped again). The C
  // context becomes the new bindings' mirror, so what the worker bound that
  // JavaScript never declared (stubs, native addons' variables) travels on
  // with the next dispatch from this state.
  function applyBack(target, merged) {
    const { root, size, chainId: id } = readBack(merged);
    let chain = null;
    if (id !== null) {
      const c = target.chain;
      chain = c !== null && c.id === id && c.owner === target.task ? c : new Chain(id, target.task);
    }
    target.root = root;
    target.size = size;
    target.chain = chain;
    if (root !== null) remember(root, merged);
    adopt(target, merged);
  }

  function onReply(req, status, payload, merged, done) {
    req.settled = true;
    if (req.cleanup) req.cleanup();
    if (merged !== undefined) applyBack(req.target, merged);
    if (req.stream !== undefined) req.stream._settled(done);
    if (status === '') {
      req.resolve(req.stream !== undefined ? { value: payload, done } : payload);
      return;
    }
    if (payload instanceof Error) {
      payload.status = status;
      payload.routine = req.routine;
    }
    req.reject(payload);
  }

  function onClosed(req) {
    req.resolve();
  }

  binding.setReplyHooks(onReply, onClosed);

  // A Connection or a Pool: what both hand out.
  class Peer {
    constructor(handle, label) {
      this._handle = handle;
      this._label = label;
      this._closing = null;
    }

    // One-shot: a Promise of the routine's return value. Errors: the
    // routine's (WoolError subclasses, `status` 'UVW_EREMOTE'), a refusal
    // ('UVW_ENACK'), a dead or closed connection ('UVW_ECONNRESET'), a
    // cancelled dispatch ('UVW_ECANCELED'), a handshake timeout.
    dispatch(routine, ...args) {
      return this._dispatch(NO_OPTIONS, routine, args);
    }

    // dispatch() with options: timeoutMs (this dispatch's handshake bound)
    // and signal (an AbortSignal: aborting rejects with 'UVW_ECANCELED' and
    // tells the worker; already aborted, nothing is sent and the promise
    // rejects with the signal's reason).
    dispatchWith(options, routine, ...args) {
      return this._dispatch(checkDispatchOptions(options), routine, args);
    }

    _dispatch(options, routine, args) {
      errors.checkRoutineName(routine);
      const { signal, timeoutMs } = options;
      if (signal !== undefined && signal.aborted) return Promise.reject(signal.reason);
      const { s, target } = capture();
      let req;
      const promise = new Promise((resolve, reject) => {
        req = { peer: this, routine, target, resolve, reject, stream: undefined, settled: false, cleanup: null };
      });
      let handle;
      try {
        handle = binding.dispatch(this._handle, mirrorOf(s), s.chain === null ? null : s.chain.id, routine, args, req, timeoutMs);
      } catch (e) {
        return Promise.reject(e);
      }
      if (signal !== undefined) {
        const onAbort = () => {
          if (!req.settled) binding.dispatchCancel(handle);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        req.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      als.enterWith(target);
      return promise;
    }

    // A streaming routine: an async iterator of what it yields.
    stream(routine, ...args) {
      return this._stream(NO_OPTIONS, routine, args);
    }

    // stream() with options: timeoutMs (the handshake bound of the
    // stream's Task) and signal (an AbortSignal: aborting ends the stream
    // as return() does, a pending step rejecting with 'UVW_ECANCELED' and
    // the worker told; already aborted, nothing is sent and the first step
    // rejects with the signal's reason).
    streamWith(options, routine, ...args) {
      return this._stream(checkDispatchOptions(options), routine, args);
    }

    _stream(options, routine, args) {
      errors.checkRoutineName(routine);
      const { signal, timeoutMs } = options;
      if (signal !== undefined && signal.aborted) return new Stream(this, null, routine, signal.reason);
      let handle = null;
      let failure = null;
      try {
        handle = binding.streamOpen(this._handle, routine, args, timeoutMs);
      } catch (e) {
        failure = e;
      }
      const stream = new Stream(this, handle, routine, failure);
      if (signal !== undefined && handle !== null) stream._closeOnAbort(signal);
      return stream;
    }

    // Closes; dispatches still waiting are rejected with 'UVW_ECANCELED'.
    // Resolves once the connection is closed. Idempotent.
    close() {
      if (this._closing === null)
        this._closing = new Promise((resolve) => binding.peerClose(this._handle, { resolve }));
      return this._closing;
    }

    get closed() {
      return this._closing !== null;
    }

    // As socket.unref(): an idle connection no longer keeps the process
    // alive. A dispatch or stream step awaiting its reply still does, so
    // no awaited promise is left behind when the loop would end.
    unref() {
      binding.peerSetRef(this._handle, false);
      return this;
    }

    // Undoes unref() (the default: an open connection keeps the process alive).
    ref() {
      binding.peerSetRef(this._handle, true);
      return this;
    }

    toString() {
      return `${this.constructor.name}(${this._label})`;
    }
  }

  class Connection extends Peer {
    // True once the connection is lost (the worker died, a bad frame, the
    // connect failed) or closed: dispatches are refused, never retried.
    get dead() {
      return binding.peerIsDead(this._handle);
    }
  }

  class Pool extends Peer {}

  const DONE = Object.freeze({ value: undefined, done: true });

  class Stream {
    constructor(peer, handle, routine, failure) {
      this._peer = peer;
      this._handle = handle;
      this._routine = routine;
      this._failure = failure;
      this._pending = false;
      this._done = handle === null && failure === null;
      this._unlisten = null; // removes the abort listener of streamWith's signal
    }

    // next() advances; next(v) with a value is send(v), as a generator's.
    next(...value) {
      return value.length > 0 && value[0] !== undefined ? this._step(1, value[0]) : this._step(0, null);
    }

    send(value) {
      return this._step(1, value);
    }

    // Raises err inside the routine at its current step; resolves with the
    // routine's answer to it.
    throw(err) {
      if (!(err instanceof Error)) return Promise.reject(errors.typeError('uvwool: Stream.throw takes an Error'));
      return this._step(2, err);
    }

    // Ends the stream (for-await calls this on break): a routine still
    // running is told (a CancelledError), a pending step is rejected.
    return() {
      this.close();
      return Promise.resolve(DONE);
    }

    close() {
      if (this._handle !== null && !this._done) binding.streamClose(this._handle);
      this._done = true;
      if (this._unlisten !== null) {
        this._unlisten();
        this._unlisten = null;
      }
    }

    _closeOnAbort(signal) {
      const onAbort = () => this.close();
      signal.addEventListener('abort', onAbort, { once: true });
      this._unlisten = () => signal.removeEventListener('abort', onAbort);
    }

    [Symbol.asyncIterator]() {
      return this;
    }

    _settled(done) {
      this._pending = false;
      if (done) this.close();
    }

    _step(kind, value) {
      if (this._failure !== null) {
        const e = this._failure;
        this._failure = null;
        this._done = true;
        return Promise.reject(e);
      }
      if (this._done) return kind === 0 ? Promise.resolve(DONE) : Promise.reject(closedStream(this._routine));
      if (this._pending)
        return Promise.reject(new classes.RuntimeError(`uvwool: stream ${this._routine} has a step pending; await it first`, 'UVW_EINVAL', { routine: this._routine }));
      const { s, target } = capture();
      let req;
      const promise = new Promise((resolve, reject) => {
        req = { peer: this._peer, routine: this._routine, target, resolve, reject, stream: this };
      });
      try {
        binding.streamStep(this._handle, kind, mirrorOf(s), s.chain === null ? null : s.chain.id, value, req);
      } catch (e) {
        return Promise.reject(e);
      }
      this._pending = true;
      als.enterWith(target);
      return promise;
    }
  }

  function closedStream(routine) {
    return new classes.RuntimeError(`uvwool: stream ${routine} is over or closed`, 'UVW_EINVAL', { routine });
  }

  function checkAddress(address) {
    if (typeof address !== 'string' || address === '' || address.includes('\0'))
      throw errors.typeError(`uvwool: a worker address ('pipe:PATH', 'tcp:HOST:PORT') must be a non-empty string, got ${typeof address === 'string' ? JSON.stringify(address) : typeof address}`);
  }

  // connect(address[, { timeoutMs }]): a Connection, usable at once
  // (dispatches made before it is up are queued). timeoutMs bounds each
  // dispatch's handshake (default 5000).
  function connect(address, options) {
    checkAddress(address);
    return new Connection(binding.connOpen(address, checkTimeout(options)), address);
  }

  // pool(addresses[, { timeoutMs }]): round-robin over several workers,
  // skipping dead ones and reconnecting them in the background.
  function pool(addresses, options) {
    if (!Array.isArray(addresses) || addresses.length === 0) throw errors.typeError('uvwool: pool() takes a non-empty array of worker addresses');
    addresses.forEach(checkAddress);
    return new Pool(binding.poolOpen(addresses, checkTimeout(options)), addresses.join(', '));
  }

  return { connect, pool, Connection, Pool, Stream };
};
