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
  # Bind port 0 via bash's /dev/tcp is not possible; ask the kernel's ephemeral range instead.
  local p
  while :; do
    p=$(( 20000 + RANDOM % 30000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
