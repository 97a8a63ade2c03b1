#!/usr/bin/env bash
# Socket load-balancing benchmark: connection rate and request latency to one
# service through
#   direct     the backend address itself (the limit)
#   iptables   kube-proxy's iptables model (nat OUTPUT -> per-VIP rules ->
#              statistic-random endpoint chains -> DNAT), 1,000 and 10,000 services
#   nodemesh   the agent's cgroup connect-time socket LB, 1,000 and 10,000 services
# All five cases run in one invocation, in rounds (the case order rotates from
# round to round); the table reports the median of the rounds per case.
#
# Client: wrk, one thread, "Connection: close" so every request is a new TCP
# connection (requests/s = connections/s). wrk starts a request's latency
# clock when it writes the request, i.e. after connect() has completed, so the
# cost of connect-time work (socket-LB hook, DNAT of the SYN) shows in conn/s
# and, through CPU queueing under 16 connections, in p50/p99 -- not as a
# separate connect time. Backend: nginx, one worker, `return 200`. Everything
# stays on 127.0.0.0/8. Needs root.
#
# Usage: sudo bench/socklb/run.sh [--duration SECS] [--repeat N] [--quick]
#                                 [--build-dir DIR] [--connections N] [--out FILE]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

DURATION=10
REPEAT=3
WARMUP=2
CONNS=16
BUILD_DIR=$REPO/build
OUT=
BASE_PORT=18480
SIZES=(1000 10000)
CG_NAME=nodemesh-bench
PIN_ROOT=/sys/fs/bpf/nodemesh-bench

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case $1 in
    --duration) DURATION=${2:?}; shift 2 ;;
    --repeat) REPEAT=${2:?}; shift 2 ;;
    --quick) DURATION=2; REPEAT=1; WARMUP=1; shift ;;
    --build-dir) BUILD_DIR=$(cd "${2:?}" && pwd); shift 2 ;;
    --connections) CONNS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $DURATION =~ ^[1-9][0-9]*$ && $REPEAT =~ ^[1-9][0-9]*$ && $CONNS =~ ^[1-9][0-9]*$ ]] ||
  { echo "--duration, --repeat and --connections take positive integers" >&2; exit 2; }

die() { echo "run.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ $EUID -eq 0 ]] || die "needs root (iptables, cgroups, BPF): sudo $0"
AGENT=$BUILD_DIR/agent/nodemesh-agent
MESHCTL=$BUILD_DIR/cli/meshctl
for b in "$AGENT" "$MESHCTL"; do [[ -x $b ]] || die "missing $b (build first, or pass --build-dir)"; done
for t in wrk nginx iptables iptables-save iptables-restore ss; do
  command -v "$t" >/dev/null || die "missing $t"
done

CG_MOUNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG_MOUNT ]] || die "no cgroup2 mount in /proc/mounts"
CG_DIR=$CG_MOUNT/$CG_NAME
[[ -e $CG_DIR ]] && die "$CG_DIR already exists (left over?); remove it first"
[[ -e $PIN_ROOT ]] && die "$PIN_ROOT already exists; run: $AGENT --cleanup --pin-root $PIN_ROOT"
iptables-save -t nat 2>/dev/null | grep -q 'NMBENCH-' && die "NMBENCH-* chains already exist in the nat table"

# One backend port pair per measured case run, so that no case meets the
# server-side TIME_WAIT sockets or conntrack entries of another (a DNATed
# connection and a direct one from the same ephemeral port carry different TCP
# timestamp offsets, and PAWS would drop the SYN: 1 s stalls).
NCASES=5
NPORTS=$((2 * NCASES * REPEAT))
for ((p = BASE_PORT; p < BASE_PORT + NPORTS; p++)); do
  ss -Htan "sport = :$p" | grep -q . && die "port $p is in use (or has TIME_WAIT sockets); wait a minute or change BASE_PORT"
done

STAMP=$(date +%Y%m%d-%H%M%S)
[[ -n $OUT ]] || OUT=$REPO/bench/results/socklb-$STAMP.md
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d /tmp/nmbench.XXXXXX)
RAW=$WORK/raw
mkdir -p "$RAW" "$WORK/nginx/logs" "$WORK/nginx/tmp"

NGINX_PID='' AGENT_PID='' IPT_INSTALLED=0 AGENT_STARTED=0
# Whether nat OUTPUT had rules of its own before we came (see iptables_remove).
NAT_OUTPUT_HAD_RULES=0
[[ -n $(iptables -t nat -S OUTPUT 2>/dev/null | grep '^-A' || true) ]] && NAT_OUTPUT_HAD_RULES=1
CT_MAX_FILE=/proc/sys/net/netfilter/nf_conntrack_max
CT_MAX_ORIG=
CT_MAX_BENCH=1048576

# ---------------------------------------------------------------- cleanup
iptables_remove() {
  # Only what we added: the OUTPUT jump and the NMBENCH-* chains.
  while iptables -t nat -C OUTPUT -j NMBENCH-SERVICES 2>/dev/null; do
    iptables -t nat -D OUTPUT -j NMBENCH-SERVICES
  done
  local chains
  chains=$(iptables-save -t nat 2>/dev/null | awk '/^:NMBENCH-/ { print substr($1, 2) }')
  if [[ -n $chains ]]; then
    { echo '*nat'
      for c in $chains; do echo ":$c - [0:0]"; done   # declaring a chain with --noflush flushes it
      for c in $chains; do echo "-X $c"; done
      echo COMMIT; } | iptables-restore --noflush
  fi
  # If nat OUTPUT had no rules before we came, delete the (now empty) base
  # chain that our rules created (iptables-nft creates base chains on demand):
  # while it exists, conntrack tracks every connection on the host, which would
  # tax the direct and nodemesh cases. -X refuses a chain that still has rules,
  # so nobody else's are touched; with iptables-legacy it is a no-op.
  if ((NAT_OUTPUT_HAD_RULES == 0)); then iptables -t nat -X OUTPUT 2>/dev/null || true; fi
  IPT_INSTALLED=0
}

agent_stop() {
  if [[ -n $AGENT_PID ]]; then
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$AGENT_PID" 2>/dev/null && kill -KILL "$AGENT_PID" 2>/dev/null
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=
  fi
  if ((AGENT_STARTED)); then
    "$AGENT" --cleanup --pin-root "$PIN_ROOT" >>"$WORK/agent-cleanup.log" 2>&1 ||
      log "warning: agent --cleanup failed; see $WORK/agent-cleanup.log"
    [[ -d $CG_DIR ]] && { rmdir "$CG_DIR" 2>/dev/null || log "warning: could not rmdir $CG_DIR"; }
    AGENT_STARTED=0
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  agent_stop
  ((IPT_INSTALLED)) && iptables_remove
  if [[ -n $NGINX_PID ]]; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
  fi
  [[ -n $CT_MAX_ORIG ]] && echo "$CT_MAX_ORIG" >"$CT_MAX_FILE"
  # Keep the temp dir (configs, agent logs, raw wrk output) only after a failure.
  if ((rc == 0 || rc == 130 || rc == 143)); then rm -rf "$WORK"; else log "kept $WORK for inspection"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
vip_of() { echo "127.96.$(($1 / 250)).$(($1 % 250 + 1))"; }   # same as gen_*.sh

netstat_get() {  # TcpExt counter
  awk -v k="$1" '$1 == "TcpExt:" { if (!h) { for (i = 2; i <= NF; i++) n[i] = $i; h = 1 } else for (i = 2; i <= NF; i++) if (n[i] == k) print $i }' /proc/net/netstat
}
ct_drops() {  # conntrack insert_failed + drop + early_drop, summed over CPUs
  local f=/proc/net/stat/nf_conntrack sum=0 a b c
  [[ -r $f ]] || { echo 0; return; }
  while read -r _ _ _ _ _ _ _ _ _ a b c _; do sum=$((sum + 16#$a + 16#$b + 16#$c)); done < <(tail -n +2 "$f")
  echo "$sum"
}
to_ms() {  # wrk duration ("123.00us", "1.05ms", "1.20s", "2.00m") -> ms
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "nan" }'
}
median() {  # numbers on stdin
  sort -g | awk '{ a[NR] = $1 } END { if (!NR) { print "nan"; exit }
    if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ---------------------------------------------------------------- backend
start_nginx() {
  local d=$WORK/nginx listens="" p
  for ((p = BASE_PORT; p < BASE_PORT + NPORTS; p++)); do listens+="    listen 127.0.0.1:$p;"$'\n'; done
  cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 8192;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
$listens    location / { return 200 "ok\n"; }
  }
}
EOF
  nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" >"$d/stdout.log" 2>&1 &
  NGINX_PID=$!
  for _ in $(seq 100); do
    ss -Hltn "sport = :$BASE_PORT" | grep -q . && return 0
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$d/stdout.log" "$d/logs/error.log" >&2 || true
  die "nginx did not start"
}

# ---------------------------------------------------------------- wrk
# run_wrk OUTFILE INCGROUP(0|1) URL: warm-up, then the measured run.
run_wrk() {
  local out=$1 incg=$2 url=$3 cmd
  cmd=(wrk -t1 "-c$CONNS" --latency -H 'Connection: close')
  if ((incg)); then
    # shellcheck disable=SC2016  # $$ and $@ belong to the inner sh
    cmd=(sh -c 'cg=$1; shift; echo $$ >"$cg/cgroup.procs" && exec "$@"' sh "$CG_DIR" "${cmd[@]}")
  fi
  "${cmd[@]}" "-d${WARMUP}s" "$url" >"$out.warmup" 2>&1 || die "wrk warm-up failed: $(cat "$out.warmup")"
  local syn0 ct0
  syn0=$(netstat_get TCPSynRetrans); ct0=$(ct_drops)
  LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
  local a0=0
  [[ -n $AGENT_PID ]] && a0=$(awk '{ print $14 + $15 }' "/proc/$AGENT_PID/stat")
  "${cmd[@]}" "-d${DURATION}s" "$url" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
  AGENT_CPU_MS=-
  [[ -n $AGENT_PID ]] && AGENT_CPU_MS=$(( ($(awk '{ print $14 + $15 }' "/proc/$AGENT_PID/stat") - a0) * 1000 / $(getconf CLK_TCK) ))
  SYN_RETRANS=$(($(netstat_get TCPSynRetrans) - syn0))
  CT_DROPS=$(($(ct_drops) - ct0))
}

# parse_wrk FILE -> "rps p50ms p99ms errors" (errors: text without spaces, "-" if none)
parse_wrk() {
  local f=$1 rps p50 p99 err=""
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$f")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$f")")
  local se n2
  se=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); gsub(/ /, ""); print }' "$f")
  n2=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$f")
  [[ -n $se ]] && err+="socket_errors(${se})"
  [[ -n $n2 ]] && err+="non2xx=$n2"
  echo "${rps:-nan} ${p50:-nan} ${p99:-nan} ${err:--}"
}

# ---------------------------------------------------------------- cases
RESULTS=$WORK/results.tsv   # case round rps p50 p99 errors synretrans ctdrops load
: >"$RESULTS"

record() {  # record CASE ROUND WRKFILE
  local parsed
  parsed=$(parse_wrk "$3")
  # shellcheck disable=SC2086
  set -- "$1" "$2" $parsed
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$SYN_RETRANS" "$CT_DROPS" "$LOAD_BEFORE" >>"$RESULTS"
  log "  $1 round $2: $3 req/s, p50 $4 ms, p99 $5 ms, errors $6, SYN retransmits $SYN_RETRANS, conntrack drops $CT_DROPS, load $LOAD_BEFORE"
}

case_direct() {  # ROUND PORT_A PORT_B
  local f=$RAW/direct-r$1.txt
  log "direct (127.0.0.1:$2), round $1"
  run_wrk "$f" 0 "http://127.0.0.1:$2/"
  record direct "$1" "$f"
}

case_iptables() {  # N ROUND PORT_A PORT_B
  local n=$1 r=$2 m=$(($1 / 2)) vip t f=$RAW/iptables-$1-r$2.txt
  vip=$(vip_of "$m")
  log "iptables, $n services (VIP $vip -> 127.0.0.1:$3|$4), round $r"
  "$HERE/gen_iptables.sh" "$n" "$m" "$3" "$4" >"$WORK/iptables-$n.rules"
  IPT_INSTALLED=1
  t=$(now_ns)
  iptables-restore --noflush <"$WORK/iptables-$n.rules"
  local install_ms; install_ms=$(ms_since "$t")
  local rules; rules=$(iptables-save -t nat | grep -c '^-A NMBENCH-')
  log "  iptables-restore: $rules rules in $install_ms ms"
  run_wrk "$f" 0 "http://$vip/"
  record "iptables-$n" "$r" "$f"
  t=$(now_ns)
  iptables_remove
  local remove_ms; remove_ms=$(ms_since "$t")
  log "  removed in $remove_ms ms"
  printf 'iptables-%s\t%s\tinstall_ms=%s\trules=%s\tremove_ms=%s\tct_count_after=%s\n' "$n" "$r" "$install_ms" "$rules" \
    "$remove_ms" "$(cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo -)" >>"$WORK/setup.tsv"
}

case_nodemesh() {  # N ROUND PORT_A PORT_B
  local n=$1 r=$2 m=$(($1 / 2)) vip t f=$RAW/nodemesh-$1-r$2.txt
  local cfg=$WORK/nodemesh-$n-r$r.yaml alog=$WORK/agent-$n-r$r.log sock=$WORK/admin.sock
  vip=$(vip_of "$m")
  log "nodemesh, $n services (VIP $vip -> 127.0.0.1:$3|$4), round $r"
  "$HERE/gen_config.sh" "$n" "$m" "$3" "$4" "/$CG_NAME" >"$cfg"
  rm -f "$sock"
  AGENT_STARTED=1
  t=$(now_ns)
  "$AGENT" --config "$cfg" --pin-root "$PIN_ROOT" --admin-socket "$sock" >"$alog" 2>&1 &
  AGENT_PID=$!
  local ready_ms=
  for _ in $(seq 1200); do
    if "$MESHCTL" --socket "$sock" node status -o json >"$WORK/status.json" 2>/dev/null; then
      ready_ms=$(ms_since "$t"); break
    fi
    kill -0 "$AGENT_PID" 2>/dev/null || { cat "$alog" >&2; die "agent exited"; }
    sleep 0.02
  done
  [[ -n $ready_ms ]] || { cat "$alog" >&2; die "agent not ready within 24 s"; }
  # Time between the agent's first log line ("datapath loaded", i.e. after the
  # config was parsed and the BPF objects loaded) and "config version 1 ... applied".
  local applied apply_ms rss
  applied=$(grep -m1 'config version 1 .* applied' "$alog" || true)
  apply_ms=$(awk '{ split(substr($1, 12), a, ":"); s = a[1] * 3600 + a[2] * 60 + a[3] }
    NR == 1 { s0 = s } /config version 1 .* applied/ { printf "%d", (s - s0) * 1000; exit }' "$alog")
  rss=$(awk '/^VmRSS:/ { print $2 " " $3 }' "/proc/$AGENT_PID/status")
  log "  agent ready in $ready_ms ms (log: datapath loaded -> config applied ${apply_ms:-?} ms), VmRSS $rss"
  log "  ${applied#* info }"
  run_wrk "$f" 1 "http://$vip/"
  record "nodemesh-$n" "$r" "$f"
  log "  agent CPU during the measured run: $AGENT_CPU_MS ms"
  rss=$(awk '/^VmRSS:/ { print $2 " " $3 }' "/proc/$AGENT_PID/status")
  agent_stop
  printf 'nodemesh-%s\t%s\tstart_to_status_ms=%s\tloaded_to_applied_ms=%s\tVmRSS=%s\tagent_cpu_ms_during_run=%s\tapplied=%s\n' \
    "$n" "$r" "$ready_ms" "${apply_ms:-?}" "$rss" "$AGENT_CPU_MS" "${applied#*applied: }" >>"$WORK/setup.tsv"
}

# ---------------------------------------------------------------- run
ulimit -n 8192
: >"$WORK/setup.tsv"
# kube-proxy's DNAT keeps a conntrack entry per connection for 120 s after
# close (TIME_WAIT); at ~10k conn/s two back-to-back iptables cases exceed the
# default table size and the drops would show up as 1 s SYN retransmits.
if [[ -w $CT_MAX_FILE ]] && (($(cat "$CT_MAX_FILE") < CT_MAX_BENCH)); then
  CT_MAX_ORIG=$(cat "$CT_MAX_FILE")
  echo "$CT_MAX_BENCH" >"$CT_MAX_FILE"
  log "nf_conntrack_max $CT_MAX_ORIG -> $CT_MAX_BENCH for the run (restored on exit)"
fi
start_nginx
log "nginx pid $NGINX_PID on 127.0.0.1:$BASE_PORT-$((BASE_PORT + NPORTS - 1)); wrk -t1 -c$CONNS, warm-up ${WARMUP}s, ${DURATION}s x $REPEAT rounds"
T_START=$(now_ns)

CASES=(direct "iptables ${SIZES[0]}" "iptables ${SIZES[1]}" "nodemesh ${SIZES[0]}" "nodemesh ${SIZES[1]}")
port=$BASE_PORT
for ((r = 1; r <= REPEAT; r++)); do
  log "=== round $r of $REPEAT"
  for ((i = 0; i < NCASES; i++)); do
    c=${CASES[$(((i + r - 1) % NCASES))]}   # rotate the start case each round
    read -r kind n <<<"$c"
    case $kind in
      direct) case_direct "$r" "$port" "$((port + 1))" ;;
      iptables) case_iptables "$n" "$r" "$port" "$((port + 1))" ;;
      nodemesh) case_nodemesh "$n" "$r" "$port" "$((port + 1))" ;;
    esac
    port=$((port + 2))
  done
done
TOTAL_S=$(( ($(now_ns) - T_START) / 1000000000 ))

# ---------------------------------------------------------------- report
col() { awk -F'\t' -v c="$1" -v k="$2" '$1 == c { print $k }' "$RESULTS"; }
D_RPS=$(col direct 3 | median)
D_P99=$(col direct 5 | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "nan") print "n/a"; else printf "%.3f", a / b }'; }
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { if (v == "nan") print "n/a"; else printf "%." d "f", v }'; }

{
  echo "# Socket load balancing benchmark, $(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo
  echo "Command: \`bench/socklb/run.sh --duration $DURATION --repeat $REPEAT --connections $CONNS\`" \
    "(warm-up ${WARMUP}s per case run; total ${TOTAL_S}s)"
  echo
  echo "Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r)," \
    "$(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), $(iptables --version)"
  echo
  echo "Medians of $REPEAT rounds; client \`wrk -t1 -c$CONNS -d${DURATION}s --latency -H 'Connection: close'\`" \
    "(one TCP connection per request, so req/s = conn/s; latency is timed from writing the request, after connect())."
  echo
  echo "| case | services | conn/s | p50 ms | p99 ms | conn/s vs direct | p99 vs direct |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for c in direct "iptables-${SIZES[0]}" "iptables-${SIZES[1]}" "nodemesh-${SIZES[0]}" "nodemesh-${SIZES[1]}"; do
    rps=$(col "$c" 3 | median); p50=$(col "$c" 4 | median); p99=$(col "$c" 5 | median)
    svc=${c#*-}; [[ $c == direct ]] && svc=-
    echo "| ${c%%-*} | $svc | $(fmt "$rps" 0) | $(fmt "$p50" 3) | $(fmt "$p99" 3) | $(ratio "$rps" "$D_RPS") | $(ratio "$p99" "$D_P99") |"
  done
  echo
  echo "All rounds (load = 1-min load average when the measured run started; SYN retx = TcpExt.TCPSynRetrans" \
    "during the run; ct drops = conntrack insert_failed+drop+early_drop during the run):"
  echo
  echo "| case | round | conn/s | p50 ms | p99 ms | wrk errors | SYN retx | ct drops | load |"
  echo "|---|---:|---:|---:|---:|---|---:|---:|---:|"
  sort -t$'\t' -k1,1 -k2,2n "$RESULTS" | awk -F'\t' '{ printf "| %s | %s | %.0f | %.3f | %.3f | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
  echo
  echo "Setup per case run:"
  echo
  echo "| case | round | details |"
  echo "|---|---:|---|"
  sort -t$'\t' -k1,1 -k2,2n "$WORK/setup.tsv" | awk -F'\t' '{ d = $3; for (i = 4; i <= NF; i++) d = d ", " $i; printf "| %s | %s | %s |\n", $1, $2, d }'
} >"$OUT"

flag=$(awk -F'\t' '$6 != "-" || $7 > 0 || $8 > 0' "$RESULTS")
echo
cat "$OUT"
echo
[[ -n $flag ]] && echo "NOTE: some runs had wrk errors, SYN retransmits or conntrack drops (see 'All rounds')."
cp -r "$RAW" "${OUT%.md}-raw"
echo "results: $OUT (raw wrk output in ${OUT%.md}-raw/)"
