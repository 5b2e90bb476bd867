#!/usr/bin/env bash
# A three-node NATS JetStream cluster and a three-member etcd cluster on loopback, for the cluster
# tests, the cluster benchmark and anyone trying a clustered deployment on one machine. Ports stay
# clear of the single servers (NATS 4222, etcd 2379/2380) that scripts/start-servers.sh runs:
#
#   nats-1..3  clients 14222-14224, routes 16222-16224, monitoring 18222-18224, cluster "idmap"
#   etcd-1..3  clients 12379/12381/12383, peers 12380/12382/12384, cluster token "idmap-cluster"
#
# Usage: scripts/cluster.sh [up]          start every node that does not answer, wait for quorum
#        scripts/cluster.sh status        one line per node, exit 1 when a node is down
#        scripts/cluster.sh stop NODE     SIGTERM, wait until it is gone
#        scripts/cluster.sh kill NODE     SIGKILL (kill -9), wait until it is gone
#        scripts/cluster.sh start NODE    start it again on the same data, wait until it answers
#        scripts/cluster.sh restart NODE  stop, then start
#        scripts/cluster.sh pause NODE    SIGSTOP (a node that hangs: its peers see it partitioned)
#        scripts/cluster.sh resume NODE   SIGCONT
#        scripts/cluster.sh down          stop every node (data is kept)
# NODE is nats-1, nats-2, nats-3, etcd-1, etcd-2 or etcd-3.
#
# Idempotent like start-servers.sh: a node that answers is left alone. Data, logs and pid files live
# under IDMAP_CLUSTER_DIR (default /var/lib/idmap-cluster): <dir>/<node>/ and <dir>/<node>.pid.
# Settings: IDMAP_CLUSTER_DIR, IDMAP_START_TIMEOUT seconds (60).
set -u

DIR="${IDMAP_CLUSTER_DIR:-/var/lib/idmap-cluster}"
TIMEOUT="${IDMAP_START_TIMEOUT:-60}"
NODES=(nats-1 nats-2 nats-3 etcd-1 etcd-2 etcd-3)

# --- ports of a node ----------------------------------------------------------------------------------

index() { echo "${1##*-}"; }
nats_client_port() { echo $((14221 + $(index "$1"))); }
nats_route_port() { echo $((16221 + $(index "$1"))); }
nats_monitor_port() { echo $((18221 + $(index "$1"))); }
etcd_client_port() { echo $((12377 + 2 * $(index "$1"))); }
etcd_peer_port() { echo $((12378 + 2 * $(index "$1"))); }

pidfile() { echo "$DIR/$1.pid"; }

# The process recorded for the node, when it still runs.
node_pid() {
  local pid
  pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# --- probes: 0 when the node answers --------------------------------------------------------------------

# A NATS node answers when its monitoring endpoint says JetStream is healthy (meta leader known,
# streams current); a node that only accepts connections is not enough for the tests.
nats_up() {
  timeout 2 curl -fsS "http://127.0.0.1:$(nats_monitor_port "$1")/healthz" 2>/dev/null | grep -q '"ok"'
}

# An etcd member is healthy only while the cluster has a leader (quorum).
etcd_up() {
  timeout 2 curl -fsS "http://127.0.0.1:$(etcd_client_port "$1")/health" 2>/dev/null | grep -q '"health":"true"'
}

node_up() {
  case "$1" in
    nats-*) nats_up "$1" ;;
    etcd-*) etcd_up "$1" ;;
  esac
}

# --- starters -------------------------------------------------------------------------------------------

start_nats() {
  local node=$1 routes=() i
  command -v nats-server >/dev/null || { echo "nats-server is not installed (apt-get install nats-server)" >&2; return 1; }
  for i in 1 2 3; do
    [[ "nats-$i" == "$node" ]] || routes+=("nats://127.0.0.1:$(nats_route_port "nats-$i")")
  done
  mkdir -p "$DIR/$node"
  # -n gives each node the distinct server name JetStream's raft groups need.
  start-stop-daemon --start --background --pidfile "$(pidfile "$node")" --exec "$(command -v nats-server)" -- \
    -n "$node" -a 127.0.0.1 -p "$(nats_client_port "$node")" -m "$(nats_monitor_port "$node")" \
    -js -sd "$DIR/$node" --cluster_name idmap --cluster "nats://127.0.0.1:$(nats_route_port "$node")" \
    --routes "$(IFS=,; echo "${routes[*]}")" -P "$(pidfile "$node")" -l "$DIR/$node/server.log"
}

start_etcd() {
  local node=$1 members=() i
  if ! command -v etcd >/dev/null; then
    echo "etcd is not installed; installing etcd-server with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null || return 1
  fi
  for i in 1 2 3; do members+=("etcd-$i=http://127.0.0.1:$(etcd_peer_port "etcd-$i")"); done
  mkdir -p "$DIR/$node"
  chmod 700 "$DIR/$node"
  local client="http://127.0.0.1:$(etcd_client_port "$node")" peer="http://127.0.0.1:$(etcd_peer_port "$node")"
  # --initial-cluster* only matter the first time: a member restarted on its data rejoins as itself.
  # Auto-compaction as on the single server: CAS under contention slows as revisions pile up.
  start-stop-daemon --start --background --make-pidfile --pidfile "$(pidfile "$node")" \
    --output "$DIR/$node/server.log" --exec "$(command -v etcd)" -- \
    --name "$node" --data-dir "$DIR/$node/data" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$(IFS=,; echo "${members[*]}")" --initial-cluster-state new \
    --initial-cluster-token idmap-cluster \
    --auto-compaction-mode revision --auto-compaction-retention 10000 --log-level warn
}

start_node() {
  local node=$1
  if node_pid "$node" >/dev/null; then return 0; fi
  case "$node" in
    nats-*) start_nats "$node" ;;
    etcd-*) start_etcd "$node" ;;
  esac
}

# Waits until every given node answers (a lone etcd member cannot: health needs quorum).
wait_up() {
  local deadline=$((SECONDS + TIMEOUT)) node
  for node in "$@"; do
    until node_up "$node"; do
      if ((SECONDS >= deadline)); then
        echo "$node: FAILED: not answering after ${TIMEOUT}s; its log: $DIR/$node/server.log" >&2
        tail -n 5 "$DIR/$node/server.log" >&2 2>/dev/null
        return 1
      fi
      sleep 0.2
    done
  done
}

check_node() {
  local n
  for n in "${NODES[@]}"; do [[ "$n" == "$1" ]] && return 0; done
  echo "unknown node ${1:-(none)}: expected one of ${NODES[*]}" >&2
  exit 2
}

# Sends a signal to the node's recorded process; with wait, returns once the process is gone.
signal_node() {
  local node=$1 sig=$2 wait=$3 pid
  pid=$(node_pid "$node") || { echo "$node: not running"; return 0; }
  kill -"$sig" "$pid"
  if [[ "$wait" == wait ]]; then
    local deadline=$((SECONDS + TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        echo "$node: pid $pid still running ${TIMEOUT}s after SIG$sig" >&2
        return 1
      fi
      sleep 0.05
    done
    rm -f "$(pidfile "$node")"
  fi
  echo "$node: SIG$sig sent (pid $pid)"
}

url_of() {
  case "$1" in
    nats-*) echo "nats://127.0.0.1:$(nats_client_port "$1")" ;;
    etcd-*) echo "http://127.0.0.1:$(etcd_client_port "$1")" ;;
  esac
}

# --- commands -----------------------------------------------------------------------------------------------

cmd=${1:-up}
case "$cmd" in
  up)
    mkdir -p "$DIR"
    started=() failed=0
    for node in "${NODES[@]}"; do
      if node_up "$node"; then continue; fi
      if ! out=$(start_node "$node" 2>&1); then
        echo "$node: FAILED to start: $out" >&2
        failed=1
      else
        started+=("$node")
      fi
    done
    ((failed == 0)) || exit 1
    wait_up "${NODES[@]}" || exit 1
    for node in "${NODES[@]}"; do
      state="already running"
      for s in "${started[@]}"; do [[ "$s" == "$node" ]] && state="started"; done
      echo "$node: $state ($(url_of "$node"))"
    done
    ;;
  status)
    down=0
    for node in "${NODES[@]}"; do
      pid=$(node_pid "$node") || pid=""
      if node_up "$node"; then echo "$node: up ($(url_of "$node"), pid ${pid:-unknown})"
      elif [[ -n "$pid" ]]; then echo "$node: running but not answering (pid $pid)"; down=1
      else echo "$node: down"; down=1
      fi
    done
    exit $down
    ;;
  start)
    check_node "${2:-}"
    start_node "$2" || exit 1
    wait_up "$2" || exit 1
    echo "$2: up ($(url_of "$2"))"
    ;;
  stop) check_node "${2:-}"; signal_node "$2" TERM wait ;;
  kill) check_node "${2:-}"; signal_node "$2" KILL wait ;;
  pause) check_node "${2:-}"; signal_node "$2" STOP nowait ;;
  resume) check_node "${2:-}"; signal_node "$2" CONT nowait ;;
  restart)
    check_node "${2:-}"
    signal_node "$2" TERM wait && start_node "$2" && wait_up "$2" && echo "$2: up ($(url_of "$2"))"
    ;;
  down)
    for node in "${NODES[@]}"; do
      signal_node "$node" CONT nowait >/dev/null
      signal_node "$node" TERM wait
    done
    ;;
  *)
    echo "usage: $0 [up|status|down|start NODE|stop NODE|kill NODE|restart NODE|pause NODE|resume NODE]" >&2
    exit 2
    ;;
esac
