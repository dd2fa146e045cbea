#!/usr/bin/env bash
# Builds and runs Natter's own services against the local stack (deploy/stack.sh), each in the
# background with its pid in .natter/pids and its log in .natter/logs:
#
#   auth       http://127.0.0.1:8081   accounts, tokens, channels (REST)
#   edge-1     http://127.0.0.1:8080   WebSocket gateway (worker id 1)
#   edge-2     http://127.0.0.1:8090   WebSocket gateway (worker id 2): two edges, as in production
#   presence   http://127.0.0.1:8082   presence and discovery
#   persister  http://127.0.0.1:8083   JetStream -> CQL store
#   media      http://127.0.0.1:8084   attachments, avatars, icons (files under .natter/media)
#   notify     http://127.0.0.1:8085   mentions inbox, Web Push (VAPID key in .natter/keys/vapid.pem)
#   search     http://127.0.0.1:8087   message search (its index under .natter/search)
#
# Each serves /metrics on its own listener, 1000 above its port (auth http://127.0.0.1:9081/metrics,
# edge-1 :9080, edge-2 :9090, presence :9082, persister :9083, media :9084, notify :9085,
# search :9087), never on the public port.
#
# Usage: deploy/services.sh up|down|status [--cluster]. NATTER_PROFILE=dev builds a debug build
# (faster to build, slower to run); the default is release. NATTER_READY_TIMEOUT: how long up waits
# for each service's /readyz (90 s; 600 s with --cluster).
#
# --cluster: the cluster profile's services (deploy/cluster.sh starts its engines first), named
# c-*, beside the ones above: two auth, three edges, two persisters, one presence and media, on
# the 3-node NATS cluster (chat and events streams at R3) and the 3-node Cassandra ring (RF 3,
# QUORUM), with a PostgreSQL database (natter_cluster) and Redis db (2; LiveKit has 1) of their own,
# and two notify sharing one durable consumer and two search processes holding one of the index's
# two partitions each:
#
#   c-auth-1 8281  c-auth-2 8291  c-edge-1 8280  c-edge-2 8290  c-edge-3 8300
#   c-presence 8282  c-persister-1 8283  c-persister-2 8293  c-media 8284
#   c-notify-1 8285  c-notify-2 8295  c-search-1 8287  c-search-2 8297
#
# An edge reaches auth over REST at one address (--auth-url; the single-node default, 8081, is
# the other profile's auth): the edges are spread over the two, as a load balancer in front of
# auth would spread them in production.
#
# One presence: several would share the edges' reports through a queue group, and two reports
# about one session could then be applied out of order (docs/ARCHITECTURE.md, "Presence").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.natter"
PROFILE="${NATTER_PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ "$PROFILE" == "dev" ]]; then BIN="$TARGET_DIR/debug"; else BIN="$TARGET_DIR/$PROFILE"; fi

# name  binary  port  extra arguments. Every process that makes Snowflake ids has its own worker id.
SERVICES=(
  "auth auth 8081 --worker-id 0 --web-dir web/dist"
  "presence presence 8082"
  "persister persister 8083"
  "media media 8084 --storage local --storage-dir .natter/media"
  "notify notify 8085 --vapid-key .natter/keys/vapid.pem --auth-url http://127.0.0.1:8081"
  "search search 8087 --index-dir .natter/search"
  "edge-1 edge 8080 --worker-id 1"
  "edge-2 edge 8090 --worker-id 2"
)

# How long each service may take to answer /readyz.
READY_TIMEOUT=${NATTER_READY_TIMEOUT:-90}
CLUSTER=0
if [[ "${2:-}" == --cluster ]]; then
  CLUSTER=1
  # The persisters' first start on a fresh ring makes the keyspace and its tables, and each schema
  # change waits until the three JVMs agree on it: 12 migrations took 4 minutes here (2026-12-02).
  READY_TIMEOUT=${NATTER_READY_TIMEOUT:-600}
  SERVICES=(
    "c-auth-1 auth 8281 --worker-id 100 --web-dir web/dist"
    "c-auth-2 auth 8291 --worker-id 101 --web-dir web/dist"
    "c-presence presence 8282"
    "c-persister-1 persister 8283"
    "c-persister-2 persister 8293"
    "c-media media 8284 --storage local --storage-dir .natter/cluster-media"
    "c-notify-1 notify 8285 --vapid-key .natter/keys/cluster-vapid.pem --auth-url http://127.0.0.1:8281"
    "c-notify-2 notify 8295 --vapid-key .natter/keys/cluster-vapid.pem --auth-url http://127.0.0.1:8291"
    "c-search-1 search 8287 --owned-partitions 0 --index-dir .natter/cluster-search/0"
    "c-search-2 search 8297 --owned-partitions 1 --index-dir .natter/cluster-search/1"
    "c-edge-1 edge 8280 --worker-id 102 --auth-url http://127.0.0.1:8281"
    "c-edge-2 edge 8290 --worker-id 103 --auth-url http://127.0.0.1:8291"
    "c-edge-3 edge 8300 --worker-id 104 --auth-url http://127.0.0.1:8281"
  )
fi
# Where browsers load the client from (auth), and the edges it may reach.
auth_origins() {
  local line name bin port origins=()
  for line in "${SERVICES[@]}"; do
    read -r name bin port _ <<<"$line"
    [[ $bin == auth ]] && origins+=("http://127.0.0.1:$port" "http://localhost:$port")
  done
  local IFS=,; echo "${origins[*]},http://127.0.0.1:5173,http://localhost:5173"
}
edge_origins() {
  local line name bin port origins=()
  for line in "${SERVICES[@]}"; do
    read -r name bin port _ <<<"$line"
    [[ $bin == edge ]] && origins+=("http://127.0.0.1:$port")
  done
  local IFS=,; echo "${origins[*]}"
}
first_port_of() {
  local line name bin port
  for line in "${SERVICES[@]}"; do
    read -r name bin port _ <<<"$line"
    [[ $bin == "$1" ]] && { echo "$port"; return; }
  done
}

# The cluster profile's engines: seed lists of all three nodes, R3, RF 3 at QUORUM, and a
# database and Redis db of its own on the stack's PostgreSQL and Redis.
cluster_env() {
  export NATTER_NATS_URL=nats://127.0.0.1:14231,nats://127.0.0.1:14232,nats://127.0.0.1:14233
  export NATTER_STREAM_REPLICAS=3
  # The events stream (channel, server and member changes) too, as in the Helm chart: at R1 it
  # would live on one node only, and go when that node goes.
  export NATTER_EVENTS_STREAM_REPLICAS=3
  # The edges' file links and auth's page policy name this profile's media, not the other's 8084.
  NATTER_MEDIA_URL="http://127.0.0.1:$(first_port_of media)"
  export NATTER_MEDIA_URL
  # Auth's /api/v1/gateway names this profile's first notify for the mentions inbox (a load
  # balancer's address in production; both serve the same inbox from the ring).
  NATTER_NOTIFY_URL="http://127.0.0.1:$(first_port_of notify)"
  export NATTER_NOTIFY_URL
  # The search index in two partitions (by channel), one per search process; the edges ask
  # each partition holding a channel searched, and merge.
  export NATTER_SEARCH_PARTITIONS=2
  export NATTER_CQL_NODES=127.0.0.2:19142,127.0.0.3:19142,127.0.0.4:19142
  export NATTER_CQL_REPLICATION="{'class': 'SimpleStrategy', 'replication_factor': 3}"
  export NATTER_CQL_CONSISTENCY=quorum
  # Everyone signs up from 127.0.0.1 here, and one pass of deploy/cluster-check.sh signs up six:
  # auth's default (10 an hour per address) would refuse the second pass.
  export NATTER_SIGN_UP_RATE=${NATTER_SIGN_UP_RATE:-600/1h}
  local admin=$NATTER_DATABASE_URL
  export NATTER_DATABASE_URL="${admin%/*}/natter_cluster"
  # db 1 is LiveKit's (deploy/stack-media.sh, NATTER_LIVEKIT_REDIS_DB).
  export NATTER_REDIS_URL="${NATTER_REDIS_URL%/}/2"
  if [[ -z "$(psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = 'natter_cluster'")" ]]; then
    psql "$admin" -qc "CREATE DATABASE natter_cluster" >/dev/null
  fi
}

pid_of() { cat "$STATE/pids/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid="$(pid_of "$1")"; [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }
ready() { curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$1/readyz" 2>/dev/null; }

start_one() {
  local name="$1" bin="$2" port="$3"
  shift 3
  if alive "$name"; then
    echo "  $name already running (pid $(pid_of "$name"))"
    return
  fi
  local args=(--http-addr "127.0.0.1:$port" --metrics-addr "127.0.0.1:$((port + 1000))" "$@")
  if [[ "$bin" == edge ]]; then
    args+=(--public-url "ws://127.0.0.1:$port/gateway" --allowed-origins "$(auth_origins)")
  fi
  if [[ "$bin" == auth ]]; then
    # The web page's Content-Security-Policy lets it reach these edges (and auth) only.
    args+=(--signing-key "$STATE/keys/auth-1.pem"
           --edge-origins "$(edge_origins)")
  fi
  local secret_env=()
  if [[ "$bin" == media || "$bin" == edge ]]; then
    # Signed URLs' secret: made once, kept with the other keys, passed in the environment (not
    # on the command line, where `ps` would show it). Edges sign messages' file links with it.
    local secret="$STATE/keys/media-url-secret"
    if [[ ! -s "$secret" ]]; then
      (umask 077 && head -c 32 /dev/urandom | base64 >"$secret")
    fi
    secret_env=("NATTER_MEDIA_URL_SIGNING_SECRET=$(cat "$secret")")
  fi
  if [[ "$bin" == notify ]]; then
    # The mentions inbox is called from the web client's pages (CORS).
    args+=(--allowed-origins "$(auth_origins)")
  fi
  if [[ "$bin" == media ]]; then
    args+=(--public-url "http://127.0.0.1:$port" --auth-url "http://127.0.0.1:$(first_port_of auth)")
  fi
  env "${secret_env[@]+"${secret_env[@]}"}" NATTER_LOG_FORMAT=json nohup "$BIN/$bin" "${args[@]}" >>"$STATE/logs/$name.log" 2>&1 &
  echo $! >"$STATE/pids/$name.pid"
}

# The browser client auth serves (web/dist): built when missing or older than its sources.
build_client() {
  local web="$ROOT/web"
  if [[ -f "$web/dist/index.html" ]] && [[ -z "$(find "$web/src" "$web/index.html" "$web/package-lock.json" -newer "$web/dist/index.html" -print -quit)" ]]; then
    return
  fi
  command -v npm >/dev/null || { echo "natter: npm not found; install Node.js (apt-get install nodejs npm)" >&2; exit 1; }
  echo "== building the web client (npm ci, npm run build)"
  (cd "$web" && scripts/npm-ci.sh && npm run --silent build >/dev/null)
}

wait_ready() {
  local name="$1" port="$2" deadline=$((SECONDS + READY_TIMEOUT))
  until ready "$port"; do
    if ! alive "$name"; then
      echo "natter: $name exited; last lines of .natter/logs/$name.log:" >&2
      tail -n 40 "$STATE/logs/$name.log" >&2
      return 1
    fi
    if ((SECONDS > deadline)); then
      echo "natter: $name did not become ready in $READY_TIMEOUT s; /readyz says:" >&2
      curl -sS --max-time 3 "http://127.0.0.1:$port/readyz" >&2 || true
      echo >&2; tail -n 40 "$STATE/logs/$name.log" >&2
      return 1
    fi
    sleep 0.5
  done
  printf '  %-10s ready   http://127.0.0.1:%s\n' "$name" "$port"
}

up() {
  cd "$ROOT" # auth's --web-dir is relative to the checkout
  [[ -f "$STATE/env" ]] || { echo "natter: the stack is not up (deploy/stack.sh up)" >&2; exit 1; }
  # shellcheck disable=SC1091
  set -a; source "$STATE/env"; set +a
  if ((CLUSTER)); then cluster_env; fi
  mkdir -p "$STATE/pids" "$STATE/logs"
  local started=$SECONDS
  # A release build is the services and the load harness together: built apart, cargo resolves
  # other features for their shared dependencies and a later `cargo build -p loadtest` beside
  # them rebuilt every service (50 minutes on 2 cores). A debug build selects what the tests
  # select (the workspace with its dev-dependencies, shared/testkit's BUILD_SELECTION), so that
  # cargo resolves the same features and `NATTER_PROFILE=dev ./natter up` runs the binaries the
  # tests built.
  local selection=(-p auth -p edge -p presence -p persister -p media -p search -p notify -p loadtest)
  [[ $PROFILE == dev ]] && selection=(--workspace --examples)
  echo "== building services (cargo build --profile $PROFILE ${selection[*]})"
  cargo build --profile "$PROFILE" --locked --bins "${selection[@]}"
  # The access-token signing key: made once, kept across restarts (tokens stay valid).
  if [[ ! -f "$STATE/keys/auth-1.pem" ]]; then
    mkdir -p "$STATE/keys" && chmod 700 "$STATE/keys"
    "$BIN/auth" keygen "$STATE/keys/auth-1.pem"
  fi
  build_client
  echo "== starting services"
  local line
  for line in "${SERVICES[@]}"; do
    # shellcheck disable=SC2086
    start_one $line
  done
  for line in "${SERVICES[@]}"; do
    read -r name _ port _ <<<"$line"
    wait_ready "$name" "$port"
  done
  local auth_port edges
  auth_port=$(first_port_of auth)
  edges=$(edge_origins | sed 's#http://\([^,]*\)#ws://\1/gateway#g; s#,# and #g')
  echo "== Natter is up in $((SECONDS - started)) s"
  echo "   Open:     http://127.0.0.1:$auth_port/   (the web client)"
  echo "   OpenAPI:  http://127.0.0.1:$auth_port/api/v1/openapi.json"
  echo "   REST:     http://127.0.0.1:$auth_port/api/v1   (docs/API.md)"
  echo "   Gateway:  $edges   (docs/PROTOCOL.md)"
}

down() {
  local line name pid
  for line in "${SERVICES[@]}"; do
    read -r name _ <<<"$line"
    pid="$(pid_of "$name")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "  $name stopped"
    fi
    rm -f "$STATE/pids/$name.pid"
  done
}

status() {
  local line name port
  for line in "${SERVICES[@]}"; do
    read -r name _ port _ <<<"$line"
    if alive "$name"; then
      if ready "$port"; then s=ready; else s="running, not ready"; fi
      printf '  %-10s %-19s pid %-7s http://127.0.0.1:%s\n' "$name" "$s" "$(pid_of "$name")" "$port"
    else
      printf '  %-10s stopped\n' "$name"
    fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: deploy/services.sh up|down|status [--cluster]" >&2; exit 2 ;;
esac
