#!/usr/bin/env bash
# The cross-language demo: a Node caller -> a Lua worker -> the C worker.
#   bash samples/polyglot/run.sh BUILD_DIR
# BUILD_DIR is a build of this tree with the bindings (the README's first
# command makes one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

# wait_for WORKER_LOG SOCKET: a worker is ready once its socket exists.
wait_for() {
  for _ in $(seq 200); do [[ -S $2 ]] && return 0; sleep 0.05; done
  echo "run.sh: a worker did not start:" >&2
  cat "$1" >&2
  exit 1
}

"$build/uvwool/worker/uvwool-worker" --routines "$build/samples/libuvwool_demo_routines.so" \
  --listen "pipe:$dir/c.sock" >"$dir/c.log" 2>&1 &
wait_for "$dir/c.log" "$dir/c.sock"
export LUA_CPATH="$build/bindings/lua/lua5.4/?.so;;" LUA_PATH="$here/../../bindings/lua/?.lua;;"
lua5.4 "$here/middle.lua" "pipe:$dir/lua.sock" "pipe:$dir/c.sock" 2>"$dir/lua.log" | { read -r _ready; cat; } &
wait_for "$dir/lua.log" "$dir/lua.sock"
UVWOOL_NODE_PACKAGE="$build/bindings/node/uvwool" node "$here/caller.js" "pipe:$dir/lua.sock"
