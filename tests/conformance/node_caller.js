'use strict';
// The Node caller driver of the conformance matrix (tests/conformance/README.md):
//   UVWOOL_NODE_PACKAGE=... node node_caller.js ADDRESS SCENARIOS_FILE
// Each scenario runs in a fresh Context, its ops in order; after an awaited
// dispatch the routine's changes are this async function's (apply-back),
// so `expect var` reads there and the next stream step is made from there.
const fs = require('node:fs');
const wool = require(process.env.UVWOOL_NODE_PACKAGE || 'uvwool');

const [address, file] = process.argv.slice(2);
if (!address || !file) {
  console.error('usage: node_caller.js ADDRESS SCENARIOS_FILE');
  process.exit(2);
}

const scenarios = [];
for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
  const words = raw.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
  if (words[0] === 'scenario') scenarios.push({ id: words[1], ops: [] });
  else if (words.length) scenarios[scenarios.length - 1].ops.push(words);
}

const unpercent = (s) => Buffer.from(s.replace(/%([0-9a-fA-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
const MISSING = Symbol('missing');
const OPAQUE = Symbol('opaque');

// What JavaScript cannot say, per value: an integral double is a number
// like any integer, and crosses as int64.
function unsayable(text) {
  if (/^f:-?\d+(\.0*)?$/.test(text)) return 'a JavaScript number with an integral value crosses as int64, not as a double';
  return null;
}

function parse(text) {
  if (text === 'nil') return null;
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (text === 'missing') return MISSING;
  if (text === 'opaque') return OPAQUE;
  if (text === 'chain') return wool.chainId() || '<unarmed>';
  const kind = text[0];
  const rest = text.slice(2);
  if (kind === 'i') {
    const big = BigInt(rest);
    return big >= -(2n ** 53n) && big <= 2n ** 53n ? Number(big) : big;
  }
  if (kind === 'f') return Number(rest);
  if (kind === 's') return unpercent(rest);
  if (kind === 'x') return Buffer.from(rest, 'hex');
  throw new Error(`bad value ${text}`);
}

const native = (v) => (v === OPAQUE ? { opaque: true } : v);

function show(v) {
  if (v === undefined) return 'undefined';
  if (v === null) return 'nil';
  if (v === MISSING || v === OPAQUE) return v.description;
  if (typeof v === 'bigint') return `i:${v}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `i:${v}` : `f:${v}`;
  if (typeof v === 'string') return `s:${v}`;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `x:${Buffer.from(v).toString('hex')}`;
  return String(v);
}

// Bytes never equal a string; an int64 beyond 2^53 is a BigInt.
function same(a, b) {
  if (Buffer.isBuffer(a)) return (Buffer.isBuffer(b) || b instanceof Uint8Array) && Buffer.from(b).equals(a);
  return a === b;
}

const vars = new Map();
function varNamed(q) {
  if (!vars.has(q)) {
    const dot = q.indexOf('.');
    vars.set(q, new wool.ContextVar(q.slice(0, dot), q.slice(dot + 1)));
  }
  return vars.get(q);
}

const STATUS = { UVW_EREMOTE: 'remote', UVW_ENACK: 'nack', UVW_ECANCELED: 'cancelled', UVW_ECONNRESET: 'connreset' };
const statusOf = (err) => (err === undefined ? 'ok' : STATUS[err.status] || err.status || String(err));

const conn = wool.connect(address, { timeoutMs: 5000 });

function check(op, reply) {
  const what = op[1];
  if (!reply) return `${what}: no reply to check`;
  if (what === 'status') {
    const got = statusOf(reply.err);
    return got === op[2] ? null : `status: want ${op[2]}, got ${got} (${reply.err ? reply.err.message : ''})`;
  }
  if (what === 'done') return reply.done ? null : 'done: not the last';
  if (what === 'result') {
    const want = parse(op[2]);
    return same(want, reply.value) ? null : `result: want ${show(want)}, got ${show(reply.value)}`;
  }
  if (what === 'var') {
    const want = parse(op[3]);
    const got = varNamed(op[2]).get(MISSING);
    return same(want, got) ? null : `var ${op[2]}: want ${show(want)}, got ${show(got)}`;
  }
  if (what.startsWith('error.')) {
    const e = reply.err;
    if (!e) return `${what}: no error`;
    const want = unpercent(op[op.length - 1]);
    let got;
    if (what === 'error.message') got = e.message && e.message.includes(want) ? want : e.message;
    else if (what === 'error.code') got = e.code;
    else got = e.fields ? e.fields[op[2]] : undefined;
    return got === want ? null : `${what}: want ${want}, got ${got}`;
  }
  return `unknown expectation ${what}`;
}

async function runScenario(sc) {
  for (const op of sc.ops) {
    for (const w of op) {
      const why = unsayable(w);
      if (why && op[0] !== 'expect') return ['skip', why];
    }
  }
  let reply;
  let stream;
  for (let i = 0; i < sc.ops.length; i++) {
    const op = sc.ops[i];
    const kind = op[0];
    if (kind === 'set') {
      varNamed(op[1]).set(native(parse(op[2])));
    } else if (kind === 'expect') {
      const why = check(op, reply);
      if (why) return ['not ok', why];
    } else if (kind === 'cancel') {
      // handled by the call above it
    } else {
      if (reply && reply.err && kind !== 'call') return ['not ok', `status: want ok, got ${statusOf(reply.err)}`];
      const args = op.slice(2).map((w) => native(parse(w)));
      try {
        if (kind === 'call') {
          if (sc.ops[i + 1] && sc.ops[i + 1][0] === 'cancel') {
            const abort = new AbortController();
            const pending = conn.dispatchWith({ signal: abort.signal }, op[1], ...args);
            abort.abort();
            reply = { value: await pending, done: true };
          } else {
            reply = { value: await conn.dispatch(op[1], ...args), done: true };
          }
        } else if (kind === 'stream') {
          stream = conn.stream(op[1], ...args);
          reply = undefined;
        } else if (!stream) {
          return ['not ok', `${kind}: no open stream`];
        } else {
          const r =
            kind === 'next' ? await stream.next() : kind === 'send' ? await stream.send(parse(op[1])) : await stream.throw(new Error(unpercent(op[1])));
          reply = { value: r.value, done: r.done };
        }
      } catch (err) {
        reply = { err };
      }
    }
  }
  if (stream) stream.close();
  return ['ok'];
}

async function main() {
  // Declared up front: a variable JavaScript declares after a reply does not
  // see what that reply bound (docs/node.md, apply-back).
  for (const sc of scenarios) for (const op of sc.ops) if (op[0] === 'set' || (op[0] === 'expect' && op[1] === 'var')) varNamed(op[op[0] === 'set' ? 1 : 2]);
  let failures = 0;
  for (const sc of scenarios) {
    let verdict;
    try {
      verdict = await new wool.Context().run(() => runScenario(sc));
    } catch (err) {
      verdict = ['not ok', `raised ${err && err.stack}`];
    }
    if (verdict[0] === 'not ok') failures++;
    process.stdout.write(`${verdict[0]} ${sc.id}${verdict[1] ? `: ${verdict[1]}` : ''}\n`);
  }
  await conn.close();
  process.exitCode = failures ? 1 : 0;
}

main();
