'use strict';
// Shared by the Node tests: the package under test and which of Node's two
// AsyncLocalStorage implementations this process runs.
const path = require('node:path');

const pkg = process.env.UVWOOL_NODE_PACKAGE || path.join(__dirname, '../../build/plain/bindings/node/uvwool');
const uvwool = require(pkg);
// The sample addon (samples/node-addon) built against this package, or null.
const samplePath = process.env.UVWOOL_NODE_SAMPLE || null;

const major = Number(process.versions.node.split('.')[0]);
const flags = process.execArgv;
// AsyncContextFrame: Node 24's default, Node 22 behind a flag, absent in 20.
const asyncContextFrame =
  major >= 24 ? !flags.includes('--no-async-context-frame') : major >= 22 && flags.includes('--experimental-async-context-frame');

let serial = 0;
// A variable with a name of its own: declarations are process-wide.
function freshVar(options, ns = 'test') {
  serial += 1;
  return new uvwool.ContextVar(ns, `v${serial}_${process.pid}`, options);
}

const HEX32 = /^[0-9a-f]{32}$/;

module.exports = { uvwool, pkg, samplePath, major, asyncContextFrame, freshVar, HEX32 };
