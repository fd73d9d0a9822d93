#!/usr/bin/env bash
# System test of a cluster as users run it: three `exo` processes in three network namespaces joined
# by a bridge, finding each other by real UDP broadcast. A chat succeeds from every node; `kill -9` of
# one node -> the survivors show its peer handle failing and drop it from the topology within the
# discovery timeout, and the next chats succeed on the two left; the node restarted rejoins and its
# peer handles are READY again. `exo resources list` is printed at each step.
# Usage: cluster_netns_test.sh PATH_TO_EXO. Exits 77 (skipped) where network namespaces are unavailable.
set -u
EXO="$1"
SKIP=77
DISCOVERY_TIMEOUT=8  # seconds; a killed node must be gone from the survivors' topology within this (+ probes)
REPLY="This is the exo dummy engine answering. "

skip() { echo "SKIP: $*"; exit $SKIP; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null 2>&1 || skip "iproute2 (ip) is not installed"
command -v curl >/dev/null 2>&1 || skip "curl is not installed"

tag="x$$"
hub="exo-${tag}-hub"
work=$(mktemp -d)
declare -A pid
passed=0
failed=0

teardown() {
  for i in 1 2 3; do [ -n "${pid[$i]:-}" ] && kill -9 "${pid[$i]}" 2>/dev/null; done
  wait 2>/dev/null
  for i in 1 2 3; do ip netns del "exo-${tag}-$i" 2>/dev/null; done
  ip netns del "$hub" 2>/dev/null
  if [ "$failed" -ne 0 ]; then
    for f in "$work"/*.log; do echo "---- $f (last 40 lines)"; tail -n 40 "$f"; done
  fi
  [ -n "${EXO_KEEP_LOGS:-}" ] && cp "$work"/*.log "$EXO_KEEP_LOGS"/ 2>/dev/null
  rm -rf "$work"
}
trap teardown EXIT

check() {  # check NAME COMMAND...
  local name="$1"; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

ns() { echo "exo-${tag}-$1"; }
in_ns() { local n="$1"; shift; ip netns exec "$(ns "$n")" "$@"; }

# ---- network: hub namespace with a bridge, one veth per node namespace, 10.77.0.0/24 ----
ip netns add "$hub" 2>/dev/null || skip "cannot create network namespaces here"
ip -n "$hub" link add br0 type bridge || skip "cannot create a bridge"
ip -n "$hub" link set br0 up
for i in 1 2 3; do
  ip netns add "$(ns $i)" || skip "cannot create network namespaces here"
  ip link add "ev${tag}a$i" type veth peer name "ev${tag}b$i" || skip "cannot create veth pairs"
  ip link set "ev${tag}a$i" netns "$(ns $i)"
  ip link set "ev${tag}b$i" netns "$hub"
  ip -n "$(ns $i)" link set "ev${tag}a$i" name eth0
  ip -n "$(ns $i)" addr add "10.77.0.$i/24" brd 10.77.0.255 dev eth0
  ip -n "$(ns $i)" link set eth0 up
  ip -n "$(ns $i)" link set lo up
  ip -n "$hub" link set "ev${tag}b$i" master br0
  ip -n "$hub" link set "ev${tag}b$i" up
done

start_node() {  # start_node I
  local i="$1"
  # `ip netns exec` execs the command itself, so $! is the node's own pid (kill -9 reaches it).
  ip netns exec "$(ns "$i")" "$EXO" --node-id "node$i" --node-port 50051 --chatgpt-api-port 52415 \
    --discovery-module udp --discovery-timeout "$DISCOVERY_TIMEOUT" --log-level debug \
    >>"$work/node$i.log" 2>&1 &
  pid[$i]=$!
}

api() { echo "http://127.0.0.1:52415"; }

# Number of nodes in node I's /v1/topology.
topology_size() {
  in_ns "$1" curl -s --max-time 2 "$(api)/v1/topology" | grep -o '"chip"' | wc -l
}

# State of resource ID on node I ("absent" when not listed).
resource_state() {
  local line
  line=$(in_ns "$1" "$EXO" resources list --api "$(api)" 2>/dev/null | awk -v id="$2" '$1 == id {print $3}')
  echo "${line:-absent}"
}

# Polls COMMAND until it succeeds or SECONDS pass (the condition is what is waited for).
eventually() {  # eventually SECONDS COMMAND...
  local seconds="$1"; shift
  local deadline=$(( $(date +%s) + seconds ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    "$@" && return 0
    sleep 0.2
  done
  "$@"
}

topology_is() { [ "$(topology_size "$1")" -eq "$2" ]; }
peer_is() { [ "$(resource_state "$1" "peer-node$2")" = "$3" ]; }
peer_not_ready() { local s; s=$(resource_state "$1" "peer-node$2"); [ "$s" != "READY" ]; }

# A streamed chat from node I; succeeds when the streamed text is the whole reply and [DONE] came.
chat_ok() {
  local out text
  out=$(in_ns "$1" curl -s -N --max-time 30 "$(api)/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model":"dummy","stream":true,"messages":[{"role":"user","content":"hello cluster"}]}')
  text=$(printf '%s' "$out" | grep -o '"content":"[^"]*"' | sed 's/^"content":"//; s/"$//' | tr -d '\n')
  [ "$text" = "$REPLY" ] && printf '%s' "$out" | grep -q 'data: \[DONE\]'
}

show_resources() {
  echo "---- exo resources list on node$1 ($2)"
  in_ns "$1" "$EXO" resources list --api "$(api)" | sed 's/^/    /'
}

for i in 1 2 3; do start_node $i; done

for i in 1 2 3; do
  check "node$i sees 3 nodes" eventually 40 topology_is $i 3
done
for i in 1 2 3; do
  for j in 1 2 3; do
    [ "$i" = "$j" ] && continue
    check "node$i's peer handle for node$j is READY" eventually 20 peer_is $i $j READY
  done
done
show_resources 1 "cluster formed"
for i in 1 2 3; do check "a streamed chat succeeds from node$i" chat_ok $i; done

# ---- node2 dies without a word ----
kill -9 "${pid[2]}"
wait "${pid[2]}" 2>/dev/null
start=$(date +%s)
check "node1 sees node2's peer handle fail" eventually $((DISCOVERY_TIMEOUT + 10)) peer_not_ready 1 2
check "node1 drops node2 from its topology" eventually $((DISCOVERY_TIMEOUT + 10)) topology_is 1 2
check "node3 drops node2 from its topology" eventually $((DISCOVERY_TIMEOUT + 10)) topology_is 3 2
elapsed=$(( $(date +%s) - start ))
echo "     (node2 dropped after ${elapsed} s; discovery timeout ${DISCOVERY_TIMEOUT} s)"
show_resources 1 "node2 killed"
check "a chat succeeds from node1 on the two nodes left" chat_ok 1
check "a chat succeeds from node3 on the two nodes left" chat_ok 3

# ---- node2 comes back ----
start_node 2
for i in 1 3; do
  check "node$i sees node2 again" eventually 40 topology_is $i 3
  check "node$i's peer handle for node2 is READY again" eventually 30 peer_is $i 2 READY
done
check "node2 sees the whole cluster" eventually 40 topology_is 2 3
show_resources 1 "node2 rejoined"
for i in 1 2 3; do check "a streamed chat succeeds from node$i after the rejoin" chat_ok $i; done

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
