#!/usr/bin/env bash
# usage: run_semantics.sh preload|linktime PLAIN_PROGRAM PRELOAD_OR_LINKTIME_PROGRAM
# libuv's behaviour in a transparent mode: the event log of libuv_semantics
# must be the same as without any transparent mode, the mode must really
# have been in use, uvwool must not have warned about callbacks it could not
# place, and the log must show the behaviours it is about.
set -euo pipefail
mode=$1 plain=$2 other=$3
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/run_with_preload.sh" none "$plain" >"$tmp/plain.log" 2>"$tmp/plain.err"
if [ "$mode" = preload ]; then
  "$here/run_with_preload.sh" "$other" "$plain" >"$tmp/mode.log" 2>"$tmp/mode.err"
  used='uv_read_start is uv_read_start from .*libuvwool-preload'
else
  "$here/run_with_preload.sh" none "$other" >"$tmp/mode.log" 2>"$tmp/mode.err"
  used='uv_read_start is __wrap_uv_read_start'
fi
fail=0
grep -q "$used" "$tmp/mode.err" || { echo "FAIL: $mode mode was not in use:"; cat "$tmp/mode.err"; fail=1; }
if grep -q 'no uvwool registration' "$tmp/mode.err"; then
  echo "FAIL: uvwool dropped callbacks libuv delivered:"; grep 'no uvwool registration' "$tmp/mode.err" | head; fail=1
fi
diff -u "$tmp/plain.log" "$tmp/mode.log" || { echo "FAIL: the event log differs in $mode mode"; fail=1; }
expect() {
  grep -qx "$1" "$tmp/mode.log" || { echo "FAIL: missing from the log: $1"; fail=1; }
}
expect 'read_start NULL stream: EINVAL'
expect 'closing read_start: EINVAL'
expect 'mmsg recv 4: nread 0 free closing'
expect 'mmsg calls 4, buffers freed 1'
expect 'exit 1: status 0 signal 0 closing'
for k in idle check prepare; do expect "$k first callback 1, second 0"; done
expect 'works: 0 refused, 40000 run, 40000 done'
expect 'loop close: 0'
echo "event log: $(wc -l <"$tmp/mode.log") lines, identical in $mode mode: $([ $fail = 0 ] && echo yes || echo no)"
exit $fail
