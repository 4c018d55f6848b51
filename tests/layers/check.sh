#!/usr/bin/env bash
# usage: check.sh FLAGS_DIR PROBES CC
# Compiles one-line probes (`#include X`) with each layer's include flags
# (FLAGS_DIR/<layer>.flags, one flag a line, generated from the layer's
# object library) and checks each outcome against PROBES.
set -euo pipefail
flags_dir=$1 probes=$2 cc=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bad=0 n=0
while read -r layer inc expect; do
  case $layer in '' | '#'*) continue ;; esac
  [ -f "$flags_dir/$layer.flags" ] || { echo "no flags for layer $layer"; exit 1; }
  mapfile -t flags <"$flags_dir/$layer.flags"
  printf '#include %s\nint uvw__probe;\n' "$inc" >"$work/probe.c"
  header=${inc:1:-1}
  if "$cc" -std=gnu11 -fsyntax-only "${flags[@]}" "$work/probe.c" >"$work/err" 2>&1; then
    got=ok
  elif grep -qF "the $layer layer of uvwool must not include $header:" "$work/err"; then
    got=fence
  elif grep -qE "No such file or directory|file not found" "$work/err"; then # gcc, clang
    got=absent
  else
    got="error: $(head -n 3 "$work/err")"
  fi
  n=$((n + 1))
  if [ "$got" != "$expect" ]; then
    echo "FAIL: the $layer layer including $inc: expected $expect, got $got"
    bad=$((bad + 1))
  fi
done <"$probes"
[ "$n" -gt 0 ] || { echo "no probes"; exit 1; }
echo "$n probes, $bad wrong"
[ "$bad" -eq 0 ]
