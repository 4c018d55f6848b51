'use strict';
// A worker process for the dispatch tests: by default the real uvwool-worker
// (the C executable) serving tests/dispatch/routines.c, or a Node worker
// script (startNodeWorker: hosted_worker.js); started on a unix socket of
// its own, stopped with SIGTERM (which must exit 0) or killed.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const build = path.join(__dirname, '../../build/plain');
const workerExe = process.env.UVWOOL_WORKER || path.join(build, 'uvwool/worker/uvwool-worker');
const routines = process.env.UVWOOL_TEST_ROUTINES || path.join(build, 'tests/dispatch/libuvwool_test_routines.so');

let serial = 0;
// Resolves with { address, pid, stop(), kill() } once the worker printed
// that it listens.
function startWorker(command = (address) => [workerExe, '--routines', routines, '--listen', address]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvwool-node-'));
  const address = `pipe:${path.join(dir, `w${serial++}.sock`)}`;
  const [exe, ...args] = command(address);
  const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('error', reject);
    exited.then((how) => reject(new Error(`the worker exited before listening: ${JSON.stringify(how)} ${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (!out.includes(`listening on ${address}`)) return;
      resolve({
        address,
        pid: child.pid,
        async stop() {
          child.kill('SIGTERM');
          const how = await exited;
          fs.rmSync(dir, { recursive: true, force: true });
          return how;
        },
        async kill() {
          child.kill('SIGKILL');
          await exited;
          fs.rmSync(dir, { recursive: true, force: true });
        },
      });
    });
  });
}

// A Node script hosting routines (run by this Node, with its flags).
function startNodeWorker(script) {
  return startWorker((address) => [process.execPath, ...process.execArgv.filter((f) => !f.startsWith('--test')), script, address]);
}

module.exports = { startWorker, startNodeWorker };
