#!/usr/bin/env bash
# The conformance matrix (tests/conformance/README.md): every caller driver
# against every worker, a fresh worker process per pair.
#
#   run_matrix.sh SCENARIOS \
#     --worker LANG 'COMMAND ... @ADDRESS@' [--worker ...] \
#     --caller LANG 'COMMAND ... @ADDRESS@ @SCENARIOS@' [--caller ...] \
#     --hop 'COMMAND ... @ADDRESS@' \
#     [--missing LANG 'why it has no worker or caller yet' ...]
#
# Prints one table row per pair (ok / not ok / skip counts), then every
# "not ok" and "skip" line with its pair; exits 1 when any pair has a
# "not ok" or its driver failed to run.
set -uo pipefail
scenarios=$1
shift
declare -a wl wc cl cc missing
while (($#)); do
  case $1 in
  --worker) wl+=("$2") wc+=("$3") ;;
  --caller) cl+=("$2") cc+=("$3") ;;
  --missing) missing+=("$2: $3") ;;
  --hop) hop=$2; shift 2; continue ;;
  *) echo "run_matrix.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 3
done
total=$(grep -c '^scenario ' "$scenarios")
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT

# wait_for_socket PATH: a worker is ready once its socket exists.
wait_for_socket() { for _ in $(seq 200); do [[ -S $1 ]] && return 0; sleep 0.05; done; return 1; }

# The second worker of the hop scenarios, shared by every pair.
: "${hop:?run_matrix.sh: --hop is required}"
${hop//@ADDRESS@/pipe:$dir/hop.sock} >"$dir/hop.log" 2>&1 &
wait_for_socket "$dir/hop.sock" || { echo "the hop worker did not start:"; cat "$dir/hop.log"; exit 1; }
sed "s|@HOP@|pipe:$dir/hop.sock|g" "$scenarios" >"$dir/scenarios.txt"
scenarios=$dir/scenarios.txt
bad=0 details=""
printf '%-8s %-8s %4s %7s %5s\n' caller worker ok "not ok" skip
for i in "${!wl[@]}"; do
  for j in "${!cl[@]}"; do
    pair="${cl[j]}->${wl[i]}"
    sock="$dir/${cl[j]}-${wl[i]}.sock"
    address="pipe:$sock"
    ${wc[i]//@ADDRESS@/$address} >"$dir/worker.log" 2>&1 &
    wpid=$!
    wait_for_socket "$sock"
    cmd=${cc[j]//@ADDRESS@/$address}
    timeout 120 ${cmd//@SCENARIOS@/$scenarios} >"$dir/out" 2>"$dir/err"
    rc=$?
    kill "$wpid" 2>/dev/null
    wait "$wpid" 2>/dev/null
    ok=$(grep -c '^ok ' "$dir/out")
    nok=$(grep -c '^not ok ' "$dir/out")
    skip=$(grep -c '^skip ' "$dir/out")
    printf '%-8s %-8s %4d %7d %5d\n' "${cl[j]}" "${wl[i]}" "$ok" "$nok" "$skip"
    if ((ok + nok + skip != total || nok > 0 || (rc != 0 && nok == 0))); then
      bad=1
      details+="$pair: driver exit $rc, $((ok + nok + skip)) of $total scenarios reported"$'\n'
      details+=$(sed "s/^/  $pair stderr: /" "$dir/err" | tail -n 20)$'\n'
      details+=$(sed "s/^/  $pair worker: /" "$dir/worker.log" | tail -n 20)$'\n'
    fi
    details+=$(grep -E '^(not ok|skip) ' "$dir/out" | sed "s/^/$pair: /")
    [[ -n $(grep -E '^(not ok|skip) ' "$dir/out") ]] && details+=$'\n'
  done
done
for m in "${missing[@]}"; do printf 'not in the matrix yet: %s\n' "$m"; done
[[ -n $details ]] && printf '\n%s' "$details"
exit $bad
