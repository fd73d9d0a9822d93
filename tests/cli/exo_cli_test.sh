#!/usr/bin/env bash
# System test of the `exo` binary as users run it: a real node process on loopback, administered
# with `exo resources`, stopped by the cleanup endpoint and by SIGTERM; `exo run`; bad flags.
# Usage: exo_cli_test.sh PATH_TO_EXO
set -u
EXO="$1"
work=$(mktemp -d)
export EXO_MODELS_DIR="$work/models"  # the demo model is generated here, not in the user's cache
# shellcheck source=checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT

# Starts a node with a random API port; sets NODE_PID and API.
start_node() {
  local log="$work/node-$1.log"
  "$EXO" --node-id "$1" --chatgpt-api-port 0 --discovery-module none --inference-engine dummy 2>"$log" &
  NODE_PID=$!
  pids+=("$NODE_PID")
  local port=""
  for _ in $(seq 1 200); do
    port=$(sed -n 's/.*chat API on http:\/\/[^:]*:\([0-9]*\)\/.*/\1/p' "$log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.05
  done
  API="http://127.0.0.1:$port"
  [ -n "$port" ]
}

# Runs exo in the foreground, killed after 60 s: a hang fails its check (exit 124) instead of the
# whole test running into ctest's timeout.
run_exo() { timeout 60 "$EXO" "$@"; }

# Waits up to 10 s for a process to exit; sets EXIT_CODE.
wait_exit() {
  for _ in $(seq 1 200); do
    if ! kill -0 "$1" 2>/dev/null; then wait "$1"; EXIT_CODE=$?; return 0; fi
    sleep 0.05
  done
  EXIT_CODE=timeout
  return 1
}

check "node starts and reports its API port" start_node alpha
run_exo resources list --api "$API" >"$work/list.txt"; rc=$?
check "resources list exits 0" test "$rc" -eq 0
check "resources list shows the engine READY" grep -Eq "engine-alpha +inference_engine +READY" "$work/list.txt"
run_exo resources list --json --api "$API" >"$work/list.json"
check "resources list --json is the snapshot" grep -q '"schema_version": 1' "$work/list.json"
run_exo resources health --api "$API" >"$work/health.txt"; rc=$?
check "resources health exits 0 when all is well" test "$rc" -eq 0
run_exo resources reset engine-alpha --type inference_engine --api "$API" >"$work/reset.txt"; rc=$?
check "resources reset exits 0" test "$rc" -eq 0
check "resources reset reports READY" grep -q "reset engine-alpha: done (state READY)" "$work/reset.txt"
run_exo resources reset no-such-resource --api "$API" >/dev/null 2>"$work/reset-err.txt"; rc=$?
check "resources reset of an unknown id exits 2" test "$rc" -eq 2
check "and says why" grep -q "no resource 'no-such-resource'" "$work/reset-err.txt"
run_exo resources export --output "$work/export.json" --api "$API" >/dev/null; rc=$?
check "resources export writes the file" grep -q '"resources"' "$work/export.json"
run_exo resources cleanup --api "$API" >/dev/null; rc=$?
check "resources cleanup exits 0" test "$rc" -eq 0
wait_exit "$NODE_PID"
check "the node exits 0 after cleanup" test "$EXIT_CODE" = 0
check "it closed every resource" grep -q "all resources closed" "$work/node-alpha.log"
# Not the stopped node's own port: another test running beside this one may have taken it since, and
# a server that never answers HTTP would hold the client for its read timeout. Port 1 refuses.
run_exo resources list --api "http://127.0.0.1:1" >/dev/null 2>&1; rc=$?
check "resources list where no node listens exits 2" test "$rc" -eq 2

check "a second node starts" start_node beta
port_beta="${API##*:}"
run_exo --node-id gamma --chatgpt-api-port "$port_beta" --discovery-module none --inference-engine dummy 2>"$work/gamma.log"; rc=$?
check "a node whose port is taken exits 1" test "$rc" -eq 1
check "and says why" grep -q "cannot listen" "$work/gamma.log"
kill -TERM "$NODE_PID"
wait_exit "$NODE_PID"
check "SIGTERM stops the node with exit 0" test "$EXIT_CODE" = 0
check "after an ordered cleanup" grep -q "api-beta CLOSING -> CLOSED" "$work/node-beta.log"

out=$(run_exo --discovery-module none run dummy --prompt "hello" 2>"$work/run.err"); rc=$?
check "exo run answers one prompt" test "$rc" -eq 0 -a "$out" = "This is the exo dummy engine answering. "
# No model given: the random-weight demo model is generated once, said plainly, and answers.
run_exo --discovery-module none run --prompt "hello" >"$work/demo.out" 2>"$work/demo.err"; rc=$?
check "exo run without a model answers with the demo model" test "$rc" -eq 0 -a -s "$work/demo.out"
check "the demo model is announced as random weights" grep -q "random-weight demo model" "$work/demo.err"
check "the demo model was generated into the models directory" test -s "$EXO_MODELS_DIR/exo-demo.gguf"
run_exo --discovery-module none --default-model no-such-model run --prompt "x" >/dev/null 2>"$work/nomodel.err"; rc=$?
check "an unknown model id exits 2 naming it" test "$rc" -eq 2
check "the error names the missing file" grep -q "no-such-model" "$work/nomodel.err"
run_exo --no-such-flag >/dev/null 2>&1; rc=$?
check "an unknown flag exits 2" test "$rc" -eq 2
run_exo --chatgpt-api-port 70000 >/dev/null 2>&1; rc=$?
check "an out-of-range port exits 2" test "$rc" -eq 2

if [ "$failed" -ne 0 ]; then
  for f in "$work"/*.log "$work"/*.err; do [ -f "$f" ] && { echo "---- $f"; tail -n 30 "$f"; }; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
