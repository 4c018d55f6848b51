// uvwool's baggage carrier against OpenTelemetry JS's W3CBaggagePropagator
// (@opentelemetry/core), both directions. The oracle is always OTel's own
// extract/inject, never uvwool's output.
//
//   node interop.js <path to otel_baggage>
// with NODE_PATH pointing at the node_modules holding @opentelemetry/*.
'use strict';
const assert = require('assert');
const { execFileSync } = require('child_process');
const api = require('@opentelemetry/api');
const { W3CBaggagePropagator } = require('@opentelemetry/core');

const tool = process.argv[2];
const prop = new W3CBaggagePropagator();
let checks = 0;

// Keys the C tool declares (tests/otel/otel_baggage.c); app.secret has a
// policy without UVW_PROPAGATE_BAGGAGE.
const ours = new Set(['app.user', 'com.example.user', 'svc.request id', 'app.count']);
for (let i = 0; i < 200; i++) ours.add(`bulk.k${String(i).padStart(3, '0')}`);
const SECRET = 'app.secret';

function extract(header) {
  const ctx = prop.extract(api.ROOT_CONTEXT, { baggage: header }, api.defaultTextMapGetter);
  const out = {};
  const b = api.propagation.getBaggage(ctx);
  if (b) {
    for (const [k, v] of b.getAllEntries())
      out[k] = { value: v.value, metadata: v.metadata ? v.metadata.toString() : undefined };
  }
  return out;
}

function inject(entries) {
  const ctx = api.propagation.setBaggage(api.ROOT_CONTEXT, api.propagation.createBaggage(entries));
  const carrier = {};
  prop.inject(ctx, carrier, api.defaultTextMapSetter);
  return carrier.baggage || '';
}

function run(mode, header) {
  return execFileSync(tool, [mode], { input: Buffer.from(header, 'latin1') }).toString('utf8');
}

// What uvwool decoded (ours + the foreign members it kept, read back by
// OTel) must be what OTel itself reads from the same header, minus the
// secret; the re-encoded header must carry the same members again.
function same_view(label, header) {
  const got = JSON.parse(run('decode', header));
  assert.strictEqual(got.error, undefined, `${label}: decode failed ${got.error}`);
  const want = extract(header);
  const mine = {};
  for (const e of got.ours) mine[`${e.ns}.${e.name}`] = e.value;
  const kept = extract(got.foreign);
  for (const [key, v] of Object.entries(want)) {
    if (key === SECRET) {
      assert.ok(!(key in mine) && !(key in kept), `${label}: the secret was bound or forwarded`);
    } else if (ours.has(key)) {
      assert.strictEqual(mine[key], v.value, `${label}: our ${key}`);
    } else {
      assert.deepStrictEqual(kept[key], v, `${label}: foreign ${key}`);
    }
  }
  for (const key of Object.keys(mine)) assert.ok(key in want, `${label}: uvwool read ${key}, OTel did not`);
  for (const key of Object.keys(kept)) assert.ok(key in want, `${label}: uvwool kept ${key}, OTel did not`);
  const again = extract(got.reencoded);
  for (const [key, v] of Object.entries(want)) {
    if (key === SECRET) assert.ok(!(key in again), `${label}: the secret was re-emitted`);
    else if (ours.has(key)) assert.strictEqual(again[key].value, v.value, `${label}: re-encoded ${key}`);
    else assert.deepStrictEqual(again[key], v, `${label}: re-encoded foreign ${key}`);
  }
  assert.strictEqual(Object.keys(again).length, Object.keys(want).length - (SECRET in want ? 1 : 0),
    `${label}: re-encoded member count`);
  checks++;
  return { got, want };
}

// ---- uvwool -> OTel -> uvwool ---------------------------------------------------
{
  const header = run('encode', 'vendor=x;ttl=1,trace-ish=abc').trim();
  const seen = extract(header);
  assert.deepStrictEqual(Object.keys(seen).sort(),
    ['app.user', 'com.example.user', 'svc.request id', 'trace-ish', 'vendor'],
    `OTel reads ours and the forwarded members, not the secret nor the int: ${header}`);
  assert.strictEqual(seen['app.user'].value, 'alice');
  assert.strictEqual(seen['com.example.user'].value, 'bob', 'a dotted namespace as OTel names it');
  assert.strictEqual(seen['svc.request id'].value, 'a b,c;d%é"q=€', 'percent-encoding of the value');
  assert.deepStrictEqual(seen.vendor, { value: 'x', metadata: 'ttl=1' }, 'properties forwarded');
  // An OTel hop re-encodes everything (com%2Eexample becomes com.example).
  const hop = inject(Object.fromEntries(Object.entries(seen).map(([k, v]) =>
    [k, v.metadata ? { value: v.value, metadata: api.baggageEntryMetadataFromString(v.metadata) } : { value: v.value }])));
  assert.ok(hop.includes('com.example.user=bob'), hop);
  const { got } = same_view('after an OTel hop', hop);
  const dotted = got.ours.find((e) => e.value === 'bob');
  assert.deepStrictEqual([dotted.ns, dotted.name], ['com.example', 'user'], 'the dotted namespace round-trips');
  checks++;
}

// ---- OTel -> uvwool ---------------------------------------------------------------
same_view('OTel-injected', inject({
  'app.user': { value: 'carol' },
  'com.example.user': { value: 'dan' },
  'svc.request id': { value: 'ünï ,;=%"€' },
  'vendor.trace': { value: 'v', metadata: api.baggageEntryMetadataFromString('ttl=10;secure') },
  other: { value: 'x y' },
}));
same_view('properties and whitespace', 'vendor=a;p1=1;p2 , app.user = bob ;q=1 ,\tz=1\t');
same_view('percent-encoding', 'app.user=%E2%82%AC%20x,svc.request%20id=1,com%2Eexample.user=escaped,k%C3%A9y=%41');
same_view('duplicates: the last wins', 'app.user=first,dup=1,app.user=last,dup=2');
same_view('invalid UTF-8 is refused', 'app.user=%FF,other=%C3%28,sur=%ED%A0%80,long=%C0%AF,good=%C3%A9,com.example.user=ok');
same_view('a public header cannot set the secret', 'app.secret=forged,app.user=x');
same_view('no key, no value, no =', '=x,novalue=,lonely,app.user=y,%zz=1,bad=%zz');
{
  const members = [];
  for (let i = 0; i < 200; i++) members.push(`bulk.k${String(i).padStart(3, '0')}=v${i}`);
  for (let i = 0; i < 300; i++) members.push(`f${i}=${i}`);
  const { want } = same_view('500 members', members.join(','));
  assert.strictEqual(Object.keys(want).length, 180, 'OTel keeps 180');
}
{
  const big = 'x'.repeat(4200);
  same_view('a member over 4096 bytes', `app.user=${big},other=1,com.example.user=${'y'.repeat(4000)}`);
  const members = [];
  for (let i = 0; i < 21; i++) members.push(`f${i}=${'z'.repeat(1000)}`);
  const { want } = same_view('21 KB', members.join(','));
  assert.strictEqual(Object.keys(want).length, 8, 'OTel keeps 8192 bytes');
}
// OTel's inject drops members over its limits; uvwool's encode gives what
// OTel reads back in full.
{
  const entries = {};
  for (let i = 0; i < 200; i++) entries[`bulk.k${String(i).padStart(3, '0')}`] = { value: `v${i}` };
  same_view('OTel-injected at its limit', inject(entries));
}
// A documented difference: OTel drops an empty value, uvwool keeps ours.
{
  const got = JSON.parse(run('decode', 'app.user=,x='));
  assert.deepStrictEqual(got.ours, [{ ns: 'app', name: 'user', value: '' }]);
  assert.strictEqual(got.foreign, '', 'an empty foreign value is dropped, as OTel drops it');
  assert.deepStrictEqual(extract('app.user=,x='), {});
  checks++;
}
console.log(`otel interop: ${checks} checks passed`);
