#!/usr/bin/env bash
# Connects NODES simulated edge nodes (mutual TLS, one client cert each, minted in process) to
# the stand-in hub (`edgehub-sim --serve`, its own process: it needs one fd per connection
# too), holds them idle for HOLD seconds, and prints the simulator's report: connect rate,
# connect-time percentiles and RSS per node.
#
#   bench/sim_connect.sh [BUILD_DIR]        env: NODES=19000 HOLD=150 IO_THREADS=1 SOURCE_ADDRS=4
set -euo pipefail

BUILD=${1:-build/release}
NODES=${NODES:-19000}
HOLD=${HOLD:-150}
IO_THREADS=${IO_THREADS:-1}
SOURCE_ADDRS=${SOURCE_ADDRS:-4}
SIM=$BUILD/edgehub-sim

. "$(dirname "$0")/lib.sh"

"$SIM" --mint-pki "$work/pki" --log-level warn
"$SIM" --serve 127.0.0.1:0 --pki-dir "$work/pki" >"$work/hub.log" 2>&1 &
hub_pid=$!
pid[hub]=$hub_pid

# The hub picks a free port and logs it; wait (bounded) for that line.
port=
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/hub.log" | head -1)
  [[ -n $port ]] && break
  sleep 0.05
done
[[ -n $port ]] || { echo "stand-in hub did not start:"; cat "$work/hub.log"; exit 1; }

start=$(now)
"$SIM" --server "127.0.0.1:$port" --nodes "$NODES" --io-threads "$IO_THREADS" \
  --source-addrs "$SOURCE_ADDRS" --ca "$work/pki/ca.crt" \
  --client-ca "$work/pki/ca.crt" --client-ca-key "$work/pki/ca.key" \
  --duration "$HOLD" --report "$work/report.json" --progress-interval 5
end=$(now)

hub_rss_kib=$(rss_kib "$hub_pid")
python3 - "$work/report.json" "$NODES" "$hub_rss_kib" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
nodes = int(sys.argv[2])
print(f"nodes               {r['connected']}/{nodes} connected, {r['connect_failures']} failed dials")
ct = r['connect_time']
print(f"connect time        p50 {ct['p50_ms']:.1f} ms, p99 {ct['p99_ms']:.1f} ms (dial → 101)")
print(f"sim RSS             {r['rss_bytes']/2**20:.1f} MiB total, "
      f"{r['rss_per_node_bytes']/1024:.1f} KiB per node (RSS growth over start / nodes)")
print(f"hub RSS             {int(sys.argv[3])/1024:.1f} MiB (stand-in hub, for reference)")
print(f"upstream rtt        p50 {r['upstream_rtt']['p50_ms']:.1f} ms, p99 {r['upstream_rtt']['p99_ms']:.1f} ms")
PY
grep -h "connected .*conn/s" "$work"/*.log 2>/dev/null | tail -1 || true
