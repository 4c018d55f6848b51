#!/bin/sh
# Run the uvwool core benchmark against CPython's contextvars and print one
# table: op | uvwool ns | baseline ns | ratio | target | PASS/MISS.
#
#   run_bench.sh [path/to/bench_core]      (default: ./bench_core)
#   PYTHON=python3.12 run_bench.sh ...     (interpreter to compare with)
#
# The targets are a report, not a gate: the exit status is 0 unless a
# program crashed or an API call failed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
core=${1:-./bench_core}
python=${PYTHON:-python3}

if [ ! -x "$core" ]; then
  echo "run_bench.sh: $core is not an executable (build the bench_core target)" >&2
  exit 1
fi

echo "== machine: $(uname -srm), $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') CPUs," \
  "load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

if command -v "$python" >/dev/null 2>&1; then
  results=$(mktemp)
  trap 'rm -f "$results"' EXIT
  echo "== CPython: $python $here/cpython_contextvars.py"
  # To a file first (not a pipe) so a failing script fails this script.
  "$python" "$here/cpython_contextvars.py" >"$results"
  cat "$results"
  echo "== uvwool: $core"
  "$core" --cpython "$results"
else
  echo "== $python not found: CPython columns are skipped"
  echo "== uvwool: $core"
  "$core"
fi
