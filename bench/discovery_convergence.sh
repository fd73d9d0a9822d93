#!/usr/bin/env bash
# Discovery convergence for a 3-node cluster: three `exo` processes in network namespaces (real UDP
# broadcast on a bridge). Per run: time from starting the processes until every node's /v1/topology
# lists all three (formation), then time from `kill -9` of one node until both survivors dropped it
# (departure). Needs root for network namespaces.
# Usage: bench/discovery_convergence.sh PATH_TO_EXO [RUNS=5]
set -u
EXO="$1"
RUNS="${2:-5}"
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 1; }
# shellcheck source=../tests/cli/netns_cluster.sh
. "$(dirname "$0")/../tests/cli/netns_cluster.sh"
netns_cluster_up || { echo "cannot create network namespaces here"; exit 1; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
all_see() {  # all_see COUNT NODE...
  local count="$1"; shift
  for n in "$@"; do topology_is "$n" "$count" || return 1; done
}
stop_all() {
  for i in 1 2 3; do [ -n "${pid[$i]:-}" ] && kill -9 "${pid[$i]}" 2>/dev/null; done
  wait 2>/dev/null
  pid=()
}

formation=()
departure=()
for run in $(seq 1 "$RUNS"); do
  t0=$(now_ms)
  for i in 1 2 3; do start_node "$i"; done
  eventually 60 all_see 3 1 2 3 || { echo "run $run: the cluster did not form"; exit 1; }
  formation+=($(( $(now_ms) - t0 )))
  kill -9 "${pid[2]}"
  t1=$(now_ms)
  eventually 60 all_see 2 1 3 || { echo "run $run: node2 was not dropped"; exit 1; }
  departure+=($(( $(now_ms) - t1 )))
  stop_all
  echo "run $run: formed in ${formation[-1]} ms, killed node dropped in ${departure[-1]} ms"
done

summary() {  # summary NAME VALUES...
  local name="$1"; shift
  local sorted
  sorted=$(printf '%s\n' "$@" | sort -n)
  local n=$#
  local p50 max
  p50=$(echo "$sorted" | sed -n "$(( (n + 1) / 2 ))p")
  max=$(echo "$sorted" | tail -n 1)
  printf '%-34s p50 %6d ms   max %6d ms   (%d runs)\n' "$name" "$p50" "$max" "$n"
}
echo
echo "broadcast interval 2.5 s, discovery timeout ${DISCOVERY_TIMEOUT} s, peer health checks every 5 s"
summary "formation (3 nodes, all see all)" "${formation[@]}"
summary "departure (kill -9, both drop it)" "${departure[@]}"
