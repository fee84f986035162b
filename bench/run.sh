#!/usr/bin/env bash
# Runs every Google Benchmark program of a Release build and prints median figures.
# Usage: bench/run.sh [build-dir]   (figures go into docs/benchmarks.md by hand, with the machine)
# The fleet benchmarks run separately, each with its processes: bench/sim_connect.sh (the
# simulator) and bench/hub_fleet.sh (one replica; with PODS/RATE/DRIVE it loads the replica
# through bench/pod_driver, built as build-dir/bench/pod_driver).
set -euo pipefail
build=${1:-build/release}
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
       --benchmark_display_aggregates_only=true 2>/dev/null | grep -E '_median|^-|^Benchmark'
done
