#!/usr/bin/env bash
# edgehub-sim end to end: dev PKI, the stand-in hub as its own process (port 0), 50 nodes over
# mutual TLS; waits (bounded) until the state dump shows every node connected and registered,
# then stops with SIGTERM and checks the report. Also: too many nodes for the fd limit is
# refused with an explanation.
set -euo pipefail
SIM=$1
NODES=50
work=$(mktemp -d)
hub=
sim=
cleanup() {
  [[ -n $sim ]] && kill "$sim" 2>/dev/null || true
  [[ -n $hub ]] && kill "$hub" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

out=$("$SIM" --nodes 10000000 --insecure 2>&1) && { echo "FAIL: 10M nodes accepted"; exit 1; }
grep -q "file descriptors" <<<"$out" || { echo "FAIL: no fd explanation: $out"; exit 1; }

"$SIM" --mint-pki "$work/pki" --log-level warn
"$SIM" --serve 127.0.0.1:0 --pki-dir "$work/pki" >"$work/hub.log" 2>&1 &
hub=$!
port=
for _ in $(seq 1 600); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/hub.log" | head -1)
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { echo "FAIL: hub did not start"; cat "$work/hub.log"; exit 1; }

"$SIM" --server "127.0.0.1:$port" --nodes "$NODES" --ca "$work/pki/ca.crt" --verify-hostname \
  --client-ca "$work/pki/ca.crt" --client-ca-key "$work/pki/ca.key" --reconnect-delay 0.2 \
  --state-dump "$work/state.json" --report "$work/report.json" >"$work/sim.log" 2>&1 &
sim=$!

# Signals only once the simulator says it runs (before main() a SIGUSR1 would kill it).
for _ in $(seq 1 600); do
  grep -q "edgehub-sim: $NODES nodes" "$work/sim.log" && break
  sleep 0.1
done
ok=
for _ in $(seq 1 600); do
  kill -USR1 "$sim"
  sleep 0.1
  if [[ -s $work/state.json ]] && python3 - "$work/state.json" "$NODES" <<'PY'
import json, sys
try:
    nodes = json.load(open(sys.argv[1]))["nodes"]
except (ValueError, KeyError):
    sys.exit(1)
sys.exit(0 if len(nodes) == int(sys.argv[2]) and all(n["connected"] and n["registered"] for n in nodes) else 1)
PY
  then ok=1; break; fi
done
[[ -n $ok ]] || { echo "FAIL: not all nodes connected"; tail -5 "$work/sim.log"; exit 1; }

kill -TERM "$sim"
wait "$sim"
sim=
python3 - "$work/report.json" "$NODES" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert r["connects"] >= n, r
assert r["connect_failures"] == 0, r
assert r["upstream_rtt"]["count"] > 0, r
print("ok:", r["connected"], "connected,", r["connects"], "connects")
PY
