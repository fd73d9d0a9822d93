# Shared by the cluster system test and the discovery benchmark (sourced, not run): three network
# namespaces joined by a bridge in a fourth (10.77.0.1-3/24), `exo` nodes started inside them, and
# small polling helpers. The caller sets EXO (path to the binary) and may set DISCOVERY_TIMEOUT.
# The API of node I is http://127.0.0.1:52415 inside namespace I.

tag="x$$"
hub="exo-${tag}-hub"
work=$(mktemp -d)
declare -A pid
# shellcheck source=checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
DISCOVERY_TIMEOUT=${DISCOVERY_TIMEOUT:-8}

ns() { echo "exo-${tag}-$1"; }
in_ns() { local n="$1"; shift; ip netns exec "$(ns "$n")" "$@"; }
api() { echo "http://127.0.0.1:52415"; }

netns_cluster_down() {
  for i in 1 2 3; do [ -n "${pid[$i]:-}" ] && kill -9 "${pid[$i]}" 2>/dev/null; done
  wait 2>/dev/null
  for i in 1 2 3; do ip netns del "$(ns $i)" 2>/dev/null; done
  ip netns del "$hub" 2>/dev/null
  if [ "$failed" -ne 0 ]; then
    for f in "$work"/*.log; do echo "---- $f (last 40 lines)"; tail -n 40 "$f"; done
  fi
  if [ -n "${EXO_KEEP_LOGS:-}" ]; then cp "$work"/*.log "$EXO_KEEP_LOGS"/ 2>/dev/null; fi
  rm -rf "$work"
}

# Creates the namespaces and the bridge; returns non-zero when this machine cannot.
netns_cluster_up() {
  trap netns_cluster_down EXIT
  ip netns add "$hub" 2>/dev/null || return 1
  ip -n "$hub" link add br0 type bridge 2>/dev/null || return 1
  ip -n "$hub" link set br0 up
  for i in 1 2 3; do
    ip netns add "$(ns $i)" || return 1
    ip link add "ev${tag}a$i" type veth peer name "ev${tag}b$i" 2>/dev/null || return 1
    ip link set "ev${tag}a$i" netns "$(ns $i)"
    ip link set "ev${tag}b$i" netns "$hub"
    ip -n "$(ns $i)" link set "ev${tag}a$i" name eth0
    ip -n "$(ns $i)" addr add "10.77.0.$i/24" brd 10.77.0.255 dev eth0
    ip -n "$(ns $i)" link set eth0 up
    ip -n "$(ns $i)" link set lo up
    ip -n "$hub" link set "ev${tag}b$i" master br0
    ip -n "$hub" link set "ev${tag}b$i" up
  done
}

start_node() {  # start_node I: node I with UDP discovery, gRPC port 50051, API port 52415
  local i="$1"
  # `ip netns exec` execs the command itself, so $! is the node's own pid (kill -9 reaches it).
  ip netns exec "$(ns "$i")" "$EXO" --node-id "node$i" --node-port 50051 --chatgpt-api-port 52415 --inference-engine dummy \
    --discovery-module udp --discovery-timeout "$DISCOVERY_TIMEOUT" --log-level debug \
    >>"$work/node$i.log" 2>&1 &
  pid[$i]=$!
}

# Polls COMMAND until it succeeds or SECONDS pass (the condition is what is waited for).
eventually() {  # eventually SECONDS COMMAND...
  local seconds="$1"; shift
  local deadline=$(( $(date +%s) + seconds ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    "$@" && return 0
    sleep 0.1
  done
  "$@"
}

# Number of nodes in node I's /v1/topology.
topology_size() {
  in_ns "$1" curl -s --max-time 2 "$(api)/v1/topology" | grep -o '"chip"' | wc -l
}
topology_is() { [ "$(topology_size "$1")" -eq "$2" ]; }

# State of resource ID on node I ("absent" when not listed).
resource_state() {
  local line
  line=$(in_ns "$1" "$EXO" resources list --api "$(api)" 2>/dev/null | awk -v id="$2" '$1 == id {print $3}')
  echo "${line:-absent}"
}
peer_is() { [ "$(resource_state "$1" "peer-node$2")" = "$3" ]; }
peer_not_ready() { local s; s=$(resource_state "$1" "peer-node$2"); [ "$s" != "READY" ]; }
