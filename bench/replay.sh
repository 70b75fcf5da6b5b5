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
now() { date +%s.%N; }
declare -a base gw
for i in $(seq 1 "$runs"); do
  t0=$(now); "$build/bench/simdjson_baseline" "$file" >/dev/null; t1=$(now)
  base+=("$(echo "$t1 - $t0" | bc -l)")
  t0=$(now); "$build/guardwatch" replay --input "$file" --report none 2>/dev/null; t1=$(now)
  gw+=("$(echo "$t1 - $t0" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
b=$(median "${base[@]}"); g=$(median "${gw[@]}")
printf 'file: %s (%d records, %.0f MiB, mean %.0f bytes/record)\n' "$file" 1000000 "$(echo "$bytes/1048576" | bc -l)" "$(echo "$bytes/1000000" | bc -l)"
printf 'simdjson-only baseline: %.3f s  %.0f records/s\n' "$b" "$(echo "1000000/$b" | bc -l)"
printf 'guardwatch replay:      %.3f s  %.0f records/s\n' "$g" "$(echo "1000000/$g" | bc -l)"
printf 'ratio guardwatch/baseline: %.2f (target >= 0.70)\n' "$(echo "$b/$g" | bc -l)"
