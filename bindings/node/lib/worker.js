'use strict';
// Hosting routines (docs/node.md, "Hosting routines"): a Worker is the C
// worker (src/worker.c) on Node's loop, its routines JS functions and async
// generators. Each step runs in a State read from the dispatch's C context
// (the caller's values, as the C worker mounted them), under a Context of
// the call's own: ContextVar.set/reset there are made in that C context too
// (index.js), and each answer is encoded from it, so the caller gets back
// what the routine wrote, as from a C routine. This is the mirror image of
// lib/dispatch.js's apply-back.
const errors = require('./errors');

module.exports = function makeWorker(core) {
  const { binding, als, State, Chain, Context, readBack, isWireValue, checkValue } = core;
  const { classes } = errors;

  // uvw_step_t's SEND and THROW (a NEXT is any other step), and callAnswer's kinds.
  const STEP_SEND = 2;
  const STEP_THROW = 3;
  const ANSWER_YIELD = 0;
  const ANSWER_RETURN = 1;
  const ANSWER_RAISE = 2;

  const LIMITS = ['maxConnections', 'maxDispatches', 'maxInflightBytes', 'maxStubs', 'maxChains', 'writeHighWater', 'frameTimeoutMs', 'idleTimeoutMs'];
  const OPTIONS = ['limits', 'onError', 'socketMode', 'socketGroup', 'allowUids', 'allowGids', 'allowRemote', 'dispatchTimeoutMs'];

  function checkCount(what, v, max = Number.MAX_SAFE_INTEGER) {
    if (!Number.isSafeInteger(v) || v < 0 || v > max) throw errors.typeError(`uvwool: ${what} must be an integer from 0 to ${max}, got ${String(v)}`);
    return v;
  }

  const kindOf = (fn) => Object.prototype.toString.call(fn).slice(8, -1); // 'AsyncGeneratorFunction', ...
  const isGeneratorFunction = (fn) => kindOf(fn) === 'AsyncGeneratorFunction' || kindOf(fn) === 'GeneratorFunction';

  // What the routine sees of its call: `this` of a plain function or
  // generator, and currentCall() anywhere in the routine's context.
  class Call {
    constructor(routine, timeoutMs, timeoutSent) {
      this.routine = routine;
      this.dispatchTimeoutMs = timeoutMs; // the handshake bound the Task carried, else the worker's
      this.dispatchTimeoutSent = timeoutSent;
      this._controller = new AbortController();
    }
    // Aborted once the caller cancelled, closed its connection or went away,
    // or the worker closed; the routine's answer is dropped after that.
    get signal() {
      return this._controller.signal;
    }
    get cancelled() {
      return this._controller.signal.aborted;
    }
  }

  function cancelledError(routine) {
    return new classes.RuntimeError(`uvwool: the dispatch of ${routine} was cancelled`, 'UVW_ECANCELED', { routine });
  }

  // One dispatch in this worker: what src/worker.c hands back at every step
  // and what index.js writes through (ctx._call).
  class Record {
    constructor(worker, route, handle, timeoutMs, timeoutSent) {
      this.worker = worker;
      this.route = route;
      this.handle = handle;
      this.call = new Call(route.name, timeoutMs, timeoutSent);
      this.ctx = new Context();
      this.ctx._call = this;
      this.gen = null;
    }
    set(varHandle, value) {
      return binding.callSet(this.handle, varHandle, value);
    }
    reset(varHandle, token) {
      binding.callReset(this.handle, varHandle, token);
    }
    mirror(entries) {
      return binding.mirror(entries, binding.callContext(this.handle));
    }
    adopt(merged) {
      binding.callAdopt(this.handle, merged);
    }
    // The State a step runs in: the C context's values for every JS
    // variable, the caller's chain, the call's Context (no task).
    stateOf(view) {
      const { root, size, chainId } = readBack(view);
      return new State(root, size, chainId === null ? null : new Chain(chainId, null), this.ctx, null);
    }
    answer(kind, payload) {
      try {
        binding.callAnswer(this.handle, kind, payload);
      } catch (e) {
        // The core refused to encode the answer (a guard trip, strict
        // serialization): the caller got that error instead; so does onError.
        this.worker._report(e);
      }
    }
    // A settled value or failure of the routine's code becomes the answer:
    // a one-shot routine's value, or a generator step's { value, done }.
    settle(promise) {
      const stream = this.route.stream;
      promise.then(
        (out) => {
          const value = stream ? out.value : out;
          const done = stream ? out.done : true;
          const bad = unanswerable(this.route.name, value);
          if (bad !== null) this.answer(ANSWER_RAISE, describe(bad));
          else this.answer(done ? ANSWER_RETURN : ANSWER_YIELD, value === undefined ? null : value);
        },
        (e) => this.answer(ANSWER_RAISE, describe(e)),
      );
    }
  }

  // A value a routine answered that cannot cross the wire: the error its
  // caller gets instead, or null.
  function unanswerable(routine, value) {
    if (value === undefined) return null;
    if (!isWireValue(value))
      return new classes.SerializationError(
        `uvwool: routine ${routine} answered a value of type ${typeof value === 'object' ? value.constructor?.name ?? 'object' : typeof value}, which has no codec (null, booleans, numbers, BigInt, strings and Uint8Array cross)`,
        'UVW_EINVAL',
        { routine },
      );
    try {
      checkValue(value);
    } catch (e) {
      return e;
    }
    return null;
  }

  // An error as src/worker.c builds it: [type, code | null, message, field, value, ...].
  // A WoolError keeps its class, code and fields; another Error its name and
  // message; anything else thrown its text.
  function describe(e) {
    if (e instanceof classes.WoolError) {
      const fields = { ...e.fields };
      const type = fields.wire_type ?? e.name; // a remote error raised again keeps its own type
      delete fields.wire_type;
      const out = [type, typeof e.code === 'string' ? e.code : null, String(e.message)];
      for (const [k, v] of Object.entries(fields)) out.push(k, String(v));
      return out;
    }
    if (e instanceof Error) return [String(e.name || 'Error'), null, String(e.message)];
    return ['Error', null, String(e)];
  }

  // Steps that arrive inside a synchronous call into the worker (close()
  // drops connections: running calls are cancelled, waiting streams thrown
  // into) reach the routine's code from the loop afterwards, never inside
  // that call.
  function deliver(worker, fn) {
    if (worker._inside > 0) setImmediate(fn);
    else fn();
  }

  function onStep(route, record, handle, step, payload, view, timeoutMs, timeoutSent, cancelled) {
    const worker = route.worker;
    if (record === undefined) record = new Record(worker, route, handle, timeoutMs, timeoutSent);
    let state;
    try {
      state = record.stateOf(view);
    } catch (e) {
      record.answer(ANSWER_RAISE, describe(e));
      return record;
    }
    deliver(worker, () => als.run(state, runStep, record, step, payload, cancelled));
    return record;
  }

  function runStep(record, step, payload, cancelled) {
    const { route, call } = record;
    if (cancelled) call._controller.abort(cancelledError(route.name));
    let promise;
    try {
      if (!route.stream) {
        promise = Promise.resolve(route.fn.apply(call, payload));
      } else {
        if (record.gen === null) {
          record.gen = route.fn.apply(call, payload);
          if (record.gen === null || typeof record.gen !== 'object' || typeof record.gen.next !== 'function')
            throw new classes.RuntimeError(`uvwool: stream routine ${route.name} did not return a generator`, 'UVW_EINVAL', { routine: route.name });
        }
        const gen = record.gen;
        promise = Promise.resolve(step === STEP_THROW ? gen.throw(payload) : step === STEP_SEND ? gen.next(payload) : gen.next());
      }
    } catch (e) {
      promise = Promise.reject(e);
    }
    record.settle(promise);
  }

  function onCancel(record) {
    deliver(record.worker, () => record.call._controller.abort(cancelledError(record.route.name)));
  }

  function onWorkerError(worker, error) {
    worker._report(error);
  }

  function onWorkerClosed(req) {
    req.resolve();
  }

  binding.setWorkerHooks(onStep, onCancel, onWorkerError, onWorkerClosed);

  class Worker {
    // new Worker({ limits, onError, socketMode, socketGroup, allowUids,
    // allowGids, allowRemote, dispatchTimeoutMs }): the C worker's options
    // (docs/dispatch.md); left out, the C defaults.
    constructor(options = {}) {
      if (options === null || typeof options !== 'object') throw errors.typeError('uvwool: Worker options must be an object');
      for (const key of Object.keys(options))
        if (!OPTIONS.includes(key)) throw errors.typeError(`uvwool: unknown Worker option ${JSON.stringify(key)} (known: ${OPTIONS.join(', ')})`);
      const { limits, onError, socketMode, socketGroup, allowUids, allowGids, allowRemote, dispatchTimeoutMs } = options;
      if (onError !== undefined && typeof onError !== 'function') throw errors.typeError('uvwool: onError must be a function');
      if (limits !== undefined && (limits === null || typeof limits !== 'object')) throw errors.typeError('uvwool: limits must be an object');
      for (const key of Object.keys(limits ?? {})) {
        if (!LIMITS.includes(key)) throw errors.typeError(`uvwool: unknown limit ${JSON.stringify(key)} (known: ${LIMITS.join(', ')})`);
        checkCount(`limits.${key}`, limits[key]);
      }
      if (socketMode !== undefined) checkCount('socketMode', socketMode, 0o777);
      if (socketGroup !== undefined && socketGroup !== -1) checkCount('socketGroup', socketGroup, 0xffffffff);
      for (const [what, list] of [['allowUids', allowUids], ['allowGids', allowGids]]) {
        if (list === undefined) continue;
        if (!Array.isArray(list)) throw errors.typeError(`uvwool: ${what} must be an array of ids`);
        list.forEach((id) => checkCount(what, id, 0xffffffff));
      }
      if (allowRemote !== undefined && typeof allowRemote !== 'boolean') throw errors.typeError('uvwool: allowRemote must be a boolean');
      if (dispatchTimeoutMs !== undefined) checkCount('dispatchTimeoutMs', dispatchTimeoutMs);

      this._handle = binding.workerOpen();
      this._onError = onError ?? null;
      this._routes = new Map();
      this._closing = null;
      this._inside = 0;
      if (limits !== undefined) binding.workerSetLimits(this._handle, limits);
      if (socketMode !== undefined) binding.workerOption(this._handle, 'socketMode', socketMode);
      if (socketGroup !== undefined) binding.workerOption(this._handle, 'socketGroup', socketGroup);
      for (const id of allowUids ?? []) binding.workerOption(this._handle, 'allowUid', id);
      for (const id of allowGids ?? []) binding.workerOption(this._handle, 'allowGid', id);
      if (allowRemote !== undefined) binding.workerOption(this._handle, 'allowRemote', allowRemote);
      if (dispatchTimeoutMs !== undefined) binding.workerOption(this._handle, 'dispatchTimeoutMs', dispatchTimeoutMs);
    }

    // A one-shot routine: fn(...args), a plain or async function; its
    // (awaited) value is the Result, a throw or rejection the Exception.
    routine(name, fn) {
      if (isGeneratorFunction(fn)) throw errors.typeError(`uvwool: routine ${String(name)} is a generator function: register it with stream()`);
      return this._register(name, fn, false);
    }

    // A streaming routine: an async generator function. Each yield is a
    // Result, its return the last; a SEND step is gen.next(value), a THROW
    // gen.throw(error).
    stream(name, genFn) {
      if (typeof genFn === 'function' && !isGeneratorFunction(genFn))
        throw errors.typeError(`uvwool: stream ${String(name)} must be an async generator function (async function* ...), got a plain ${kindOf(genFn)}`);
      return this._register(name, genFn, true);
    }

    _register(name, fn, stream) {
      errors.checkRoutineName(name);
      if (typeof fn !== 'function') throw errors.typeError(`uvwool: routine ${name} must be a function, got ${fn === null ? 'null' : typeof fn}`);
      this._live('register a routine');
      if (this._routes.has(name)) throw errors.typeError(`uvwool: routine ${name} is already registered on this worker`);
      const route = { worker: this, name, fn, stream };
      binding.workerRegister(this._handle, name, stream, route);
      this._routes.set(name, route);
      return this;
    }

    // Listens on 'pipe:PATH', 'tcp:HOST:PORT' or 'fd:N'; resolves with the
    // address as bound. A listening worker keeps the process alive (unref()).
    listen(address) {
      try {
        if (typeof address !== 'string' || address === '' || address.includes('\0'))
          throw errors.typeError(`uvwool: a worker address ('pipe:PATH', 'tcp:HOST:PORT', 'fd:N') must be a non-empty string, got ${typeof address}`);
        this._live('listen');
        return Promise.resolve(binding.workerListen(this._handle, address, this));
      } catch (e) {
        return Promise.reject(e);
      }
    }

    // The i-th listening address, as bound.
    address(i = 0) {
      this._live('give an address');
      return binding.workerAddress(this._handle, checkCount('address index', i, 0xffffffff));
    }

    limits() {
      this._live('give its limits');
      return binding.workerLimits(this._handle);
    }

    stats() {
      this._live('give its stats');
      return binding.workerStats(this._handle);
    }

    ref() {
      this._live('ref');
      binding.workerRef(this._handle, true);
      return this;
    }

    unref() {
      this._live('unref');
      binding.workerRef(this._handle, false);
      return this;
    }

    // Stops listening and drops every connection (running routines see
    // their call cancelled, waiting streams a THROW of UVW_ECONNRESET);
    // resolves once every handle is closed. Idempotent.
    close() {
      if (this._closing === null) {
        this._closing = new Promise((resolve) => {
          this._inside++;
          try {
            binding.workerClose(this._handle, { resolve });
          } finally {
            this._inside--;
          }
        });
      }
      return this._closing;
    }

    get closed() {
      return this._closing !== null;
    }

    _live(what) {
      if (this._closing !== null) throw new classes.RuntimeError(`uvwool: a closed Worker cannot ${what}`, 'UVW_EINVAL');
    }

    _report(error) {
      if (this._onError !== null) deliver(this, () => this._onError(error));
    }
  }

  // The call of the hosted routine whose context is current, or null.
  function currentCall() {
    const s = als.getStore();
    return s === undefined || s.ctx._call === null ? null : s.ctx._call.call;
  }

  return { Worker, currentCall };
};
