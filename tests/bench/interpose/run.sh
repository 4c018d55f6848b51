#!/usr/bin/env bash
# usage: run.sh RAW LINKTIME PRELOAD_SO [scale] [rounds]
# The same plain-libuv workloads raw, in link-time mode and in preload mode,
# alternated for `rounds` rounds (best per workload kept), printed as ratios
# to raw libuv. Raw has uvwool linked but not in the path of any uv_* call,
# so its variable read is the same as in the other two.
set -euo pipefail
raw=$1 linktime=$2 preload=$3 scale=${4:-1} rounds=${5:-3}
declare -A best
for ((r = 0; r < rounds; r++)); do
  for mode in raw linktime preload; do
    case $mode in
      raw) out=$("$raw" "$scale" 1) ;;
      linktime) out=$("$linktime" "$scale" 1) ;;
      preload) out=$(LD_PRELOAD="$preload" "$raw" "$scale" 1) ;;
    esac
    while read -r name ns; do
      key="$mode/$name"
      if [ -z "${best[$key]:-}" ] || awk -v a="$ns" -v b="${best[$key]}" 'BEGIN{exit !(a<b)}'; then best[$key]=$ns; fi
    done <<<"$out"
  done
done
echo "transparent mode vs raw libuv (best of $rounds alternating rounds, ns per callback, scale $scale)"
printf "%-18s %9s %10s %10s %9s %9s\n" workload raw link-time preload "lt/raw" "pre/raw"
for name in timer-chain idle+check stream-ping-pong fs-stat-batch work-queue; do
  r=${best[raw/$name]} l=${best[linktime/$name]} p=${best[preload/$name]}
  awk -v n="$name" -v r="$r" -v l="$l" -v p="$p" \
    'BEGIN{printf "%-18s %9.1f %10.1f %10.1f %8.3fx %8.3fx\n", n, r, l, p, l/r, p/r}'
done
