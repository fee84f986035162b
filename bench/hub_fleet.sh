#!/usr/bin/env bash
# One edgehub replica under a simulated fleet. NODES simulated edges (mutual TLS, edgecore's
# protocol) connect to a replica running as its own process; the Kubernetes API is served by
# a second process (`edgehub --dev`, used only for its embedded API server), so the replica's
# memory and CPU are its own. Prints: replica RSS with no edge and per idle edge, replica CPU
# while the fleet is idle (keepalives only), the simulator's connect figures, and — with
# PODS > 0 — API change → edge latency for pods created at RATE per second.
#
# With REGISTERED > 0, that many edge Nodes are created in the API first (none connected),
# to show the replica's memory does not grow with the cluster.
#
#   bench/hub_fleet.sh [BUILD_DIR]     env: NODES=10000 HOLD=60 PODS=0 RATE=50 REGISTERED=0
set -euo pipefail

BUILD=${1:-build/release}
NODES=${NODES:-10000}
HOLD=${HOLD:-60}
PODS=${PODS:-0}
RATE=${RATE:-50}
REGISTERED=${REGISTERED:-0}
HUB=$BUILD/edgehub
SIM=$BUILD/edgehub-sim

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (bounded) for a line matching a sed expression in a log; prints the captured group.
wait_for() {
  local file=$1 expr=$2 value=
  for _ in $(seq 1 600); do
    value=$(sed -n "$expr" "$file" | head -1)
    [[ -n $value ]] && { echo "$value"; return 0; }
    sleep 0.1
  done
  echo "timed out waiting in $file:" >&2; cat "$file" >&2; return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
metric() { curl -s "http://127.0.0.1:$admin/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

cat >"$work/api.yaml" <<YAML
hub: {id: api-only, listen: "127.0.0.1:0", certService: {enabled: false}}
metrics: {listen: "127.0.0.1:0"}
log: {level: warn}
dev: {apiListen: "127.0.0.1:0", kubeconfigOut: "$work/kubeconfig", certsDir: "$work/certs"}
YAML
"$HUB" --dev --config "$work/api.yaml" >"$work/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s $work/kubeconfig ]] && break; sleep 0.1; done
api=$(sed -n 's/.*server: \(http[^ ]*\).*/\1/p' "$work/kubeconfig" | head -1)
if (( REGISTERED > 0 )); then
  for i in $(seq 1 "$REGISTERED"); do
    echo "{\"metadata\":{\"name\":\"registered-$i\",\"labels\":{\"node-role.kubernetes.io/edge\":\"\"}}}"
  done | xargs -P 8 -d '\n' -I{} curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
      "$api/api/v1/nodes" -d '{}'
fi

cat >"$work/hub.yaml" <<YAML
hub:
  id: bench-0
  listen: "127.0.0.1:0"
  tls: {certFile: "$work/certs/server.crt", keyFile: "$work/certs/server.key", clientCAFile: "$work/certs/ca.crt"}
  certService: {enabled: false}
  maxConnections: 19500
  ioThreads: ${IO_THREADS:-0}
kube: {kubeconfig: "$work/kubeconfig", qps: 2000, burst: 4000}
metrics: {listen: "127.0.0.1:0"}
log: {level: warn}
YAML
"$HUB" --config "$work/hub.yaml" --log-level info >"$work/hub.log" 2>&1 &
hub=$!
pids+=($hub)
port=$(wait_for "$work/hub.log" 's/.*listening for edges on 127\.0\.0\.1:\([0-9]*\).*/\1/p')
admin=$(wait_for "$work/hub.log" 's/.*admin on 127\.0\.0\.1:\([0-9]*\).*/\1/p')
for _ in $(seq 1 100); do [[ $(curl -s "http://127.0.0.1:$admin/readyz") == ok ]] && break; sleep 0.1; done
sleep 2
rss_empty=$(rss_kib $hub)

# Edges: registration, lease and status once, then keepalives only (edgecore with its
# kubelet disabled, as in the captures), so "idle" means what cloudcore's figure means.
"$SIM" --server "127.0.0.1:$port" --nodes "$NODES" --source-addrs 4 \
  --ca "$work/certs/ca.crt" --client-ca "$work/certs/ca.crt" --client-ca-key "$work/certs/ca.key" \
  --lease-renew 100000 --status-report 100000 --report "$work/sim.json" \
  --duration $((HOLD + 600)) --log-level warn >"$work/sim.log" 2>&1 &
sim=$!
pids+=($sim)
connect_start=$(date +%s.%N)
ticks_connect=$(cpu_ticks $hub)
for _ in $(seq 1 3000); do
  [[ $(metric edgehub_sessions) == "$NODES" ]] && break
  sleep 0.1
done
connect_end=$(date +%s.%N)
ticks_connected=$(cpu_ticks $hub)
sessions=$(metric edgehub_sessions)
sleep 10  # registrations and first leases settle

ticks_before=$(cpu_ticks $hub)
sleep "$HOLD"
ticks_after=$(cpu_ticks $hub)
rss_full=$(rss_kib $hub)

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "edges connected:            $sessions / $NODES in $(echo "$connect_end - $connect_start" | bc) s ($(echo "$NODES / ($connect_end - $connect_start)" | bc) /s, simulator on the same 2 cores)"
echo "replica CPU while connecting: $(echo "scale=2; ($ticks_connected - $ticks_connect) / $hz" | bc) s for $NODES handshakes + registrations ($(echo "$NODES * $hz / ($ticks_connected - $ticks_connect)" | bc) edges per replica CPU-second)"
echo "registered Nodes in the API: $REGISTERED"
echo "replica RSS, no edges:      $rss_empty KiB"
echo "replica RSS, $NODES idle:   $rss_full KiB"
echo "RSS per idle edge:          $(echo "scale=1; ($rss_full - $rss_empty) / $NODES" | bc) KiB"
echo "replica CPU, idle fleet:    $(echo "scale=1; 100 * ($ticks_after - $ticks_before) / $hz / $HOLD" | bc) % of one core over $HOLD s"

if (( PODS > 0 )); then
  # Pods stamped with their creation time (ns); the simulator measures arrival - stamp.
  interval=$(echo "scale=4; 1 / $RATE" | bc)
  for i in $(seq 1 "$PODS"); do
    node="edge-$(( (i * 7919) % NODES ))"
    stamp=$(date +%s%N)
    curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "$api/api/v1/namespaces/default/pods" \
      -d "{\"metadata\":{\"name\":\"bench-$i\",\"annotations\":{\"edgehub.io/stamp\":\"$stamp\"}},\"spec\":{\"nodeName\":\"$node\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}" &
    sleep "$interval"
  done
  sleep 5
fi

kill -INT $sim
wait $sim || true
pids=("${pids[@]/$sim}")
echo "simulator report:"
cat "$work/sim.json"
echo
