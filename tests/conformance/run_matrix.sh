#!/usr/bin/env bash
# The conformance matrix (tests/conformance/README.md): every caller driver
# against every worker, a fresh worker process per pair.
#
#   run_matrix.sh SCENARIOS \
#     --worker LANG 'COMMAND ... @ADDRESS@' [--worker ...] \
#     --caller LANG 'COMMAND ... @ADDRESS@ @SCENARIOS@' [--caller ...] \
#     --hop 'COMMAND ... @ADDRESS@' \
#     [--known FILE] [--missing LANG 'why it has no worker or caller yet' ...]
#
# FILE (known.txt) lists what a language cannot do, one "ROLE-LANG ID WHY"
# per line (ROLE is caller or worker): such a "not ok" is shown as a known
# skip with its reason, and a listed scenario that passes is an error (the
# list must say what is true).
#
# Prints one table row per pair (ok / not ok / skip counts), then every
# "not ok" and "skip" line with its pair; exits 1 when any pair has a
# "not ok" or its driver failed to run.
set -uo pipefail
known=/dev/null
scenarios=$1
shift
declare -a wl wc cl cc missing
while (($#)); do
  case $1 in
  --worker) wl+=("$2") wc+=("$3") ;;
  --caller) cl+=("$2") cc+=("$3") ;;
  --missing) missing+=("$2: $3") ;;
  --hop) hop=$2; shift 2; continue ;;
  --known) known=$2; shift 2; continue ;;
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
    reported_nok=$(grep -ac '^not ok ' "$dir/out")
    # Known limitations of either language: "not ok" -> "skip (known)".
    : >"$dir/stale"
    grep -vE '^\s*(#|$)' "$known" | while read -r who id why; do
      [[ $who == "caller-${cl[j]}" || $who == "worker-${wl[i]}" ]] || continue
      grep -qx "ok $id" "$dir/out" &&
        echo "not ok $id: listed in $(basename "$known") as what $who cannot do, but it passed: remove the line" >>"$dir/stale"
      printf '%s\t%s\n' "$id" "$who: $why"
    done >"$dir/known"
    awk -F'\t' 'FILENAME == ARGV[1] { why[$1] = $2; next }
      /^not ok / { id = $0; sub(/^not ok /, "", id); sub(/:.*/, "", id)
                   if (id in why) { print "skip " id ": known, " why[id]; next } }
      { print }' "$dir/known" "$dir/out" >"$dir/out.known"
    cat "$dir/stale" >>"$dir/out.known"
    mv "$dir/out.known" "$dir/out"
    ok=$(grep -ac '^ok ' "$dir/out")
    nok=$(grep -ac '^not ok ' "$dir/out")
    skip=$(grep -ac '^skip ' "$dir/out")
    printf '%-8s %-8s %4d %7d %5d\n' "${cl[j]}" "${wl[i]}" "$ok" "$nok" "$skip"
    if ((ok + nok + skip != total || nok > 0 || (rc != 0 && reported_nok == 0))); then
      bad=1
      details+="$pair: driver exit $rc, $((ok + nok + skip)) of $total scenarios reported"$'\n'
      details+=$(sed "s/^/  $pair stderr: /" "$dir/err" | tail -n 20)$'\n'
      details+=$(sed "s/^/  $pair worker: /" "$dir/worker.log" | tail -n 20)$'\n'
    fi
    details+=$(grep -aE '^(not ok|skip) ' "$dir/out" | sed "s/^/$pair: /")
    [[ -n $(grep -aE '^(not ok|skip) ' "$dir/out") ]] && details+=$'\n'
  done
done
for m in "${missing[@]}"; do printf 'not in the matrix yet: %s\n' "$m"; done
[[ -n $details ]] && printf '\n%s' "$details"
exit $bad
