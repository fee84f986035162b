# Helpers the fleet benchmarks share. Sourced right after `set -euo pipefail`:
#   . "$(dirname "$0")/lib.sh"
# It makes $work, a scratch directory; on exit the processes in pid[] (name → process id) are
# stopped and $work is removed. Unset a name once its process has been waited for.

work=$(mktemp -d)
declare -A pid=()
cleanup() {
  for k in "${!pid[@]}"; do kill "${pid[$k]}" 2>/dev/null || true; done
  for k in "${!pid[@]}"; do wait "${pid[$k]}" 2>/dev/null || true; done
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
wait_until() {  # wait_until LIMIT_S CMD...: polls CMD every 0.2 s
  local limit=$1; shift
  local end=$(( $(date +%s) + limit ))
  until "$@"; do
    (( $(date +%s) < end )) || return 1
    sleep 0.2
  done
}

# A series of the replica whose admin port is $admin.
metric() { curl -s "http://127.0.0.1:$admin/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc | awk '{printf "%.2f", $1}'; }

free_port() {
  # Bash cannot bind port 0. A port below the kernel's ephemeral range (where the fleet's own
  # tens of thousands of outgoing connections take theirs) that nothing listens on.
  local p low
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  while :; do
    p=$(( 10000 + RANDOM % (low - 10000) ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# The Kubernetes API for a single-replica benchmark: dev certificates in $work/certs and the
# API server alone (`edgehub devapi`; an `edgehub --dev` hub would also count as a replica,
# and the replica under test would shed edges to it). Sets pid[api] and $api (its URL).
start_api() {
  "${API_HUB:-$HUB}" certs init --dir "$work/certs" >/dev/null
  "${API_HUB:-$HUB}" devapi --listen 127.0.0.1:0 --kubeconfig-out "$work/kubeconfig" --log-level warn \
    >"$work/api.log" 2>&1 &
  pid[api]=$!
  for _ in $(seq 1 100); do [[ -s $work/kubeconfig ]] && break; sleep 0.1; done
  api=$(sed -n 's/.*server: \(http[^ ]*\).*/\1/p' "$work/kubeconfig" | head -1)
}

# Starts the one replica of a benchmark and waits until it is ready: its configuration is the
# common part below plus the YAML read from stdin (kube limits, features). Sets pid[hub],
# $hub, $port (edges) and $admin (metrics).
start_replica() {
  {
    cat <<YAML
hub:
  id: bench-0
  listen: "127.0.0.1:0"
  tls: {certFile: "$work/certs/server.crt", keyFile: "$work/certs/server.key", clientCAFile: "$work/certs/ca.crt"}
  certService: {enabled: false}
  maxConnections: ${MAX_CONNECTIONS:-19500}
  ioThreads: ${IO_THREADS:-0}
$( [[ -n ${SINGLE_THREAD:-} ]] && echo "  singleThread: $SINGLE_THREAD")
$( [[ -n ${LEASE_WRITE_INTERVAL:-} ]] && echo "  leaseWriteInterval: $LEASE_WRITE_INTERVAL")
# One replica alone: nothing to rebalance towards.
rebalance: {enabled: false}
metrics: {listen: "127.0.0.1:0"}
log: {level: warn}
YAML
    cat
  } >"$work/hub.yaml"
  "$HUB" --config "$work/hub.yaml" --log-level info >"$work/hub.log" 2>&1 &
  hub=$!
  pid[hub]=$hub
  port=$(wait_for "$work/hub.log" 's/.*listening for edges on 127\.0\.0\.1:\([0-9]*\).*/\1/p')
  admin=$(wait_for "$work/hub.log" 's/.*admin on 127\.0\.0\.1:\([0-9]*\).*/\1/p')
  for _ in $(seq 1 600); do [[ $(curl -s "http://127.0.0.1:$admin/readyz") == ok ]] && break; sleep 0.1; done
}

# A real nginx in front of replicas: stream proxy, TLS passthrough, least connections, the way
# an Ingress controller's TCP passthrough runs. Every process here may hold at most 20,000
# descriptors and a proxied connection takes two, so there is one worker per 8,000 edges
# (EDGES), the listening socket spread over them (reuseport).
#   start_nginx EDGES PORT...: sets $nginx_port and pid[nginx].
#   reload_nginx EDGES PORT...: the same nginx with another set of replicas (SIGHUP: new
#     workers take new connections, the old ones keep theirs until they close).
nginx_conf() {
  local edges=$1 module p
  shift
  module=$("$nginx" -V 2>&1 | sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p')
  mkdir -p "$work/nginx"
  {
    [[ -f $module/ngx_stream_module.so ]] && echo "load_module $module/ngx_stream_module.so;"
    echo "daemon off; worker_processes $(( edges / 8000 + 1 )); worker_rlimit_nofile 19900;"
    echo "pid $work/nginx/nginx.pid; error_log $work/nginx/error.log warn;"
    echo "events { worker_connections 19000; }"
    echo "stream { upstream edgehub { least_conn;"
    for p in "$@"; do echo "  server 127.0.0.1:$p max_fails=1 fail_timeout=1s;"; done
    echo "} server { listen 127.0.0.1:$nginx_port reuseport; proxy_pass edgehub; proxy_connect_timeout 1s;"
    echo "  proxy_timeout 1h; proxy_next_upstream on; } }"
  } >"$work/nginx/nginx.conf"
}
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
start_nginx() {
  [[ -n ${nginx_port:-} ]] || nginx_port=$(free_port)
  nginx_conf "$@"
  ( ulimit -n "$(ulimit -Hn)"
    exec "$nginx" -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" ) &
  pid[nginx]=$!
  wait_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$nginx_port" 2>/dev/null
}
reload_nginx() {
  nginx_conf "$@"
  kill -HUP "${pid[nginx]}"
}
