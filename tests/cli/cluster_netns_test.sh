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
DISCOVERY_TIMEOUT=8  # seconds (--discovery-timeout of every node)
REPLY="This is the exo dummy engine answering. "

skip() { echo "SKIP: $*"; exit $SKIP; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null 2>&1 || skip "iproute2 (ip) is not installed"
command -v curl >/dev/null 2>&1 || skip "curl is not installed"

# shellcheck source=netns_cluster.sh
. "$(dirname "$0")/netns_cluster.sh"
netns_cluster_up || skip "cannot create network namespaces, veth pairs or a bridge here"

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
