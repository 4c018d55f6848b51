'use strict';
// The addon is built against Node's own uv.h (not Debian's libuv 1.44) and
// runs on the libuv of the node executable that loaded it.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { uvwool, pkg } = require('./helpers');

test('compiled against Node\'s uv.h, running on this Node\'s libuv', () => {
  const [compiled, running] = uvwool.native.uvVersions();
  assert.equal(running, process.versions.uv);
  const header = fs.readFileSync(process.env.UVWOOL_NODE_UV_HEADER || '/usr/include/node/uv/version.h', 'utf8');
  const part = (name) => header.match(new RegExp(`#define UV_VERSION_${name} (\\d+)`))[1];
  assert.equal(compiled, `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`);
  assert.notEqual(compiled, '1.44.2', 'not the system libuv');
});

test('the addon links no libuv', () => {
  const addon = path.join(pkg, 'build', 'Release', 'uvwool.node');
  const elf = fs.readFileSync(addon).toString('latin1');
  assert.ok(elf.includes('libprotobuf-c.so'), 'the wire layer links libprotobuf-c');
  assert.ok(!/libuv\.so/.test(elf), 'no DT_NEEDED on libuv');
});
