#!/usr/bin/env bash
# A new user's path: `npm pack` the package the build staged, `npm install`
# the tarball into a scratch project (offline: the install script builds the
# addon with npm's node-gyp against --nodedir), then use it from JS.
#   package_install.sh <staged package dir> <nodedir> <scratch dir>
set -euo pipefail
pkg="$1" nodedir="$2" scratch="$3"
rm -rf "$scratch"
mkdir -p "$scratch/project"
tarball=$(cd "$scratch" && npm pack --silent "$pkg" | tail -n 1)
# The tarball ships sources (the core under deps/), never a built addon.
tar tzf "$scratch/$tarball" > "$scratch/contents"
if grep -q '^package/build/' "$scratch/contents"; then
  echo "package_install: the tarball contains build/" >&2
  exit 1
fi
grep -qx 'package/deps/uvwool/src/core/context.c' "$scratch/contents"
grep -qx 'package/include/uvwool/node.h' "$scratch/contents"
grep -qx 'package/deps/uvwool/src/dispatch/conn.c' "$scratch/contents"
grep -qx 'package/otel.js' "$scratch/contents"
cd "$scratch/project"
echo '{ "name": "scratch", "version": "1.0.0", "private": true }' > package.json
npm_config_nodedir="$nodedir" npm install --offline --no-audit --no-fund --silent "../$tarball"
test -f node_modules/uvwool/build/Release/uvwool.node
node -e '
const assert = require("node:assert/strict");
const { ContextVar, spawn, chainId, native } = require("uvwool");
const v = new ContextVar("scratch", "user", { default: "nobody" });
assert.equal(require.resolve("uvwool").includes("node_modules/uvwool"), true);
v.run("ann", () => {
  assert.equal(v.get(), "ann");
  assert.equal(native.get(v), "ann");
  assert.match(chainId(), /^[0-9a-f]{32}$/);
});
assert.equal(v.get(), "nobody");
// Dispatch is compiled in: a connection to nowhere rejects, it does not crash.
const conn = require("uvwool").connect("pipe:/nonexistent/uvwool.sock");
const refused = conn.dispatch("echo", 1).then(() => assert.fail("resolved"), (e) => assert.equal(e.code, "UVW_ECONNRESET"));
const { UvwoolContextManager } = require("uvwool/otel");
assert.equal(new UvwoolContextManager({ root: "root" }).enable().active(), "root");
spawn(async () => { v.set("task"); })
  .then(() => refused)
  .then(() => conn.close())
  .then(() => { assert.equal(v.get(), "nobody"); console.log("package ok"); });
'
