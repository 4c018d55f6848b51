#!/usr/bin/env bash
# CTest lua.rock.<lua version>: `luarocks make` of the rockspec in a copy of
# the source tree (as a fresh clone would, offline) into a private tree,
# then a script run by <interpreter> that finds require "uvwool",
# "uvwool.luv", "uvwool.dispatch", "uvwool.worker" and "uvwool.otel" in that tree and sees a luv timer callback run in the
# context of its registration.
# Usage: rock_test.sh <source dir> <work dir> <lua version: 5.4|5.1> <interpreter>
set -euo pipefail
src=$1 work=$2 lv=$3 interp=$4
rm -rf "$work"
mkdir -p "$work/src"
tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$work/src" -xf -
(cd "$work/src" && luarocks --lua-version "$lv" --tree "$work/tree" make >"$work/make.log" 2>&1) || {
  tail -40 "$work/make.log"
  exit 1
}
eval "$(luarocks --lua-version "$lv" --tree "$work/tree" path)"
ROCKTREE="$work/tree" "$interp" - <<'LUA'
local wool = require "uvwool"
require "uvwool.luv"
local uv = require "luv"
local where = package.searchpath("uvwool_core", package.cpath)
assert(where and where:find(os.getenv("ROCKTREE"), 1, true), "uvwool_core not from the rock: " .. tostring(where))
for _, m in ipairs({"uvwool.luv", "uvwool.dispatch", "uvwool.worker", "uvwool.otel"}) do
  assert(package.searchpath(m, package.path):find(os.getenv("ROCKTREE"), 1, true), m .. " not from the rock")
  require(m)
end
local v = wool.ContextVar("rock", "v")
v:set("registered")
local seen
local t = uv.new_timer()
t:start(1, 0, function() seen = v:get() t:close() end)
v:set("later")
uv.run()
assert(seen == "registered", "the callback saw " .. tostring(seen))
print("rock ok: " .. where)
LUA
