#!/usr/bin/env bash
# Runs every Google Benchmark program of a Release build and prints median figures.
# Usage: bench/run.sh [build-dir]   (figures go into docs/benchmarks.md by hand, with the machine)
set -euo pipefail
build=${1:-build/release}
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
       --benchmark_display_aggregates_only=true 2>/dev/null | grep -E '_median|^-|^Benchmark'
done
