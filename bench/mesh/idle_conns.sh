#!/usr/bin/env bash
# Memory of idle proxied connections through the nodemesh node proxy
# (issue 3 target: 10,000 idle proxied connections, under 2 KB each).
#
# Topology (created here, removed on exit; nothing outside these netns is used):
#   node A (netns nmic-A, 10.77.0.1) <-veth-> node B (netns nmic-B, 10.77.0.2)
#   node A: pod a1 (client, 10.81.0.11), pod a2 (server, 10.81.0.12)
#   node B: pod b1 (server, 10.82.0.11)
#   each pod its own netns + cgroup (<cgroup2>/nmic/{A,B}/<pod>), meshed
#   namespace "bench"; one nodemesh-agent per node netns.
#   service idle-local  VIP 10.96.0.11:80 -> a2:9000 (same node: the proxy
#                       holds the captured socket + one to the backend)
#   service idle-remote VIP 10.96.0.12:80 -> b1:9000 (across nodes: one HBONE
#                       stream per connection on tunnels pooled per
#                       (identity, peer), at most 100 streams per tunnel)
# For each case, fresh agents; then the client in pod a1 (idle_conns.cpp) opens
# N connections to the VIP in --steps equal steps, each echoing one byte end to
# end, then idle. After each step: RSS and PSS (/proc/PID/smaps_rollup) and fd
# count of both agents, tunnels from `meshctl node status`. Bytes per
# connection = (RSS at N - RSS before the first step) / N, and the slope over
# the steps (least squares), per agent.
#
# Usage: sudo bench/mesh/idle_conns.sh [--agent PATH] [--meshctl PATH]
#          [--local N] [--remote N] [--steps K] [--cases "local remote"] [--out FILE]
# Defaults: --local 9000 (the proxy holds 2 fds per same-node connection and the
# hard nofile limit here is 20000), --remote 10000, --steps 4.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
AGENT=
MESHCTL=
N_LOCAL=9000
N_REMOTE=10000
STEPS=4
CASES_ARG="local remote"
OUT=
NS_PREFIX=nmic
TIME_LIMIT=600

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while (($#)); do
  case $1 in
    --agent) AGENT=${2:?}; shift 2 ;;
    --meshctl) MESHCTL=${2:?}; shift 2 ;;
    --local) N_LOCAL=${2:?}; shift 2 ;;
    --remote) N_REMOTE=${2:?}; shift 2 ;;
    --steps) STEPS=${2:?}; shift 2 ;;
    --cases) CASES_ARG=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$N_LOCAL" "$N_REMOTE" "$STEPS"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] && ((v <= 20000)) || { echo "counts: 1..20000" >&2; exit 2; }
done
read -r -a CASES <<<"$CASES_ARG"
for c in "${CASES[@]}"; do [[ $c == local || $c == remote ]] || { echo "--cases: local remote" >&2; exit 2; }; done

die() { echo "idle_conns.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ $EUID -eq 0 ]] || die "needs root: sudo $0"
for t in ip nsenter g++ ss timeout awk tcpdump bpftool openssl; do command -v "$t" >/dev/null || die "missing $t"; done
[[ -n $AGENT ]] || AGENT=$REPO/build/agent/nodemesh-agent
[[ -x $AGENT ]] || die "no agent at $AGENT (--agent PATH)"
AGENT=$(cd "$(dirname "$AGENT")" && pwd)/$(basename "$AGENT")
[[ -n $MESHCTL ]] || MESHCTL=$(dirname "$(dirname "$AGENT")")/cli/meshctl
[[ -x $MESHCTL ]] || die "no meshctl at $MESHCTL (--meshctl PATH)"

# fds: the agent holds 2 per same-node connection (+ its own), the client and
# the servers 1 per connection. Every process started here inherits this.
NOFILE=$(ulimit -Hn)
[[ $NOFILE == unlimited ]] && NOFILE=20000
((NOFILE > 20000)) && NOFILE=20000
ulimit -n "$NOFILE"
((2 * N_LOCAL + 200 <= NOFILE)) || [[ " ${CASES[*]} " != *" local "* ]] ||
  die "--local $N_LOCAL needs $((2 * N_LOCAL + 200)) fds in the agent; nofile is $NOFILE"
((N_REMOTE + 400 <= NOFILE)) || die "--remote $N_REMOTE needs $((N_REMOTE + 400)) fds; nofile is $NOFILE"

CG_MOUNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG_MOUNT ]] || die "no cgroup2 mount"
CG_REL=/$NS_PREFIX
CG=$CG_MOUNT$CG_REL
[[ -e $CG ]] && die "$CG already exists (left over?)"
[[ -n $(ip netns list | awk -v p="^$NS_PREFIX-" '$1 ~ p') ]] && die "netns $NS_PREFIX-* exist (left over?)"
for n in A B; do [[ -e /sys/fs/bpf/$NS_PREFIX-$n ]] && die "/sys/fs/bpf/$NS_PREFIX-$n exists"; done

STAMP=$(date +%Y%m%d-%H%M%S)
[[ -n $OUT ]] || OUT=$REPO/bench/results/idle-conns-$STAMP.md
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d /tmp/nmidle.XXXXXX)

declare -A PIDS=()
NETNS_CREATED=()
CG_CREATED=()
T0=$(date +%s)

stop_pid() {
  local pid=$1
  [[ -n ${PIDS[$pid]:-} ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$pid]"
}
cleanup_pins() {
  local pin
  for pin in /sys/fs/bpf/$NS_PREFIX-A /sys/fs/bpf/$NS_PREFIX-B; do
    [[ -e $pin ]] && { "$AGENT" --cleanup --pin-root "$pin" >>"$WORK/agent-cleanup.log" 2>&1 || log "warning: cleanup of $pin failed"; }
  done
  return 0
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP PIPE
  set +e
  local pid d i ns
  for pid in "${!PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${!PIDS[@]}"; do stop_pid "$pid"; done
  cleanup_pins
  for ((i = ${#CG_CREATED[@]} - 1; i >= 0; i--)); do
    d=${CG_CREATED[$i]}
    [[ -f $d/cgroup.procs ]] || continue
    for pid in $(cat "$d/cgroup.procs"); do kill -KILL "$pid" 2>/dev/null; done
  done
  sleep 0.2
  for ns in "${NETNS_CREATED[@]}"; do ip netns del "$ns" 2>/dev/null; done
  for ((i = ${#CG_CREATED[@]} - 1; i >= 0; i--)); do
    d=${CG_CREATED[$i]}
    [[ -d $d ]] && { rmdir "$d" 2>/dev/null || log "warning: could not rmdir $d"; }
  done
  if ((rc == 0)); then rm -rf "$WORK"; else log "kept $WORK for inspection"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE
check_time() { (($(date +%s) - T0 < TIME_LIMIT)) || die "time limit of ${TIME_LIMIT}s exceeded"; }

mkcg() { mkdir "$1"; CG_CREATED+=("$1"); }
in_pod() {  # NETNS CGROUP_DIR CMD...: exec CMD in the netns and the cgroup
  local ns=$1 cg=$2; shift 2
  # shellcheck disable=SC2016
  local cmd=(nsenter --net="/run/netns/$ns" sh -c 'cg=$1; shift; echo $$ >"$cg/cgroup.procs" && exec "$@"' sh "$cg" "$@")
  if [[ $BASHPID != "$$" ]]; then exec "${cmd[@]}"; else "${cmd[@]}"; fi
}
nsx() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
listening() { [[ -n $(nsx "$1" ss -Hltn "sport = :$2" 2>/dev/null) ]]; }

# ---------------------------------------------------------------- setup
log "work dir $WORK; nofile $NOFILE"
g++ -std=c++20 -O2 -o "$WORK/idle_conns" "$HERE/idle_conns.cpp" || die "could not build idle_conns"
"$HERE/gen_certs.sh" "$WORK/pki" 1 cluster.local

for n in A B; do
  ip netns add "$NS_PREFIX-$n"; NETNS_CREATED+=("$NS_PREFIX-$n")
  ip -n "$NS_PREFIX-$n" link set lo up
  nsx "$NS_PREFIX-$n" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$NS_PREFIX-$n" link add br0 type bridge
  ip -n "$NS_PREFIX-$n" link set br0 up
done
ip -n "$NS_PREFIX-A" link add n0 type veth peer name n0 netns "$NS_PREFIX-B"
ip -n "$NS_PREFIX-A" addr add 10.77.0.1/30 dev n0
ip -n "$NS_PREFIX-B" addr add 10.77.0.2/30 dev n0
ip -n "$NS_PREFIX-A" link set n0 up
ip -n "$NS_PREFIX-B" link set n0 up
ip -n "$NS_PREFIX-A" addr add 10.81.0.1/24 dev br0
ip -n "$NS_PREFIX-B" addr add 10.82.0.1/24 dev br0
ip -n "$NS_PREFIX-A" route add 10.82.0.0/24 via 10.77.0.2
ip -n "$NS_PREFIX-B" route add 10.81.0.0/24 via 10.77.0.1
mkcg "$CG"; mkcg "$CG/A"; mkcg "$CG/B"; mkcg "$CG/mesh"; mkcg "$CG/mesh/agent-A"; mkcg "$CG/mesh/agent-B"
add_pod() {  # NODE POD IP GW
  local node=$1 pod=$2 ip=$3 gw=$4 ns=$NS_PREFIX-$2
  ip netns add "$ns"; NETNS_CREATED+=("$ns")
  ip -n "$NS_PREFIX-$node" link add "v$pod" type veth peer name eth0 netns "$ns"
  ip -n "$NS_PREFIX-$node" link set "v$pod" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$gw"
  mkcg "$CG/$node/$pod"
}
add_pod A a1 10.81.0.11 10.81.0.1
add_pod A a2 10.81.0.12 10.81.0.1
add_pod B b1 10.82.0.11 10.82.0.1

# Backends: bounded echo servers holding every connection.
for pod in a2 b1; do
  node=A; [[ $pod == b1 ]] && node=B
  in_pod "$NS_PREFIX-$pod" "$CG/$node/$pod" "$WORK/idle_conns" server --port 9000 --max 20000 --duration "$TIME_LIMIT" \
    >"$WORK/server-$pod.log" 2>&1 &
  PIDS[$!]="server $pod"
done
for pod in a2 b1; do
  for _ in $(seq 100); do listening "$NS_PREFIX-$pod" 9000 && break; sleep 0.05; done
  listening "$NS_PREFIX-$pod" 9000 || die "server in $pod did not start"
done

gen_config() {  # a|b
  local node=$1
  if [[ $node == a ]]; then
    cat <<EOF
node: {name: node-a, cgroup: $CG_REL/A, address: 10.77.0.1}
mesh:
  trustDomain: cluster.local
  ca: {certFile: $WORK/pki/ca.pem, keyFile: $WORK/pki/ca.key}
nodes:
  - {name: node-b, address: 10.77.0.2}
namespaces:
  - {name: bench, mesh: enabled, inbound: permissive}
workloads:
  - {cgroup: $CG_REL/A/a1, namespace: bench, serviceAccount: client-1, addresses: [10.81.0.11]}
  - {cgroup: $CG_REL/A/a2, namespace: bench, serviceAccount: server-local, addresses: [10.81.0.12]}
EOF
  else
    cat <<EOF
node: {name: node-b, cgroup: $CG_REL/B, address: 10.77.0.2}
mesh:
  trustDomain: cluster.local
  ca: {certFile: $WORK/pki/ca.pem, keyFile: $WORK/pki/ca.key}
nodes:
  - {name: node-a, address: 10.77.0.1}
namespaces:
  - {name: bench, mesh: enabled, inbound: permissive}
workloads:
  - {cgroup: $CG_REL/B/b1, namespace: bench, serviceAccount: server-remote, addresses: [10.82.0.11]}
EOF
  fi
  cat <<EOF
services:
  - name: idle-local
    namespace: bench
    vips: [10.96.0.11]
    ports: [{port: 80, targetPort: 9000}]
    mode: mtls
    endpoints:
      - {address: 10.81.0.12, node: node-a}
  - name: idle-remote
    namespace: bench
    vips: [10.96.0.12]
    ports: [{port: 80, targetPort: 9000}]
    mode: mtls
    endpoints:
      - {address: 10.82.0.11, node: node-b}
EOF
}
gen_config a >"$WORK/node-a.yaml"
gen_config b >"$WORK/node-b.yaml"
out=$("$AGENT" --check-config --config "$WORK/node-a.yaml" 2>&1) || die "agent refuses the config: $out"

AGENT_PID=()
agents_start() {
  local n
  AGENT_PID=()
  for n in A B; do
    rm -f "$WORK/admin-$n.sock"
    in_pod "$NS_PREFIX-$n" "$CG/mesh/agent-$n" "$AGENT" --config "$WORK/node-${n,,}.yaml" --pin-root "/sys/fs/bpf/$NS_PREFIX-$n" \
      --admin-socket "$WORK/admin-$n.sock" >>"$WORK/agent-$n.log" 2>&1 &
    PIDS[$!]="agent $n"; AGENT_PID+=("$!")
  done
  for _ in $(seq 200); do
    listening "$NS_PREFIX-A" 15001 && listening "$NS_PREFIX-A" 15008 && listening "$NS_PREFIX-B" 15008 && return 0
    sleep 0.05
  done
  tail -3 "$WORK"/agent-*.log >&2
  die "agents started, but no proxy listens on 15001/15008 after 10 s"
}
agents_stop() {
  local pid
  for pid in "${AGENT_PID[@]}"; do stop_pid "$pid"; done
  AGENT_PID=()
  cleanup_pins
  local d
  for d in "$CG/A" "$CG/B"; do
    [[ -z $(bpftool cgroup show "$d" 2>/dev/null) ]] || die "BPF programs still attached to $d after --cleanup"
  done
}

mem_of() {  # PID -> "rss_kb pss_kb fds"
  local pid=$1 rp
  rp=$(awk '$1 == "Rss:" { r = $2 } $1 == "Pss:" { p = $2 } END { print r + 0, p + 0 }' "/proc/$pid/smaps_rollup" 2>/dev/null || echo "0 0")
  echo "$rp $(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
}
counter() {  # NODE NAME -> value of a `meshctl node status` counter (0 if absent)
  timeout 5 "$MESHCTL" --socket "$WORK/admin-$1.sock" node status 2>/dev/null |
    awk -v k="$2" '$1 == k { print $2; f = 1; exit } END { if (!f) print 0 }'
}

client_run() {  # VIP COUNT STEPS LOG: in pod a1, in the background
  in_pod "$NS_PREFIX-a1" "$CG/A/a1" timeout -k 2 300 "$WORK/idle_conns" client --target "$1:80" --count "$2" \
    --steps "$3" --pause 3 --hold 3 >"$4" 2>&1 &
  CLIENT_PID=$!; PIDS[$CLIENT_PID]="client"
}

RESULTS=$WORK/results.tsv   # case step conns rssA pssA fdsA rssB pssB fdsB tunnelsA streamsA sockstatA
: >"$RESULTS"
measure() {  # CASE STEP CONNS
  local a b tun str ts
  a=$(mem_of "${AGENT_PID[0]}"); b=$(mem_of "${AGENT_PID[1]}")
  tun=$(counter A tunnels_opened); str=$(counter A tunnel_streams)
  # shellcheck disable=SC2016
  ts=$(nsx "$NS_PREFIX-A" awk '$1 == "TCP:" { print $3 }' /proc/net/sockstat)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${a// /$'\t'}" "${b// /$'\t'}" "$tun" "$str" "$ts" >>"$RESULTS"
  local n pid
  for n in 0 1; do  # where the memory is: the largest mappings by RSS, per agent
    pid=${AGENT_PID[$n]}
    { echo "## $1 step $2 ($3 conns), agent $([[ $n == 0 ]] && echo A || echo B): smaps_rollup, then the 6 largest mappings by Rss (kB)"
      grep -E '^(Rss|Pss|Anonymous|Private_Dirty|Shared_Clean|Private_Clean):' "/proc/$pid/smaps_rollup"
      awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) } $1 == "Rss:" { print $2, name }' "/proc/$pid/smaps" |
        sort -rn | head -6; } >>"$WORK/smaps.txt" 2>/dev/null || true
  done
  log "  $1 step $2: $3 conns | agent A RSS/PSS/fds $a | agent B $b | tunnels opened $tun, streams $str | TCP in use (node A) $ts"
}

run_case() {  # local|remote
  local c=$1 vip n
  check_time
  if [[ $c == local ]]; then vip=10.96.0.11; n=$N_LOCAL; else vip=10.96.0.12; n=$N_REMOTE; fi
  log "case $c: $n connections to $vip:80 from pod a1, $STEPS steps"
  agents_start
  # Smoke: one echoed connection (for remote: crossing node A's link inside HBONE).
  local cap=$WORK/smoke-$c.txt
  nsenter --net="/run/netns/$NS_PREFIX-A" timeout 10 tcpdump -i n0 -nn -l -c 100 tcp >"$cap" 2>"$cap.err" &
  local tpid=$!; PIDS[$tpid]=tcpdump
  for _ in $(seq 100); do grep -q 'listening on' "$cap.err" 2>/dev/null && break; sleep 0.05; done
  in_pod "$NS_PREFIX-a1" "$CG/A/a1" timeout 20 "$WORK/idle_conns" client --target "$vip:80" --count 1 --steps 1 --pause 0 --hold 0 \
    >"$WORK/smoke-$c-client.txt" 2>&1 || { cat "$WORK/smoke-$c-client.txt" >&2; die "$c: a smoke connection to $vip:80 from a1 was not echoed"; }
  sleep 0.3
  kill -INT "$tpid" 2>/dev/null || true; wait "$tpid" 2>/dev/null || true; unset "PIDS[$tpid]"
  grep -Eq '\.9000[ :]' "$cap" && die "$c: the smoke connection crossed node A's link in plaintext to :9000 (not captured)"
  if [[ $c == remote ]]; then grep -Eq '\.15008[ :]' "$cap" || die "remote: no HBONE (:15008) traffic on node A's link"; fi
  [[ $(counter A tunnel_streams) -ge 1 || $c == local ]] || die "remote: agent A counts no tunnel stream"
  sleep 1
  measure "$c" 0 0
  client_run "$vip" "$n" "$STEPS" "$WORK/client-$c.txt"
  local seen=0 line k conns
  while kill -0 "$CLIENT_PID" 2>/dev/null; do
    check_time
    k=$(grep -c '^step=' "$WORK/client-$c.txt" || true)
    if ((k > seen)); then
      seen=$k
      line=$(grep '^step=' "$WORK/client-$c.txt" | tail -1)
      [[ $line == *timeout* ]] && log "  $line"
      conns=$(sed -n 's/.* open=\([0-9]*\).*/\1/p' <<<"$line")
      sleep 1   # let the proxies settle (the last echoes, tunnel SETTINGS)
      measure "$c" "$seen" "$conns"
    fi
    sleep 0.1
  done
  wait "$CLIENT_PID" && CLIENT_RC=0 || CLIENT_RC=$?
  unset "PIDS[$CLIENT_PID]"
  log "  client: $(tail -2 "$WORK/client-$c.txt" | tr '\n' ' ') (exit $CLIENT_RC)"
  sleep 2
  measure "$c" closed 0
  timeout 5 "$MESHCTL" --socket "$WORK/admin-A.sock" node status >"$WORK/meshctl-$c-A.txt" 2>&1 || true
  timeout 5 "$MESHCTL" --socket "$WORK/admin-B.sock" node status >"$WORK/meshctl-$c-B.txt" 2>&1 || true
  agents_stop
  ((CLIENT_RC == 0)) || die "$c: the client did not hold every connection (see above)"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for c in "${CASES[@]}"; do run_case "$c"; done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
per_conn() {  # CASE COLUMN -> "delta_kb bytes_per_conn slope_bytes_per_conn" (step 0 -> last step; least squares over steps)
  awk -F'\t' -v c="$1" -v k="$2" '$1 == c && $2 != "closed" {
      x = $3; y = $k * 1024; n++; sx += x; sy += y; sxx += x * x; sxy += x * y
      if ($2 == 0) y0 = y; if (x >= xm) { xm = x; ym = y } }
    END { if (n < 2 || xm == 0) { print "nan nan nan"; exit }
      slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
      printf "%.0f %.0f %.0f\n", (ym - y0) / 1024, (ym - y0) / xm, slope }' "$RESULTS"
}
{
  echo "# Idle proxied connections through the nodemesh node proxy, $(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo
  echo "Command: \`bench/mesh/idle_conns.sh --agent $AGENT --local $N_LOCAL --remote $N_REMOTE --steps $STEPS --cases \"${CASES[*]}\"\`"
  echo
  echo "Machine: $(nproc) CPUs, kernel $(uname -r); load average $LOAD0 at the start, $LOAD1 at the end; nofile $NOFILE."
  echo "Client: pod a1 on node A opens the connections to the service VIP (captured to node A's proxy), one byte echoed end to end on each, then idle."
  echo "local: backend pod a2 on node A (the proxy holds 2 sockets per connection); remote: backend pod b1 on node B over HBONE (node A: 1 socket + 1 H2 stream per connection; node B: 1 H2 stream + 1 socket)."
  echo
  echo "| case | connections | agent | RSS before kB | RSS at N kB | Δ RSS bytes/conn | slope RSS bytes/conn | Δ PSS bytes/conn | fds at N | tunnels opened (node A) | RSS after close kB |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in "${CASES[@]}"; do
    for ag in A B; do
      if [[ $ag == A ]]; then kr=4 kp=5 kf=6; else kr=7 kp=8 kf=9; fi
      read -r _ br sr < <(per_conn "$c" $kr)
      read -r _ bp _ < <(per_conn "$c" $kp)
      awk -F'\t' -v c="$c" -v ag="$ag" -v kr=$kr -v kf=$kf -v br="$br" -v sr="$sr" -v bp="$bp" '
        $1 == c && $2 == 0 { r0 = $kr }
        $1 == c && $2 != "closed" && $3 >= n { n = $3; rn = $kr; fn = $kf; tun = $10 }
        $1 == c && $2 == "closed" { rc = $kr }
        END { printf "| %s | %d | %s | %d | %d | %s | %s | %s | %d | %s | %d |\n", c, n, ag, r0, rn, br, sr, bp, fn, tun, rc }' "$RESULTS"
    done
  done
  echo
  echo "All measurements (kB; step 0 = agents up, one smoke connection made and closed):"
  echo
  echo "| case | step | connections | A RSS | A PSS | A fds | B RSS | B PSS | B fds | tunnels opened (A) | tunnel streams (A, total) | TCP sockets in use (node A netns) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 }' "$RESULTS"
} >"$OUT"
{
  cat "$WORK/smaps.txt" 2>/dev/null
  for c in "${CASES[@]}"; do
    echo "## client output, $c"; cat "$WORK/client-$c.txt"
    for n in A B; do
      echo "## meshctl node status, node $n, after the $c case"
      cat "$WORK/meshctl-$c-$n.txt" 2>/dev/null
    done
  done
} >"${OUT%.md}-raw.txt"
cat "$OUT"
echo "results: $OUT (raw: ${OUT%.md}-raw.txt)"
