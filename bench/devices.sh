#!/usr/bin/env bash
# Device reports under load: NODES simulated edges with DEVICES devices each (one shared
# DeviceModel); every edge reports the twins of each of its devices every TWIN_EVERY seconds.
# The Kubernetes API is a separate process (`edgehub devapi`, the embedded API server
# alone), the replica another. Prints: upstream twin reports/s the replica sustained, report →
# Device status (the confirm comes after the PATCH) p50/p99 from the simulator and the
# replica's own report → PATCH histogram, and API writes (status PATCHes) per report.
#
#   bench/devices.sh [BUILD_DIR]   env: NODES=2000 DEVICES=5 TWIN_EVERY=10 HOLD=60 WINDOW=1s
set -euo pipefail

BUILD=${1:-build/release}
NODES=${NODES:-2000}
DEVICES=${DEVICES:-5}
TWIN_EVERY=${TWIN_EVERY:-10}
HOLD=${HOLD:-60}
WINDOW=${WINDOW:-1s}
HUB=$BUILD/edgehub
SIM=$BUILD/edgehub-sim

. "$(dirname "$0")/lib.sh"

start_api
devices_api="$api/apis/devices.kubeedge.io/v1beta1/namespaces/default"

curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "$devices_api/devicemodels" -d \
  '{"apiVersion":"devices.kubeedge.io/v1beta1","kind":"DeviceModel","metadata":{"name":"thermo-model"},"spec":{"protocol":"modbus","properties":[{"name":"temperature","type":"INT"},{"name":"humidity","type":"INT"}]}}'
created_start=$(now)
# Keep-alive connections from 8 threads: thousands of creates per second.
python3 - "$devices_api" "$NODES" "$DEVICES" <<'PY'
import http.client, json, sys, threading, urllib.parse
url, nodes, per = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def work(part):
    c = http.client.HTTPConnection(url.hostname, url.port)
    for n in range(part, nodes, 8):
        for d in range(1, per + 1):
            body = {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
                    "metadata": {"name": f"dev-{n}-{d}"},
                    "spec": {"nodeName": f"edge-{n}", "deviceModelRef": {"name": "thermo-model"},
                             "properties": [{"name": "temperature", "desired": {"value": "20"}},
                                            {"name": "humidity", "desired": {"value": "40"}}],
                             "protocol": {"protocolName": "modbus"}}}
            c.request("POST", url.path + "/devices", json.dumps(body), {"Content-Type": "application/json"})
            c.getresponse().read()
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
PY
echo "created $((NODES * DEVICES)) devices in $(since "$created_start") s"

start_replica <<YAML
kube: {kubeconfig: "$work/kubeconfig", qps: 5000, burst: 10000}
devices: {reportBatchWindow: $WINDOW}
YAML

"$SIM" --server "127.0.0.1:$port" --nodes "$NODES" --source-addrs 4 \
  --ca "$work/certs/ca.crt" --client-ca "$work/certs/ca.crt" --client-ca-key "$work/certs/ca.key" \
  --lease-renew 100000 --status-report 100000 --twin-every "$TWIN_EVERY" \
  --report "$work/sim.json" --duration $((HOLD + 900)) --log-level warn >"$work/sim.log" 2>&1 &
sim=$!
pid[sim]=$sim
for _ in $(seq 1 3000); do
  [[ $(metric edgehub_sessions) == "$NODES" ]] && break
  sleep 0.1
done
# Every node has its devices (membership, model, devices delivered) before measuring.
sleep $((TWIN_EVERY * 2 + 5))

written() { curl -s "http://127.0.0.1:$admin/metrics" | awk '/^edgehub_device_reports_total\{/ && /result="written"/ {s += $2} END {print s + 0}'; }
reports0=$(written); patches0=$(metric edgehub_device_status_patches_total); ticks0=$(cpu_ticks $hub)
api0=$(cpu_ticks "${pid[api]}"); sim0=$(cpu_ticks $sim)
load0=$(cut -d' ' -f1 /proc/loadavg)
sleep "$HOLD"
reports1=$(written); patches1=$(metric edgehub_device_status_patches_total); ticks1=$(cpu_ticks $hub)
api1=$(cpu_ticks "${pid[api]}"); sim1=$(cpu_ticks $sim)
sessions=$(metric edgehub_sessions)
pending=$(metric edgehub_device_reports_pending)
rss=$(rss_kib $hub)
load1=$(cut -d' ' -f1 /proc/loadavg)
kill -INT $sim; wait $sim 2>/dev/null || true; unset 'pid[sim]'
sleep 5  # what is in flight finishes (or fails) before the totals are read
curl -s "http://127.0.0.1:$admin/metrics" >"$work/metrics.txt"

reports=$((reports1 - reports0))
# Writes per report over the whole run, once drained: every report counted once it is done.
handled=$(awk '/^edgehub_device_reports_total\{/ {s += $2} END {print s + 0}' "$work/metrics.txt")
patches=$(awk '$1 == "edgehub_device_status_patches_total" {print $2}' "$work/metrics.txt")
failures=$(awk '$1 == "edgehub_device_status_patch_failures_total" {print $2}' "$work/metrics.txt")
echo "machine: $(nproc) cores, load average $load0 → $load1 during the hold"
echo "nodes connected:                $sessions / $NODES, $DEVICES devices each, a twin report per device every $TWIN_EVERY s"
echo "twin reports written:           $reports in $HOLD s = $(echo "scale=1; $reports / $HOLD" | bc) /s (offered: $(echo "scale=1; $NODES * $DEVICES / $TWIN_EVERY" | bc) /s)"
echo "status PATCHes (whole run):     $patches for $handled reports = $(echo "scale=3; $patches / $handled" | bc) API writes per report (window $WINDOW), $failures failed"
echo "replica at the end of the hold:  RSS $((rss / 1024)) MiB, $pending reports waiting for their PATCH"
echo "CPU, % of one core:             replica $(echo "scale=1; 100 * ($ticks1 - $ticks0) / $hz / $HOLD" | bc), API server $(echo "scale=1; 100 * ($api1 - $api0) / $hz / $HOLD" | bc), simulator $(echo "scale=1; 100 * ($sim1 - $sim0) / $hz / $HOLD" | bc)"
python3 - "$work/sim.json" "$work/metrics.txt" <<'PY'
import json, sys, re
sim = json.load(open(sys.argv[1]))
t = sim["twin_rtt"]
print(f"report → confirm (sim):         p50 {t['p50_ms']:.0f} ms, p99 {t['p99_ms']:.0f} ms, max {t['max_ms']:.0f} ms over {t['count']} reports; refused {sim['twin_refused']}")
buckets = []
for line in open(sys.argv[2]):
    m = re.match(r'edgehub_device_report_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
    if m: buckets.append((float('inf') if m[1] == '+Inf' else float(m[1]), float(m[2])))
if buckets and buckets[-1][1] > 0:
    total = buckets[-1][1]
    def q(p):
        for le, c in buckets:
            if c >= p * total: return le
    print(f"report → PATCH written (hub):   p50 ≤ {q(0.5)*1000:.0f} ms, p99 ≤ {q(0.99)*1000:.0f} ms (histogram bucket bounds)")
PY
