#!/usr/bin/env bash
# `cmake --install BUILD_DIR` into a temp prefix puts every file where a
# packager expects it, and the installed unit runs the installed agent.
# Usage: install_layout.sh BUILD_DIR
# Exit 77 (ctest skip) without cmake, unless NODEMESH_REQUIRE_PRIVILEGED=1.
set -uo pipefail
build=${1:?usage: install_layout.sh BUILD_DIR}

if ! command -v cmake >/dev/null; then
  echo "install_layout: cmake not found" >&2
  [[ ${NODEMESH_REQUIRE_PRIVILEGED:-0} == 1 ]] && exit 1 || exit 77
fi

prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
passed=0 failed=0
result() {
  if [[ $2 == 0 ]]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi
}

cmake --install "$build" --prefix "$prefix" >"$prefix.log" 2>&1
rc=$?
[[ $rc == 0 ]] || sed 's/^/    | /' "$prefix.log"
rm -f "$prefix.log"
result "cmake --install $build --prefix <tmp>" $rc

# Relative to the prefix. share/doc/nodemesh is GNUInstallDirs' DOCDIR.
expected=(
  sbin/nodemesh-agent bin/meshctl
  lib/systemd/system/nodemesh-agent.service
  share/nodemesh/examples/node.yaml.example
  share/nodemesh/examples/node-a.yaml share/nodemesh/examples/node-b.yaml
  share/nodemesh/kubernetes/namespace.yaml share/nodemesh/kubernetes/serviceaccount.yaml
  share/nodemesh/kubernetes/rbac.yaml
  share/nodemesh/kubernetes/daemonset.yaml
  share/doc/nodemesh/OPERATIONS.md
)
for f in "${expected[@]}"; do
  [[ -f $prefix/$f ]]
  result "installed $f" $?
done
[[ -x $prefix/sbin/nodemesh-agent && -x $prefix/bin/meshctl ]]
result "binaries are executable" $?

# The unit must name the agent under the CONFIGURED prefix (what a package or
# /usr/local install runs), never the source tree's placeholder when they differ.
configured=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
grep -q "^ExecStart=$configured/sbin/nodemesh-agent " "$prefix/lib/systemd/system/nodemesh-agent.service"
result "unit ExecStart is $configured/sbin/nodemesh-agent" $?

# The installed example config is one the installed agent accepts.
"$prefix/sbin/nodemesh-agent" --check-config --config "$prefix/share/nodemesh/examples/node.yaml.example" >/dev/null
result "installed agent accepts the installed example config" $?

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
