'use strict';
// The error tree of docs/semantics.md §9, as JavaScript classes. Every
// WoolError has `code` ('UVW_E...') and the detail record's fields as
// camelCase properties (chain_id -> chainId). A field that would shadow a
// property every Error has is prefixed: the variable's `name` field is
// `varName` (Error#name stays the class name). `fields` keeps the record
// as C wrote it.
const RESERVED = { name: 'varName', message: 'fieldMessage', stack: 'fieldStack', code: 'fieldCode', cause: 'fieldCause' };

class WoolError extends Error {
  constructor(message, code = 'UVW_EINVAL', fields = {}) {
    super(message);
    this.code = code;
    this.fields = Object.freeze({ ...fields });
    for (const key of Object.keys(fields)) this[RESERVED[key] ?? camel(key)] = fields[key];
  }
}

function camel(key) {
  return key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

const classes = { WoolError };
function define(name, parent) {
  const C = { [name]: class extends parent {} }[name];
  Object.defineProperty(C.prototype, 'name', { value: name, writable: true, configurable: true });
  classes[name] = C;
  return C;
}
Object.defineProperty(WoolError.prototype, 'name', { value: 'WoolError', writable: true, configurable: true });
define('ChainContention', WoolError);
define('ContextVarCollision', WoolError);
define('TaskFactoryDisplaced', WoolError);
define('SerializationError', WoolError);
define('ChainSerializationError', classes.SerializationError);
define('LookupError', WoolError);
define('ValueError', WoolError);
define('RuntimeError', WoolError);
define('MemoryError', WoolError);

// Called by the addon with the C detail record of a failing call.
function fromNative(kind, code, message, fields) {
  const C = classes[kind] || WoolError;
  return new C(message, code, fields);
}

// Wrong JavaScript types: a TypeError carrying the uvwool code, as Node's own
// errors carry theirs.
function typeError(message) {
  const e = new TypeError(message);
  e.code = 'UVW_EINVAL';
  return e;
}

// A routine's name, as dispatch sends it and a Worker registers it.
function checkRoutineName(routine) {
  if (typeof routine !== 'string' || routine === '' || routine.includes('\0'))
    throw typeError(`uvwool: a routine name must be a non-empty string without NUL, got ${typeof routine === 'string' ? JSON.stringify(routine) : typeof routine}`);
}

module.exports = { classes, fromNative, typeError, camel, checkRoutineName };
