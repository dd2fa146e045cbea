# shellcheck shell=bash
# The media and voice engines of the local stack, sourced by deploy/stack.sh (which defines the
# helpers used here: say, warn, die, spawn, run_logged, http_ok, probe, ...):
#
#   seaweedfs  SeaweedFS (S3-compatible object store), `weed server -s3`, built with the machine's
#              Go from the module in deploy/seaweedfs/
#   livekit    LiveKit server (the SFU that carries voice and video), built from deploy/livekit/
#   coturn     coturn (TURN relay for people behind strict NATs), Debian's `coturn` package
#
# Both Go engines are built once into $NATTER_CACHE/<name>-<version>/ and rebuilt only when their
# go.mod or go.sum change (the stamp in .complete). `up` builds them in the background while
# Cassandra boots. Secrets are generated on first use into .natter/keys/ (mode 0600, never
# committed) and written to .natter/env with the endpoints.
#
# Environment: NATTER_S3_PORT=18333 (SeaweedFS's own master, volume and filer use 18334-18340),
#   NATTER_S3_BUCKET=natter, NATTER_S3_REGION=us-east-1, NATTER_LIVEKIT_PORT=17880,
#   NATTER_LIVEKIT_TCP_PORT=17881 (ICE over TCP, the fallback when UDP is blocked),
#   NATTER_LIVEKIT_UDP_PORTS=17900-17999, NATTER_LIVEKIT_REDIS_DB=1,
#   NATTER_LIVEKIT_WEBHOOK_URL (unset: no webhooks), NATTER_TURN_PORT=13478,
#   NATTER_TURN_RELAY_PORTS=13500-13599, NATTER_TURN_REALM=natter, NATTER_GO (a go binary).
#
# Measured on the 2-vCPU dev VM (2026-11-30, other helpers' builds running beside: load 6-20):
#   Go module downloads into an empty module cache: SeaweedFS 90 s, then LiveKit 15 s (3.6 GB).
#   Cold builds: SeaweedFS 31 min (12.5 min of CPU; about 4 min on a quiet VM), then LiveKit
#     3.5 min (3 min of CPU; it reuses packages SeaweedFS compiled); a relink after a go.mod
#     edit that keeps the packages: 30 s.
#   SeaweedFS ready 3 s after its first start, about 17 s after a restart with data kept (its
#     first write waits about 10 s); it stops in 1-16 s. LiveKit and coturn: ready in under 1.5 s.
#   up from stopped with the engines built: 23 s in all, still Cassandra's start-up.

S3_PORT=${NATTER_S3_PORT:-18333}
S3_BUCKET=${NATTER_S3_BUCKET:-natter}
S3_REGION=${NATTER_S3_REGION:-us-east-1}
LIVEKIT_PORT=${NATTER_LIVEKIT_PORT:-17880}
LIVEKIT_TCP_PORT=${NATTER_LIVEKIT_TCP_PORT:-17881}
LIVEKIT_UDP_PORTS=${NATTER_LIVEKIT_UDP_PORTS:-17900-17999}
LIVEKIT_REDIS_DB=${NATTER_LIVEKIT_REDIS_DB:-1}
LIVEKIT_WEBHOOK_URL=${NATTER_LIVEKIT_WEBHOOK_URL:-}
TURN_PORT=${NATTER_TURN_PORT:-13478}
TURN_RELAY_PORTS=${NATTER_TURN_RELAY_PORTS:-13500-13599}
TURN_REALM=${NATTER_TURN_REALM:-natter}

# SeaweedFS runs a master, a volume server, a filer and the S3 gateway in one process, each with
# an HTTP and a gRPC port; all are pinned (its defaults 8080/9333/8888 and port+10000 would clash
# with the edges and leave our range).
SWFS_MASTER_PORT=$((S3_PORT + 1))
SWFS_MASTER_GRPC_PORT=$((S3_PORT + 2))
SWFS_VOLUME_PORT=$((S3_PORT + 3))
SWFS_VOLUME_GRPC_PORT=$((S3_PORT + 4))
SWFS_FILER_PORT=$((S3_PORT + 5))
SWFS_FILER_GRPC_PORT=$((S3_PORT + 6))
SWFS_S3_GRPC_PORT=$((S3_PORT + 7))

KEY_DIR=$STATE/keys

for _p in "$S3_PORT" "$SWFS_S3_GRPC_PORT" "$LIVEKIT_PORT" "$LIVEKIT_TCP_PORT" "$TURN_PORT"; do
  if ! [[ $_p =~ ^[0-9]{1,5}$ ]] || ((_p == 0 || _p > 65535)); then
    echo "stack: bad port '$_p' (check the NATTER_* variables)" >&2
    exit 2
  fi
done
[[ $LIVEKIT_REDIS_DB =~ ^[0-9]{1,2}$ ]] || {
  echo "stack: bad NATTER_LIVEKIT_REDIS_DB '$LIVEKIT_REDIS_DB' (a Redis database number)" >&2
  exit 2
}
for _p in "$LIVEKIT_UDP_PORTS" "$TURN_RELAY_PORTS"; do
  if ! [[ $_p =~ ^([0-9]{1,5})-([0-9]{1,5})$ ]] || ((BASH_REMATCH[1] == 0 ||
    BASH_REMATCH[2] > 65535 || BASH_REMATCH[1] > BASH_REMATCH[2])); then
    echo "stack: bad port range '$_p' (FROM-TO; check the NATTER_* variables)" >&2
    exit 2
  fi
done
for _p in "$S3_BUCKET" "$TURN_REALM"; do
  [[ $_p =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || {
    echo "stack: bad bucket or realm name '$_p' (lowercase letters, digits, '.' and '-')" >&2
    exit 2
  }
done
[[ -z $LIVEKIT_WEBHOOK_URL || $LIVEKIT_WEBHOOK_URL =~ ^https?://[^[:space:]\"]+$ ]] || {
  echo "stack: NATTER_LIVEKIT_WEBHOOK_URL must be an http(s) URL" >&2
  exit 2
}
unset _p

# ---------------------------------------------------------------------------------------------
# building the Go engines

# go_module_dir NAME, go_package NAME, go_binary_name NAME
go_module_dir() { printf '%s/%s\n' "$DEPLOY_DIR" "$1"; }
go_package() {
  case $1 in
    seaweedfs) printf 'github.com/seaweedfs/seaweedfs/weed\n' ;;
    livekit) printf 'github.com/livekit/livekit-server/cmd/server\n' ;;
  esac
}
go_binary_name() {
  case $1 in
    seaweedfs) printf 'weed\n' ;;
    livekit) printf 'livekit-server\n' ;;
  esac
}

# go_pinned NAME: the version deploy/NAME/go.mod requires of the engine's module.
go_pinned() {
  local module
  case $1 in
    seaweedfs) module=github.com/seaweedfs/seaweedfs ;;
    livekit) module=github.com/livekit/livekit-server ;;
  esac
  awk -v m="$module" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' \
    "$(go_module_dir "$1")/go.mod"
}

# The flags are part of the stamp, so changing them rebuilds too. -s -w: no symbol table or DWARF
# (a smaller binary, a faster link). No -trimpath: it would miss Go's build cache of a plain build.
readonly GO_BUILD_FLAGS=(-ldflags=-s\ -w)

# go_stamp NAME: changes whenever the module files or the build flags change.
go_stamp() {
  local dir
  dir=$(go_module_dir "$1")
  { cat "$dir/go.mod" "$dir/go.sum"; printf '%s\n' "${GO_BUILD_FLAGS[@]}"; } | sha256sum | cut -c1-32
}

go_engine_dir() { printf '%s/%s-%s\n' "$NATTER_CACHE" "$1" "$(go_pinned "$1")"; }
go_engine_bin() { printf '%s/%s\n' "$(go_engine_dir "$1")" "$(go_binary_name "$1")"; }

go_engine_ok() {
  local dir
  dir=$(go_engine_dir "$1")
  [[ -x $dir/$(go_binary_name "$1") && -f $dir/.complete && $(<"$dir/.complete") == "$(go_stamp "$1")" ]]
}

# find_go: the machine's Go (NATTER_GO, PATH, or the usual /usr/local/go). Debian bookworm's
# golang (1.19) is too old for either engine; the go line of each go.mod says what is needed.
find_go() {
  if [[ -n ${NATTER_GO:-} ]]; then
    [[ -x $NATTER_GO ]] && printf '%s\n' "$NATTER_GO"
  elif command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    printf '/usr/local/go/bin/go\n'
  else
    return 1
  fi
}

# build_go_engine NAME: go build into a fresh folder, then move it into place. The module
# downloads come through the Go module proxy into Go's own module cache (GOMODCACHE), so a second
# checkout or a rebuild downloads nothing. GOTOOLCHAIN=local: never fetch another Go.
build_go_engine() {
  local name=$1 go dir tmp log t0 bin
  go=$(find_go) || die "$name needs Go (go.mod of deploy/$name says which version): none on PATH, in /usr/local/go or NATTER_GO"
  dir=$(go_engine_dir "$name")
  bin=$(go_binary_name "$name")
  tmp=$dir.tmp.$$
  log=$LOG_DIR/build-$name.log
  t0=$(now_ms)
  say "building $name $(go_pinned "$name") with $("$go" env GOVERSION) into $dir (first time only; log: $log)"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  printf '\n### %s: go build %s\n' "$(date '+%F %T')" "$(go_package "$name")" >>"$log"
  if ! (cd "$(go_module_dir "$name")" && GOTOOLCHAIN=local "$go" build "${GO_BUILD_FLAGS[@]}" \
    -o "$tmp/$bin" "$(go_package "$name")") </dev/null >>"$log" 2>&1; then
    rm -rf "$tmp"
    warn "building $name failed; last 40 lines of $log:"
    tail -n 40 "$log" | sed 's/^/    /' >&2
    return 1
  fi
  go_stamp "$name" >"$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  say "built $name in $(secs_since "$t0")"
}

GO_BUILD_PID=""

# start_go_builds: build the missing Go engines one after the other in the background (each
# build uses every core already), so that they overlap Cassandra's boot and the apt installs.
start_go_builds() {
  local name missing=()
  for name in seaweedfs livekit; do go_engine_ok "$name" || missing+=("$name"); done
  ((${#missing[@]})) || return 0
  find_go >/dev/null || die "${missing[*]} need Go (see the go line of deploy/${missing[0]}/go.mod): none on PATH, in /usr/local/go or NATTER_GO"
  (
    for name in "${missing[@]}"; do build_go_engine "$name" || exit 1; done
  ) &
  GO_BUILD_PID=$!
}

# finish_go_builds: wait for start_go_builds; fails when a build failed.
finish_go_builds() {
  [[ -n $GO_BUILD_PID ]] || return 0
  local pid=$GO_BUILD_PID
  GO_BUILD_PID=""
  wait "$pid"
}

ensure_go_engine() {
  finish_go_builds || die "building the Go engines failed (logs: $LOG_DIR/build-*.log)"
  go_engine_ok "$1" || build_go_engine "$1" || die "building $1 failed"
}

# ---------------------------------------------------------------------------------------------
# secrets: made once, kept in .natter/keys/ (0600), reused on every start

# secret_value NAME BYTES [PREFIX]: print the secret in .natter/keys/NAME, made of BYTES random
# bytes in hex (after PREFIX) the first time.
secret_value() {
  local f=$KEY_DIR/$1 tmp value
  if [[ ! -s $f ]]; then
    mkdir -p "$KEY_DIR"
    chmod 0700 "$KEY_DIR"
    value=${3:-}$(od -An -N"$2" -tx1 /dev/urandom | tr -d ' \n')
    tmp=$f.tmp.$$
    (umask 077 && printf '%s\n' "$value" >"$tmp")
    mv -f "$tmp" "$f"
  fi
  chmod 0600 "$f"
  tr -d '\n' <"$f"
}

s3_access_key_id() { local v; v=$(secret_value s3-access-key-id 7 NATTER); printf '%s\n' "${v^^}"; }
s3_secret_access_key() { secret_value s3-secret-access-key 20; }
livekit_api_key() { secret_value livekit-api-key 6 API; }
livekit_api_secret() { secret_value livekit-api-secret 32; }
turn_secret() { secret_value turn-secret 32; }

# ---------------------------------------------------------------------------------------------
# SeaweedFS

# The identity Natter uses; without one configured SeaweedFS would let anyone in.
write_seaweedfs_identities() {
  local f=$STATE/seaweedfs/s3.json
  (umask 077 && cat >"$f.tmp" <<EOF
{
  "identities": [
    {
      "name": "natter",
      "credentials": [
        { "accessKey": "$(s3_access_key_id)", "secretKey": "$(s3_secret_access_key)" }
      ],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
EOF
  )
  mv -f "$f.tmp" "$f"
}

start_seaweedfs() {
  local dir=$STATE/seaweedfs
  mkdir -p "$dir/meta" "$dir/volumes"
  write_seaweedfs_identities
  # -master.telemetry=false: it would report to a server on the internet by default.
  # -volume.preStopSeconds=1: its 10 s default waits for a cluster to notice it leave.
  # -master.electionTimeout=1s: a restarted single master waits for two election timeouts before
  #   it leads (and accepts writes): 20 s with the default of 10 s.
  # -master.volumeSizeLimitMB / -volume.max=0: small volumes, as many as the disk allows (the
  #   default of 8 volumes of 30 GB fills up after one or two buckets).
  spawn "$(log_file seaweedfs)" "$dir" "$(go_engine_bin seaweedfs)" server \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/volumes" -master.dir="$dir/meta" \
    -master.port="$SWFS_MASTER_PORT" -master.port.grpc="$SWFS_MASTER_GRPC_PORT" \
    -master.telemetry=false -master.electionTimeout=1s -master.volumeSizeLimitMB=1024 \
    -volume.port="$SWFS_VOLUME_PORT" -volume.port.grpc="$SWFS_VOLUME_GRPC_PORT" \
    -volume.max=0 -volume.preStopSeconds=1 \
    -filer.port="$SWFS_FILER_PORT" -filer.port.grpc="$SWFS_FILER_GRPC_PORT" \
    -s3 -s3.port="$S3_PORT" -s3.port.grpc="$SWFS_S3_GRPC_PORT" \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$dir/s3.json"
  printf '%s\n' "$SPAWNED_PID" >"$(pid_file seaweedfs)"
}

# s3_request METHOD PATH [FILE]: an S3 request signed (SigV4) with Natter's keys, uploading FILE;
# prints the HTTP status (000 when nothing answered). (-T, not --data-binary: curl 7.88 signs a
# posted body in a way S3 servers reject.)
s3_request() {
  local body=()
  [[ $# -ge 3 ]] && body=(-T "$3")
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$1" "${body[@]}" \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$(s3_access_key_id):$(s3_secret_access_key)" \
    "http://127.0.0.1:$S3_PORT$2" 2>/dev/null || true
}

# Ready when a signed ListBuckets succeeds (the gateway, the filer behind it and the identity)
# and the master has been elected and knows a volume server: before that, creating a bucket or
# storing an object fails even though S3 answers (seen after every restart with data kept).
probe_seaweedfs() {
  [[ $(s3_request GET /) == 200 ]] &&
    curl -s --max-time 3 "http://127.0.0.1:$SWFS_MASTER_PORT/cluster/status" 2>/dev/null |
    grep -q '"IsLeader":true' &&
    curl -s --max-time 3 "http://127.0.0.1:$SWFS_MASTER_PORT/dir/status" 2>/dev/null |
    grep -q '"DataNodes":\[{'
}

# The bucket Natter stores in, then an object written and deleted in it: the whole write path
# works. Retried for a while, as the master may still be placing the bucket's first volumes.
bootstrap_seaweedfs() {
  local deadline=$(($(now_ms) + 60000)) bucket put del check=/$S3_BUCKET/.deploy-stack-check
  local file=$STATE/seaweedfs/check.txt
  printf 'written by deploy/stack.sh\n' >"$file"
  while :; do
    bucket=$(s3_request PUT "/$S3_BUCKET") # 409: it is there already
    put=$(s3_request PUT "$check" "$file")
    del=$(s3_request DELETE "$check")
    if [[ ($bucket == 200 || $bucket == 409) && $put == 200 && $del == 204 ]]; then return 0; fi
    if (($(now_ms) > deadline)); then
      warn "seaweedfs: bucket $S3_BUCKET: create $bucket, put $put, delete $del (for 60 s)"
      return 1
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------------
# LiveKit

write_livekit_config() {
  local dir=$STATE/livekit webhook=""
  (umask 077 && printf '%s: %s\n' "$(livekit_api_key)" "$(livekit_api_secret)" >"$dir/keys.yaml.tmp")
  mv -f "$dir/keys.yaml.tmp" "$dir/keys.yaml"
  turn_secret >/dev/null # LiveKit reads it from the file
  if [[ -n $LIVEKIT_WEBHOOK_URL ]]; then
    webhook="webhook:
  api_key: $(livekit_api_key)
  urls:
    - \"$LIVEKIT_WEBHOOK_URL\""
  fi
  cat >"$dir/livekit.yaml" <<EOF
# Written by deploy/stack.sh on every start: edit the script, not this file.
port: $LIVEKIT_PORT
bind_addresses: [127.0.0.1]
key_file: $dir/keys.yaml
rtc:
  node_ip: 127.0.0.1
  use_external_ip: false
  enable_loopback_candidate: true
  tcp_port: $LIVEKIT_TCP_PORT
  port_range_start: ${LIVEKIT_UDP_PORTS%-*}
  port_range_end: ${LIVEKIT_UDP_PORTS#*-}
  # coturn, handed to clients with credentials valid for 4 hours (TURN REST scheme)
  turn_servers:
    - host: 127.0.0.1
      port: $TURN_PORT
      protocol: udp
      secret_file: $KEY_DIR/turn-secret
      ttl: 14400
    - host: 127.0.0.1
      port: $TURN_PORT
      protocol: tcp
      secret_file: $KEY_DIR/turn-secret
      ttl: 14400
# rooms and nodes live in Redis, so several LiveKit nodes form one cluster
redis:
  address: 127.0.0.1:$REDIS_PORT
  db: $LIVEKIT_REDIS_DB
room:
  empty_timeout: 300
logging:
  level: info
$webhook
EOF
}

start_livekit() {
  local n=0
  mkdir -p "$STATE/livekit"
  # LiveKit refuses to start without its Redis: give a Redis launched just before a moment.
  until probe redis; do
    if ((n++ >= 150)); then
      # shellcheck disable=SC2034 # read by launch() in deploy/stack.sh
      START_ERROR="its Redis (redis://127.0.0.1:$REDIS_PORT) does not answer"
      return 0
    fi
    sleep 0.2
  done
  write_livekit_config
  spawn "$(log_file livekit)" "$STATE/livekit" "$(go_engine_bin livekit)" \
    --config "$STATE/livekit/livekit.yaml"
  printf '%s\n' "$SPAWNED_PID" >"$(pid_file livekit)"
}

# ---------------------------------------------------------------------------------------------
# coturn

write_coturn_config() {
  local dir=$STATE/coturn
  (umask 077 && cat >"$dir/turnserver.conf.tmp" <<EOF
# Written by deploy/stack.sh on every start: edit the script, not this file.
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$TURN_PORT
min-port=${TURN_RELAY_PORTS%-*}
max-port=${TURN_RELAY_PORTS#*-}
realm=$TURN_REALM
# TURN REST credentials: username "expiry:name", password base64(HMAC-SHA1(secret, username))
use-auth-secret
static-auth-secret=$(turn_secret)
fingerprint
no-tls
no-dtls
no-cli
no-multicast-peers
# Development only: the media server it relays to is on 127.0.0.1 here. Never in production.
allow-loopback-peers
userdb=$dir/turndb
pidfile=$dir/turnserver.pid
log-file=stdout
simple-log
EOF
  )
  mv -f "$dir/turnserver.conf.tmp" "$dir/turnserver.conf"
}

start_coturn() {
  mkdir -p "$STATE/coturn"
  write_coturn_config
  spawn "$(log_file coturn)" "$STATE/coturn" "$(command -v turnserver)" -c "$STATE/coturn/turnserver.conf"
  printf '%s\n' "$SPAWNED_PID" >"$(pid_file coturn)"
}

# A STUN binding request answered with our reflexive address.
probe_coturn() {
  timeout 3 turnutils_stunclient -p "$TURN_PORT" 127.0.0.1 2>/dev/null | grep -q 'reflexive addr'
}

# ---------------------------------------------------------------------------------------------
# what deploy/stack.sh asks of each engine

media_packages_for() {
  case $1 in
    seaweedfs) command -v curl >/dev/null || printf 'curl\n' ;;
    coturn) command -v turnserver >/dev/null && command -v turnutils_stunclient >/dev/null || printf 'coturn\n' ;;
  esac
  return 0
}

# LiveKit's Python SDK (PyPI `livekit`, Apache-2.0), which carries libwebrtc: the gateway tests'
# crashed voice client (edge/tests/gateway/media_peer.py) is a real WebRTC peer made with it.
LIVEKIT_PY_VERSION=1.2.1
livekit_py_ok() {
  [[ -x $VENV/bin/python ]] &&
    [[ $("$VENV/bin/python" -c 'import livekit.rtc as r; print(r.__version__)' 2>/dev/null) == "$LIVEKIT_PY_VERSION" ]]
}
ensure_livekit_py() {
  livekit_py_ok && return 0
  say "installing LiveKit's Python SDK $LIVEKIT_PY_VERSION (PyPI livekit) into $VENV, for the voice tests"
  if [[ ! -x $VENV/bin/pip ]]; then
    run_logged "$(python_bin)" -m venv "$VENV" || die "python3 -m venv $VENV failed"
  fi
  run_logged "$VENV/bin/pip" install --disable-pip-version-check -q "livekit==$LIVEKIT_PY_VERSION" ||
    die "pip install livekit==$LIVEKIT_PY_VERSION failed"
}

media_ensure_installed() {
  case $1 in
    seaweedfs) ensure_go_engine "$1" ;;
    livekit)
      ensure_go_engine "$1"
      ensure_livekit_py
      ;;
    coturn) command -v turnserver >/dev/null || die "turnserver not found (Debian package coturn)" ;;
  esac
}

media_proc_is() {
  case $1 in
    seaweedfs) [[ $2 == *weed\ server* ]] ;;
    livekit) [[ $2 == *livekit-server* ]] ;;
    coturn) [[ $2 == *turnserver* ]] ;;
    *) return 1 ;;
  esac
}

# TCP ports only (port_busy connects over TCP); coturn listens on TCP and UDP.
media_ports_of() {
  case $1 in
    seaweedfs)
      printf '%s ' "$S3_PORT" "$SWFS_MASTER_PORT" "$SWFS_MASTER_GRPC_PORT" "$SWFS_VOLUME_PORT" \
        "$SWFS_VOLUME_GRPC_PORT" "$SWFS_FILER_PORT" "$SWFS_FILER_GRPC_PORT" "$SWFS_S3_GRPC_PORT"
      printf '\n'
      ;;
    livekit) printf '%s %s\n' "$LIVEKIT_PORT" "$LIVEKIT_TCP_PORT" ;;
    coturn) printf '%s\n' "$TURN_PORT" ;;
  esac
}

media_describe_ports() {
  case $1 in
    seaweedfs) printf 'port %s (internal %s-%s)' "$S3_PORT" "$SWFS_MASTER_PORT" "$SWFS_S3_GRPC_PORT" ;;
    livekit) printf 'port %s (tcp %s, udp %s)' "$LIVEKIT_PORT" "$LIVEKIT_TCP_PORT" "$LIVEKIT_UDP_PORTS" ;;
    coturn) printf 'port %s (relay %s)' "$TURN_PORT" "$TURN_RELAY_PORTS" ;;
  esac
}

media_endpoint_of() {
  case $1 in
    seaweedfs) printf 's3 http://127.0.0.1:%s  (bucket %s)' "$S3_PORT" "$S3_BUCKET" ;;
    livekit) printf 'ws://127.0.0.1:%s' "$LIVEKIT_PORT" ;;
    coturn) printf 'turn:127.0.0.1:%s' "$TURN_PORT" ;;
  esac
}

media_probe() {
  case $1 in
    seaweedfs) probe_seaweedfs ;;
    livekit) http_ok "$LIVEKIT_PORT" / ;;
    coturn) probe_coturn ;;
    *) return 1 ;;
  esac
}

media_timeout_of() {
  case $1 in
    seaweedfs) printf '90\n' ;; # about 12 s here; much more beside a build
    *) printf '30\n' ;;
  esac
}

# SeaweedFS takes more than 10 s to exit on SIGTERM (it flushes and leaves its cluster); LiveKit
# waits for participants to leave before it exits.
media_stop_timeout() {
  case $1 in
    seaweedfs) printf '60\n' ;;
    livekit) printf '20\n' ;;
    *) printf '15\n' ;;
  esac
}

# Appended to .natter/env.
media_env() {
  cat <<EOF
NATTER_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
NATTER_S3_ACCESS_KEY_ID=$(s3_access_key_id)
NATTER_S3_SECRET_ACCESS_KEY=$(s3_secret_access_key)
NATTER_S3_BUCKET=$S3_BUCKET
NATTER_S3_REGION=$S3_REGION
NATTER_LIVEKIT_URL=ws://127.0.0.1:$LIVEKIT_PORT
NATTER_LIVEKIT_API_KEY=$(livekit_api_key)
NATTER_LIVEKIT_API_SECRET=$(livekit_api_secret)
NATTER_LIVEKIT_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/$LIVEKIT_REDIS_DB
NATTER_TURN_URL=turn:127.0.0.1:$TURN_PORT
NATTER_TURN_SECRET=$(turn_secret)
EOF
}
