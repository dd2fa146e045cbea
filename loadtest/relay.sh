#!/usr/bin/env bash
# The relay's goals (docs/BENCHMARKS.md, "relay", issue 15) measured in one sitting, beside the
# machine's own limit on the same hour: this machine's speed varies by the hour by more than most
# changes to the code, so a figure means something only beside the gauge taken with it.
#
#   1. the gauge: a raw write loop of pre-built frames to 1,000 devices at 400 msg/s (`raw`)
#   2. one fan-out run to warm the stack (not counted: Cassandra compiles for minutes after a start)
#   3. fan-out to 1,000 members over both edges at 400 msg/s, RUNS_400 times in each of two
#      layouts, alternating: the sender's device among the receivers' (in one of the generator's
#      workers, as the goals were first measured) and apart from them (`--senders-apart`, a
#      worker of its own, as a person's device is not the machine reading everyone else's
#      deliveries). Apart, its ACK does not wait behind the worker's reading, and its sends come
#      evenly paced rather than in the bursts that worker lets out, which the edges then deliver
#      one write each rather than a few together: both figures are a goal's, so both are taken.
#   4. the same at 1,200 msg/s (1.2 M deliveries/s, the ceiling's goal), RUNS_1200 times each
#   5. the reconnect storm: 19,000 devices resumed while chat goes on
#   6. persistence: a backlog of 500,000 messages through the persister, beside a raw insert loop
#   7. the gauge again
#
# Usage: loadtest/relay.sh [OUT_DIR]      (default target/relay/<date>-<commit>)
#   RUNS_400=3 RUNS_1200=2 SKIP="storm drain" loadtest/relay.sh
# Needs the whole system with the load limits raised, release builds:
#   set -a; . loadtest/limits.env; set +a; ./natter up
# Idle memory per connection needs an edge with nothing on it before: run `loadtest idle` (the
# README's "Measuring") on a fresh start instead. Each step's JSON result and output go in
# OUT_DIR; the summary, a table of the goals, is printed and written to OUT_DIR/summary.md. Each
# step waits first for the machine to be quiet (under 15% busy over 2 s, for up to 3 minutes).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
L=target/release/loadtest
RUNS_400=${RUNS_400:-3}
RUNS_1200=${RUNS_1200:-2}
SKIP=${SKIP:-}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
OUT=${1:-target/relay/$(date -u +%Y%m%dT%H%M)-$commit}
mkdir -p "$OUT"

[[ -x $L ]] || { echo "relay: no $L (./natter up builds it)" >&2; exit 1; }
for metrics in http://127.0.0.1:9080/metrics http://127.0.0.1:9090/metrics; do
  curl -sf -o /dev/null "$metrics" ||
    { echo "relay: no edge at $metrics (./natter up)" >&2; exit 1; }
done

load() { cut -d' ' -f1-3 /proc/loadavg; }
# The machine's busy share over 2 s, in per cent of all its cores (from /proc/stat).
busy() {
  local a b
  a=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
  sleep 2
  b=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
  echo "$a $b" | awk '{print int(100 * ($3 - $1) / ($4 - $2 + 1))}'
}
# Waits (up to 3 minutes) for what the last step left behind to finish: the search index taking
# a drain's backlog, Cassandra's compactions, the persister catching up.
settle() {
  local waited=0 now
  while now=$(busy) && ((now > 15 && waited < 180)); do waited=$((waited + 2)); done
  ((waited == 0)) || echo "   (waited ${waited} s for the machine to settle, at ${now}% busy)"
}
skipped() { [[ " $SKIP " == *" $1 "* ]]; }
failures=0
# step NAME COMMAND...: runs one measurement, its output to OUT/NAME.log, its JSON to OUT/NAME.json
step() {
  local name=$1; shift
  settle
  echo "== $name ($(date -u +%T), load $(load))"
  if ! "$@" --out "$OUT/$name.json" >"$OUT/$name.log" 2>&1; then
    failures=$((failures + 1))
    echo "   FAILED: $(tail -1 "$OUT/$name.log")"
  fi
}

{
  echo "commit $commit, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "$(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, kernel $(uname -r), load $(load)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt"

gauge() { step "$1" "$L" raw --connections 1000 --rate 400 --tick 10ms --duration 20s; }
# fanout NAME RATE [--senders-apart]
fanout() { step "$1" "$L" fanout --members 1000 --rate "$2" --duration 20s "${@:3}"; }
fanouts() {
  local rate=$1 runs=$2 i
  for i in $(seq 1 "$runs"); do
    fanout "fanout-$rate-among-$i" "$rate"
    fanout "fanout-$rate-apart-$i" "$rate" --senders-apart
  done
}

gauge gauge-before
fanout warm 400
fanouts 400 "$RUNS_400"
fanouts 1200 "$RUNS_1200"
skipped storm || step storm "$L" storm --channels 190 --members 10 --users 1900 --devices 10 \
  --rate 100 --duration 40s --storm-after 10s --sources 2
skipped drain || step drain "$L" drain --messages 500000 --nats-prefix natter --cql-keyspace natter
gauge gauge-after

# One figure per run, in the order taken; `-` for a run that wrote no result.
figures() {
  local pattern=$1 filter=$2 file out=()
  for file in $(ls "$OUT"/$pattern.json 2>/dev/null | sort -V); do
    out+=("$(jq -r "$filter" "$file" 2>/dev/null || echo -)")
  done
  local IFS=';'
  echo "${out[*]:--}" | sed 's/;/; /g'
}
ms() { echo "(.$1.p99_us / 1000 * 10 | round / 10)"; }
fanout_row() {
  local runs="fanout-$1-$2-*" layout=$2
  [[ $layout == among ]] && layout="among the receivers"
  echo "| $1 msg/s, the sender $layout | $(figures "$runs" "$(ms send_to_receive)") ms |" \
    "$(figures "$runs" "$(ms send_to_ack)") ms |" \
    "$(figures "$runs" '"\(.missing) of \(.expected_deliveries / 1e6 | round) M"') |" \
    "$(figures "$runs" '(.deliveries_per_second / 1000 | round) | "\(.) k/s"') |" \
    "$(figures "$runs" '(.edge_cpu_micros_per_delivery * 100 | round / 100)') µs |" \
    "$(figures "$runs" '(.machine_cpu_micros_per_delivery * 100 | round / 100)') µs |"
}
{
  cat "$OUT/machine.txt"
  echo
  echo "| the gauge (raw loop, 400 msg/s) | writer µs a delivery | receive p99 |"
  echo "|---|---|---|"
  for g in before after; do
    echo "| $g | $(figures "gauge-$g" '(.writer_cpu_micros_per_delivery * 100 | round / 100)') |" \
      "$(figures "gauge-$g" "$(ms send_to_receive)") ms |"
  done
  echo
  echo "| fan-out to 1,000 members | receive p99 (goal ≤ 25 at 400 msg/s, ≤ 50 at 1,200)" \
    "| ACK p99 (goal ≤ 10) | missing (goal 0) | deliveries/s | CPU a delivery: the edges" \
    "| the machine |"
  echo "|---|---|---|---|---|---|---|"
  fanout_row 400 among
  fanout_row 400 apart
  fanout_row 1200 among
  fanout_row 1200 apart
  echo
  if ! skipped storm; then
    echo "storm (19,000 devices; goal 99% ≤ 10 s, nothing missed): 99% in" \
      "$(figures storm '(.storm.seconds_to_99_percent * 100 | round / 100)') s," \
      "$(figures storm '"\(.storm.resumed) of \(.storm.devices) resumed, \(.missing) missing"')"
  fi
  if ! skipped drain; then
    echo "persistence (goal ≥ 20,000 msg/s, ≥ 0.8 of the raw loop):" \
      "$(figures drain '(.persisted_per_second | round)') msg/s, raw loop" \
      "$(figures drain '(.raw_rows_per_second | round)') rows/s over as long, ratio" \
      "$(figures drain '(.persister_to_raw * 100 | round / 100)') (to its burst of as many rows:" \
      "$(figures drain '(.persister_to_raw_burst * 100 | round / 100)'))," \
      "$(figures drain .missing_in_store) missing"
  fi
  [[ $failures -eq 0 ]] || echo "$failures step(s) failed: their logs in $OUT"
} | tee "$OUT/summary.md"
[[ $failures -eq 0 ]]
