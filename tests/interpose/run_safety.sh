#!/usr/bin/env bash
# usage: run_safety.sh PRELOAD SAFETY_PROGRAM
# libuv's semantics under the preload: the event log of SAFETY_PROGRAM run
# with the preload must equal the log without it, the preload must really
# have been in use, and the log must show the behaviours it is about (so an
# empty or truncated log cannot pass).
set -euo pipefail
preload=$1 prog=$2
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/run_with_preload.sh" none "$prog" >"$tmp/plain.log" 2>"$tmp/plain.err"
"$here/run_with_preload.sh" "$preload" "$prog" >"$tmp/preload.log" 2>"$tmp/preload.err"
fail=0
if ! grep -q 'uv_timer_start from .*libuvwool-preload' "$tmp/preload.err"; then
  echo "FAIL: the preload object did not interpose uv_timer_start:"; cat "$tmp/preload.err"; fail=1
fi
if ! diff -u "$tmp/plain.log" "$tmp/preload.log"; then
  echo "FAIL: the event log differs under the preload"; fail=1
fi
expect() {
  if ! grep -qx "$1" "$tmp/preload.log"; then echo "FAIL: missing from the log: $1"; fail=1; fi
}
expect 'timer_start NULL callback: EINVAL'
expect 'rearm callback 3, active 0'
expect 'rearm stop inside callback: 0, active 0'
expect 'idle stops itself on call 2: 0, active 0'
expect 'walk saw 2 handles'
expect 'loop close with open handles: EBUSY'
expect 'pending write callback: status ECANCELED, req->data wreq'
expect 'timer_start on a closing handle: EINVAL'
# libuv's order: close callbacks last-closed first; the cancelled write's
# callback just before its stream's close callback
order=$(grep -E '^(close callback|pending write callback)' "$tmp/preload.log" | head -5 | awk '{print $NF}' | tr '\n' ' ')
[ "$order" = "reader idle rearm wreq writer " ] || { echo "FAIL: close callbacks out of order: $order"; fail=1; }
expect 'loop close with a pending request: EBUSY'
expect 'fs_open missing file callback: ENOENT'
expect 'sync fs_open missing: ENOENT'
expect 'spawn missing binary: ENOENT'
expect 'process exit: status 3 signal 0'
expect 'second loop close with a timer: EBUSY'
expect 'second loop close: 0'
expect 'walk saw 0 handles'
expect 'loop close at the end: 0'
lines=$(wc -l <"$tmp/preload.log")
echo "event log: $lines lines, identical with and without the preload: $([ $fail = 0 ] && echo yes || echo no)"
exit $fail
