#!/usr/bin/env bash
# A fleet joining with nothing but a token. One `edgehub --dev` whose CA and join token live
# in Secrets of its embedded API server (hub.certService.caSecret / tokenSecret), then
# `edgehub-sim --token` reads the token from kubeedge/tokensecret as an operator would and
# joins NODES nodes through the certificate service before connecting them. Prints the
# simulator's join time (joins/s) and connect figures.
#
#   bench/join_fleet.sh [BUILD_DIR]   env: NODES=2000 SIM_THREADS=2 PORT_BASE=23700
set -euo pipefail

BUILD=${1:-build/release}
NODES=${NODES:-2000}
SIM_THREADS=${SIM_THREADS:-2}
BASE=${PORT_BASE:-23700}
. "$(dirname "$0")/lib.sh"

cat > "$work/edgehub.yaml" <<YAML
hub:
  id: join-bench
  listen: 127.0.0.1:$BASE
  ioThreads: 1
  certService:
    listen: 127.0.0.1:$((BASE + 2))
    caSecret: kubeedge/casecret
    tokenSecret: kubeedge/tokensecret
metrics:
  listen: 127.0.0.1:$((BASE + 10))
dev:
  apiListen: 127.0.0.1:$((BASE + 43))
  kubeconfigOut: $work/kubeconfig
  certsDir: $work/certs
YAML
"$BUILD/edgehub" --dev --config "$work/edgehub.yaml" > "$work/hub.log" 2>&1 &
pid[hub]=$!
secret_url=http://127.0.0.1:$((BASE + 43))/api/v1/namespaces/kubeedge/secrets/tokensecret
for _ in $(seq 1 100); do
  curl -sf "$secret_url" > "$work/secret.json" 2>/dev/null && break
  sleep 0.1
done
token=$(python3 -c 'import json,sys,base64; print(base64.b64decode(json.load(open(sys.argv[1]))["data"]["tokendata"]).decode())' "$work/secret.json")

"$BUILD/edgehub-sim" --server 127.0.0.1:$BASE --cert-service 127.0.0.1:$((BASE + 2)) \
  --token "$token" --nodes "$NODES" --io-threads "$SIM_THREADS" --duration 3 \
  --report "$work/report.json" > "$work/sim.log" 2>&1
grep -h "joined with the token" "$work/sim.log"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print({k: r[k] for k in ("joins","join_s","connected","connect_failures")})' "$work/report.json"
echo "signings logged by the hub: $(grep -c 'signed a certificate' "$work/hub.log")"
