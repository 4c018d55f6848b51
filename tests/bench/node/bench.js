'use strict';
// uvwool's JS API side by side with AsyncLocalStorage, in the same run
// (not part of the test run; docs/node.md records the figures):
//   node tests/bench/node/bench.js [path to the built uvwool package]
// Each figure is the best of 5 rounds, in ns per operation; each row shows
// the target and whether this run met it. The native round trip
// needs the bench addon (tests/bench/node/addon, built with
// -DUVWOOL_BUILD_BENCH=ON into <build>/bindings/node/bench-addon, or
// UVWOOL_NODE_BENCH_ADDON).
const path = require('node:path');
const { AsyncLocalStorage } = require('node:async_hooks');
const pkg = process.argv[2] || process.env.UVWOOL_NODE_PACKAGE ||
  path.join(__dirname, '../../../build/plain/bindings/node/uvwool');
const u = require(pkg);
const benchAddon = process.env.UVWOOL_NODE_BENCH_ADDON || path.join(pkg, '../bench-addon');

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
// met(als, wool) -> boolean, or null when the target is not a ratio of this row.
function row(name, als, wool, target, met) {
  const verdict = met ? met(als, wool) : null;
  rows.push({ name, als: als.toFixed(1), uvwool: wool.toFixed(1), ratio: (wool / als).toFixed(2), target,
    met: verdict === null ? '' : verdict ? 'yes' : 'NO' });
}
const within = (x) => (als, wool) => wool <= als * x;

async function main() {
  const als = new AsyncLocalStorage();
  const v = new u.ContextVar('bench', 'v', { default: 0 });
  // UVWOOL_BENCH_SCALE=0.01 checks that the script runs; figures need 1.
  const scale = Number(process.env.UVWOOL_BENCH_SCALE || 1);
  const N = Math.max(2e6 * scale, 100);

  // get: a read with one binding.
  row('get (getStore vs var.get)',
    als.run({ x: 1 }, () => bench((n) => { for (let i = 0; i < n; i++) sink += als.getStore().x; }, N)),
    v.run(1, () => bench((n) => { for (let i = 0; i < n; i++) sink += v.get(); }, N)),
    '<= 1.5x ALS', within(1.5));

  // run and set+reset with k bound variables / ALS instances: uvwool's
  // target is a cost flat in k (compared with its own k = 1 figure).
  // uvwool's rows for every k first, then ALS's: on Node 24
  // (AsyncContextFrame), once ALS's k frames had been entered every later
  // run in the process cost as if those k stores were its own (uvwool's
  // 'run, 10 bound' read 3.1 us measured after them, 0.66 us before).
  const ks = [1, 10, 50];
  const wool = ks.map((k) => {
    const vars = Array.from({ length: k }, (_, i) => new u.ContextVar('bench', `k${k}_${i}`));
    return {
      run: nestVars(vars, 0, () => bench((n) => { for (let i = 0; i < n; i++) vars[0].run(i, () => { sink++; }); }, N / 10)),
      set: nestVars(vars, 0, () => bench((n) => { for (let i = 0; i < n; i++) vars[0].reset(vars[0].set(i)); }, N / 10)),
    };
  });
  ks.forEach((k, j) => {
    const instances = Array.from({ length: k }, () => new AsyncLocalStorage());
    const alsRun = nest(instances, 0, () => bench((n) => { for (let i = 0; i < n; i++) instances[0].run(i, () => { sink++; }); }, N / 10));
    const alsSet = nest(instances, 0, () => bench((n) => { for (let i = 0; i < n; i++) { const prev = instances[0].getStore(); instances[0].enterWith(i); instances[0].enterWith(prev); } }, N / 10));
    row(`run, ${k} bound`, alsRun, wool[j].run, 'flat in k (<= 1.5x its k=1)', (_, w) => w <= wool[0].run * 1.5);
    row(`set+reset, ${k} bound (enterWith x2)`, alsSet, wool[j].set, 'flat in k (<= 1.5x its k=1)', (_, w) => w <= wool[0].set * 1.5);
  });
  function nest(list, i, fn) { return i === list.length ? fn() : list[i].run(i, () => nest(list, i + 1, fn)); }
  function nestVars(list, i, fn) { return i === list.length ? fn() : list[i].run(i, () => nestVars(list, i + 1, fn)); }

  // capture: AsyncLocalStorage.snapshot() vs uvwool.snapshot().
  row('snapshot',
    bench((n) => { for (let i = 0; i < n; i++) sink += AsyncLocalStorage.snapshot().length; }, N / 20),
    bench((n) => { for (let i = 0; i < n; i++) sink += u.snapshot().length; }, N / 20),
    'far below ALS (<= 0.25x)', within(0.25));

  // per-await cost with a value bound, minus a bare await loop.
  const M = Math.max(2e5 * scale, 100);
  const bare = await benchAsync(async (n) => { for (let i = 0; i < n; i++) await null; }, M);
  const alsAwait = await als.run({ x: 1 }, () => benchAsync(async (n) => { for (let i = 0; i < n; i++) await null; }, M));
  const woolAwait = await v.run(1, () => benchAsync(async (n) => { for (let i = 0; i < n; i++) await null; }, M));
  row('await (extra over a bare await)', Math.max(alsAwait - bare, 0.1), Math.max(woolAwait - bare, 0.1),
    '<= ALS', within(1));

  // A JS function called from C: a bare napi_make_callback against
  // uvw_node_callback_call (ALS column: the bare call).
  let addon = null;
  try {
    addon = require(benchAddon);
  } catch (e) {
    console.log(`native round trip skipped: no bench addon at ${benchAddon} (configure with -DUVWOOL_BUILD_BENCH=ON): ${e.message}`);
  }
  if (addon !== null) {
    const K = Math.max(1e6 * scale, 100);
    const fn = () => { sink++; };
    row('native callback (bare napi_make_callback vs uvw_node_callback_call)',
      v.run(1, () => bench((n) => addon.roundTrip(fn, n, false), K)),
      v.run(1, () => bench((n) => addon.roundTrip(fn, n, true), K)),
      '<= bare + 30 ns', (bareNs, wool) => wool <= bareNs + 30);
  }

  console.log(`node ${process.version} ${process.execArgv.join(' ')}`);
  console.table(rows);
  if (sink === 42) console.log('');
}

main();
