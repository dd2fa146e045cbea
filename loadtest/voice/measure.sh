#!/usr/bin/env bash
# measure.sh OUTDIR PUBLISHERS [video] [--after SECONDS]
#
# One measured run: starts a private LiveKit (a fresh process, so its idle RSS is a clean
# baseline), runs voice-load against it, samples both with pidstat during the steady part of the
# call, then stops LiveKit. With --after, it keeps sampling LiveKit's RSS that long after the
# room empties. Needs pidstat (Debian: sysstat) and a built /tmp/voice-load (go build -o).
#
# Ports (clear of the project's stack: 17880/17881/17900-17999, and of 7880/7881):
#   VOICE_LK_PORT=27880, VOICE_LK_TCP_PORT=27881, UDP 27900-27999.
# Environment: LIVEKIT_BIN (default: the stack's cached build), VOICE_LOAD (default /tmp/voice-load),
#   DURATION=60s.
set -euo pipefail

out=$1 n=$2 video=${3:-audio} after=0
[[ ${4:-} == --after ]] && after=$5
lk_bin=${LIVEKIT_BIN:-$HOME/.cache/natter/livekit-v1.13.5/livekit-server}
gen=${VOICE_LOAD:-/tmp/voice-load}
port=${VOICE_LK_PORT:-27880} tcp_port=${VOICE_LK_TCP_PORT:-27881}
duration=${DURATION:-60s}
secret=natter-voice-load-secret-0123456789abcdef
tag=n$n-$video-$(date +%H%M%S)
mkdir -p "$out"

# The stack's LiveKit settings, minus Redis (single node), TURN and webhooks.
cat >"$out/livekit.yaml" <<EOF
port: $port
bind_addresses: [127.0.0.1]
keys:
  devkey: $secret
rtc:
  node_ip: 127.0.0.1
  use_external_ip: false
  enable_loopback_candidate: true
  tcp_port: $tcp_port
  port_range_start: 27900
  port_range_end: 27999
room:
  empty_timeout: 300
logging:
  level: info
EOF
"$lk_bin" --config "$out/livekit.yaml" >"$out/$tag.livekit.log" 2>&1 &
lk=$!
trap 'kill $lk 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done
sleep 3
idle_rss=$(ps -o rss= -p $lk)

flags=()
[[ $video == video ]] && flags=(--video)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$gen" --url "ws://127.0.0.1:$port" --api-key devkey --api-secret "$secret" --room "$tag" \
  --publishers "$n" "${flags[@]}" --duration "$duration" --media-dir "$out/media" \
  >"$out/$tag.gen.log" 2>&1 &
g=$!
# Skip the ramp (joins every 0.5 s) and the first seconds after it, then sample 10 x 5 s.
sleep "$(awk -v n="$n" 'BEGIN { print n * 0.5 + 5 }')"
cpu0=$(head -1 /proc/stat)
pidstat -h -r -u -p "$lk,$g" 5 10 >"$out/$tag.pidstat" || true
cpu1=$(head -1 /proc/stat)
# UDP datagrams dropped because a socket's receive buffer was full (a process too slow to read,
# e.g. starved of CPU), counted per process from its sockets' "drops" in /proc/net/udp.
drops_of() {
  local inodes
  inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n')
  awk 'NR == FNR { want[$1] = 1; next } FNR > 1 && ($10 in want) { d += $NF } END { print d + 0 }' \
    <(printf '%s\n' "$inodes") /proc/net/udp /proc/net/udp6
}
lk_drops=$(drops_of $lk) gen_drops=$(drops_of $g)
load_during=$(cut -d' ' -f1-3 /proc/loadavg)
rc=0
wait $g || rc=$?

if ((after > 0)); then
  # RSS of the now idle server, every 10 s: does it give memory back once the room is gone?
  for ((t = 0; t <= after; t += 10)); do
    printf '%4ds %6d MB\n' "$t" $(($(ps -o rss= -p $lk) / 1024))
    sleep 10
  done >"$out/$tag.after"
fi
kill $lk
wait $lk 2>/dev/null || true

# Averages over the pidstat samples: %CPU is of one core (200 = both cores), RSS in MB.
avg() { awk -v pid="$1" -v col="$2" '
  /^#/ { for (i = 2; i <= NF; i++) h[$i] = i - 1; next }
  $3 == pid { s += $h[col]; c++ } END { if (c) printf "%.1f", s / c }' "$out/$tag.pidstat"; }
# The whole machine's busy CPU over the same window (of one core, like pidstat): it is shared.
machine_cpu=$(printf '%s\n%s\n' "$cpu0" "$cpu1" | awk -v n="$(nproc)" '
  { idle[NR] = $5 + $6; tot[NR] = 0; for (i = 2; i <= NF; i++) tot[NR] += $i }
  END { printf "%.0f", 100 * n * (1 - (idle[2] - idle[1]) / (tot[2] - tot[1])) }')
lk_rss=$(avg $lk RSS) lk_cpu=$(avg $lk %CPU) gen_cpu=$(avg $g %CPU)
printf 'RUN %s n=%s %s rc=%s lk_cpu=%s lk_rss_mb=%.1f idle_rss_mb=%.1f gen_cpu=%s machine_cpu=%s udp_drops_lk=%s udp_drops_gen=%s load_before="%s" load_during="%s" %s\n' \
  "$tag" "$n" "$video" "$rc" "$lk_cpu" "$(awk -v k="$lk_rss" 'BEGIN{print k/1024}')" \
  "$(awk -v k="$idle_rss" 'BEGIN{print k/1024}')" "$gen_cpu" "$machine_cpu" "$lk_drops" "$gen_drops" "$load_before" "$load_during" \
  "$(grep '^RESULT' "$out/$tag.gen.log" | cut -d' ' -f2-)" | tee -a "$out/runs.txt"
