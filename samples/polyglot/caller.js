'use strict';
// The caller of the cross-language demo (samples/polyglot/run.sh): Node sets
// a request id, a tenant and a deadline, and dispatches to a Lua worker,
// which asks the C worker. usage: node caller.js LUA_WORKER_ADDRESS
const wool = require(process.env.UVWOOL_NODE_PACKAGE || 'uvwool');

const requestId = new wool.ContextVar('demo', 'request_id');
const tenant = new wool.ContextVar('demo', 'tenant');
const deadline = new wool.ContextVar('demo', 'deadline');
const audit = new wool.ContextVar('demo', 'audit');
const route = new wool.ContextVar('demo', 'route');
const progress = new wool.ContextVar('demo', 'progress');

const say = (line) => console.log(`[node caller] ${line}`);
const seen = () => `audit=${audit.get('-')} route=${route.get('-')} progress=${progress.get('-')}`;

async function main(address) {
  requestId.set('req-7f3a');
  tenant.set('acme');
  deadline.set(Date.now() + 1500);
  route.set('node');
  progress.set('not started');
  say(`set request_id=req-7f3a tenant=acme, a deadline 1500 ms from now; chain ${wool.chainId()}`);
  const conn = wool.connect(address);

  say('1. dispatch quote("sku-42") to the Lua worker');
  const answer = await conn.dispatch('quote', 'sku-42');
  say(`   got: ${answer}`);
  say(`   after apply-back: ${seen()}`);

  say('2. a stream from the Lua worker, step by step');
  const stream = conn.stream('export_report', 'csv');
  let step = await stream.next();
  say(`   step: ${step.value}; progress=${progress.get('-')}`);
  step = await stream.send('pdf');
  say(`   sent "pdf", step: ${step.value}; progress=${progress.get('-')}`);
  while (!step.done) {
    step = await stream.next();
    say(`   ${step.done ? 'end' : 'step'}: ${step.value}; progress=${progress.get('-')}`);
  }

  say('3. thumbnail the wrong way: Node -> Lua -> C, where a pool thread touches the context');
  try {
    await conn.dispatch('thumbnail', 'wrong');
  } catch (err) {
    if (!(err instanceof wool.ChainContention)) throw err;
    say(`   caught ${err.name} in Node: ${err.kind} contention on chain ${err.chainId},`);
    say(`   owner thread ${err.ownerThread} (${err.ownerThreadName}), touched by thread ${err.offendingThread}`);
  }
  say('   the right way (the C worker uses uvw_to_thread):');
  say(`   got: ${await conn.dispatch('thumbnail', 'right')}`);
  await conn.close();
  say(`done; request_id is still ${requestId.get()}, chain ${wool.chainId()}`);
}

main(process.argv[2]).catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
