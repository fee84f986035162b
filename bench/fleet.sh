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
# OPS (e.g. "rolling lb-restart kill scale") then runs operations on the running fleet, each
# measured until the fleet has converged again (below).
#
# Exits 1 when, at the end, an edge is not held or a Node not Ready, or when a Lease was ever
# older than STALE_AFTER seconds outside a load balancer restart (where every edge drops at
# once, and each stale Lease is named): the run is then not one to quote.
#
#   bench/fleet.sh [BUILD_DIR]
#   env: REPLICAS=6 NODES=100000 SIMS=6 HOLD=600 SAMPLE=30 LEASE_RENEW=10 CONNECT_LIMIT=1200
#        STALE_AFTER=40 START_SPREAD=<NODES/500 s> SOURCE_ADDRS=<NODES/20000+1> KUBE_QPS=2000
#        FLEET_QPS=0 (kube.fleetQps)
#        SINGLE_THREAD=<true|false> LEASE_WRITE_INTERVAL=<duration> OUT=<dir: keep the logs>
#        OPS="<lb-restart|kill|rolling|scale> ..." SCALE_LIMIT=600 PLOT=<dir: a PNG per operation>
#        HUB_LOG_LEVEL=warn SIM_LOG_LEVEL=warn
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

# Replicas: one logical cluster each, as the Deployment runs them. ids[] are the live ones.
ids=()
declare -A edge_port admin_port
start_hub() {  # start_hub ID: configures, starts and waits for one replica
  local id=$1
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
kube: {kubeconfig: $work/kubeconfig, qps: $KUBE_QPS, burst: $(( KUBE_QPS * 2 )), fleetQps: ${FLEET_QPS:-0}}
metrics: {listen: 127.0.0.1:${admin_port[$id]}}
log: {level: ${HUB_LOG_LEVEL:-warn}}
YAML
  "$HUB" --config "$work/$id.yaml" >>"$work/$id.log" 2>&1 &
  pid[$id]=$!
  ids+=("$id")
  wait_until 120 replica_ready "$id" || { echo "replica $id not ready after 120 s:"; tail -5 "$work/$id.log"; return 1; }
}
replica_ready() { [[ $(curl -s "http://127.0.0.1:${admin_port[$1]}/readyz") == ok ]]; }
forget_hub() {  # forget_hub ID: it has exited
  local id=$1 i kept=()
  unset "pid[$id]"
  for i in "${ids[@]}"; do [[ $i == "$id" ]] || kept+=("$i"); done
  ids=("${kept[@]}")
}
upstreams() { local id; for id in "${ids[@]}"; do echo "${edge_port[$id]}"; done; }
for (( r = 0; r < REPLICAS; r++ )); do start_hub "hub-$r"; done
start_nginx "$NODES" $(upstreams)

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
    --progress-interval "$SAMPLE" --report "$work/sim-$s.json" --log-level "${SIM_LOG_LEVEL:-warn}" \
    >"$work/sim-$s.log" 2>&1 &
  pid[sim-$s]=$!
  sims+=("sim-$s")
done

series() {  # series URL NAME: the value of one series (0 when absent or unanswered)
  { curl -s --max-time 10 "$1/metrics" || true; } | awk -v s="$2" '$1 == s {v = $2} END {print v + 0}'
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
echo "fleet: $NODES edges in $SIMS simulators, $REPLICAS replicas behind nginx, Lease renewals every $LEASE_RENEW s;" \
  "kube.qps $KUBE_QPS, kube.fleetQps ${FLEET_QPS:-0}"
t0=$(now)
if wait_until "$CONNECT_LIMIT" all_ready; then
  echo "all $NODES held and Ready: $(since "$t0") s"
else
  echo "after $CONNECT_LIMIT s: $(held_total) held, $(observed ready) Ready of $NODES"
fi
wait_until 300 backlog_drained || echo "replicas' API backlog not drained after 300 s"
sleep "$(( SAMPLE < 10 ? SAMPLE : 10 ))"

# API server requests by "VERB resource[/subresource]", from its /metrics.
api_requests() {  # never fails: a busy API server's late answer counts as no requests
  { curl -s --max-time 30 "$api/metrics" || true; } | awk '
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

# Operations, in the order OPS names them, each measured from its first step until every
# edge is held again and every Node Ready: what it cost the API server (requests beyond the
# steady renewals, per edge that had to reconnect), the replicas' peak RSS, and the Leases
# that went stale on the way (the observer names each one).
total_requests() { api_requests | awk '{n += $3} END {print n + 0}'; }
# "<all requests> <Lease writes>" of the API server so far, for the plot of an operation.
request_counts() { api_requests | awk '{n += $3} $1 == "PUT" && $2 == "leases" {l = $3} END {print n + 0, l + 0}'; }
converge() {  # converge LIMIT: sets $waited (s since $op_t) and $peak_rss (KiB, all replicas)
  local limit=$1 rss id
  peak_rss=0
  while :; do
    rss=0
    for id in "${ids[@]}"; do rss=$(( rss + $(rss_kib "${pid[$id]}") )); done
    (( rss > peak_rss )) && peak_rss=$rss
    echo "$(since "$op_t") $(request_counts)" >>"$work/op-$op.dat"
    all_ready && break
    if (( $(echo "$(since "$op_t") > $limit" | bc) )); then
      waited="more than $limit"
      echo "    not converged after $limit s: $(held_total) held, $(observed ready) Ready of $NODES"
      return 1
    fi
    sleep 1
  done
  waited=$(since "$op_t")
}
op_begin() { op_t=$(now); op_requests=$(total_requests); op_stale=$(observed stale_ever); api_requests >"$work/api-op"; }
op_end() {  # op_end RECONNECTING: the cost of the operation
  local secs requests extra
  secs=$(since "$op_t")
  requests=$(( $(total_requests) - op_requests ))
  extra=$(echo "$requests - $steady_rate * $secs" | bc -l)
  # A reconnected edge renews on its own clock, up to one interval after it is back: Leases
  # that go stale in that time belong to this operation.
  sleep $(( ${LEASE_RENEW%.*} + 5 ))
  echo "    API requests: $requests in $secs s, $(printf %.0f "$extra") beyond the hold's steady rate" \
    "($(echo "$extra / $(( $1 > 0 ? $1 : 1 ))" | bc -l | awk '{printf "%.1f", $1}') per reconnecting edge);" \
    "replicas' peak RSS $(( peak_rss / 1024 )) MiB; Leases gone stale: $(( $(observed stale_ever) - op_stale ))"
  stale_in_ops=$(( stale_in_ops + $(observed stale_ever) - op_stale ))
  api_requests >"$work/api-op-end"
  echo "    most frequent: $(rates "$work/api-op" "$work/api-op-end" 1 | head -8 | awk '{printf "%s %s %.0f, ", $2, $3, $1}')"
}
dropped() { (( $(held_total) < NODES )); }
settle() { wait_until 300 backlog_drained || true; sleep "$(( SAMPLE < 10 ? SAMPLE : 10 ))"; }
next_hub=$REPLICAS
stale_in_ops=0 lb_stale=0
steady_rate=$(awk '{n += $1} END {print n + 0}' "$work/api-rates")
for op in ${OPS:-}; do
  settle
  case $op in
    lb-restart)  # nginx stopped and started again: every edge drops at once
      echo "operation: load balancer restart (nginx stopped, started again)"
      op_begin
      kill -TERM "${pid[nginx]}"; wait "${pid[nginx]}" || true; unset 'pid[nginx]'
      wait_until 60 dropped || true
      start_nginx "$NODES" $(upstreams)
      converge "$CONNECT_LIMIT" || true
      echo "    all $NODES held and Ready again $waited s after nginx stopped"
      before=$stale_in_ops; op_end "$NODES"; lb_stale=$(( stale_in_ops - before )); stale_in_ops=$before
      ;;
    kill)  # kill -9 of one replica; the Deployment starts a new one
      victim=${ids[0]}
      lost=$(held "$victim")
      echo "operation: kill -9 $victim ($lost edges)"
      op_begin
      kill -9 "${pid[$victim]}"; wait "${pid[$victim]}" 2>/dev/null || true; forget_hub "$victim"
      reload_nginx "$NODES" $(upstreams)
      converge "$CONNECT_LIMIT" || true
      echo "    its edges held by the others, all Ready: $waited s"
      start_hub "hub-$(( next_hub++ ))"; reload_nginx "$NODES" $(upstreams)
      echo "    replacement ${ids[-1]} ready after $(since "$op_t") s"
      op_end "$lost"
      ;;
    rolling)  # kubectl rollout restart: maxSurge 1, maxUnavailable 0
      echo "operation: rolling restart of ${#ids[@]} replicas (new one ready, old one drained, next)"
      op_begin
      for old in "${ids[@]}"; do
        step=$(now)
        start_hub "hub-$(( next_hub++ ))"; reload_nginx "$NODES" $(upstreams)
        moved=$(held "$old")
        kill -TERM "${pid[$old]}"; wait "${pid[$old]}" || true; forget_hub "$old"
        reload_nginx "$NODES" $(upstreams)
        converge "$CONNECT_LIMIT" || true
        echo "    $old ($moved edges) → ${ids[-1]}: drained and all held again after $(since "$step") s"
      done
      echo "    whole rollout: $(since "$op_t") s"
      op_end "$NODES"
      ;;
    scale)  # one replica more until it holds a fair share, then that one drained away
      echo "operation: scale out ${#ids[@]} → $(( ${#ids[@]} + 1 )), then in again"
      op_begin
      start_hub "hub-$(( next_hub++ ))"; reload_nginx "$NODES" $(upstreams)
      new=${ids[-1]}
      fair=$(( NODES / ${#ids[@]} ))
      fair_share() { (( $(held "$new") * 10 >= fair * 9 )); }
      if wait_until "${SCALE_LIMIT:-600}" fair_share; then
        echo "    $new holds $(held "$new") edges (a fair share is $fair) after $(since "$op_t") s"
      else
        echo "    $new holds $(held "$new") edges of a fair share of $fair after ${SCALE_LIMIT:-600} s"
      fi
      converge "$CONNECT_LIMIT" || true
      moved=$(held "$new")
      op_end "$moved"
      op_begin
      kill -TERM "${pid[$new]}"; wait "${pid[$new]}" || true; forget_hub "$new"
      reload_nginx "$NODES" $(upstreams)
      converge "$CONNECT_LIMIT" || true
      echo "    scale in: $new drained, its $moved edges held by the others and all Ready after $waited s"
      op_end "$moved"
      ;;
    *) echo "unknown operation $op (lb-restart, kill, rolling, scale)" >&2; exit 2 ;;
  esac
done

# The API server's request rate through each operation, per second: docs/ plots (PNG).
if [[ -n ${PLOT:-} ]]; then
  mkdir -p "$PLOT"
  for f in "$work"/op-*.dat; do
    [[ -f $f ]] || continue
    name=$(basename "$f" .dat)
    awk 'NR > 1 && $1 > t {printf "%.1f %.0f %.0f\n", $1, ($2 - n) / ($1 - t), ($3 - l) / ($1 - t)}
         {t = $1; n = $2; l = $3}' "$f" >"$work/$name.rate"
    gnuplot <<GNUPLOT
set terminal pngcairo size 900,420 noenhanced
set output "$PLOT/fleet-$name.png"
set title "API server requests per second: ${name#op-}, $NODES edges, ${#ids[@]} replicas"
set xlabel "seconds since the operation began"
set ylabel "requests / s"
set grid
set key top right
plot "$work/$name.rate" using 1:2 with lines lw 2 title "all requests", \
     "$work/$name.rate" using 1:3 with lines lw 2 title "Lease writes (PUT leases)"
GNUPLOT
    echo "plot: $PLOT/fleet-$name.png"
  done
fi

# Every answer of the API server that was not a success, over the whole run.
echo "API errors over the run (verb, resource, code: count):"
curl -s --max-time 10 "$api/metrics" | awk '
  /^apiserver_request_total\{/ && !/code="[23]/ {
    match($0, /verb="[^"]*"/); verb = substr($0, RSTART + 6, RLENGTH - 7)
    match($0, /resource="[^"]*"/); res = substr($0, RSTART + 10, RLENGTH - 11)
    match($0, /code="[^"]*"/); code = substr($0, RSTART + 6, RLENGTH - 7)
    printf "  %s %s %s: %d\n", verb, res, code, $NF; n++
  }
  END { if (n == 0) print "  none" }'

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
stale_hold=$(( ${stale:-0} - stale_in_ops - lb_stale ))
verdict="held $held_end / $NODES, Ready ${ready_end:-0} / $NODES, stale Leases ${stale:-?}"
verdict+=" (in the hold and the operations other than lb-restart: $(( stale_hold + stale_in_ops )))"
if (( held_end >= NODES && ${ready_end:-0} >= NODES && stale_hold + stale_in_ops == 0 )) && [[ -n ${stale:-} ]]; then
  echo "verdict: ok — $verdict"
else
  echo "verdict: FAILED — $verdict"
  exit 1
fi
