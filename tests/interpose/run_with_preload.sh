#!/usr/bin/env bash
# usage: run_with_preload.sh PRELOAD|none COMMAND [ARGS...]
# Runs COMMAND with PRELOAD in LD_PRELOAD. In a sanitizer build
# (ASAN_RUNTIME set by CMake) the ASan runtime must come first in the
# library list, before the instrumented preload object or Lua module.
set -euo pipefail
preload=$1
shift
list=""
[ -n "${ASAN_RUNTIME:-}" ] && list="$ASAN_RUNTIME"
[ "$preload" != none ] && list="${list:+$list }$preload"
if [ -n "$list" ]; then
  export LD_PRELOAD="$list"
fi
exec "$@"
