'use strict';
// An OpenTelemetry ContextManager (@opentelemetry/api's interface: active,
// with, bind, enable, disable) whose active Context is the value of a
// uvwool variable, so OTel's context follows uvwool's rules on every edge
// uvwool covers (docs/node.md, "OpenTelemetry"). @opentelemetry/api is the
// caller's dependency, not this package's: the root Context comes from the
// api the application loads (or is passed in).
const { ContextVar, MISSING } = require('..');
const errors = require('./errors');

let declared = null;
// One variable per env: every manager of the env reads and writes it, as
// OTel's global manager is one.
function contextVar() {
  if (declared === null) declared = new ContextVar('opentelemetry', 'context');
  return declared;
}

function rootFromApi() {
  try {
    return require('@opentelemetry/api').ROOT_CONTEXT;
  } catch (e) {
    const err = errors.typeError('uvwool/otel: @opentelemetry/api is not installed; install it or pass { root: ROOT_CONTEXT }');
    err.cause = e;
    throw err;
  }
}

const LISTENER_METHODS = ['addListener', 'on', 'once', 'prependListener', 'prependOnceListener'];
const REMOVE_METHODS = ['removeListener', 'off'];

class UvwoolContextManager {
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') throw errors.typeError('uvwool/otel: options must be an object');
    this._root = options.root !== undefined ? options.root : rootFromApi();
    this._var = contextVar();
    this._enabled = false;
  }

  enable() {
    this._enabled = true;
    return this;
  }

  // Disabled, active() is the root context and with() only calls fn; the
  // contexts set while enabled stay where uvwool put them.
  disable() {
    this._enabled = false;
    return this;
  }

  active() {
    if (!this._enabled) return this._root;
    const c = this._var.get(MISSING);
    return c === MISSING ? this._root : c;
  }

  with(context, fn, thisArg, ...args) {
    if (typeof fn !== 'function') throw errors.typeError(`uvwool/otel: with() takes a function, got ${typeof fn}`);
    if (!this._enabled) return Reflect.apply(fn, thisArg, args);
    return this._var.run(context ?? this._root, Reflect.apply, fn, thisArg, args);
  }

  // A function runs in `context` whenever it is called; an EventEmitter's
  // listeners (added after bind) run in it whenever they fire. Anything else
  // is returned as it is.
  bind(context, target) {
    if (typeof target === 'function') return this._bindFunction(context ?? this.active(), target);
    if (target !== null && typeof target === 'object' && typeof target.on === 'function' && typeof target.removeListener === 'function')
      return this._bindEmitter(context ?? this.active(), target);
    return target;
  }

  _bindFunction(context, target) {
    const manager = this;
    const bound = function boundToContext(...args) {
      return manager.with(context, target, this, ...args);
    };
    Object.defineProperty(bound, 'length', { value: target.length, configurable: true });
    return bound;
  }

  _bindEmitter(context, ee) {
    if (ee.__uvwoolOtelListeners !== undefined) return ee;
    // listener -> its bound wrapper, per event, so removeListener finds it.
    const wrappers = new Map();
    Object.defineProperty(ee, '__uvwoolOtelListeners', { value: wrappers });
    for (const name of LISTENER_METHODS) {
      const original = ee[name];
      if (typeof original !== 'function') continue;
      ee[name] = (event, listener) => {
        let byListener = wrappers.get(event);
        if (byListener === undefined) wrappers.set(event, (byListener = new WeakMap()));
        const bound = byListener.get(listener) ?? this._bindFunction(context, listener);
        byListener.set(listener, bound);
        return original.call(ee, event, bound);
      };
    }
    for (const name of REMOVE_METHODS) {
      const original = ee[name];
      if (typeof original !== 'function') continue;
      ee[name] = (event, listener) => original.call(ee, event, wrappers.get(event)?.get(listener) ?? listener);
    }
    const removeAll = ee.removeAllListeners;
    if (typeof removeAll === 'function')
      ee.removeAllListeners = (...event) => {
        if (event.length === 0) wrappers.clear();
        else wrappers.delete(event[0]);
        return removeAll.apply(ee, event);
      };
    return ee;
  }
}

module.exports = { UvwoolContextManager };
