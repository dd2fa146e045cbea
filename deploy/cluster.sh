#!/usr/bin/env bash
# The cluster profile: Natter on a 3-node NATS cluster and a 3-node Cassandra ring, on this one
# machine, beside the single-node stack (which it leaves running, and whose PostgreSQL and Redis
# it shares through a database and a Redis db of its own).
#
# Usage: deploy/cluster.sh up [--engines]|down|status   (./natter up --cluster, ./natter down --cluster)
#   --engines: the NATS cluster and the Cassandra ring only, no services
#
#   NATS       deploy/nats/cluster.sh: n1-n3, clients 14231-14233; the chat and events streams at R3
#   Cassandra  c1-c3 on 127.0.0.2-4, CQL 19142, storage 17100, heap NATTER_RING_HEAP (768m);
#              data and logs .natter/cassandra-ring/cN (logs/cassandra.log); the keyspace
#              natter at replication factor 3, read and written at QUORUM
#   services   deploy/services.sh up --cluster: auth-1/2, edge-1/2/3, persister-1/2, presence,
#              media, notify-1/2, search-1/2 (a partition each) on 8280-8300 (docs/DEVELOPMENT.md, "The cluster profile")
#
# deploy/cluster-check.sh [--faults] checks the running profile as a user would (and with
# --faults, after SIGKILLing a NATS node and a Cassandra node, and after bringing them back).
#
# Every service is given the seed lists (all three NATS nodes, all three Cassandra nodes), never
# one node. Ports differ from the single-node stack's (14222, 19042, 8080-8090).
set -euo pipefail
shopt -s extglob

SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
DEPLOY_DIR=$(dirname -- "$SCRIPT_PATH")
ROOT=$(git -C "$DEPLOY_DIR" rev-parse --show-toplevel 2>/dev/null || true)
[[ -n $ROOT ]] || ROOT=$(dirname -- "$DEPLOY_DIR")
STATE=$(readlink -f -- "$ROOT/.natter")

RING=(c1 c2 c3)
RING_CQL_PORT=19142
RING_STORAGE_PORT=17100
RING_HEAP=${NATTER_RING_HEAP:-768m}
RING_CLUSTER=natter-ring
# A JVM boot on two loaded cores takes minutes; three of them at once longer.
RING_TIMEOUT=${NATTER_RING_TIMEOUT:-600}

say() { printf '%s\n' "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }
address_of() { printf '127.0.0.%s\n' "$((${1#c} + 1))"; }
pid_file() { printf '%s/pids/cassandra-%s.pid\n' "$STATE" "$1"; }
log_file() { printf '%s/logs/cassandra-%s.log\n' "$STATE" "$1"; }
python_bin() { if [[ -x $HOME/.cache/natter/venv/bin/python ]]; then echo "$HOME/.cache/natter/venv/bin/python"; else command -v python3; fi; }

node_pid() {
  local pid
  pid=$(cat "$(pid_file "$1")" 2>/dev/null || true)
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *@(CassandraDaemon|ring-cassandra)* ]] &&
    printf '%s\n' "$pid"
}

answers_cql() { "$(python_bin)" "$DEPLOY_DIR/cql_probe.py" "$(address_of "$1")" "$RING_CQL_PORT" 2 >/dev/null 2>&1; }

start_node() {
  local node=$1
  if node_pid "$node" >/dev/null; then
    say "  cassandra-$node already running (pid $(node_pid "$node"))"
    return
  fi
  mkdir -p "$STATE/cassandra-ring/$node" "$STATE/logs" "$STATE/pids"
  (exec setsid "$DEPLOY_DIR/stack.sh" ring-cassandra "$STATE/cassandra-ring/$node" \
    "$(address_of "$node")" "$(address_of c1)" "$RING_CQL_PORT" "$RING_STORAGE_PORT" \
    "$RING_HEAP" "$RING_CLUSTER") </dev/null >>"$(log_file "$node")" 2>&1 &
  printf '%s\n' "$!" >"$(pid_file "$node")"
}

wait_nodes() {
  local started=$SECONDS node waiting
  while :; do
    waiting=()
    for node in "$@"; do
      if ! node_pid "$node" >/dev/null; then
        tail -n 30 "$(log_file "$node")" >&2
        die "cassandra-$node exited; its log is $(log_file "$node")"
      fi
      answers_cql "$node" || waiting+=("$node")
    done
    ((${#waiting[@]} == 0)) && break
    ((SECONDS - started > RING_TIMEOUT)) && die "no CQL from ${waiting[*]} after ${RING_TIMEOUT}s"
    sleep 2
  done
  say "  cassandra $* answer CQL after $((SECONDS - started)) s"
}

ring_up() {
  # The seed first, so the others find a ring to join; then the two others together.
  start_node c1
  wait_nodes c1
  start_node c2
  start_node c3
  wait_nodes c2 c3
}

ring_down() {
  local node pid
  for node in "${RING[@]}"; do
    pid=$(node_pid "$node") || { rm -f "$(pid_file "$node")"; continue; }
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$(pid_file "$node")"
    say "  cassandra-$node stopped"
  done
}

ring_status() {
  local node state
  for node in "${RING[@]}"; do
    if node_pid "$node" >/dev/null; then
      if answers_cql "$node"; then state=ready; else state="running, not answering CQL"; fi
      printf '  %-12s %-27s pid %-7s %s:%s\n' "cassandra-$node" "$state" "$(node_pid "$node")" \
        "$(address_of "$node")" "$RING_CQL_PORT"
    else
      printf '  %-12s stopped\n' "cassandra-$node"
    fi
  done
}

case ${1:-} in
  up)
    "$DEPLOY_DIR/stack.sh" up
    say "== NATS cluster (3 nodes)"
    "$DEPLOY_DIR/nats/cluster.sh" up
    say "== Cassandra ring (3 nodes)"
    ring_up
    if [[ ${2:-} != --engines ]]; then
      "$DEPLOY_DIR/services.sh" up --cluster
    fi
    ;;
  down)
    "$DEPLOY_DIR/services.sh" down --cluster
    ring_down
    "$DEPLOY_DIR/nats/cluster.sh" down
    ;;
  status)
    "$DEPLOY_DIR/nats/cluster.sh" status
    ring_status
    "$DEPLOY_DIR/services.sh" status --cluster
    ;;
  *)
    printf 'usage: %s up|down|status\n' "$0" >&2
    exit 2
    ;;
esac
