#!/usr/bin/env bash
# `systemd-analyze verify` on deploy/systemd/nodemesh-agent.service, strict:
# verify exits 0 on unknown keys and only warns, so ANY stderr output fails.
# It also insists that every Exec binary exists, so the check runs on a temp
# copy whose only change is /usr/sbin/nodemesh-agent -> the built agent
# (printed below). A deliberately broken copy must be rejected by the same
# check. The config examples are checked with the agent's --check-config.
# Usage: systemd_verify.sh AGENT_BINARY [DEMO_BACKEND_BINARY]
#   (with the second, deploy/vagrant/nodemesh-demo-backends.service too)
# Exit 77 (ctest skip) without systemd-analyze, unless NODEMESH_REQUIRE_PRIVILEGED=1.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
agent=${1:?usage: systemd_verify.sh AGENT_BINARY}
unit=$repo/deploy/systemd/nodemesh-agent.service

if ! command -v systemd-analyze >/dev/null; then
  echo "systemd_verify: systemd-analyze not found (Debian package systemd)" >&2
  [[ ${NODEMESH_REQUIRE_PRIVILEGED:-0} == 1 ]] && exit 1 || exit 77
fi
[[ -x $agent ]] || { echo "systemd_verify: $agent is not an executable" >&2; exit 1; }
agent=$(cd "$(dirname "$agent")" && pwd)/$(basename "$agent")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
result() {  # name, ok(0/1)
  if [[ $2 == 0 ]]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi
}

# Prints 0 when the unit at $1 verifies with no stderr and exit 0.
verify() {
  local out rc
  out=$(cd "$(dirname "$1")" && systemd-analyze verify --man=no "./$(basename "$1")" 2>&1 >/dev/null)
  rc=$?
  [[ -n $out ]] && sed 's/^/    | /' <<<"$out" >&2
  [[ $rc == 0 && -z $out ]] && echo 0 || echo 1
}

mkdir "$tmp/good" "$tmp/bad"
sed "s#/usr/sbin/nodemesh-agent#$agent#g" "$unit" >"$tmp/good/nodemesh-agent.service"
echo "verifying a copy of $unit with:"
diff "$unit" "$tmp/good/nodemesh-agent.service" | sed -n 's/^> /    /p'
grep -q "^ExecStart=$agent " "$tmp/good/nodemesh-agent.service"
result "ExecStart rewritten to the built agent" $?
result "systemd-analyze verify: exit 0, nothing on stderr" "$(verify "$tmp/good/nodemesh-agent.service")"

# Same check on a broken copy: an unknown key (a typo) must be caught.
sed 's/^ProtectSystem=/ProtectSytem=/' "$tmp/good/nodemesh-agent.service" >"$tmp/bad/nodemesh-agent.service"
if grep -q '^ProtectSytem=' "$tmp/bad/nodemesh-agent.service" && [[ $(verify "$tmp/bad/nodemesh-agent.service") == 1 ]]; then
  result "broken copy (unknown key ProtectSytem=) rejected" 0
else
  result "broken copy (unknown key ProtectSytem=) rejected" 1
fi

if [[ -n ${2:-} ]]; then
  backend=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
  mkdir "$tmp/demo"
  sed "s#/usr/local/bin/nodemesh-demo-backend#$backend#g" "$repo/deploy/vagrant/nodemesh-demo-backends.service" \
    >"$tmp/demo/nodemesh-demo-backends.service"
  result "systemd-analyze verify deploy/vagrant/nodemesh-demo-backends.service" \
    "$(verify "$tmp/demo/nodemesh-demo-backends.service")"
fi

for cfg in "$repo"/deploy/systemd/node.yaml.example "$repo"/deploy/vagrant/node-*.yaml; do
  "$agent" --check-config --config "$cfg" >/dev/null
  result "nodemesh-agent --check-config ${cfg#"$repo"/}" $?
done

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
