#!/usr/bin/env bash
# `vagrant validate --ignore-provider` on the top-level Vagrantfile, plus a
# broken copy that must be rejected (so this check can fail). Starts no VM and
# needs no provider; VAGRANT_HOME is a temp dir so no user state is touched.
# Exit 77 (ctest skip) without vagrant, unless NODEMESH_REQUIRE_PRIVILEGED=1.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)

if ! command -v vagrant >/dev/null; then
  echo "vagrant_validate: vagrant not found (Debian package vagrant)" >&2
  [[ ${NODEMESH_REQUIRE_PRIVILEGED:-0} == 1 ]] && exit 1 || exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# VAGRANT_DOTFILE_PATH: keep vagrant's .vagrant/ out of the source tree.
export VAGRANT_HOME=$tmp/home VAGRANT_DOTFILE_PATH=$tmp/dot VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_PLUGINS=1
passed=0 failed=0
result() {
  if [[ $2 == 0 ]]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi
}
validate() {  # dir; vagrant reads ./Vagrantfile
  (cd "$1" && vagrant validate --ignore-provider) 2>&1 | sed 's/^/    | /'
  return "${PIPESTATUS[0]}"
}

validate "$repo"
result "vagrant validate --ignore-provider Vagrantfile" $?

# A typo'd option is a validation error (not a Ruby error) in Vagrant.
mkdir "$tmp/broken"
sed 's/node.vm.hostname = name/node.vm.hostnme = name/' "$repo/Vagrantfile" >"$tmp/broken/Vagrantfile"
if grep -q hostnme "$tmp/broken/Vagrantfile" && ! validate "$tmp/broken"; then
  result "broken copy (vm.hostnme) rejected" 0
else
  result "broken copy (vm.hostnme) rejected" 1
fi

# Every node config the Vagrantfile installs must exist.
for name in $(grep -o '"node-[a-z]" =>' "$repo/Vagrantfile" | grep -o 'node-[a-z]'); do
  [[ -f $repo/deploy/vagrant/$name.yaml ]]
  result "deploy/vagrant/$name.yaml exists" $?
done

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
