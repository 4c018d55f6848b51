'use strict';
// The file-hashing sample addon (samples/node-hash): fs reads on Node's
// loop and a hash step per chunk on the thread pool, every step reading the
// caller's request id in C, and the callback back in the caller's context.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const async_hooks = require('node:async_hooks');

const samplePath = process.env.UVWOOL_NODE_HASH_SAMPLE || null;
const skip = !samplePath && 'the hashing sample was not built (UVWOOL_NODE_HASH_SAMPLE unset)';
const sample = samplePath ? require(path.join(samplePath, 'index.js')) : null;

// FNV-1a 64, written here independently of the addon.
function fnv1a64(buf) {
  let h = 0xcbf29ce484222325n;
  for (const byte of buf) h = BigInt.asUintN(64, (h ^ BigInt(byte)) * 0x100000001b3n);
  return h.toString(16).padStart(16, '0');
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvwool-hash-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
function fileOf(name, size, seed) {
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + seed) & 0xff;
  const file = path.join(dir, name);
  fs.writeFileSync(file, buf);
  return { file, buf };
}

// open, then per 64 KiB chunk a read and a hash, then the read at EOF and close.
function expectedSteps(size, id) {
  const chunks = Math.ceil(size / 65536);
  const steps = [`open:${id}`];
  for (let i = 0; i < chunks; i++) steps.push(`read:${id}`, `hash:${id}`);
  steps.push(`read:${id}`, `close:${id}`);
  return steps;
}

test('the digest is the file\'s, and every step saw the caller\'s request id', { skip }, async () => {
  const { file, buf } = fileOf('three-chunks', 3 * 65536 + 123, 7);
  const result = await sample.requestId.run('req-a', () => sample.hashFileAsync(file));
  assert.equal(result.digest, fnv1a64(buf));
  assert.equal(result.bytes, buf.length);
  assert.deepEqual(result.trace, expectedSteps(buf.length, 'req-a'));
  assert.equal(result.steps, result.trace.length);
});

test('concurrent hashes keep their own ids on the loop and on the pool', { skip }, async () => {
  const files = [fileOf('c1', 5 * 65536, 1), fileOf('c2', 4 * 65536 + 1, 2), fileOf('c3', 10, 3)];
  const results = await Promise.all(
    files.map(({ file }, i) => sample.requestId.run(`req-${i}`, async () => {
      const r = await sample.hashFileAsync(file);
      return { r, after: sample.requestId.get() };
    })),
  );
  results.forEach(({ r, after }, i) => {
    assert.equal(after, `req-${i}`, 'JS resumes in its own context after the await');
    assert.equal(r.digest, fnv1a64(files[i].buf));
    assert.deepEqual(r.trace, expectedSteps(files[i].buf.length, `req-${i}`));
  });
  assert.equal(sample.requestId.get(), '-', 'the caller outside every run sees the default');
});

test('done runs in the hashFile call\'s context, AsyncLocalStorage stores intact', { skip }, async () => {
  const { file } = fileOf('als', 100, 5);
  const als = new async_hooks.AsyncLocalStorage();
  const seen = await new Promise((resolve) => {
    als.run({ user: 'als-store' }, () => {
      sample.requestId.run('req-als', () => {
        sample.hashFile(file, (err) => resolve({ err, id: sample.requestId.get(), als: als.getStore()?.user }));
        sample.requestId.set('changed-after-the-call');
      });
    });
  });
  assert.deepEqual(seen, { err: null, id: 'req-als', als: 'als-store' },
    'a write after the call does not reach the callback: the context was captured at the call');
});

test('an empty file hashes to the FNV offset basis', { skip }, async () => {
  const { file } = fileOf('empty', 0, 0);
  const r = await sample.requestId.run('req-empty', () => sample.hashFileAsync(file));
  assert.deepEqual(r, { digest: 'cbf29ce484222325', bytes: 0, steps: 3,
    trace: ['open:req-empty', 'read:req-empty', 'close:req-empty'] });
});

test('a missing file reaches done as an fs-style error, in the caller\'s context', { skip }, async () => {
  const missing = path.join(dir, 'no-such-file');
  const { err, id } = await new Promise((resolve) => {
    sample.requestId.run('req-missing', () => {
      sample.hashFile(missing, (e, r) => resolve({ err: e, result: r, id: sample.requestId.get() }));
    });
  });
  assert.equal(id, 'req-missing');
  assert.ok(err instanceof Error);
  assert.equal(err.code, 'ENOENT');
  assert.equal(err.syscall, 'open');
  assert.equal(err.path, missing);
  assert.equal(err.errno, -2);
  assert.match(err.message, /^ENOENT: .*, open '.*no-such-file'$/);
});

test('a directory fails at the read, and the file is still closed', { skip }, async () => {
  const err = await sample.requestId.run('req-dir', () => sample.hashFileAsync(dir).then(
    () => assert.fail('hashing a directory succeeded'), (e) => e));
  assert.equal(err.code, 'EISDIR');
  assert.equal(err.syscall, 'read');
});

test('bad arguments throw TypeError at the call and call nothing back', { skip }, async () => {
  let called = 0;
  for (const args of [[], ['x'], [42, () => called++], ['x', 'not a function'], [null, () => called++]]) {
    assert.throws(() => sample.hashFile(...args), (e) => e instanceof TypeError && e.code === 'UVW_EINVAL' &&
      /path must be a string and done a function/.test(e.message));
  }
  assert.throws(() => sample.hashFile('x'.repeat(5000), () => called++), { name: 'TypeError', message: /path too long/ });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(called, 0);
});
