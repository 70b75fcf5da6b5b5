#!/usr/bin/env bash
# Kafka consume throughput: `guardwatch run` on a 1,000,000-record topic (consumer group, decode,
# extract, aggregate, offset store) against `kcat -C -e` reading the same topic to /dev/null.
# Both timed as whole processes from start to the last record. Target ratio >= 0.8.
#   bench/kafka.sh [BUILD_DIR] [RECORDS=1000000] [RUNS=3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
n=${2:-1000000}
runs=${3:-3}
brokers=$("$root/scripts/kafka" start | tail -1)
# One topic per broker state directory (recorded there), produced once: event times end ~now.
marker=${GW_KAFKA_DIR:-/tmp/guardwatch-kafka}/bench-topic-$n
if [ -s "$marker" ]; then
  topic=$(cat "$marker")
else
  topic=bench-$n-$(date +%s)
  echo "producing $n records to $topic (6 partitions)..." >&2
  "$build/guardwatch" generate --scenario "$root/bench/scenarios/replay-1m.yaml" --count "$n" --start now-12h \
      --kafka-brokers "$brokers" --topic "$topic" --partitions 6 2>&1 | tail -1 >&2
  echo "$topic" > "$marker"
fi
cfg=$(mktemp --suffix=.yaml)
# The broker shares the two cores: its CPU seconds during each run are printed next to the
# client's, so the numbers show how much of the machine each side leaves to the other.
broker_pid=$(cat "${GW_KAFKA_DIR:-/tmp/guardwatch-kafka}/pid")
tick=$(getconf CLK_TCK)
broker_cpu() { awk -v t="$tick" '{printf "%.3f", ($14 + $15) / t}' "/proc/$broker_pid/stat"; }
TIMEFORMAT='%R %U %S'
timed() { { time "$@" >/dev/null 2>&1; } 2>&1; }
# Alternating runs, median of each: the broker, librdkafka's fetcher and the machine's neighbours
# make single runs vary by +-30% here.
declare -a ks gs kc gc kb gb
for i in $(seq 1 "$runs"); do
  b0=$(broker_cpu)
  read -r r u s < <(timed kcat -C -b "$brokers" -t "$topic" -o beginning -e -q)
  ks+=("$r"); kc+=("$(echo "$u + $s" | bc -l)"); kb+=("$(echo "$(broker_cpu) - $b0" | bc -l)")
  printf 'kafka:\n  topics: [%s]\n  properties: {bootstrap.servers: "%s", group.id: bench-%s}\nwindows: {allowed_lateness: 30d}\n' "$topic" "$brokers" "$RANDOM$RANDOM" > "$cfg"
  b0=$(broker_cpu)
  read -r r u s < <(timed "$build/guardwatch" run --config "$cfg" --listen 127.0.0.1:0 --stop-after "$n")
  gs+=("$r"); gc+=("$(echo "$u + $s" | bc -l)"); gb+=("$(echo "$(broker_cpu) - $b0" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
k=$(median "${ks[@]}"); g=$(median "${gs[@]}")
printf 'runs: kcat %s s; guardwatch %s s\n' "$(printf '%.2f ' "${ks[@]}")" "$(printf '%.2f ' "${gs[@]}")"
printf 'kcat -C -e:       %.3f s  %.0f records/s (median of %d; CPU: kcat %.2f s, broker %.2f s)\n' \
  "$k" "$(echo "$n/$k" | bc -l)" "$runs" "$(median "${kc[@]}")" "$(median "${kb[@]}")"
printf 'guardwatch run:   %.3f s  %.0f records/s (median of %d; CPU: guardwatch %.2f s, broker %.2f s)\n' \
  "$g" "$(echo "$n/$g" | bc -l)" "$runs" "$(median "${gc[@]}")" "$(median "${gb[@]}")"
printf 'ratio guardwatch/kcat: %.2f (target >= 0.80)\n' "$(echo "$k/$g" | bc -l)"
pairs=()
for i in "${!ks[@]}"; do pairs+=("$(echo "${ks[$i]}/${gs[$i]}" | bc -l)"); done
printf 'per-pair ratios: %s (median %.2f)\n' "$(printf '%.2f ' "${pairs[@]}")" "$(median "${pairs[@]}")"
rm -f "$cfg"
