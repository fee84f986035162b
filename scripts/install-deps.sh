#!/usr/bin/env bash
# Installs every build and test dependency of edgehub from Debian's packages.
# Idempotent: quiet and fast when everything is already there; runs `apt-get update`
# once, and only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost1.81-dev libssl-dev openssl
  libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nginx-light libnginx-mod-stream
  prometheus gnuplot-nox
  kubernetes-client
  curl procps bc jq
  golang-go  # the TLS interop test runs a client on Go's crypto/tls (edgecore's TLS stack)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# kubectl may come from elsewhere on a developer machine; do not insist on Debian's then.
if command -v kubectl >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [ "$p" = kubernetes-client ] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# nginx and prometheus must not start as system services: tests start their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
