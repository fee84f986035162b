#!/usr/bin/env bash
# One edgehub replica under a simulated fleet. NODES simulated edges (mutual TLS, edgecore's
# protocol) connect to a replica running as its own process; the Kubernetes API is served by
# a second process (`edgehub devapi`, the embedded API server alone), so the replica's
# memory and CPU are its own. Prints: replica RSS with no edge and per idle edge, replica CPU
# while the fleet is idle (keepalives only), the simulator's connect figures, and — with
# PODS > 0 — the load figures: bench/pod_driver (kube::Client) creates PODS pods spread over
# the nodes at RATE per second, then merge-patches them round-robin at RATE per second for
# DRIVE seconds (one patch, one watch event, one message to one edge). Printed: API change →
# edge latency (the simulator's), the hub-internal latency from watch event decoded to frame
# written (edgehub_delivery_internal_latency_seconds, over the patch phase), and messages
# per second per core of the replica (messages out / replica CPU seconds).
#
# With REGISTERED > 0, that many edge Nodes are created in the API first (none connected),
# to show the replica's memory does not grow with the cluster.
#
# LEASE_RENEW=<seconds> turns the edges' Lease renewals on (edgecore with its kubelet renews
# every 10 s); then the idle figures include them, and the replica's and the API server's CPU
# per renewal are printed.
#
#   bench/hub_fleet.sh [BUILD_DIR]
#   env: NODES=10000 HOLD=60 PODS=0 RATE=50 DRIVE=0 REGISTERED=0 IO_THREADS=0 NODESYNC_INTERVAL=5s
#        LEASE_RENEW=0 HEAP_SNAPSHOT=<dir> SINGLE_THREAD=<true|false> LEASE_WRITE_INTERVAL=<duration>
set -euo pipefail

BUILD=${1:-build/release}
NODES=${NODES:-10000}
HOLD=${HOLD:-60}
PODS=${PODS:-0}
RATE=${RATE:-50}
REGISTERED=${REGISTERED:-0}
DRIVE=${DRIVE:-0}
NODESYNC_INTERVAL=${NODESYNC_INTERVAL:-5s}
LEASE_RENEW=${LEASE_RENEW:-0}
HUB=${HUB:-$BUILD/edgehub}  # another build's replica: HUB=<path> (API server and simulator stay $BUILD's)
API_HUB=$BUILD/edgehub
SIM=$BUILD/edgehub-sim
DRIVER=$BUILD/bench/pod_driver

. "$(dirname "$0")/lib.sh"
latency_buckets() {
  curl -s "http://127.0.0.1:$admin/metrics" |
    sed -n 's/^edgehub_delivery_internal_latency_seconds_bucket{le="\([^"]*\)"} \([0-9]*\)$/\1 \2/p'
}
# Quantile $3 of the observations between two bucket snapshots (files of "le count"), with
# linear interpolation inside the bucket as Prometheus's histogram_quantile does.
quantile_ms() {
  paste "$1" "$2" | awk -v q="$3" '
    { le[NR] = $1; n[NR] = $4 - $2 }
    END {
      total = n[NR]; if (total == 0) { print "n/a"; exit }
      rank = q * total; lo = 0; prev = 0
      for (i = 1; i <= NR; i++) {
        if (n[i] >= rank) {
          if (le[i] == "+Inf") { printf ">%.2f", lo * 1000; exit }
          printf "%.2f", (lo + (le[i] - lo) * (rank - prev) / (n[i] - prev)) * 1000; exit
        }
        lo = le[i]; prev = n[i]
      }
    }'
}

start_api
if (( REGISTERED > 0 )); then
  for i in $(seq 1 "$REGISTERED"); do
    echo "{\"metadata\":{\"name\":\"registered-$i\",\"labels\":{\"node-role.kubernetes.io/edge\":\"\"}}}"
  done | xargs -P 8 -d '\n' -I{} curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
      "$api/api/v1/nodes" -d '{}'
fi

start_replica <<YAML
kube: {kubeconfig: "$work/kubeconfig", qps: ${KUBE_QPS:-2000}, burst: $(( ${KUBE_QPS:-2000} * 2 ))}
delivery: {nodeSyncInterval: $NODESYNC_INTERVAL}
YAML
sleep 2
rss_empty=$(rss_kib $hub)

# Edges: registration, lease and status once, then keepalives only (edgecore with its
# kubelet disabled, as in the captures), so "idle" means what cloudcore's figure means —
# unless LEASE_RENEW is set.
"$SIM" --server "127.0.0.1:$port" --nodes "$NODES" --source-addrs 4 \
  --ca "$work/certs/ca.crt" --client-ca "$work/certs/ca.crt" --client-ca-key "$work/certs/ca.key" \
  --lease-renew "$( (( LEASE_RENEW > 0 )) && echo "$LEASE_RENEW" || echo 100000)" --status-report 100000 --report "$work/sim.json" \
  --duration $((HOLD + 600)) --log-level warn >"$work/sim.log" 2>&1 &
sim=$!
pid[sim]=$sim
connect_start=$(now)
ticks_connect=$(cpu_ticks $hub)
for _ in $(seq 1 3000); do
  [[ $(metric edgehub_sessions) == "$NODES" ]] && break
  sleep 0.1
done
connect_end=$(now)
ticks_connected=$(cpu_ticks $hub)
sessions=$(metric edgehub_sessions)
# Registrations, first leases and claims settle: every edge costs the replica ~9 API requests,
# and a fast connect leaves a backlog in its client-side rate limiter (kube.qps).
api_settled() {
  for _ in $(seq 1 600); do
    [[ $(metric edgehub_api_requests_waiting) == 0 ]] && return 0
    sleep 0.5
  done
  echo "API request backlog not drained after 300 s" >&2
}
api_settled
sleep 10

renewals() { metric 'edgehub_upstream_requests_total{operation="update",type="lease",result="ok"}' | awk '{print $1 + 0}'; }
renewals_before=$(renewals)
api_ticks_before=$(cpu_ticks ${pid[api]})
ticks_before=$(cpu_ticks $hub)
sleep "$HOLD"
ticks_after=$(cpu_ticks $hub)
api_ticks_after=$(cpu_ticks ${pid[api]})
renewals_after=$(renewals)
rss_full=$(rss_kib $hub)
if [[ -n ${HEAP_SNAPSHOT:-} ]]; then
  # Where the idle fleet's memory is: the replica's mappings and malloc's arenas (by gdb).
  mkdir -p "$HEAP_SNAPSHOT"
  cp "/proc/$hub/smaps" "$HEAP_SNAPSHOT/smaps"
  gdb -batch -p "$hub" -ex "call (void*)fopen(\"$HEAP_SNAPSHOT/malloc_info.xml\", \"w\")" \
    -ex 'call (int)malloc_info(0, $1)' -ex 'call (int)fclose($1)' >/dev/null 2>&1 || true
fi

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "edges connected:            $sessions / $NODES in $(echo "$connect_end - $connect_start" | bc) s ($(echo "$NODES / ($connect_end - $connect_start)" | bc) /s, simulator on the same 2 cores)"
echo "replica CPU while connecting: $(echo "scale=2; ($ticks_connected - $ticks_connect) / $hz" | bc) s for $NODES handshakes + registrations ($(echo "$NODES * $hz / ($ticks_connected - $ticks_connect)" | bc) edges per replica CPU-second)"
echo "registered Nodes in the API: $REGISTERED"
echo "replica RSS, no edges:      $rss_empty KiB"
echo "replica RSS, $NODES idle:   $rss_full KiB"
echo "RSS per idle edge:          $(echo "scale=1; ($rss_full - $rss_empty) / $NODES" | bc) KiB"
echo "replica CPU, idle fleet:    $(echo "scale=1; 100 * ($ticks_after - $ticks_before) / $hz / $HOLD" | bc) % of one core over $HOLD s$( (( LEASE_RENEW > 0 )) && echo ", Lease renewals every $LEASE_RENEW s on" || echo ", Lease renewals off")"
if (( LEASE_RENEW > 0 )); then
  n=$((renewals_after - renewals_before))
  echo "Lease renewals in the hold: $n ($(echo "scale=1; $n / $HOLD" | bc) /s)"
  if (( n > 0 )); then
    echo "CPU per renewal, replica / API server (idle keepalives included): $(echo "scale=1; 1000000 * ($ticks_after - $ticks_before) / $hz / $n" | bc) / $(echo "scale=1; 1000000 * ($api_ticks_after - $api_ticks_before) / $hz / $n" | bc) µs"
  fi
fi

if (( PODS > 0 )); then
  # The create phase (inserts, then the status each edge reports) warms up; the patch
  # phase is the steady load the figures are about.
  "$DRIVER" --kubeconfig "$work/kubeconfig" --nodes "$NODES" --pods "$PODS" --rate "$RATE" \
    --duration 0 --prefix drv
  api_settled  # the first versions' NodeSync record writes, and the edges' status reports
  sleep 3
  latency_buckets >"$work/lat0"
  out0=$(metric 'edgehub_messages_total{direction="out"}')
  in0=$(metric 'edgehub_messages_total{direction="in"}')
  ticks0=$(cpu_ticks $hub)
  api_ticks0=$(cpu_ticks ${pid[api]})
  sim_ticks0=$(cpu_ticks $sim)
  writes0=$(metric 'edgehub_nodesync_writes_total{result="ok"}')
  if (( DRIVE > 0 )); then
    "$DRIVER" --kubeconfig "$work/kubeconfig" --nodes "$NODES" --pods "$PODS" --rate "$RATE" \
      --duration "$DRIVE" --prefix drv --patch-only
  fi
  sleep 2
  ticks1=$(cpu_ticks $hub)
  api_ticks1=$(cpu_ticks ${pid[api]})
  sim_ticks1=$(cpu_ticks $sim)
  writes1=$(metric 'edgehub_nodesync_writes_total{result="ok"}')
  out1=$(metric 'edgehub_messages_total{direction="out"}')
  in1=$(metric 'edgehub_messages_total{direction="in"}')
  latency_buckets >"$work/lat1"
  if (( DRIVE > 0 )); then
    cpu=$(echo "scale=3; ($ticks1 - $ticks0) / $hz" | bc)
    echo "patch phase: $((out1 - out0)) messages out, $((in1 - in0)) in (ACKs), replica CPU $cpu s over ${DRIVE} s + 2 s"
    echo "same span, CPU of the API server / the simulator: $(echo "scale=3; ($api_ticks1 - $api_ticks0) / $hz" | bc) s / $(echo "scale=3; ($sim_ticks1 - $sim_ticks0) / $hz" | bc) s; NodeSync record writes: $((writes1 - writes0))"
    echo "messages out per replica CPU-second: $(echo "($out1 - $out0) / $cpu" | bc)"
    echo "hub-internal latency (watch event → socket), p50 / p90 / p99 / p99.9: $(quantile_ms "$work/lat0" "$work/lat1" 0.5) / $(quantile_ms "$work/lat0" "$work/lat1" 0.9) / $(quantile_ms "$work/lat0" "$work/lat1" 0.99) / $(quantile_ms "$work/lat0" "$work/lat1" 0.999) ms"
  fi
fi

kill -INT $sim
wait $sim || true
unset 'pid[sim]'
echo "simulator report:"
cat "$work/sim.json"
echo
