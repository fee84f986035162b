#!/usr/bin/env bash
# The replica's CPU per Lease renewal, configurations side by side: bench/hub_fleet.sh with
# renewals on (LEASE_RENEW, default every 10 s) once per configuration per round, the
# configurations interleaved over ROUNDS rounds so that the machine's drift hits them alike,
# then the median of each. The shared cores here are noisy (±25 % between two runs of one
# build): compare the medians of one run of this script, not figures of separate runs.
#
#   bench/renewal_cost.sh [BUILD_DIR]
#   env: NODES=2000 HOLD=40 ROUNDS=3 LEASE_RENEW=10
#        BEFORE=<another build's edgehub binary>: adds its replica, default settings, first
#        CONFIGS="name:VAR=value,VAR=value name2:..." (default: the threading and lease
#        write settings below)
set -euo pipefail

BUILD=${1:-build/release}
NODES=${NODES:-2000}
HOLD=${HOLD:-40}
ROUNDS=${ROUNDS:-3}
LEASE_RENEW=${LEASE_RENEW:-10}
CONFIGS=${CONFIGS:-"io+api-threads:SINGLE_THREAD=false single-thread:SINGLE_THREAD=true single-thread+lease-write-20s:SINGLE_THREAD=true,LEASE_WRITE_INTERVAL=20s"}
[[ -n ${BEFORE:-} ]] && CONFIGS="before:HUB=$BEFORE $CONFIGS"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for round in $(seq 1 "$ROUNDS"); do
  for config in $CONFIGS; do
    name=${config%%:*}
    settings=${config#*:}
    env_args=()
    IFS=, read -ra pairs <<<"$settings"
    for pair in "${pairs[@]}"; do env_args+=("$pair"); done
    env "${env_args[@]}" NODES="$NODES" HOLD="$HOLD" LEASE_RENEW="$LEASE_RENEW" \
      "$(dirname "$0")/hub_fleet.sh" "$BUILD" >"$out/run" 2>&1 || {
      echo "round $round, $name: hub_fleet.sh failed" >&2
      tail -20 "$out/run" >&2
      exit 1
    }
    line=$(grep 'CPU per renewal' "$out/run")
    replica=$(sed -n 's/.*: \([0-9.]*\) \/ \([0-9.]*\) µs$/\1/p' <<<"$line")
    api=$(sed -n 's/.*: \([0-9.]*\) \/ \([0-9.]*\) µs$/\2/p' <<<"$line")
    idle=$(sed -n 's/^replica CPU, idle fleet: *\([0-9.]*\) %.*/\1/p' "$out/run")
    echo "$name $replica $api $idle" >>"$out/all"
    echo "round $round: $name: replica $replica µs, API server $api µs per renewal; replica ${idle} % of a core"
  done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "machine: $(nproc) cores, $(uname -r); $NODES edges renewing every $LEASE_RENEW s, $HOLD s held, $ROUNDS rounds"
printf '%-34s %22s %22s %18s\n' configuration "replica µs/renewal" "API server µs/renewal" "replica % core"
for config in $CONFIGS; do
  name=${config%%:*}
  printf '%-34s %22s %22s %18s\n' "$name" \
    "$(awk -v n="$name" '$1 == n {print $2}' "$out/all" | median)" \
    "$(awk -v n="$name" '$1 == n {print $3}' "$out/all" | median)" \
    "$(awk -v n="$name" '$1 == n {print $4}' "$out/all" | median)"
done
