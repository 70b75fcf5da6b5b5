#!/usr/bin/env bash
# Replay throughput: guardwatch replay vs. a simdjson-only reader of the same file and fields,
# both timed as whole processes, alternating, median of RUNS. Prints the ratio (target >= 0.7).
#   bench/replay.sh [BUILD_DIR=build] [RUNS=3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
runs=${2:-3}
data=$build/bench-data
mkdir -p "$data"
file=$data/replay-1m.jsonl
if [ ! -s "$file" ]; then
  echo "generating $file (1,000,000 records)..." >&2
  "$build/guardwatch" generate --scenario "$root/bench/scenarios/replay-1m.yaml" --count 1000000 -o "$file.tmp"
  mv "$file.tmp" "$file"
fi
bytes=$(stat -c %s "$file")
# Wall and CPU (user+sys) seconds of each run, from bash's `time`.
TIMEFORMAT='%R %U %S'
timed() { { time "$@" >/dev/null 2>&1; } 2>&1; }
# Into the page cache first: a first run that reads from disk is not what either side costs.
cat "$file" > /dev/null
declare -a base gw base_cpu gw_cpu
for i in $(seq 1 "$runs"); do
  read -r r u s < <(timed "$build/bench/simdjson_baseline" "$file")
  base+=("$r"); base_cpu+=("$(echo "$u + $s" | bc -l)")
  read -r r u s < <(timed "$build/guardwatch" replay --input "$file" --report none)
  gw+=("$r"); gw_cpu+=("$(echo "$u + $s" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
b=$(median "${base[@]}"); g=$(median "${gw[@]}")
bc_=$(median "${base_cpu[@]}"); gc=$(median "${gw_cpu[@]}")
printf 'file: %s (%d records, %.0f MiB, mean %.0f bytes/record)\n' "$file" 1000000 "$(echo "$bytes/1048576" | bc -l)" "$(echo "$bytes/1000000" | bc -l)"
printf 'simdjson-only baseline: %.3f s  %.0f records/s  (CPU %.2f s)\n' "$b" "$(echo "1000000/$b" | bc -l)" "$bc_"
printf 'guardwatch replay:      %.3f s  %.0f records/s  (CPU %.2f s on %d cores: %.2f us per record)\n' "$g" "$(echo "1000000/$g" | bc -l)" "$gc" "$(nproc)" "$gc"
printf 'ratio guardwatch/baseline: %.2f (target >= 0.70)\n' "$(echo "$b/$g" | bc -l)"
# This host's speed drifts by up to a quarter within minutes, more than between two adjacent
# runs: the ratio within each pair of runs, and their median, show how much of a spread is drift.
pairs=()
for i in "${!base[@]}"; do pairs+=("$(echo "${base[$i]}/${gw[$i]}" | bc -l)"); done
printf 'per-pair ratios: %s (median %.2f)\n' "$(printf '%.2f ' "${pairs[@]}")" "$(median "${pairs[@]}")"
