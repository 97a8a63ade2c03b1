#!/usr/bin/env bash
# Mesh benchmark: the sidecar model vs nodemesh on two simulated nodes.
#
# Topology (all of it created by this script, removed on exit):
#   node A (netns nmbm-A, 10.77.0.1) <-veth-> node B (netns nmbm-B, 10.77.0.2)
#   each node: a bridge; P pods per node, each its own netns + veth to the bridge
#   and its own cgroup (<cgroup2 mount>/nmbm/{A,B}/<pod>)
#   client pods a1..aP on node A (10.81.0.<10+i>), server pods b1..bP on node B
#   (10.82.0.<10+i>): nginx (1 worker, keep-alive, `return 200`) on :8080.
#   Service bench/web: VIP 10.96.0.10:80 -> the P server pods' :8080.
# Cases, in one run, rounds rotating their order:
#   nomesh    client pod i -> server pod i directly (the limit)
#   sidecar   one haproxy per pod (2P). Client pod: nat OUTPUT REDIRECT of
#             VIP:80 to its haproxy (127.0.0.1:15001), which balances over the
#             server pods and originates mTLS (TLS 1.3, the pod's own client
#             cert, server cert verified against the CA and its name). Server
#             pod: nat PREROUTING REDIRECT of :8080 to its haproxy (:15006),
#             which terminates mTLS (client cert required) and forwards to the
#             app on 127.0.0.1:8080. haproxy in TCP mode (L4, like nodemesh's
#             HBONE; an HTTP-aware sidecar would cost more).
#   nodemesh  one nodemesh-agent per node netns (config: gen_nodemesh_config.sh,
#             mode mtls, CA from the same test PKI). Reported as "not available
#             yet" when the agent refuses the config or no proxy listens.
# Load (generators run inside the client pods' netns and cgroups):
#   fixed rate  bench/mesh/fixed_rate.cpp, open loop: --rate req/s in total,
#               split over the P client pods, latency from the scheduled send
#               time (no coordinated omission); p50/p99 over all samples.
#   saturation  wrk -t1 in every client pod at once (--sat-conns connections
#               in total, at least 1 per pod); req/s summed.
# Mesh CPU: cpu.stat usage of the cgroups holding the mesh processes (one per
# sidecar, one per agent), divided by the requests served. Memory: RSS and PSS
# (/proc/<pid>/smaps_rollup) of all mesh processes after the saturation run.
#
# Usage: sudo bench/mesh/run.sh [--pods "1 10 50"] [--rate 500] [--repeat 3]
#          [--fixed-duration 8] [--sat-duration 6] [--warmup 2] [--sat-conns 32]
#          [--agent PATH] [--meshctl PATH] [--cases "nomesh sidecar nodemesh"]
#          [--latency-sched default|nice|fifo] [--quick] [--out FILE]
# --latency-sched (default fifo): during the fixed-rate phase only, run the
# case's processes (clients, the P nginx, the mesh processes, every thread) at
# SCHED_FIFO priority 1 (fifo) or nice -10 (nice), or leave them alone
# (default), so that on a machine shared with other work their wakeups are not
# queued behind it (on a 2-core machine at load 12+, that queueing alone is a
# multi-ms p99, whatever the mesh). Back to SCHED_OTHER nice 0 after the phase.
# The phase is light (500 req/s) and bounded; the saturation phase always runs
# at the default priority.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

PODS_LIST="1 10 50"
RATE=500
REPEAT=3
FIXED_DURATION=8
SAT_DURATION=6
WARMUP=2
SAT_CONNS=32
AGENT=
MESHCTL=
CASES_ARG="nomesh sidecar nodemesh"
OUT=
TD=cluster.local
VIP=10.96.0.10
NS_PREFIX=nmbm
TIME_LIMIT=1500   # seconds: the run aborts (and cleans up) past this
LAT_SCHED=fifo    # --latency-sched: scheduling of the case's processes during the fixed-rate phase

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while (($#)); do
  case $1 in
    --pods) PODS_LIST=${2:?}; shift 2 ;;
    --rate) RATE=${2:?}; shift 2 ;;
    --repeat) REPEAT=${2:?}; shift 2 ;;
    --fixed-duration) FIXED_DURATION=${2:?}; shift 2 ;;
    --sat-duration) SAT_DURATION=${2:?}; shift 2 ;;
    --warmup) WARMUP=${2:?}; shift 2 ;;
    --sat-conns) SAT_CONNS=${2:?}; shift 2 ;;
    --latency-sched) LAT_SCHED=${2:?}; shift 2 ;;
    --agent) AGENT=${2:?}; shift 2 ;;
    --meshctl) MESHCTL=${2:?}; shift 2 ;;
    --cases) CASES_ARG=${2:?}; shift 2 ;;
    --quick) PODS_LIST="1 10"; REPEAT=1; FIXED_DURATION=3; SAT_DURATION=3; WARMUP=1; shift ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$RATE" "$REPEAT" "$FIXED_DURATION" "$SAT_DURATION" "$WARMUP" "$SAT_CONNS"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "numeric options take non-negative integers" >&2; exit 2; }
done
read -r -a PODS <<<"$PODS_LIST"
read -r -a CASES <<<"$CASES_ARG"
P_MAX=0
for p in "${PODS[@]}"; do
  [[ $p =~ ^[1-9][0-9]*$ ]] && ((p <= 100)) || { echo "--pods: 1..100 each" >&2; exit 2; }
  ((p > P_MAX)) && P_MAX=$p
done
for c in "${CASES[@]}"; do
  [[ $c == nomesh || $c == sidecar || $c == nodemesh ]] || { echo "--cases: nomesh sidecar nodemesh" >&2; exit 2; }
done
[[ $LAT_SCHED == default || $LAT_SCHED == nice || $LAT_SCHED == fifo ]] || { echo "--latency-sched: default, nice or fifo" >&2; exit 2; }
((RATE >= 1 && REPEAT >= 1 && FIXED_DURATION >= 1 && SAT_DURATION >= 1 && SAT_CONNS >= 1)) ||
  { echo "--rate, --repeat, durations and --sat-conns must be >= 1" >&2; exit 2; }

die() { echo "run.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ $EUID -eq 0 ]] || die "needs root (netns, iptables, cgroups): sudo $0"
for t in ip iptables iptables-restore nsenter haproxy nginx wrk openssl g++ ss timeout awk curl tcpdump bpftool chrt; do
  command -v "$t" >/dev/null || die "missing $t (scripts/install-deps.sh installs it)"
done
if [[ -z $AGENT && -x $REPO/build/agent/nodemesh-agent ]]; then AGENT=$REPO/build/agent/nodemesh-agent; fi
if [[ -n $AGENT ]]; then
  [[ -x $AGENT ]] || die "--agent $AGENT is not executable"
  AGENT=$(cd "$(dirname "$AGENT")" && pwd)/$(basename "$AGENT")
  [[ -n $MESHCTL ]] || MESHCTL=$(dirname "$(dirname "$AGENT")")/cli/meshctl
fi

CG_MOUNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG_MOUNT ]] || die "no cgroup2 mount in /proc/mounts"
CG_REL=/$NS_PREFIX
CG=$CG_MOUNT$CG_REL
[[ -e $CG ]] && die "$CG already exists (left over?); remove it first"
[[ -n $(ip netns list | awk -v p="^$NS_PREFIX-" '$1 ~ p') ]] && die "netns $NS_PREFIX-* already exist (left over?): ip netns list"
for n in A B; do
  [[ -e /sys/fs/bpf/$NS_PREFIX-$n ]] && die "/sys/fs/bpf/$NS_PREFIX-$n exists; run: nodemesh-agent --cleanup --pin-root /sys/fs/bpf/$NS_PREFIX-$n"
done

STAMP=$(date +%Y%m%d-%H%M%S)
[[ -n $OUT ]] || OUT=$REPO/bench/results/mesh-$STAMP.md
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d /tmp/nmbmesh.XXXXXX)
RAW=$WORK/raw
mkdir -p "$RAW"

# ---------------------------------------------------------------- bookkeeping
declare -A PIDS=()       # pid -> what: every long-running process we started
NETNS_CREATED=()
CG_CREATED=()            # cgroup dirs, in creation order
AGENT_PINS=()            # pin roots an agent may have created
T0=$(date +%s)

stop_pid() {  # PID: TERM, wait up to 3 s, KILL
  local pid=$1
  [[ -n ${PIDS[$pid]:-} ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$pid]"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP PIPE
  set +e
  local pid
  for pid in "${!PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${!PIDS[@]}"; do stop_pid "$pid"; done
  local pin
  for pin in "${AGENT_PINS[@]}"; do
    [[ -e $pin ]] && { "$AGENT" --cleanup --pin-root "$pin" >>"$WORK/agent-cleanup.log" 2>&1 || log "warning: agent --cleanup --pin-root $pin failed"; }
  done
  # Anything of ours still inside our cgroups (a load generator child): by PID.
  local d i
  for ((i = ${#CG_CREATED[@]} - 1; i >= 0; i--)); do
    d=${CG_CREATED[$i]}
    [[ -f $d/cgroup.procs ]] || continue
    for pid in $(cat "$d/cgroup.procs"); do kill -KILL "$pid" 2>/dev/null; done
  done
  sleep 0.2
  local ns
  for ns in "${NETNS_CREATED[@]}"; do ip netns del "$ns" 2>/dev/null; done
  for ((i = ${#CG_CREATED[@]} - 1; i >= 0; i--)); do
    d=${CG_CREATED[$i]}
    [[ -d $d ]] && { rmdir "$d" 2>/dev/null || log "warning: could not rmdir $d"; }
  done
  if ((rc == 0 || rc == 130 || rc == 143 || rc == 129 || rc == 141)); then rm -rf "$WORK"; else log "kept $WORK for inspection"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE   # e.g. `run.sh | head`: still clean up

check_time() { (($(date +%s) - T0 < TIME_LIMIT)) || die "time limit of ${TIME_LIMIT}s exceeded; stopping"; }

mkcg() { mkdir "$1"; CG_CREATED+=("$1"); }

# in_pod NETNS CGROUP_DIR CMD... : exec CMD in the netns and the cgroup (same PID).
in_pod() {
  local ns=$1 cg=$2; shift 2
  # shellcheck disable=SC2016  # $$, $1, $@ belong to the inner sh
  local cmd=(nsenter --net="/run/netns/$ns" sh -c 'cg=$1; shift; echo $$ >"$cg/cgroup.procs" && exec "$@"' sh "$cg" "$@")
  # Run in the background (`in_pod ... &`), the function is a subshell: exec,
  # so that $! is the PID of the command itself (and stopping it stops it).
  if [[ $BASHPID != "$$" ]]; then exec "${cmd[@]}"; else "${cmd[@]}"; fi
}
nsx() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

listening() {  # NETNS PORT -> 0 if something listens on PORT in NETNS
  [[ -n $(nsx "$1" ss -Hltn "sport = :$2" 2>/dev/null) ]]
}

# ---------------------------------------------------------------- topology
pod_ip() { if [[ $1 == a ]]; then echo "10.81.0.$((10 + $2))"; else echo "10.82.0.$((10 + $2))"; fi; }

build_topology() {
  log "topology: 2 nodes, $P_MAX pods per node"
  local n
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

  mkcg "$CG"; mkcg "$CG/A"; mkcg "$CG/B"; mkcg "$CG/mesh"
  local side i ns node gw
  for side in a b; do
    if [[ $side == a ]]; then node=A gw=10.81.0.1; else node=B gw=10.82.0.1; fi
    for ((i = 1; i <= P_MAX; i++)); do
      ns=$NS_PREFIX-$side$i
      ip netns add "$ns"; NETNS_CREATED+=("$ns")
      ip -n "$NS_PREFIX-$node" link add "v$side$i" type veth peer name eth0 netns "$ns"
      ip -n "$NS_PREFIX-$node" link set "v$side$i" master br0 up
      ip -n "$ns" link set lo up
      ip -n "$ns" addr add "$(pod_ip "$side" "$i")/24" dev eth0
      ip -n "$ns" link set eth0 up
      ip -n "$ns" route add default via "$gw"
      mkcg "$CG/$node/$side$i"
    done
  done
}

# ---------------------------------------------------------------- apps
NGINX_PIDS=()
start_apps() {
  log "apps: nginx in $P_MAX server pods"
  local i d ns
  for ((i = 1; i <= P_MAX; i++)); do
    d=$WORK/app/b$i; ns=$NS_PREFIX-b$i
    mkdir -p "$d/logs" "$d/tmp"
    cat >"$d/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 4096;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 2048; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
    listen 0.0.0.0:8080;
    location / { return 200 "ok\n"; }
  }
}
EOF
    in_pod "$ns" "$CG/B/b$i" nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" >"$d/stdout.log" 2>&1 &
    PIDS[$!]="nginx b$i"; NGINX_PIDS[i]=$!
  done
  for ((i = 1; i <= P_MAX; i++)); do
    for _ in $(seq 100); do listening "$NS_PREFIX-b$i" 8080 && break; sleep 0.05; done
    listening "$NS_PREFIX-b$i" 8080 || { cat "$WORK/app/b$i/logs/error.log" >&2; die "nginx in b$i did not start"; }
  done
  # One request per pod, from its client pod, proves the routing both ways.
  for ((i = 1; i <= P_MAX; i++)); do
    [[ $(nsx "$NS_PREFIX-a$i" curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$(pod_ip b "$i"):8080/") == 200 ]] ||
      die "a$i cannot reach b$i:8080"
  done
}

# ---------------------------------------------------------------- mesh: sidecar
MESH_PIDS=()
MESH_CGS=()
SIDECAR_VERSION=$(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }')

sidecar_rules() {  # install|remove P
  local what=$1 p=$2 i
  for ((i = 1; i <= p; i++)); do
    if [[ $what == install ]]; then
      printf '*nat\n-A OUTPUT -p tcp -d %s/32 --dport 80 -j REDIRECT --to-ports 15001\nCOMMIT\n' "$VIP" |
        nsx "$NS_PREFIX-a$i" iptables-restore --noflush
      printf '*nat\n-A PREROUTING -p tcp --dport 8080 -j REDIRECT --to-ports 15006\nCOMMIT\n' |
        nsx "$NS_PREFIX-b$i" iptables-restore --noflush
    else
      # Flush, then delete the base chains too: while a nat chain exists,
      # conntrack tracks every connection in that netns, which would tax the
      # other cases run after this one.
      nsx "$NS_PREFIX-a$i" iptables -t nat -F
      nsx "$NS_PREFIX-a$i" iptables -t nat -X OUTPUT 2>/dev/null || true
      nsx "$NS_PREFIX-b$i" iptables -t nat -F
      nsx "$NS_PREFIX-b$i" iptables -t nat -X PREROUTING 2>/dev/null || true
    fi
  done
}

sidecar_start() {  # P
  local p=$1 i j d servers
  servers=""
  for ((j = 1; j <= p; j++)); do
    servers+="  server b$j $(pod_ip b "$j"):8080 ssl verify required ca-file $WORK/pki/ca.pem crt @CRT@ verifyhost b$j.bench.svc ssl-min-ver TLSv1.3"$'\n'
  done
  for ((i = 1; i <= p; i++)); do
    d=$WORK/sidecar; mkdir -p "$d"
    # client pod's sidecar (outbound)
    cat >"$d/a$i.cfg" <<EOF
global
  nbthread 1
  maxconn 512
  ssl-server-verify required
defaults
  mode tcp
  timeout connect 3s
  timeout client 60s
  timeout server 60s
frontend outbound
  bind 127.0.0.1:15001
  default_backend bench-web
backend bench-web
  balance roundrobin
${servers//@CRT@/$WORK/pki/a$i.pem}
EOF
    # server pod's sidecar (inbound)
    cat >"$d/b$i.cfg" <<EOF
global
  nbthread 1
  maxconn 512
defaults
  mode tcp
  timeout connect 3s
  timeout client 60s
  timeout server 60s
frontend inbound
  bind 0.0.0.0:15006 ssl crt $WORK/pki/b$i.pem ca-file $WORK/pki/ca.pem verify required ssl-min-ver TLSv1.3
  default_backend app
backend app
  server app 127.0.0.1:8080
EOF
    local side node
    for side in a b; do
      [[ $side == a ]] && node=A || node=B
      mkdir -p "$CG/$node/$side$i/sidecar"
      [[ " ${CG_CREATED[*]} " == *" $CG/$node/$side$i/sidecar "* ]] || CG_CREATED+=("$CG/$node/$side$i/sidecar")
      in_pod "$NS_PREFIX-$side$i" "$CG/$node/$side$i/sidecar" haproxy -db -q -f "$d/$side$i.cfg" >"$d/$side$i.log" 2>&1 &
      PIDS[$!]="haproxy $side$i"; MESH_PIDS+=("$!"); MESH_CGS+=("$CG/$node/$side$i/sidecar")
    done
  done
  for ((i = 1; i <= p; i++)); do
    for _ in $(seq 200); do listening "$NS_PREFIX-a$i" 15001 && listening "$NS_PREFIX-b$i" 15006 && break; sleep 0.05; done
    listening "$NS_PREFIX-a$i" 15001 && listening "$NS_PREFIX-b$i" 15006 ||
      { cat "$d/a$i.log" "$d/b$i.log" >&2; die "sidecars of pod $i did not start"; }
  done
  sidecar_rules install "$p"
}

sidecar_stop() {  # P
  local pid
  for pid in "${MESH_PIDS[@]}"; do stop_pid "$pid"; done
  sidecar_rules remove "$1"
  MESH_PIDS=(); MESH_CGS=()
}

# ---------------------------------------------------------------- mesh: nodemesh
NODEMESH_NA=""   # non-empty: why the nodemesh case cannot run

nodemesh_probe() {  # sets NODEMESH_NA once, before the rounds
  if [[ -z $AGENT ]]; then NODEMESH_NA="no agent binary (pass --agent PATH)"; return; fi
  local cfg=$WORK/nodemesh-probe.yaml out
  "$HERE/gen_nodemesh_config.sh" a 1 "$CG_REL" "$WORK/pki/ca.pem" "$WORK/pki/ca.key" >"$cfg"
  if ! out=$("$AGENT" --check-config --config "$cfg" 2>&1); then
    NODEMESH_NA="agent refuses the mesh config: $(echo "$out" | awk 'NF { print; exit }' | sed "s|$WORK/||")"
  fi
}

nodemesh_start() {  # P -> 0 started, 1 not available (NODEMESH_RUN_NA says why)
  local p=$1 n node_ns cfg
  NODEMESH_RUN_NA=""
  for n in a b; do
    local N=${n^^}
    node_ns=$NS_PREFIX-$N
    cfg=$WORK/nodemesh-$n-$p.yaml
    "$HERE/gen_nodemesh_config.sh" "$n" "$p" "$CG_REL" "$WORK/pki/ca.pem" "$WORK/pki/ca.key" >"$cfg"
    mkdir -p "$CG/mesh/agent-$N"
    [[ " ${CG_CREATED[*]} " == *" $CG/mesh/agent-$N "* ]] || CG_CREATED+=("$CG/mesh/agent-$N")
    AGENT_PINS+=("/sys/fs/bpf/$NS_PREFIX-$N")
    rm -f "$WORK/admin-$N.sock"
    in_pod "$node_ns" "$CG/mesh/agent-$N" "$AGENT" --config "$cfg" --pin-root "/sys/fs/bpf/$NS_PREFIX-$N" \
      --admin-socket "$WORK/admin-$N.sock" >>"$WORK/agent-$N.log" 2>&1 &
    PIDS[$!]="agent $N"; MESH_PIDS+=("$!"); MESH_CGS+=("$CG/mesh/agent-$N")
  done
  # Ready = both agents alive and both proxies listening (outbound 15001, HBONE 15008).
  local ok=0 pid
  for _ in $(seq 200); do
    for pid in "${MESH_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || { NODEMESH_RUN_NA="agent exited: $(tail -1 "$WORK"/agent-*.log)"; break 2; }; done
    if listening "$NS_PREFIX-A" 15001 && listening "$NS_PREFIX-A" 15008 && listening "$NS_PREFIX-B" 15008; then ok=1; break; fi
    sleep 0.05
  done
  if ((!ok)); then
    [[ -n $NODEMESH_RUN_NA ]] || NODEMESH_RUN_NA="agents started, but no proxy listens on 15001/15008 after 10 s"
    nodemesh_stop
    return 1
  fi
  # Smoke: one request to the VIP from client pod 1, bounded, while tcpdump
  # watches the node link. It must get a 200 *and* cross the link inside the
  # HBONE tunnel (:15008), not as plaintext to the pod's :8080 (which is what
  # the socket-LB alone does when the capture is not in effect).
  local cap=$WORK/smoke-capture.txt code
  nsenter --net="/run/netns/$NS_PREFIX-A" timeout 10 tcpdump -i n0 -nn -l -c 200 tcp >"$cap" 2>"$cap.err" &
  local tpid=$!
  PIDS[$tpid]="tcpdump"
  for _ in $(seq 100); do grep -q 'listening on' "$cap.err" 2>/dev/null && break; sleep 0.05; done
  code=$(in_pod "$NS_PREFIX-a1" "$CG/A/a1" curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$VIP/" || true)
  sleep 0.3
  kill -INT "$tpid" 2>/dev/null || true
  wait "$tpid" 2>/dev/null || true
  unset "PIDS[$tpid]"
  if [[ $code != 200 ]]; then
    NODEMESH_RUN_NA="proxies listen, but a request to the VIP from pod a1 got no HTTP 200"
  elif grep -Eq '\.8080[ :]' "$cap"; then
    NODEMESH_RUN_NA="a request to the VIP from pod a1 crossed the node link as plaintext to the pod's :8080, not through the HBONE tunnel (:15008): the capture to the node proxy is not in effect (socket-LB only)"
  elif ! grep -Eq '\.15008[ :]' "$cap"; then
    NODEMESH_RUN_NA="a request to the VIP from pod a1 got its 200, but tcpdump saw no HBONE (:15008) traffic on the node link"
  fi
  if [[ -n $NODEMESH_RUN_NA ]]; then
    cp "$cap" "$RAW/nodemesh-smoke-capture.txt" 2>/dev/null || true
    nodemesh_stop
    return 1
  fi
  return 0
}

nodemesh_status() {  # TAG: both agents' `meshctl node status` (proxy counters) into the raw output
  local n
  [[ -x $MESHCTL ]] || return 0
  for n in A B; do
    timeout 5 "$MESHCTL" --socket "$WORK/admin-$n.sock" node status >"$RAW/$1-meshctl-$n.txt" 2>&1 || true
  done
}

nodemesh_stop() {
  local pid pin
  for pid in "${MESH_PIDS[@]}"; do stop_pid "$pid"; done
  for pin in /sys/fs/bpf/$NS_PREFIX-A /sys/fs/bpf/$NS_PREFIX-B; do
    [[ -e $pin ]] && { "$AGENT" --cleanup --pin-root "$pin" >>"$WORK/agent-cleanup.log" 2>&1 || log "warning: cleanup of $pin failed"; }
  done
  MESH_PIDS=(); MESH_CGS=()
  # The agent leaves its datapath pinned on SIGTERM (by design); --cleanup must
  # have detached it, or the next case would still be load-balanced by it.
  local d
  for d in "$CG/A" "$CG/B"; do
    [[ -z $(bpftool cgroup show "$d" 2>/dev/null) ]] || die "BPF programs still attached to $d after nodemesh-agent --cleanup"
  done
}

# ---------------------------------------------------------------- measuring
mesh_cpu_usec() {  # sum of cpu.stat usage_usec over the mesh cgroups
  local s=0 d v
  for d in "${MESH_CGS[@]}"; do
    v=$(awk '$1 == "usage_usec" { print $2 }' "$d/cpu.stat")
    s=$((s + v))
  done
  echo "$s"
}
mesh_mem_kb() {  # -> "rss_kb pss_kb" summed over the mesh processes
  local r=0 p=0 pid a b
  for pid in "${MESH_PIDS[@]}"; do
    read -r a b < <(awk '$1 == "Rss:" { r = $2 } $1 == "Pss:" { p = $2 } END { print r + 0, p + 0 }' "/proc/$pid/smaps_rollup" 2>/dev/null || echo "0 0")
    r=$((r + a)); p=$((p + b))
  done
  echo "$r $p"
}
target_of() {  # CASE POD_INDEX -> IP:PORT the client pod dials
  if [[ $1 == nomesh ]]; then echo "$(pod_ip b "$2"):8080"; else echo "$VIP:80"; fi
}
pctl() {  # PERCENT < sorted numbers
  awk -v p="$1" '{ a[NR] = $1 } END { if (!NR) { print "nan"; exit } i = int(p / 100 * NR); if (i < p / 100 * NR) i++; if (i < 1) i = 1; print a[i] }'
}
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "nan" }'
}

sched_tasks() {  # default|nice|fifo PID...: every thread of each PID (both calls are per thread)
  local mode=$1 pid t tid; shift
  [[ $LAT_SCHED == default ]] && return 0
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*; do
      [[ -d $t ]] || continue
      tid=${t##*/}
      case $mode in
        default) chrt --other -p 0 "$tid" >/dev/null 2>&1; renice -n 0 -p "$tid" >/dev/null 2>&1 ;;
        nice) renice -n -10 -p "$tid" >/dev/null 2>&1 ;;
        fifo) chrt --fifo -p 1 "$tid" >/dev/null 2>&1 ;;
      esac
    done
  done
  return 0
}

# phase_fixed CASE P TAG -> sets FR_P50 FR_P90 FR_P99 FR_P999 FR_RATE FR_DONE FR_ERR FR_CPU_US; 1 on failure
phase_fixed() {
  local c=$1 p=$2 tag=$3 i pids=() rate conns cpu0 schedcmd=()
  case $LAT_SCHED in
    nice) schedcmd=(nice -n -10) ;;
    fifo) schedcmd=(chrt --fifo 1) ;;
  esac
  sched_tasks "$LAT_SCHED" "${MESH_PIDS[@]}" "${NGINX_PIDS[@]:1:$p}"
  rate=$(awk -v r="$RATE" -v p="$p" 'BEGIN { printf "%.3f", r / p }')
  conns=$((16 / p)); ((conns < 2)) && conns=2
  cpu0=$(mesh_cpu_usec)
  for ((i = 1; i <= p; i++)); do
    in_pod "$NS_PREFIX-a$i" "$CG/A/a$i" "${schedcmd[@]}" timeout -k 2 $((WARMUP + FIXED_DURATION + 20)) "$WORK/fixed_rate" \
      --target "$(target_of "$c" "$i")" --rate "$rate" --duration "$FIXED_DURATION" --warmup "$WARMUP" \
      --connections "$conns" --latencies "$RAW/$tag-fixed-a$i.lat" >"$RAW/$tag-fixed-a$i.txt" 2>&1 &
    pids+=("$!")
  done
  local bad=0
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || bad=1; done
  FR_CPU_US=$(($(mesh_cpu_usec) - cpu0))
  sched_tasks default "${MESH_PIDS[@]}" "${NGINX_PIDS[@]:1:$p}"
  if ((bad)); then log "  fixed-rate client failed: $(cat "$RAW/$tag"-fixed-a*.txt | awk '!/^sent=/ && n++ < 3')"; return 1; fi
  cat "$RAW/$tag"-fixed-a*.lat | sort -n >"$RAW/$tag-fixed.lat"
  FR_P50=$(pctl 50 <"$RAW/$tag-fixed.lat"); FR_P90=$(pctl 90 <"$RAW/$tag-fixed.lat"); FR_P99=$(pctl 99 <"$RAW/$tag-fixed.lat"); FR_P999=$(pctl 99.9 <"$RAW/$tag-fixed.lat")
  FR_N=$(wc -l <"$RAW/$tag-fixed.lat")
  FR_RATE=$(awk -v n="$FR_N" -v d="$FIXED_DURATION" 'BEGIN { printf "%.0f", n / d }')
  FR_DONE=$(cat "$RAW/$tag"-fixed-a*.txt | sed -n 's/.*done=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
  FR_ERR=$(cat "$RAW/$tag"-fixed-a*.txt | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "errors" || kv[1] == "non2xx" || kv[1] == "late") s += kv[2] } } END { print s + 0 }')
  return 0
}

# phase_sat CASE P TAG -> sets SAT_RPS SAT_REQS SAT_ERR SAT_CPU_US; 1 on failure
phase_sat() {
  local c=$1 p=$2 tag=$3 i pids=() conns cpu0 kind dur
  conns=$(((SAT_CONNS + p - 1) / p))
  for kind in warmup measured; do
    [[ $kind == warmup ]] && dur=$WARMUP || dur=$SAT_DURATION
    ((dur > 0)) || continue
    pids=()
    cpu0=$(mesh_cpu_usec)
    for ((i = 1; i <= p; i++)); do
      in_pod "$NS_PREFIX-a$i" "$CG/A/a$i" timeout -k 2 $((dur + 20)) \
        wrk -t1 "-c$conns" "-d${dur}s" "http://$(target_of "$c" "$i")/" >"$RAW/$tag-sat-$kind-a$i.txt" 2>&1 &
      pids+=("$!")
    done
    local bad=0
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || bad=1; done
    SAT_CPU_US=$(($(mesh_cpu_usec) - cpu0))
    ((bad)) && { log "  wrk failed: $(head -5 "$RAW/$tag-sat-$kind-a1.txt")"; return 1; }
  done
  SAT_RPS=$(cat "$RAW/$tag"-sat-measured-a*.txt | awk '/^Requests\/sec:/ { s += $2 } END { printf "%.0f", s }')
  SAT_REQS=$(cat "$RAW/$tag"-sat-measured-a*.txt | awk '/ requests in / { s += $1 } END { print s + 0 }')
  SAT_ERR=$(cat "$RAW/$tag"-sat-measured-a*.txt | awk '/Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i } /Non-2xx or 3xx/ { s += $NF } END { print s + 0 }')
  return 0
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
# columns: P case round status fr_p50_us fr_p99_us fr_p999_us fr_rate fr_err sat_rps sat_err
#          cpu_fixed_s_per_1k cpu_sat_s_per_1k rss_kb pss_kb rss_idle_kb load note

run_case() {  # CASE P ROUND
  local c=$1 p=$2 r=$3 tag="p$2-$1-r$3" load rss_idle rss pss note=""
  check_time
  load=$(cut -d' ' -f1 /proc/loadavg)
  MESH_PIDS=(); MESH_CGS=()
  case $c in
    nomesh) ;;
    sidecar) sidecar_start "$p" ;;
    nodemesh)
      if [[ -n $NODEMESH_NA ]]; then
        printf '%s\t%s\t%s\tn/a\t\t\t\t\t\t\t\t\t\t\t\t\t%s\t%s\n' "$p" "$c" "$r" "$load" "$NODEMESH_NA" >>"$RESULTS"
        return 0
      fi
      if ! nodemesh_start "$p"; then
        log "  nodemesh P=$p round $r: not available: $NODEMESH_RUN_NA"
        # It will not appear within this run: skip the remaining attempts.
        NODEMESH_NA=$NODEMESH_RUN_NA
        printf '%s\t%s\t%s\tn/a\t\t\t\t\t\t\t\t\t\t\t\t\t%s\t%s\n' "$p" "$c" "$r" "$load" "$NODEMESH_RUN_NA" >>"$RESULTS"
        return 0
      fi ;;
  esac
  read -r rss_idle _ < <(mesh_mem_kb)
  local ok=1
  phase_fixed "$c" "$p" "$tag" || ok=0
  ((ok)) && { phase_sat "$c" "$p" "$tag" || ok=0; }
  read -r rss pss < <(mesh_mem_kb)
  case $c in
    sidecar) sidecar_stop "$p" ;;
    nodemesh) nodemesh_status "$tag"; nodemesh_stop ;;
  esac
  if ((!ok)); then
    [[ $c == nodemesh ]] || die "$c P=$p round $r failed (see $RAW/$tag-*)"
    note="load failed through the agents (see raw output)"
    printf '%s\t%s\t%s\tn/a\t\t\t\t\t\t\t\t\t\t\t\t\t%s\t%s\n' "$p" "$c" "$r" "$load" "$note" >>"$RESULTS"
    return 0
  fi
  local cpu_fr cpu_sat
  cpu_fr=$(awk -v u="$FR_CPU_US" -v n="$FR_DONE" 'BEGIN { if (n > 0) printf "%.4f", u / 1e6 / (n / 1000); else print "nan" }')
  cpu_sat=$(awk -v u="$SAT_CPU_US" -v n="$SAT_REQS" 'BEGIN { if (n > 0) printf "%.4f", u / 1e6 / (n / 1000); else print "nan" }')
  [[ $c == nomesh ]] && { cpu_fr=-; cpu_sat=-; rss=-; pss=-; rss_idle=-; }
  printf '%s\t%s\t%s\tok\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$c" "$r" \
    "$FR_P50" "$FR_P99" "$FR_P999" "$FR_RATE" "$FR_ERR" "$SAT_RPS" "$SAT_ERR" "$cpu_fr" "$cpu_sat" \
    "$rss" "$pss" "$rss_idle" "$load" "$note" "$FR_P90" >>"$RESULTS"
  log "  $c P=$p r$r: fixed ${FR_RATE}/s p50 ${FR_P50}us p99 ${FR_P99}us err $FR_ERR | sat $SAT_RPS req/s err $SAT_ERR | mesh CPU s/1k fixed $cpu_fr sat $cpu_sat | mesh RSS ${rss} kB PSS ${pss} kB | load $load"
}

# ---------------------------------------------------------------- run
ulimit -n 8192
log "work dir $WORK"
g++ -std=c++20 -O2 -o "$WORK/fixed_rate" "$HERE/fixed_rate.cpp" || die "could not build fixed_rate"
log "test PKI: CA + $((2 * P_MAX)) pod certificates (ECDSA P-256)"
"$HERE/gen_certs.sh" "$WORK/pki" "$P_MAX" "$TD"
build_topology
start_apps
nodemesh_probe
[[ -n $NODEMESH_NA ]] && log "nodemesh: not available yet: $NODEMESH_NA"
log "cases: ${CASES[*]}; pods per node: ${PODS[*]}; $REPEAT rounds; fixed rate $RATE req/s (${WARMUP}s warm-up + ${FIXED_DURATION}s), saturation ${SAT_DURATION}s (+${WARMUP}s warm-up), $SAT_CONNS connections in total"
T_START=$(date +%s)
NC=${#CASES[@]}
for p in "${PODS[@]}"; do
  for ((r = 1; r <= REPEAT; r++)); do
    log "=== $p pods per node, round $r of $REPEAT"
    for ((k = 0; k < NC; k++)); do
      run_case "${CASES[$(((k + r - 1) % NC))]}" "$p" "$r"
    done
  done
done
TOTAL_S=$(($(date +%s) - T_START))

# ---------------------------------------------------------------- report
# Medians over the rounds with status ok.
med() {  # P CASE COLUMN
  awk -F'\t' -v p="$1" -v c="$2" -v k="$3" '$1 == p && $2 == c && $4 == "ok" && $k != "" && $k != "-" { print $k }' "$RESULTS" |
    sort -g | awk '{ a[NR] = $1 } END { if (!NR) { print "nan"; exit } if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
fmt() { awk -v v="$1" -v d="$2" -v s="${3:-1}" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf "%." d "f", v / s }'; }
sub_() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan") print "nan"; else print a - b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "n/a"; else printf "%.3f", a / b }'; }
na_reason() {  # P CASE -> reason when no round of it ran
  awk -F'\t' -v p="$1" -v c="$2" '$1 == p && $2 == c && $4 != "ok" { print $18; exit }' "$RESULTS"
}

{
  echo "# Mesh benchmark: sidecar model vs nodemesh, $(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo
  echo "Command: \`bench/mesh/run.sh --pods \"${PODS[*]}\" --rate $RATE --repeat $REPEAT --fixed-duration $FIXED_DURATION" \
    "--sat-duration $SAT_DURATION --warmup $WARMUP --sat-conns $SAT_CONNS$([[ $LAT_SCHED == fifo ]] || echo " --latency-sched $LAT_SCHED")${AGENT:+ --agent $AGENT}\` (measuring took ${TOTAL_S}s)"
  echo
  echo "Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r);" \
    "haproxy $SIDECAR_VERSION, $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }'), $(openssl version | awk '{ print $1, $2 }')." \
    "1-min load average at the start of each case run: $(awk -F'\t' '{ print $17 }' "$RESULTS" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }')."
  echo
  echo "Two node netns joined by a veth; P client pods on node A, P server pods (nginx, 1 worker) on node B," \
    "each pod its own netns + cgroup. Fixed rate: open-loop \`fixed_rate\` client, $RATE req/s in total over the P client pods" \
    "(latency from the scheduled send time; during that phase the case's processes run with --latency-sched $LAT_SCHED, see run.sh --help). Saturation: \`wrk -t1\` in every client pod, $SAT_CONNS connections in total (at least 1 per pod)." \
    "Mesh CPU = cpu.stat usage of the mesh processes' cgroups / requests served. Memory = RSS / PSS of all mesh processes after the saturation run;" \
    "per pod = total / 2P (P client + P server pods). Medians of $REPEAT rounds; case order rotates each round."
  echo
  [[ -n $NODEMESH_NA ]] && { echo "**nodemesh: not available yet** — $NODEMESH_NA"; echo; }
  echo "| pods/node | case | p50 ms | p90 ms | p99 ms | added p50 ms | added p90 ms | added p99 ms | max req/s | mesh CPU s/1k req (fixed rate) | mesh CPU s/1k req (saturation) | mesh RSS MB total | RSS MB per pod | PSS MB per pod |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for p in "${PODS[@]}"; do
    n50=$(med "$p" nomesh 5); n90=$(med "$p" nomesh 19); n99=$(med "$p" nomesh 6)
    for c in "${CASES[@]}"; do
      p50=$(med "$p" "$c" 5); p90=$(med "$p" "$c" 19); p99=$(med "$p" "$c" 6)
      if [[ $p50 == nan ]]; then
        echo "| $p | $c | not available: $(na_reason "$p" "$c") |||||||||||||"
        continue
      fi
      rss=$(med "$p" "$c" 14); pss=$(med "$p" "$c" 15)
      if [[ $c == nomesh ]]; then
        echo "| $p | $c | $(fmt "$p50" 3 1000) | $(fmt "$p90" 3 1000) | $(fmt "$p99" 3 1000) | 0 | 0 | 0 | $(fmt "$(med "$p" "$c" 10)" 0) | - | - | - | - | - |"
      else
        echo "| $p | $c | $(fmt "$p50" 3 1000) | $(fmt "$p90" 3 1000) | $(fmt "$p99" 3 1000) | $(fmt "$(sub_ "$p50" "$n50")" 3 1000) | $(fmt "$(sub_ "$p90" "$n90")" 3 1000) | $(fmt "$(sub_ "$p99" "$n99")" 3 1000) |" \
          "$(fmt "$(med "$p" "$c" 10)" 0) | $(fmt "$(med "$p" "$c" 12)" 4) | $(fmt "$(med "$p" "$c" 13)" 4) |" \
          "$(fmt "$rss" 1 1024) | $(fmt "$rss" 2 $((1024 * 2 * p))) | $(fmt "$pss" 2 $((1024 * 2 * p))) |"
      fi
    done
  done
  echo
  echo "Targets (nodemesh / sidecar): per-pod memory < 0.01, added p99 <= 0.5, CPU per 1k requests <= 0.5."
  echo
  echo "| pods/node | per-pod RSS | per-pod PSS | added p90 | added p99 | CPU/1k (fixed rate) | CPU/1k (saturation) | max req/s |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  for p in "${PODS[@]}"; do
    n90=$(med "$p" nomesh 19); n99=$(med "$p" nomesh 6)
    echo "| $p | $(ratio "$(med "$p" nodemesh 14)" "$(med "$p" sidecar 14)") | $(ratio "$(med "$p" nodemesh 15)" "$(med "$p" sidecar 15)") |" \
      "$(ratio "$(sub_ "$(med "$p" nodemesh 19)" "$n90")" "$(sub_ "$(med "$p" sidecar 19)" "$n90")") |" \
      "$(ratio "$(sub_ "$(med "$p" nodemesh 6)" "$n99")" "$(sub_ "$(med "$p" sidecar 6)" "$n99")") |" \
      "$(ratio "$(med "$p" nodemesh 12)" "$(med "$p" sidecar 12)") | $(ratio "$(med "$p" nodemesh 13)" "$(med "$p" sidecar 13)") |" \
      "$(ratio "$(med "$p" nodemesh 10)" "$(med "$p" sidecar 10)") |"
  done
  if (( ${#PODS[@]} >= 2 )); then
    # What one more pod costs: the slope between the smallest and the largest
    # P. The fixed cost (one agent per node vs nothing) is in the totals above;
    # this is the part that grows with the pods on a node.
    lo=$(printf '%s\n' "${PODS[@]}" | sort -n | head -1); hi=$(printf '%s\n' "${PODS[@]}" | sort -n | tail -1)
    slope() {  # CASE COLUMN -> kB per additional pod
      awk -v a="$(med "$hi" "$1" "$2")" -v b="$(med "$lo" "$1" "$2")" -v n=$((2 * (hi - lo))) \
        'BEGIN { if (a == "nan" || b == "nan") print "nan"; else print (a - b) / n }'
    }
    echo
    echo "Memory per additional pod (slope from $lo to $hi pods per node; kB):"
    echo
    echo "| memory | sidecar | nodemesh | nodemesh / sidecar |"
    echo "|---|---:|---:|---:|"
    for m in "RSS after saturation:14" "PSS after saturation:15" "RSS idle (mesh just started):16"; do
      col=${m##*:}; s_=$(slope sidecar "$col"); n_=$(slope nodemesh "$col")
      echo "| ${m%:*} | $(fmt "$s_" 1) | $(fmt "$n_" 1) | $(ratio "$n_" "$s_") |"
    done
  fi
  echo
  echo "All rounds (latencies in µs; errors = failed + non-2xx + unanswered requests; CPU in s per 1,000 requests; memory in kB; idle RSS = right after the mesh started):"
  echo
  echo "| pods | case | round | status | fixed p50 | p90 | p99 | p99.9 | req/s | errors | sat req/s | sat errors | CPU/1k fixed | CPU/1k sat | RSS | PSS | idle RSS | load | note |"
  echo "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  sort -t$'\t' -k1,1n -k2,2 -k3,3n "$RESULTS" |
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
      $1, $2, $3, $4, $5, $19, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18 }'
} >"$OUT"

echo
cat "$OUT"
echo
[[ -n $(awk -F'\t' '$4 == "ok" && ($9 > 0 || $11 > 0)' "$RESULTS") ]] && echo "NOTE: some runs had errors (see 'All rounds')."
# Compact raw record: the per-round table, then one line per client process
# (fixed-rate summary; wrk's totals of the measured saturation run).
{
  echo "# results.tsv: P case round status p50_us p99_us p999_us fixed_rate errors sat_rps sat_errors cpu_s_per_1k_fixed cpu_s_per_1k_sat rss_kb pss_kb idle_rss_kb load note p90_us"
  cat "$RESULTS"
  for f in "$RAW"/*-fixed-a*.txt; do echo "$(basename "$f" .txt) $(cat "$f")"; done
  for f in "$RAW"/*-sat-measured-a*.txt; do
    echo "$(basename "$f" .txt) $(awk '/ requests in / { printf "%s requests in %s ", $1, $4 } /Requests\/sec:/ { printf "%s req/s ", $2 } /Socket errors:|Non-2xx/ { printf "%s ", $0 }' "$f")"
  done
  for f in "$RAW"/*-meshctl-A.txt; do
    [[ -f $f ]] || continue
    echo "# $(basename "$f" -A.txt): node proxy lines of \`meshctl node status\` on node A, then node B"
    grep -iE "tunnel|connections|streams" "$f" | head -20
    grep -iE "tunnel|connections|streams" "${f%-A.txt}-B.txt" | head -20
  done
  if [[ -f $RAW/nodemesh-smoke-capture.txt ]]; then
    echo "# nodemesh smoke request: tcpdump on node A's link (first 20 packets)"
    head -20 "$RAW/nodemesh-smoke-capture.txt"
  fi
} >"${OUT%.md}-raw.txt"
echo "results: $OUT (per-client raw output in ${OUT%.md}-raw.txt)"
