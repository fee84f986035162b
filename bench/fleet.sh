#!/usr/bin/env bash
# A whole fleet on one machine: the embedded API server (`edgehub devapi`), REPLICAS replicas
# behind a real nginx (stream, TLS passthrough), and SIMS simulator processes that share NODES
# edges in disjoint name ranges (edge-0 …), each renewing its Lease every LEASE_RENEW seconds
# as edgecore with its kubelet does. bench/fleet_observer watches Nodes and Leases from the
# start, as the node lifecycle controller would.
#
# It waits until every edge is held and every Node Ready (at most CONNECT_LIMIT s), lets the
# registrations settle, then holds HOLD seconds, printing a sample every SAMPLE s:
#   - nodes held (the replicas' sessions), Nodes Ready, Lease age (max now; stale ever);
#   - per replica: edges held, RSS, CPU;
#   - the API server: CPU, RSS, requests per second by verb and resource (its /metrics);
#   - the simulators: CPU, RSS.
# At the end: the hold's averages (per replica and fleet-wide; API requests per edge per
# second), the observer's summary (Lease age max; every Lease that was ever older than 40 s,
# by name) and the simulators' connect and latency figures.
#
# Exits 1 when, at the end, an edge is not held or a Node not Ready, or when a Lease was ever
# older than STALE_AFTER seconds: the run is then not one to quote.
#
#   bench/fleet.sh [BUILD_DIR]
#   env: REPLICAS=6 NODES=100000 SIMS=6 HOLD=600 SAMPLE=30 LEASE_RENEW=10 CONNECT_LIMIT=1200
#        STALE_AFTER=40 START_SPREAD=<NODES/500 s> SOURCE_ADDRS=<NODES/20000+1> KUBE_QPS=2000
#        SINGLE_THREAD=<true|false> LEASE_WRITE_INTERVAL=<duration> OUT=<dir: keep the logs>
set -euo pipefail

BUILD=${1:-build/release}
REPLICAS=${REPLICAS:-6}
NODES=${NODES:-100000}
SIMS=${SIMS:-6}
HOLD=${HOLD:-600}
SAMPLE=${SAMPLE:-30}
LEASE_RENEW=${LEASE_RENEW:-10}
CONNECT_LIMIT=${CONNECT_LIMIT:-1200}
STALE_AFTER=${STALE_AFTER:-40}
START_SPREAD=${START_SPREAD:-$(( NODES / 500 + 1 ))}
SOURCE_ADDRS=${SOURCE_ADDRS:-$(( NODES / 20000 + 1 ))}
KUBE_QPS=${KUBE_QPS:-2000}
HUB=${HUB:-$BUILD/edgehub}
SIM=$BUILD/edgehub-sim
OBSERVER=$BUILD/bench/fleet_observer

. "$(dirname "$0")/lib.sh"
if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  trap 'cp -r "$work"/*.log "$work"/*.json "$work"/nginx "$OUT"/ 2>/dev/null || true; cleanup' EXIT
fi

start_api
"$OBSERVER" --kubeconfig "$work/kubeconfig" --interval "$SAMPLE" --stale-after "$STALE_AFTER" \
  --status "$work/observed" >"$work/observer.log" 2>&1 &
pid[observer]=$!

# Replicas: one logical cluster each, as the Deployment runs them.
ids=()
declare -A edge_port admin_port
for (( r = 0; r < REPLICAS; r++ )); do
  id=hub-$r
  ids+=("$id")
  edge_port[$id]=$(free_port)
  admin_port[$id]=$(free_port)
  cat >"$work/$id.yaml" <<YAML
hub:
  id: $id
  namespace: edgehub-bench
  listen: 127.0.0.1:${edge_port[$id]}
  tls: {certFile: $work/certs/server.crt, keyFile: $work/certs/server.key, clientCAFile: $work/certs/ca.crt}
  certService: {enabled: false}
$( [[ -n ${SINGLE_THREAD:-} ]] && echo "  singleThread: $SINGLE_THREAD")
$( [[ -n ${LEASE_WRITE_INTERVAL:-} ]] && echo "  leaseWriteInterval: $LEASE_WRITE_INTERVAL")
kube: {kubeconfig: $work/kubeconfig, qps: $KUBE_QPS, burst: $(( KUBE_QPS * 2 ))}
metrics: {listen: 127.0.0.1:${admin_port[$id]}}
log: {level: warn}
YAML
  "$HUB" --config "$work/$id.yaml" >"$work/$id.log" 2>&1 &
  pid[$id]=$!
done
replica_ready() { [[ $(curl -s "http://127.0.0.1:${admin_port[$1]}/readyz") == ok ]]; }
for id in "${ids[@]}"; do wait_until 120 replica_ready "$id"; done

ports=()
for id in "${ids[@]}"; do ports+=("${edge_port[$id]}"); done
start_nginx "$NODES" "${ports[@]}"

# Simulators: disjoint ranges, every one dialling through nginx.
sims=()
per_sim=$(( (NODES + SIMS - 1) / SIMS ))
for (( s = 0; s < SIMS; s++ )); do
  first=$(( s * per_sim ))
  count=$(( NODES - first < per_sim ? NODES - first : per_sim ))
  (( count > 0 )) || break
  "$SIM" --server "127.0.0.1:$nginx_port" --nodes "$count" --first-index "$first" \
    --ca "$work/certs/ca.crt" --client-ca-key "$work/certs/ca.key" --source-addrs "$SOURCE_ADDRS" \
    --lease-renew "$LEASE_RENEW" --reconnect-delay 1 --reconnect-max 8 --start-spread "$START_SPREAD" \
    --progress-interval "$SAMPLE" --report "$work/sim-$s.json" --log-level warn \
    >"$work/sim-$s.log" 2>&1 &
  pid[sim-$s]=$!
  sims+=("sim-$s")
done

series() {  # series URL NAME: the value of one series (0 when absent)
  curl -s --max-time 10 "$1/metrics" | awk -v s="$2" '$1 == s {v = $2} END {print v + 0}'
}
held() { series "http://127.0.0.1:${admin_port[$1]}" edgehub_sessions; }
held_total() { local n=0 id; for id in "${ids[@]}"; do n=$(( n + $(held "$id") )); done; echo "$n"; }
observed() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" "$work/observed" 2>/dev/null || echo 0; }
all_ready() { (( $(held_total) >= NODES && $(observed ready) >= NODES )); }
backlog_drained() {
  local id
  for id in "${ids[@]}"; do
    [[ $(series "http://127.0.0.1:${admin_port[$id]}" edgehub_api_requests_waiting) == 0 ]] || return 1
  done
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "fleet: $NODES edges in $SIMS simulators, $REPLICAS replicas behind nginx, Lease renewals every $LEASE_RENEW s"
t0=$(now)
if wait_until "$CONNECT_LIMIT" all_ready; then
  echo "all $NODES held and Ready: $(since "$t0") s"
else
  echo "after $CONNECT_LIMIT s: $(held_total) held, $(observed ready) Ready of $NODES"
fi
wait_until 300 backlog_drained || echo "replicas' API backlog not drained after 300 s"
sleep "$(( SAMPLE < 10 ? SAMPLE : 10 ))"

# API server requests by "VERB resource[/subresource]", from its /metrics.
api_requests() {
  curl -s --max-time 10 "$api/metrics" | awk '
    /^apiserver_request_total\{/ {
      match($0, /verb="[^"]*"/); verb = substr($0, RSTART + 6, RLENGTH - 7)
      match($0, /resource="[^"]*"/); res = substr($0, RSTART + 10, RLENGTH - 11)
      sub_ = ""; if (match($0, /subresource="[^"]+"/)) sub_ = "/" substr($0, RSTART + 13, RLENGTH - 14)
      n[verb " " res sub_] += $NF
    }
    END { for (k in n) print k, n[k] }' | sort
}
rates() {  # rates BEFORE AFTER SECONDS: per-second rate of each counter, highest first
  awk -v s="$3" 'NR == FNR {before[$1 " " $2] = $3; next}
    {d = ($3 - before[$1 " " $2]) / s; if (d > 0) printf "%.1f %s %s\n", d, $1, $2}' "$1" "$2" | sort -rn
}
procs=("${ids[@]}" api "${sims[@]}")
declare -A ticks0 ticks_start
snapshot_ticks() { local p; for p in "${procs[@]}"; do ticks0[$p]=$(cpu_ticks "${pid[$p]}"); done; }
cpu_pct() { awk -v t="$(cpu_ticks "${pid[$1]}")" -v t0="$2" -v hz="$hz" -v s="$3" 'BEGIN {printf "%.1f", 100 * (t - t0) / hz / s}'; }

snapshot_ticks
for p in "${procs[@]}"; do ticks_start[$p]=${ticks0[$p]}; done
api_requests >"$work/api-start"
cp "$work/api-start" "$work/api-prev"
hold_start=$(now)
while (( $(echo "$(now) - $hold_start < $HOLD" | bc) )); do
  sleep "$SAMPLE"
  api_requests >"$work/api-now"
  line="t=$(printf %.0f "$(since "$hold_start")") held=$(held_total) ready=$(observed ready)"
  line+=" lease_age_max=$(observed lease_age_max) stale_ever=$(observed stale_ever) |"
  for id in "${ids[@]}"; do
    line+=" $id $(held "$id") $(( $(rss_kib "${pid[$id]}") / 1024 ))MiB $(cpu_pct "$id" "${ticks0[$id]}" "$SAMPLE")%"
  done
  line+=" | api $(( $(rss_kib "${pid[api]}") / 1024 ))MiB $(cpu_pct api "${ticks0[api]}" "$SAMPLE")%"
  line+=" $(rates "$work/api-prev" "$work/api-now" "$SAMPLE" | head -4 | awk '{printf "%s %s/s, ", $2 " " $3, $1}')"
  sim_pct=0
  for p in "${sims[@]}"; do sim_pct=$(echo "$sim_pct + $(cpu_pct "$p" "${ticks0[$p]}" "$SAMPLE")" | bc); done
  line+="| sims ${sim_pct}%"
  echo "$line"
  mv "$work/api-now" "$work/api-prev"
  snapshot_ticks
done
hold_s=$(since "$hold_start")

echo "hold of $hold_s s, averages:"
total_rss=0 total_cpu=0
for id in "${ids[@]}"; do
  rss=$(rss_kib "${pid[$id]}") cpu=$(cpu_pct "$id" "${ticks_start[$id]}" "$hold_s") n=$(held "$id")
  total_rss=$(( total_rss + rss )); total_cpu=$(echo "$total_cpu + $cpu" | bc)
  echo "  $id: $n edges, RSS $(( rss / 1024 )) MiB ($(echo "scale=1; $rss / $(( n > 0 ? n : 1 ))" | bc) KiB per edge), CPU $cpu % of a core"
done
echo "  replicas together: RSS $(( total_rss / 1024 )) MiB ($(echo "scale=1; $total_rss / $NODES" | bc) KiB per edge), CPU $total_cpu % of a core"
echo "  API server: RSS $(( $(rss_kib "${pid[api]}") / 1024 )) MiB, CPU $(cpu_pct api "${ticks_start[api]}" "$hold_s") % of a core"
sim_pct=0
for p in "${sims[@]}"; do sim_pct=$(echo "$sim_pct + $(cpu_pct "$p" "${ticks_start[$p]}" "$hold_s")" | bc); done
echo "  simulators together: CPU $sim_pct % of a core"
api_requests >"$work/api-end"
rates "$work/api-start" "$work/api-end" "$hold_s" >"$work/api-rates"
echo "  API requests per second: $(awk '{n += $1} END {printf "%.1f", n}' "$work/api-rates")" \
  "($(awk -v e="$NODES" '{n += $1} END {printf "%.4f", n / e}' "$work/api-rates") per edge), by verb and resource:"
awk '{printf "    %8.1f /s  %s %s\n", $1, $2, $3}' "$work/api-rates"

# The observer's verdict, then the simulators' figures (they stop after it, so that their own
# shutdown does not age any Lease).
kill -TERM "${pid[observer]}"; wait "${pid[observer]}" || true; unset 'pid[observer]'
grep -v '^observer t=' "$work/observer.log" | sed 's/^/  /'
held_end=$(held_total)
for p in "${sims[@]}"; do kill -INT "${pid[$p]}"; done
for p in "${sims[@]}"; do wait "${pid[$p]}" || true; unset "pid[$p]"; done
echo "simulators (connect time, upstream round trip: p50 / p99 ms; reconnects, request timeouts):"
for (( s = 0; s < ${#sims[@]}; s++ )); do
  jq -r --arg s "sim-$s" '"  \($s): \(.connected)/\(.target) connected, \(.connects) connects at \(.connect_rate_per_s | floor)/s; connect \(.connect_time.p50_ms) / \(.connect_time.p99_ms); upstream \(.upstream_rtt.p50_ms) / \(.upstream_rtt.p99_ms); \(.reconnects) reconnects, \(.request_timeouts) timeouts"' \
    "$work/sim-$s.json"
done

ready_end=$(awk '/^observer end:/ {for (i = 1; i <= NF; i++) if ($i == "Ready,") print $(i - 1)}' "$work/observer.log" | head -1)
stale=$(sed -n 's/.*Leases ever older than [0-9]* s: \([0-9]*\).*/\1/p' "$work/observer.log")
verdict="held $held_end / $NODES, Ready ${ready_end:-0} / $NODES, stale Leases ${stale:-?}"
if (( held_end >= NODES && ${ready_end:-0} >= NODES )) && [[ ${stale:-} == 0 ]]; then
  echo "verdict: ok — $verdict"
else
  echo "verdict: FAILED — $verdict"
  exit 1
fi
