#!/usr/bin/env bash
# Runs the libFuzzer targets of a fuzz build (make fuzz) one after the other, each for a fixed
# number of inputs, and prints executions and crashes per target.
# Usage: test/fuzz/run.sh <build dir> <runs> [target...]   (default: every target)
# FUZZ_SECONDS=<n> in the environment also stops each target after n seconds.
# FUZZ_KEEP_GOING=1 runs libFuzzer's fork mode with -ignore_crashes=1: a crash is saved and
# fuzzing goes on (for a target with a known, not yet fixed crash).
#
# Each target starts from a scratch copy of its committed corpus, so the seeds in git are not
# flooded with what the fuzzer finds; to keep new interesting inputs, merge them by hand:
#   build/fuzz/test/fuzz/<name>_fuzz -merge=1 test/fuzz/corpus/<name> <scratch>/corpus
# Crashing inputs are left in <scratch>/artifacts; the scratch dir is named at the end.
set -uo pipefail

build=${1:?build dir}
runs=${2:?number of runs}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/edgehub-fuzz.XXXXXX")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
summary=""
while read -r name max_len; do
  [ -n "$name" ] || continue
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  mkdir -p "$scratch/$name/corpus" "$scratch/$name/artifacts"
  cp -r "$here/corpus/$name/." "$scratch/$name/corpus/"
  log="$scratch/$name/log"
  echo "== $name: $runs runs, -max_len=$max_len (log: $log)"
  keep_going=()
  [ -z "${FUZZ_KEEP_GOING:-}" ] || keep_going=(-fork=1 -ignore_crashes=1)
  "$build/test/fuzz/${name}_fuzz" "${keep_going[@]}" -runs="$runs" ${FUZZ_SECONDS:+-max_total_time=$FUZZ_SECONDS} \
    -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$scratch/$name/artifacts/" "$scratch/$name/corpus" >"$log" 2>&1
  status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  crashes=$(find "$scratch/$name/artifacts" -type f | wc -l)
  line="$name: ${execs:-0} executions${secs:+ in ${secs} s}, $crashes crashes (exit $status)"
  echo "$line"
  summary+="$line"$'\n'
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    grep -m1 -A25 -E "^==[0-9]+==ERROR|runtime error|deadly signal" "$log" || tail -20 "$log"
    find "$scratch/$name/artifacts" -type f
  fi
done <"$build/fuzz-targets.txt"

echo "== summary (scratch: $scratch)"
printf '%s' "$summary"
exit $failed
