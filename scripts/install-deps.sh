#!/usr/bin/env bash
# Installs every Debian package nodemesh needs to build, test and benchmark.
# Idempotent: packages already present are left alone. Must run as root on Debian 12.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: run as root (apt-get needs it)" >&2
  exit 1
fi

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang llvm lld
  libclang-rt-14-dev libfuzzer-14-dev
  # eBPF: headers, loader library, skeleton generator
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  # agent libraries
  liburing-dev libssl-dev libfmt-dev libspdlog-dev libyaml-cpp-dev
  nlohmann-json3-dev libcli11-dev libcurl4-openssl-dev libnghttp2-dev
  # tests and benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  iproute2 iptables curl wrk nginx-light procps psmisc util-linux haproxy openssl tcpdump
  # deployment checks: systemd-analyze verify, vagrant validate, manifest schemas (node)
  systemd vagrant nodejs
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#packages[@]} packages present"
fi

# Debian's nodejs ships npm separately; NodeSource builds include it.
command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends npm
