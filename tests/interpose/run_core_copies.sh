#!/usr/bin/env bash
# usage: run_core_copies.sh PRELOAD STATIC_PROGRAM
# Two cores in one process are said once, naming both objects; one core is
# not said at all.
set -euo pipefail
preload=$1 prog=$2
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/run_with_preload.sh" none "$prog" >"$tmp/alone.out" 2>"$tmp/alone.err"
"$here/run_with_preload.sh" "$preload" "$prog" >"$tmp/two.out" 2>"$tmp/two.err"
fail=0
if grep -q 'two copies of the uvwool core' "$tmp/alone.err"; then
  echo "FAIL: a second core reported without one:"; cat "$tmp/alone.err"; fail=1
fi
n=$(grep -c 'two copies of the uvwool core' "$tmp/two.err" || true)
[ "$n" = 1 ] || { echo "FAIL: expected one warning under the preload, got $n:"; cat "$tmp/two.err"; fail=1; }
line=$(grep 'two copies of the uvwool core' "$tmp/two.err" || true)
case "$line" in *WoolWarning*) ;; *) echo "FAIL: not a WoolWarning: $line"; fail=1 ;; esac
case "$line" in *"$(basename "$prog")"*libuvwool.so*|*libuvwool.so*"$(basename "$prog")"*) ;;
  *) echo "FAIL: the warning does not name both objects: $line"; fail=1 ;; esac
[ $fail = 0 ] && echo "ok: $line"
exit $fail
