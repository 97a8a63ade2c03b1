#!/usr/bin/env bash
# Quick start, part 1: installs what is needed, builds, and runs the agent on
# its embedded example topology. Demo backends listen on 127.0.0.1; clients in
# the served cgroup dial service VIPs in 127.96.0.0/16 and the kernel picks a
# backend at connect time. Cleans up everything on exit or Ctrl-C.
#   sudo ./scripts/demo.sh            run the tour and exit
#   sudo ./scripts/demo.sh --keep     keep the agent running until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[[ ${1:-} == --keep ]] && keep=true
[[ $(id -u) -eq 0 ]] || { echo "demo: run as root (it loads BPF programs and creates cgroups)" >&2; exit 1; }

./scripts/install-deps.sh
echo "== building"
./scripts/build.sh release --target nodemesh-agent meshctl nodemesh-demo-backend >/dev/null
bin=build
agent=$bin/agent/nodemesh-agent
meshctl=$bin/cli/meshctl
backend=$bin/examples/nodemesh-demo-backend

cg2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[[ -n $cg2 ]] || { echo "demo: no cgroup2 mount in /proc/mounts; nodemesh needs cgroup v2" >&2; exit 1; }
served=$cg2/nodemesh-demo
client_cg=$served/client
workdir=$(mktemp -d /tmp/nodemesh-demo.XXXXXX)
pids=()
agent_pid=

cleanup() {
  set +e
  echo "== cleaning up"
  [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  "$agent" --cleanup >/dev/null 2>&1 && echo "   programs detached, pins removed"
  rmdir "$client_cg" "$served" 2>/dev/null
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting demo backends on 127.0.0.1"
start_backend() { "$backend" serve "$@" >>"$workdir/backends.log" 2>&1 & pids+=($!); }
start_backend web-1 tcp:18081
start_backend web-2 tcp:18082
start_backend web-3 tcp:18083
start_backend api-1 tcp:18084
start_backend api-2 tcp:18085
start_backend api-3 tcp:18086
start_backend admin-1 tcp:18087
start_backend dns-1 udp:18053

# The client workload's cgroup exists before the agent starts, as a running
# pod's would (a later one is picked up within a second).
mkdir -p "$client_cg"
echo "== starting nodemesh-agent (embedded example config; log: $workdir/agent.log)"
"$agent" >"$workdir/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do "$meshctl" node status >/dev/null 2>&1 && break; sleep 0.1; done
"$meshctl" node status >/dev/null 2>&1 || { cat "$workdir/agent.log"; exit 1; }

# Runs a command as a workload: inside the served cgroup.
as_client() { sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$client_cg" "$@"; }

echo
echo "== demo/web (127.96.0.10:80, random, weights 1:1:2): 12 requests from the client cgroup"
for _ in $(seq 12); do as_client curl -s --max-time 2 http://127.96.0.10/; done | sort | uniq -c
echo
echo "== demo/api (127.96.0.11:8080, maglev): this client sticks to one of api-1/api-2; api-3 is not ready"
for _ in $(seq 5); do as_client curl -s --max-time 2 http://127.96.0.11:8080/; done | sort | uniq -c
echo
echo "== demo/dns (127.96.0.53:53/udp): the reply appears to come from the VIP"
as_client "$backend" ask-udp 127.96.0.53 53
echo
echo "== demo/maintenance (127.96.0.12:80) has no ready endpoint: connect() fails at once"
as_client bash -c 'exec 3<>/dev/tcp/127.96.0.12/80' 2>&1 | sed -n '1s/^.*: connect: /connect(): /p' || true
echo
echo "== the same VIP from outside the served cgroup is untouched (nothing listens on 127.96.0.10 itself)"
bash -c 'exec 3<>/dev/tcp/127.96.0.10/80' 2>&1 | sed -n '1s/^.*: connect: /connect(): /p' || true
echo
echo "== demo/web-mesh (127.96.0.20:80, mode mtls): captured to the node proxy on 127.0.0.1:15001"
for _ in $(seq 6); do as_client curl -s --max-time 2 http://127.96.0.20/; done | sort | uniq -c
echo
echo "== demo/admin (127.96.0.21:80, mode mtls): the proxy refuses it (authorization rule no-admin-from-demo)"
as_client curl -sS --max-time 2 http://127.96.0.21/ 2>&1 | sed 's/^curl: ([0-9]*) //' || true
echo
echo "== meshctl node status"
"$meshctl" node status
echo
echo "== meshctl services"
"$meshctl" services

if $keep; then
  echo
  echo "Agent running (pid $agent_pid). Try: meshctl node status, or edit nothing and press Ctrl-C to stop and clean up."
  wait "$agent_pid"
fi
