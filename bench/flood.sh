#!/usr/bin/env bash
# 1,000 real edges connecting to one replica, without and then with a pre-authentication
# flood: bench/flood.py keeps IDLE TCP connections open to the edge port that never send a
# ClientHello (from 127.0.1.1-16, re-dialled as soon as the replica closes them) and sends
# certificate requests with bad join tokens to the certificate service. The edges dial from
# 127.0.0.2-9 (edgehub-sim --source-addrs 8). Prints for each run the time until all NODES
# edges had a session and the replica's RSS; for the flood run, what the replica refused
# (edgehub_rejected_connections_total) and what the flood tool saw.
#
#   bench/flood.sh [BUILD_DIR]
#   env: NODES=1000 IDLE=2000
set -euo pipefail

BUILD=${1:-build/release}
NODES=${NODES:-1000}
IDLE=${IDLE:-2000}
HUB=$BUILD/edgehub
SIM=$BUILD/edgehub-sim

. "$(dirname "$0")/lib.sh"

start_api
cert_port=$(free_port)
start_replica <<YAML
kube: {kubeconfig: "$work/kubeconfig", qps: 2000, burst: 4000}
hub:
  certService:
    enabled: true
    listen: "127.0.0.1:$cert_port"
    caCertFile: "$work/certs/ca.crt"
    caKeyFile: "$work/certs/ca.key"
YAML
sleep 2

# connect_run PREFIX: NODES edges named PREFIX<n>; prints seconds until all have a session.
connect_run() {
  local prefix=$1 start
  "$SIM" --server "127.0.0.1:$port" --nodes "$NODES" --prefix "$prefix" \
    --ca "$work/certs/ca.crt" --client-ca "$work/certs/ca.crt" --client-ca-key "$work/certs/ca.key" \
    --source-addrs 8 --lease-renew 100000 --status-report 100000 --duration 900 --log-level warn \
    >"$work/sim-$prefix.log" 2>&1 &
  pid[sim]=$!
  start=$(now)
  for _ in $(seq 1 6000); do
    [[ $(metric edgehub_sessions) == "$NODES" ]] && break
    sleep 0.1
  done
  echo "$prefix: $(metric edgehub_sessions) / $NODES edges connected in $(since "$start") s," \
    "replica RSS $(( $(rss_kib $hub) / 1024 )) MiB"
}
stop_sim() {
  kill "${pid[sim]}"; wait "${pid[sim]}" 2>/dev/null || true; unset 'pid[sim]'
  for _ in $(seq 1 600); do [[ $(metric edgehub_sessions) == 0 ]] && break; sleep 0.1; done
  sleep 5
}

echo "replica RSS before: $(( $(rss_kib $hub) / 1024 )) MiB"
connect_run quiet-
stop_sim

python3 "$(dirname "$0")/flood.py" --edge-port "$port" --cert-port "$cert_port" --idle "$IDLE" \
  >"$work/flood.log" 2>&1 &
pid[flood]=$!
sleep 10
echo "flood before the edges: $(tail -1 "$work/flood.log"), replica RSS $(( $(rss_kib $hub) / 1024 )) MiB"
connect_run flood-
echo "flood while the edges connected: $(tail -1 "$work/flood.log")"
curl -s "http://127.0.0.1:$admin/metrics" |
  grep -E '^edgehub_(rejected_connections_total|http_refusals_total|pending_connections|handler_exceptions_total)' || true
