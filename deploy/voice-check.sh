#!/usr/bin/env bash
# Tells an operator whether a call can connect to this deployment from where it runs (run it
# from outside: another network, a laptop on a phone's hotspot). Each check prints ok or FAIL with
# what to fix; the exit status is the number of failures.
#
#   deploy/voice-check.sh --livekit wss://voice.example.com --turn turn:turn.example.com:3478 \
#                         --turn-secret SECRET [--ice-tcp-port 7881]
#   ./natter voice-check            # the local stack, from .natter/env
#
# What it checks:
#   1. the media server's signalling answers (LiveKit's `/` says OK, over the URL browsers use);
#   2. its ICE-over-TCP port accepts connections (the path for networks that block UDP);
#   3. TURN hands out a relay with the time-limited credentials LiveKit gives clients (the TURN
#      REST scheme: user `expiry:name`, password base64(HMAC-SHA1(secret, user))), and media
#      relayed through it arrives, over UDP and over TCP (coturn's turnutils_uclient).
# LiveKit's own UDP range cannot be proven open without a WebRTC peer: when 1-3 pass and calls
# still stay at "Connecting", open the range (rtc.port_range_start..end) or force relay.
set -uo pipefail

livekit="" turn="" secret="" ice_tcp_port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --livekit) livekit="$2"; shift 2 ;;
    --turn) turn="$2"; shift 2 ;;
    --turn-secret) secret="$2"; shift 2 ;;
    --ice-tcp-port) ice_tcp_port="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done
secret="${secret:-${NATTER_TURN_SECRET:-}}"
if [ -z "$livekit" ] || [ -z "$turn" ] || [ -z "$secret" ]; then
  echo "needs --livekit URL, --turn turn:HOST:PORT and --turn-secret (or NATTER_TURN_SECRET)" >&2
  exit 64
fi

failures=0
ok() { printf '  ok    %s\n' "$1"; }
fail() { printf '  FAIL  %s\n        %s\n' "$1" "$2"; failures=$((failures + 1)); }

# host and port of a URL or turn: URI
http_url="${livekit/#wss:/https:}"; http_url="${http_url/#ws:/http:}"
lk_host="$(printf %s "$livekit" | sed -E 's#^[a-z]+://##; s#[:/].*$##')"

echo "media server $livekit"
answer="$(curl -sS --max-time 10 "${http_url%/}/" 2>&1)"
if [ "$answer" = "OK" ]; then
  ok "signalling answers at ${http_url%/}/"
else
  fail "signalling at ${http_url%/}/ did not answer OK: ${answer:0:120}" \
       "open TCP 7880 (or 443 through the TLS proxy) and check --livekit-public-url"
fi

if [ -n "$ice_tcp_port" ]; then
  if timeout 5 bash -c "exec 3<>/dev/tcp/$lk_host/$ice_tcp_port" 2>/dev/null; then
    ok "ICE over TCP: $lk_host:$ice_tcp_port accepts connections"
  else
    fail "ICE over TCP: $lk_host:$ice_tcp_port refused or timed out" \
         "open rtc.tcp_port for networks that block UDP"
  fi
fi

turn_hostport="${turn#turn:}"; turn_hostport="${turn_hostport%%\?*}"
turn_host="${turn_hostport%:*}"; turn_port="${turn_hostport##*:}"
[ "$turn_port" = "$turn_host" ] && turn_port=3478
echo "TURN $turn_host:$turn_port"
if ! command -v turnutils_uclient >/dev/null; then
  fail "turnutils_uclient is not installed" "apt-get install coturn (it ships the client)"
else
  user="$(( $(date +%s) + 600 )):natter-voice-check"
  password="$(printf %s "$user" | openssl dgst -sha1 -hmac "$secret" -binary | base64)"
  for transport in udp tcp; do
    flag=""; [ "$transport" = tcp ] && flag="-t"
    log="$(timeout 30 turnutils_uclient -y -n 4 -m 1 $flag -u "$user" -w "$password" \
             -p "$turn_port" "$turn_host" 2>&1)"
    status=$?
    lost="$(printf '%s\n' "$log" | sed -nE 's/.*Total lost packets ([0-9]+).*/\1/p' | tail -1)"
    received="$(printf '%s\n' "$log" | sed -nE 's/.*tot_recv_msgs=([0-9]+)$/\1/p' | tail -1)"
    if [ "$status" -eq 0 ] && [ -n "$received" ] && [ "$received" -gt 0 ] && [ "${lost:-1}" = 0 ]; then
      ok "TURN over $transport: allocated a relay with REST credentials; $received messages relayed, none lost"
    elif printf '%s\n' "$log" | grep -q "Cannot complete Allocation"; then
      fail "TURN over $transport: the allocation was refused (wrong credentials?)" \
           "coturn's static-auth-secret must equal LiveKit's turn_servers secret (NATTER_TURN_SECRET), and the clocks agree"
    else
      fail "TURN over $transport: no relay (status $status): $(printf '%s\n' "$log" | grep -m1 -i error)" \
           "open $turn_port ($transport) and coturn's relay range (min-port..max-port, UDP)"
    fi
  done
fi

if [ "$failures" -eq 0 ]; then
  echo "a call can connect from here"
else
  echo "$failures check(s) failed: calls from here may stay at \"Connecting\""
fi
exit "$failures"
