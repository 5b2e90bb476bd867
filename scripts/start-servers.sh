#!/usr/bin/env bash
# Starts whatever of NATS (JetStream), Redis, PostgreSQL and etcd is not answering on loopback, waits
# until each answers, and prints one line per server. Idempotent: a server that answers is left alone.
# Exits non-zero naming the server that would not start. Meant for root on Debian (the project's
# machines, CI boxes, a developer VM); the packages are nats-server, redis-server, postgresql, etcd-server.
#
# With --cluster, also the loopback NATS and etcd clusters (scripts/cluster.sh up).
#
# Settings (environment): IDMAP_ETCD_DATA_DIR (/var/lib/idmap-etcd), IDMAP_START_TIMEOUT seconds (30).
set -u

ETCD_DATA_DIR="${IDMAP_ETCD_DATA_DIR:-/var/lib/idmap-etcd}"
TIMEOUT="${IDMAP_START_TIMEOUT:-30}"
failed=()

# --- probes: each returns 0 when the server answers -------------------------------------------------

nats_up() {
  # The server's greeting is an INFO line; JetStream must be on.
  local info
  info=$(timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4222 && head -n1 <&3' 2>/dev/null) || return 1
  [[ "$info" == INFO* && "$info" == *'"jetstream":true'* ]]
}

redis_up() {
  [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == "PONG" ]]
}

postgres_up() {
  timeout 3 pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1
}

etcd_up() {
  timeout 2 curl -fsS http://127.0.0.1:2379/health 2>/dev/null | grep -q '"health":"true"'
}

# --- starters: each starts the server in the background (the caller waits) ---------------------------

start_nats() {
  command -v nats-server >/dev/null || { echo "nats-server is not installed (apt-get install nats-server)" >&2; return 1; }
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
}

start_redis() {
  command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; return 1; }
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

start_postgres() {
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  [[ -n "$version" ]] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; return 1; }
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

start_etcd() {
  if ! command -v etcd >/dev/null; then
    echo "etcd is not installed; installing etcd-server with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null || return 1
  fi
  mkdir -p "$ETCD_DATA_DIR"
  chmod 700 "$ETCD_DATA_DIR"
  # Revision-based auto compaction keeps the last 10000 revisions: without compaction, CAS under
  # contention slows down as revisions pile up (ecosystem.md). A watch resuming from an older
  # revision gets a compaction error and re-lists.
  start-stop-daemon --start --oknodo --background --make-pidfile --pidfile /run/idmap-etcd.pid \
    --output /var/log/idmap-etcd.log --exec "$(command -v etcd)" -- \
    --name idmap --data-dir "$ETCD_DATA_DIR" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster idmap=http://127.0.0.1:2380 \
    --auto-compaction-mode revision --auto-compaction-retention 10000
}

# --- one server: probe, start if needed, wait ---------------------------------------------------------

ensure() {
  local name=$1 probe=$2 start=$3 where=$4
  if "$probe"; then
    echo "$name: already running ($where)"
    return 0
  fi
  local out
  if ! out=$("$start" 2>&1); then
    echo "$name: FAILED to start: $out" >&2
    failed+=("$name")
    return 1
  fi
  local deadline=$((SECONDS + TIMEOUT))
  until "$probe"; do
    if ((SECONDS >= deadline)); then
      echo "$name: FAILED: started but not answering on $where after ${TIMEOUT}s${out:+ ($out)}" >&2
      failed+=("$name")
      return 1
    fi
    sleep 0.2
  done
  echo "$name: started ($where)"
}

ensure "nats"     nats_up     start_nats     "nats://127.0.0.1:4222, JetStream"
ensure "redis"    redis_up    start_redis    "redis://127.0.0.1:6379"
ensure "postgres" postgres_up start_postgres "127.0.0.1:5432"
ensure "etcd"     etcd_up     start_etcd     "http://127.0.0.1:2379"

# --- tools the tests need (not servers) ----------------------------------------------------------------

# promtool checks docs/ops/alerts.yml and its unit tests; Debian ships it in the prometheus package.
if command -v promtool >/dev/null; then
  echo "promtool: installed"
else
  echo "promtool is not installed; installing prometheus (for promtool) with apt-get" >&2
  if DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; then
    echo "promtool: installed"
  else
    failed+=("promtool")
  fi
fi

# Chromium drives the console tests (test/operator/console.test.ts, through playwright-core, which downloads
# no browser); Debian ships it as chromium.
if [[ -x "${IDMAP_TEST_CHROMIUM:-/usr/bin/chromium}" ]]; then
  echo "chromium: installed"
else
  echo "chromium is not installed; installing it with apt-get" >&2
  if DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
    echo "chromium: installed"
  else
    failed+=("chromium")
  fi
fi

if [[ "${1:-}" == "--cluster" ]] && ! bash "$(dirname "$0")/cluster.sh" up; then
  failed+=("cluster")
fi

if ((${#failed[@]} > 0)); then
  echo "could not start: ${failed[*]}" >&2
  exit 1
fi
