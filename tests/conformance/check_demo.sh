#!/usr/bin/env bash
# check_demo.sh BUILD_DIR: runs the cross-language demo (samples/polyglot)
# and checks what a person is told happened: the Lua worker saw Node's
# values on Node's chain, the C worker's change came back through Lua, the
# stream's set and reset, the ChainContention caught in Node, and the
# to_thread way working.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(bash "$root/samples/polyglot/run.sh" "$1" 2>&1)
rc=$?
failed=0
expect() { # description, extended regex
  if ! grep -qE -- "$2" <<<"$out"; then
    echo "missing: $1 (/$2/)"
    failed=1
  fi
}
chain=$(sed -nE 's/^\[node caller\] set .*chain ([0-9a-f]{32})$/\1/p' <<<"$out")
expect "Node's chain id" '^\[node caller\] set request_id=req-7f3a'
expect "the Lua worker saw Node's values" '\[lua worker\] quote\(sku-42\) sees request_id=req-7f3a tenant=acme, [0-9]+ ms left'
expect "the Lua worker is on Node's chain" "\[lua worker\] asks the C worker, on the same chain ${chain:-none}$"
expect "the C worker saw them through Lua" 'got: lua relayed: quote\(sku-42\) saw request_id=req-7f3a tenant=acme'
expect "the C worker's change came back through two hops" 'after apply-back: audit=priced 42.50 by worker pid [0-9]+ route=node > lua > c > lua'
expect "a stream step's change" '^\[node caller\]    step: step 1 of 3 \(csv\); progress=33%$'
expect "a sent value" 'sent "pdf", step: step 2 of 3 \(pdf\); progress=66%'
expect "the stream's reset" 'end: report ready; progress=not started$'
expect "ChainContention across languages" "caught ChainContention in Node: thread contention on chain ${chain:-none},"
expect "to_thread works" 'got: thumbnail made on a pool thread for tenant=acme'
expect "the caller's own context at the end" "done; request_id is still req-7f3a, chain ${chain:-none}$"
if ((rc != 0 || failed)); then
  echo "run.sh exit $rc; its output:"
  echo "$out"
  exit 1
fi
echo "the cross-language demo told what happened"
