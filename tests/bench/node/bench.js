'use strict';
// uvwool's JS API side by side with AsyncLocalStorage, in the same run
// (not part of the test run; docs/node.md records the figures):
//   node tests/bench/node/bench.js [path to the built uvwool package]
// Each figure is the best of 5 rounds, in ns per operation.
const path = require('node:path');
const { AsyncLocalStorage } = require('node:async_hooks');
const pkg = process.argv[2] || process.env.UVWOOL_NODE_PACKAGE ||
  path.join(__dirname, '../../../build/plain/bindings/node/uvwool');
const u = require(pkg);

function bench(fn, n) {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    fn(n);
    const ns = Number(process.hrtime.bigint() - t0) / n;
    if (ns < best) best = ns;
  }
  return best;
}

async function benchAsync(fn, n) {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    await fn(n);
    const ns = Number(process.hrtime.bigint() - t0) / n;
    if (ns < best) best = ns;
  }
  return best;
}

let sink = 0;
const rows = [];
function row(name, als, wool) {
  rows.push({ name, als: als.toFixed(1), uvwool: wool.toFixed(1), ratio: (wool / als).toFixed(2) });
}

async function main() {
  const als = new AsyncLocalStorage();
  const v = new u.ContextVar('bench', 'v', { default: 0 });
  // UVWOOL_BENCH_SCALE=0.01 checks that the script runs; figures need 1.
  const scale = Number(process.env.UVWOOL_BENCH_SCALE || 1);
  const N = Math.max(2e6 * scale, 100);

  // get: a read with one binding.
  row('get (getStore vs var.get)',
    als.run({ x: 1 }, () => bench((n) => { for (let i = 0; i < n; i++) sink += als.getStore().x; }, N)),
    v.run(1, () => bench((n) => { for (let i = 0; i < n; i++) sink += v.get(); }, N)));

  // run with k other bound variables / ALS instances.
  for (const k of [1, 10, 50]) {
    const instances = Array.from({ length: k }, () => new AsyncLocalStorage());
    const vars = Array.from({ length: k }, (_, i) => new u.ContextVar('bench', `k${k}_${i}`));
    const alsRun = nest(instances, 0, () => bench((n) => { for (let i = 0; i < n; i++) instances[0].run(i, () => { sink++; }); }, N / 10));
    const woolRun = nestVars(vars, 0, () => bench((n) => { for (let i = 0; i < n; i++) vars[0].run(i, () => { sink++; }); }, N / 10));
    row(`run, ${k} bound`, alsRun, woolRun);
  }
  function nest(list, i, fn) { return i === list.length ? fn() : list[i].run(i, () => nest(list, i + 1, fn)); }
  function nestVars(list, i, fn) { return i === list.length ? fn() : list[i].run(i, () => nestVars(list, i + 1, fn)); }

  // set + reset (ALS: enterWith twice), inside one run.
  row('set+reset (enterWith x2 vs set/reset)',
    als.run({}, () => bench((n) => { for (let i = 0; i < n; i++) { const prev = als.getStore(); als.enterWith({ i }); als.enterWith(prev); } }, N / 10)),
    new u.Context().run(() => bench((n) => { for (let i = 0; i < n; i++) v.reset(v.set(i)); }, N / 10)));

  // capture: AsyncLocalStorage.snapshot() vs uvwool.snapshot().
  row('snapshot',
    bench((n) => { for (let i = 0; i < n; i++) sink += AsyncLocalStorage.snapshot().length; }, N / 20),
    bench((n) => { for (let i = 0; i < n; i++) sink += u.snapshot().length; }, N / 20));

  // per-await cost with a value bound, minus a bare await loop.
  const M = Math.max(2e5 * scale, 100);
  const bare = await benchAsync(async (n) => { for (let i = 0; i < n; i++) await null; }, M);
  const alsAwait = await als.run({ x: 1 }, () => benchAsync(async (n) => { for (let i = 0; i < n; i++) await null; }, M));
  const woolAwait = await v.run(1, () => benchAsync(async (n) => { for (let i = 0; i < n; i++) await null; }, M));
  row('await (extra over a bare await)', Math.max(alsAwait - bare, 0.1), Math.max(woolAwait - bare, 0.1));

  console.log(`node ${process.version} ${process.execArgv.join(' ')}`);
  console.table(rows);
  if (sink === 42) console.log('');
}

main();
