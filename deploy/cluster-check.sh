#!/usr/bin/env bash
# Checks the running cluster profile (./natter up --cluster) the way a user would, with the load
# harness (loadtest, built by `NATTER_PROFILE=dev ./natter up`):
#
#   streams  natter_chat and natter_events at 3 replicas, a leader and both others current
#            (NATS's monitoring endpoint /jsz, as the stream's leader reports it)
#   talk     over REST (curl): ann signs up at c-auth-1, bob at c-auth-2; each writes a line, ann
#            through c-edge-1, bob through c-edge-2, and reads the other's back from history
#            through their own edge (the ring, at QUORUM); c-edge-3 serves it too
#   search   sann (c-auth-2) makes a server with a channel in each of the search index's two
#   inbox    partitions and writes a line in each through c-edge-3 and c-edge-2, mentioning sbob
#            (c-auth-1, joined by invite) in one; sbob's server search through every edge finds
#            both (c-search-1 and c-search-2 each answer for one), and his mentions inbox at
#            c-notify-1 and c-notify-2 lists the mention
#   chat     `loadtest persist`: two users signed up at c-auth-1, one on c-edge-1, one on c-edge-2;
#            every acknowledged message reaches both once and in order, and is counted in the
#            ring's messages table at LOCAL_QUORUM (the driver's default; 2 of 3 replicas)
#   history  `loadtest history`: two more users signed up at c-auth-2, on c-edge-3 and c-edge-1;
#            the same delivery checks while history pages are read over REST from the edges,
#            which read the ring at QUORUM; any failed read fails the check
#
# Usage: deploy/cluster-check.sh [--faults]
#   --faults: check; SIGKILL the chat stream's NATS leader and cassandra-c3 (no clean stop);
#             check again on what is left; bring both back (deploy/cluster.sh up --engines, which
#             starts only what is missing); wait for the replicas to catch up; check again.
# Exits non-zero at the first check that fails. Results go to a temporary folder it names.
set -euo pipefail

SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
DEPLOY_DIR=$(dirname -- "$SCRIPT_PATH")
ROOT=$(dirname -- "$DEPLOY_DIR")
STATE=$(readlink -f -- "$ROOT/.natter")
LOADTEST=${NATTER_LOADTEST:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/loadtest}
OUT=$(mktemp -d /tmp/natter-cluster-check.XXXXXX)
CQL=127.0.0.2:19142,127.0.0.3:19142,127.0.0.4:19142
# The edges', an auth's and the persisters' /metrics, for the harness's before/after figures.
METRICS=http://127.0.0.1:9280/metrics,http://127.0.0.1:9290/metrics,http://127.0.0.1:9300/metrics,http://127.0.0.1:9281/metrics,http://127.0.0.1:9283/metrics,http://127.0.0.1:9293/metrics

say() { printf '%s\n' "$*"; }
die() { printf 'cluster-check: %s\n' "$*" >&2; exit 1; }
[[ -x $LOADTEST ]] || die "no $LOADTEST: build it (cargo build -p loadtest)"

# stream NAME: what the stream's leader says of it, as "R<n> leader <node>; <node> current|behind|
# offline, ..." (only the leader knows whether the others are current; a follower's /jsz names
# the leader but not how far the others are).
stream() {
  local port
  for port in 18231 18232 18233; do
    curl -fsS --max-time 3 "http://127.0.0.1:$port/jsz?streams=true&config=true" 2>/dev/null |
      jq -r --arg name "$1" '[.account_details[]?.stream_detail[]? | select(.name == $name)
        | select(.cluster.leader_since != null)
        | "R\(.config.num_replicas) leader \(.cluster.leader); " + ([.cluster.replicas[]?
        | "\(.name) \(if .offline then "offline" elif .current then "current" else "behind" end)"]
        | join(", "))] | .[0] // empty' | grep . && return 0
  done
  return 1
}

# streams_healthy: both streams at R3 with a leader and two current replicas, within 120 s.
streams_healthy() {
  local name state deadline=$((SECONDS + 120))
  for name in natter_chat natter_events; do
    until state=$(stream "$name") && [[ $state == R3\ leader\ n?\;\ n?\ current,\ n?\ current ]]; do
      ((SECONDS < deadline)) || die "$name: ${state:-not reported by any node} after 120 s"
      sleep 1
    done
    say "  $name: $state"
  done
}

# all_acknowledged RESULT: every send was acknowledged (the harness fails a run on loss only; a
# refused send is a failure here). One a second per sender: edges allow a user 5 sends in 5 s.
all_acknowledged() {
  jq -e '.sent > 0 and .acknowledged == .sent' "$1" >/dev/null ||
    die "not every send was acknowledged: $(jq -c '{sent, acknowledged, send_errors}' "$1")"
}

chat() {
  say "== chat: c-auth-1, c-edge-1 and c-edge-2; stored messages counted at LOCAL_QUORUM"
  "$LOADTEST" persist --auth http://127.0.0.1:8281 \
    --gateway ws://127.0.0.1:8280/gateway,ws://127.0.0.1:8290/gateway \
    --channels 1 --members 2 --rate 1 --duration 10s \
    --persister http://127.0.0.1:9283/metrics --cql-nodes "$CQL" \
    --metrics "$METRICS" --out "$OUT/persist-$1.json" >"$OUT/persist-$1.txt" 2>&1 ||
    { cat "$OUT/persist-$1.txt" >&2; die "chat failed ($1)"; }
  grep -E '^(sent|store:)' "$OUT/persist-$1.txt" | sed 's/^/  /'
  all_acknowledged "$OUT/persist-$1.json"
  say "== history: c-auth-2, c-edge-3 and c-edge-1; pages read from the edges while chatting"
  "$LOADTEST" history --auth http://127.0.0.1:8291 \
    --gateway ws://127.0.0.1:8300/gateway,ws://127.0.0.1:8280/gateway \
    --channels 1 --members 2 --rate 1 --reads 2 --duration 10s \
    --metrics "$METRICS" --out "$OUT/history-$1.json" >"$OUT/history-$1.txt" 2>&1 ||
    { cat "$OUT/history-$1.txt" >&2; die "history failed ($1)"; }
  grep -E '^(sent|history: [0-9]+ reads)' "$OUT/history-$1.txt" | sed 's/^/  /'
  all_acknowledged "$OUT/history-$1.json"
}

# api METHOD URL TOKEN [BODY]: the JSON answer of a 2xx, else fails.
api() {
  curl -fsS --max-time 10 -X "$1" "$2" ${3:+-H "authorization: Bearer $3"} \
    -H 'content-type: application/json' ${4:+-d "$4"}
}

# until_ok SECONDS COMMAND...: runs COMMAND until it succeeds, for at most SECONDS.
until_ok() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

# has_message EDGE_PORT TOKEN CHANNEL CONTENT: the channel's newest page, read through that edge,
# holds CONTENT.
has_message() {
  api GET "http://127.0.0.1:$1/api/v1/channels/$3/messages?limit=50" "$2" |
    jq -e --arg c "$4" 'any(.messages[]; .content == $c)' >/dev/null
}

# Two people over REST: ann signs up at c-auth-1 and bob at c-auth-2; ann writes through c-edge-1,
# bob through c-edge-2; each reads the other's line back from history through their own edge.
conversation() {
  local tag=$1_$RANDOM ann bob channel a b
  say "== conversation: ann on c-auth-1 and c-edge-1, bob on c-auth-2 and c-edge-2"
  ann=$(api POST http://127.0.0.1:8281/api/v1/auth/sign-up "" \
    "{\"username\": \"ann_$tag\", \"password\": \"violet kettle maple drum $tag\"}" | jq -r .access_token)
  bob=$(api POST http://127.0.0.1:8291/api/v1/auth/sign-up "" \
    "{\"username\": \"bob_$tag\", \"password\": \"violet kettle maple drum $tag\"}" | jq -r .access_token)
  # People accept channel adds only from those they share a channel with, by default.
  api PATCH http://127.0.0.1:8291/api/v1/users/@me/settings "$bob" '{"allow_channel_adds_from": "everyone"}' >/dev/null
  channel=$(api POST http://127.0.0.1:8281/api/v1/channels "$ann" '{"name": "cluster check"}' | jq -r .id)
  api POST "http://127.0.0.1:8281/api/v1/channels/$channel/members" "$ann" "{\"username\": \"bob_$tag\"}" >/dev/null
  a="ann to bob ($tag)" b="bob to ann ($tag)"
  until_ok 30 api POST "http://127.0.0.1:8280/api/v1/channels/$channel/messages" "$ann" "{\"content\": \"$a\"}" >/dev/null ||
    die "ann cannot write through c-edge-1"
  until_ok 30 api POST "http://127.0.0.1:8290/api/v1/channels/$channel/messages" "$bob" "{\"content\": \"$b\"}" >/dev/null ||
    die "bob cannot write through c-edge-2"
  until_ok 30 has_message 8290 "$bob" "$channel" "$a" || die "bob does not see ann's line in history (c-edge-2)"
  until_ok 30 has_message 8280 "$ann" "$channel" "$b" || die "ann does not see bob's line in history (c-edge-1)"
  until_ok 30 has_message 8300 "$ann" "$channel" "$a" || die "c-edge-3 does not serve ann's line"
  say "  each read the other's line back (and c-edge-3 served them too)"
}

# partition CHANNEL: the search partition (of two) holding CHANNEL, as proto::search::partition_of
# computes it (SplitMix64's finaliser of the id, modulo the count).
partition() {
  python3 -c 'import sys
m = (1 << 64) - 1
x = int(sys.argv[1])
x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & m
x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & m
print((x ^ (x >> 31)) % 2)' "$1"
}

# found EDGE_PORT TOKEN GUILD WORD COUNT: a server search for WORD through that edge finds COUNT
# messages.
found() {
  api GET "http://127.0.0.1:$1/api/v1/guilds/$3/messages/search?content=$4" "$2" |
    jq -e --argjson n "$5" '.total_results == $n and (.messages | length) == $n' >/dev/null
}

# in_inbox NOTIFY_PORT TOKEN MESSAGE: the mentions inbox served by that notify lists MESSAGE.
in_inbox() {
  api GET "http://127.0.0.1:$1/api/v1/users/@me/mentions" "$2" |
    jq -e --arg id "$3" 'any(.[]; .id == $id and .reason == "mention")' >/dev/null
}

# A server with a channel in each search partition: ann (c-auth-2) makes it and bob (c-auth-1)
# joins by invite; ann writes one line in each channel, mentioning bob in one, through two edges.
# Bob's server search through every edge must find both lines (both search processes answer, and
# the edge merges), and his mentions inbox at both notify processes must list the mention.
search_and_inbox() {
  local tag=$1_$RANDOM word="quokka$RANDOM$RANDOM" ann bob bob_id guild code ch mention n
  local -A by_partition
  say "== search and the mentions inbox: a server with a channel in each search partition"
  ann=$(api POST http://127.0.0.1:8291/api/v1/auth/sign-up "" \
    "{\"username\": \"sann_$tag\", \"password\": \"violet kettle maple drum $tag\"}" | jq -r .access_token)
  bob=$(api POST http://127.0.0.1:8281/api/v1/auth/sign-up "" \
    "{\"username\": \"sbob_$tag\", \"password\": \"violet kettle maple drum $tag\"}" | jq -r .access_token)
  bob_id=$(api GET http://127.0.0.1:8281/api/v1/users/@me "$bob" | jq -r .id)
  guild=$(api POST http://127.0.0.1:8291/api/v1/guilds "$ann" '{"name": "cluster check"}')
  ch=$(jq -r '.channels[0].id' <<<"$guild")
  guild=$(jq -r .id <<<"$guild")
  by_partition[$(partition "$ch")]=$ch
  for n in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
    [[ -n ${by_partition[0]:-} && -n ${by_partition[1]:-} ]] && break
    ch=$(api POST "http://127.0.0.1:8291/api/v1/guilds/$guild/channels" "$ann" "{\"name\": \"more-$n\"}" | jq -r .id)
    by_partition[$(partition "$ch")]=${by_partition[$(partition "$ch")]:-$ch}
  done
  [[ -n ${by_partition[0]:-} && -n ${by_partition[1]:-} ]] || die "no channel in each partition after 16"
  code=$(api POST "http://127.0.0.1:8291/api/v1/guilds/$guild/invites" "$ann" '{}' | jq -r .code)
  api POST "http://127.0.0.1:8281/api/v1/invites/$code" "$bob" >/dev/null
  mention=$(until_ok 30 api POST "http://127.0.0.1:8300/api/v1/channels/${by_partition[0]}/messages" "$ann" \
    "{\"content\": \"<@$bob_id> $word in partition 0\"}" | jq -r .id) && [[ -n $mention ]] ||
    die "ann cannot write through c-edge-3"
  until_ok 30 api POST "http://127.0.0.1:8290/api/v1/channels/${by_partition[1]}/messages" "$ann" \
    "{\"content\": \"$word in partition 1\"}" >/dev/null || die "ann cannot write through c-edge-2"
  for n in 8280 8290 8300; do
    until_ok 60 found "$n" "$bob" "$guild" "$word" 2 ||
      die "bob's server search through :$n does not find both lines: $(api GET "http://127.0.0.1:$n/api/v1/guilds/$guild/messages/search?content=$word" "$bob" 2>&1 | head -c 300)"
  done
  say "  bob's server search finds both lines (channels in partitions 0 and 1) through each edge"
  for n in 8285 8295; do
    until_ok 60 in_inbox "$n" "$bob" "$mention" || die "bob's mentions inbox at :$n does not list ann's mention"
  done
  say "  bob's mentions inbox lists ann's mention at both notify processes"
}

check() {
  say "== streams"
  streams_healthy
  conversation "$1"
  search_and_inbox "$1"
  chat "$1"
}

nats_pid() { cat "$STATE/pids/nats-$1.pid"; }
cassandra_pid() { cat "$STATE/pids/cassandra-$1.pid"; }

faults() {
  local leader started state
  leader=$(stream natter_chat | sed -n 's/^R3 leader \(n[123]\);.*/\1/p')
  [[ -n $leader ]] || die "no leader of natter_chat"
  say "== SIGKILL: NATS $leader (natter_chat's leader, pid $(nats_pid "$leader")) and cassandra-c3 (pid $(cassandra_pid c3))"
  kill -KILL "$(nats_pid "$leader")" "$(cassandra_pid c3)"
  started=$SECONDS
  until state=$(stream natter_chat) && [[ $state != *"leader $leader;"* ]]; do
    ((SECONDS - started < 60)) || die "natter_chat has no new leader 60 s after $leader died"
    sleep 0.5
  done
  say "  natter_chat: $state (a new leader after $((SECONDS - started)) s)"
  conversation degraded
  search_and_inbox degraded
  chat degraded
  say "== bringing them back (deploy/cluster.sh up --engines)"
  started=$SECONDS
  "$DEPLOY_DIR/cluster.sh" up --engines | grep -E 'JetStream|cassandra' | sed 's/^/  /'
  say "  back in $((SECONDS - started)) s"
  check healed
}

say "results in $OUT"
check whole
if [[ ${1:-} == --faults ]]; then
  faults
fi
say "== the cluster profile works"
