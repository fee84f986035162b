#!/usr/bin/env bash
# Three edgehub replicas behind a real nginx (stream, TLS passthrough) with NODES simulated
# edges, against `edgehub devapi`. Measures:
#   - replica start → ready (/readyz 200), with the cluster empty and again with NODES Nodes;
#   - kill -9 of one replica → every node held by the remaining replicas (/debug/nodes), and
#     → every NodeSync's status.owner names a live replica (the survivors' claims);
#   - SIGTERM drain of one replica → its exit (code, seconds), and → every node held again.
#
#   - with PODS > 0: NodeSync writes per second while bench/pod_driver patches the pods at
#     RATE per second for DRIVE seconds, against the number of (node, object) pairs (PODS);
#
#   bench/replicas.sh [BUILD_DIR]      env: NODES=10000 SOURCE_ADDRS=4 SETTLE=20
#                                           PODS=0 RATE=200 DRIVE=30
set -euo pipefail

BUILD=${1:-build/release}
NODES=${NODES:-10000}
SOURCE_ADDRS=${SOURCE_ADDRS:-4}
SETTLE=${SETTLE:-20}
PODS=${PODS:-0}
RATE=${RATE:-200}
DRIVE=${DRIVE:-30}
DRIVER=$BUILD/bench/pod_driver
HUB=$BUILD/edgehub
SIM=$BUILD/edgehub-sim
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

. "$(dirname "$0")/lib.sh"
held_by() { curl -s "http://127.0.0.1:${admin[$1]}/debug/nodes" | grep -c '"node":' || true; }
ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${admin[$1]}/readyz") == 200 ]]; }

"$HUB" certs init --dir "$work/pki" >/dev/null
api_port=$(free_port)
"$HUB" devapi --listen "127.0.0.1:$api_port" --kubeconfig-out "$work/kubeconfig" \
  --log-level warn >"$work/devapi.log" 2>&1 &
pid[devapi]=$!
wait_until 30 test -s "$work/kubeconfig"
api="http://127.0.0.1:$api_port"

ids=(hub-a hub-b hub-c)
declare -A edge admin
for id in "${ids[@]}"; do
  edge[$id]=$(free_port); admin[$id]=$(free_port)
  cat >"$work/$id.yaml" <<YAML
hub:
  id: $id
  namespace: edgehub-bench
  listen: 127.0.0.1:${edge[$id]}
  tls: {certFile: $work/pki/server.crt, keyFile: $work/pki/server.key, clientCAFile: $work/pki/ca.crt}
  certService: {enabled: false}
  maxConnections: $(( NODES + 1000 ))
kube: {kubeconfig: $work/kubeconfig, qps: 2000, burst: 4000}
metrics: {listen: 127.0.0.1:${admin[$id]}}
log: {level: warn}
YAML
done
start_replica() {  # sets ready_s: start → ready seconds (not in a subshell: pid[] must stick)
  local id=$1 t
  t=$(now)
  "$HUB" --config "$work/$id.yaml" >>"$work/$id.log" 2>&1 &
  pid[$id]=$!
  wait_until 120 ready "$id"
  ready_s=$(since "$t")
}
for id in "${ids[@]}"; do start_replica "$id"; echo "start → ready, empty cluster, $id: $ready_s s"; done

ports=(); for id in "${ids[@]}"; do ports+=("${edge[$id]}"); done
start_nginx "$NODES" "${ports[@]}"

"$SIM" --server "127.0.0.1:$nginx_port" --nodes "$NODES" --ca "$work/pki/ca.crt" \
  --client-ca-key "$work/pki/ca.key" --source-addrs "$SOURCE_ADDRS" --reconnect-delay 1 \
  --reconnect-max 8 --start-spread 10 --progress-interval 30 >"$work/sim.log" 2>&1 &
pid[sim]=$!
t=$(now)
total() { local n=0; for id in "$@"; do n=$(( n + $(held_by "$id") )); done; echo "$n"; }
all_held() { (( $(total "$@") >= NODES )); }
wait_until 600 all_held "${ids[@]}"
echo "fleet of $NODES connected in $(since "$t") s: $(for id in "${ids[@]}"; do echo -n "$id $(held_by "$id")  "; done)"
sleep "$SETTLE"

metric_sum() {  # metric_sum SERIES ID...: the series' value summed over the given replicas
  local series=$1 n=0 v id
  shift
  for id in "$@"; do
    v=$(curl -s "http://127.0.0.1:${admin[$id]}/metrics" | awk -v s="$series" '$1 == s {print $2}')
    n=$(echo "$n + ${v:-0}" | bc)
  done
  echo "$n"
}
# NodeSync record writes (claims excluded), and claims, of the given replicas.
nodesync_writes() { metric_sum 'edgehub_nodesync_writes_total{result="ok"}' "$@"; }
claims() { metric_sum edgehub_nodesync_claims_total "$@"; }
if (( PODS > 0 )); then
  "$DRIVER" --kubeconfig "$work/kubeconfig" --nodes "$NODES" --pods "$PODS" --rate "$RATE" \
    --duration 0 --prefix drv >"$work/driver-create.log" 2>&1
  sleep $(( SETTLE > 10 ? SETTLE : 10 ))  # first sends and their coalesced ACK writes settle
  w0=$(nodesync_writes "${ids[@]}"); t=$(now)
  "$DRIVER" --kubeconfig "$work/kubeconfig" --nodes "$NODES" --pods "$PODS" --rate "$RATE" \
    --duration "$DRIVE" --prefix drv --patch-only >"$work/driver.log" 2>&1
  sleep 6  # the last ACKs are folded in (delivery.nodeSyncInterval 5 s)
  w1=$(nodesync_writes "${ids[@]}"); secs=$(since "$t")
  echo "NodeSync writes at $RATE pod updates/s over $PODS (node, object) pairs, $DRIVE s:" \
    "$(echo "($w1 - $w0) / $secs" | bc -l | awk '{printf "%.1f", $1}') writes/s," \
    "$(echo "($w1 - $w0) / ($RATE * $DRIVE)" | bc -l | awk '{printf "%.3f", $1}') per update"
fi

# Listing 10,000 NodeSyncs is slow on the embedded API server: the timed check counts the
# survivors' claims (each victim's NodeSync rewritten with a live owner); one full list
# afterwards confirms that no NodeSync names hub-b.
claimed_all() { (( $(echo "$(claims hub-a hub-c) - $claims0 >= $victims" | bc) )); }

victims=$(held_by hub-b)
claims0=$(claims hub-a hub-c)
t=$(now)
kill -9 "${pid[hub-b]}"; wait "${pid[hub-b]}" 2>/dev/null || true; unset 'pid[hub-b]'
if wait_until 600 all_held hub-a hub-c; then
  echo "kill -9 hub-b ($victims nodes) → all nodes held by hub-a/hub-c: $(since "$t") s"
else
  echo "kill -9 hub-b: nodes not all held after 600 s ($(total hub-a hub-c)/$NODES)"
fi
if wait_until 300 claimed_all; then
  echo "kill -9 hub-b → its $victims nodes claimed by hub-a/hub-c (NodeSync owner live): $(since "$t") s"
  owners=$(curl -s --max-time 300 "$api/apis/edgehub.io/v1alpha1/nodesyncs" | grep -o '"owner":"[^"]*"' | sort | uniq -c | tr '\n' ' ')
  echo "  NodeSync owners listed afterwards: $owners"
else
  echo "kill -9 hub-b → only $(echo "$(claims hub-a hub-c) - $claims0" | bc) of $victims nodes claimed after 300 s"
fi

start_replica hub-b
echo "start → ready, $NODES nodes in the cluster, hub-b: $ready_s s"
sleep "$SETTLE"

draining=$(held_by hub-c)
t=$(now)
kill -TERM "${pid[hub-c]}"
set +e; wait "${pid[hub-c]}"; code=$?; set -e; unset 'pid[hub-c]'
echo "SIGTERM drain of hub-c ($draining nodes): exit $code after $(since "$t") s"
if wait_until 600 all_held hub-a hub-b; then
  echo "SIGTERM hub-c → all nodes held by hub-a/hub-b: $(since "$t") s"
else
  echo "SIGTERM hub-c: nodes not all held after 600 s ($(total hub-a hub-b)/$NODES)"
fi
