#!/usr/bin/env bash
# Same-node socket redirect benchmark: app <-> app over loopback with the
# sockops/sk_msg shortcut OFF (plain TCP over lo) and ON, in one run.
#   throughput   iperf3 -c 127.0.0.1 -t DURATION (one stream)
#   ping-pong    bench/redirect/pingpong.cpp: one connection, TCP_NODELAY,
#                64 B and 1 KiB round trips for PP_SECS seconds each
#   http         wrk -t1 -c8 (keep-alive) against nginx `return 200`
# Servers and clients all run in one fresh cgroup; the redirect is switched
# through the agent's own SockRedirect (bench/redirect/redirect_ctl.cpp), on
# that cgroup. Rounds interleave the modes (on,off / off,on / ...); the table
# reports per-mode medians and on/off ratios. Each mode's counters are checked:
# ON must have redirected messages, OFF none. Everything stays on 127.0.0.1.
# Needs root, iperf3, wrk, nginx, g++, and a build dir with libnm_datapath.a.
#
# Usage: sudo bench/redirect/run.sh [--build-dir DIR] [--rounds N] [--duration SECS]
#                                   [--pp-secs SECS] [--quick] [--out FILE]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

ROUNDS=5
DURATION=5
PP_SECS=3
BUILD_DIR=$REPO/build
OUT=
BASE_PORT=18580
CG_NAME=nodemesh-bench-redirect
PIN_ROOT=/sys/fs/bpf/nodemesh-bench-redirect

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case $1 in
    --build-dir) BUILD_DIR=$(cd "${2:?}" && pwd); shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --duration) DURATION=${2:?}; shift 2 ;;
    --pp-secs) PP_SECS=${2:?}; shift 2 ;;
    --quick) ROUNDS=1; DURATION=2; PP_SECS=1; shift ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$ROUNDS" "$DURATION" "$PP_SECS"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "--rounds, --duration and --pp-secs take positive integers" >&2; exit 2; }
done
((ROUNDS <= 20 && DURATION <= 60 && PP_SECS <= 60)) || { echo "at most 20 rounds of 60 s" >&2; exit 2; }

die() { echo "run.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ $EUID -eq 0 ]] || die "needs root (cgroups, BPF): sudo $0"
for t in iperf3 wrk nginx g++ ss python3; do command -v "$t" >/dev/null || die "missing $t"; done
LIB=$BUILD_DIR/agent
for f in "$LIB/libnm_datapath.a" "$LIB/libnm_common.a" "$BUILD_DIR/bpf-gen/sock_redirect.skel.h"; do
  [[ -e $f ]] || die "missing $f (build nm_datapath first, or pass --build-dir)"
done

CG_MOUNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG_MOUNT ]] || die "no cgroup2 mount in /proc/mounts"
CG_DIR=$CG_MOUNT/$CG_NAME
[[ -e $CG_DIR ]] && die "$CG_DIR already exists (left over?); remove it first"
[[ -e $PIN_ROOT ]] && die "$PIN_ROOT already exists; remove it (rm -r) first"
NGINX_PORT=$BASE_PORT IPERF_PORT=$((BASE_PORT + 1)) PP_PORT=$((BASE_PORT + 2))
for p in $NGINX_PORT $IPERF_PORT $PP_PORT; do
  ss -Hltn "sport = :$p" | grep -q . && die "port $p has a listener; change BASE_PORT"
done

STAMP=$(date +%Y%m%d-%H%M%S)
[[ -n $OUT ]] || OUT=$REPO/bench/results/redirect-$STAMP.md
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d /tmp/nmbench-redir.XXXXXX)
RAW=$WORK/raw
mkdir -p "$RAW" "$WORK/nginx/logs" "$WORK/nginx/tmp"
PIDS=()

# ---------------------------------------------------------------- cleanup
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -x $WORK/redirect_ctl ]]; then
    "$WORK/redirect_ctl" "$PIN_ROOT" off >/dev/null 2>&1 || true
    "$WORK/redirect_ctl" "$PIN_ROOT" cleanup >/dev/null 2>&1 || true
  fi
  rmdir "$PIN_ROOT/maps" "$PIN_ROOT/links" "$PIN_ROOT" 2>/dev/null || true
  if [[ -d $CG_DIR ]]; then
    # Per-connection children of the servers leave when their peer has gone.
    for _ in $(seq 50); do [[ -s $CG_DIR/cgroup.procs ]] || break; sleep 0.1; done
    rmdir "$CG_DIR" 2>/dev/null || log "warning: could not remove $CG_DIR (processes left: $(tr '\n' ' ' <"$CG_DIR/cgroup.procs"))"
  fi
  if ((rc == 0 || rc == 130 || rc == 143)); then rm -rf "$WORK"; else log "kept $WORK for inspection"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- build helpers
log "building pingpong and redirect_ctl in $WORK"
g++ -O2 -std=c++20 -o "$WORK/pingpong" "$HERE/pingpong.cpp"
g++ -O2 -std=c++20 -I"$REPO/agent" -I"$REPO/bpf/include" -I"$BUILD_DIR/bpf-gen" -o "$WORK/redirect_ctl" \
  "$HERE/redirect_ctl.cpp" "$LIB/libnm_datapath.a" "$LIB/libnm_common.a" -lbpf -lspdlog -lfmt -lpthread
mkdir -p "$CG_DIR"
ctl() { "$WORK/redirect_ctl" "$PIN_ROOT" "$@"; }
# "${IN_CG[@]}" CMD...: runs CMD inside the benchmark cgroup. An array, not a
# function, so that `... &` gives $! = the server's own PID (sh execs it).
# shellcheck disable=SC2016  # $$ and $@ belong to the inner sh
IN_CG=(sh -c 'cg=$1; shift; echo $$ >"$cg/cgroup.procs" && exec "$@"' sh "$CG_DIR")
median() {  # numbers on stdin
  sort -g | awk '{ a[NR] = $1 } END { if (!NR) { print "nan"; exit }
    if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
wait_port() {
  for _ in $(seq 100); do ss -Hltn "sport = :$1" | grep -q . && return 0; sleep 0.05; done
  die "nothing listens on $1"
}

# ---------------------------------------------------------------- servers (in the cgroup)
D=$WORK/nginx
cat >"$D/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $D/nginx.pid;
error_log $D/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $D/tmp/body;
  proxy_temp_path $D/tmp/proxy;
  fastcgi_temp_path $D/tmp/fastcgi;
  uwsgi_temp_path $D/tmp/uwsgi;
  scgi_temp_path $D/tmp/scgi;
  server { listen 127.0.0.1:$NGINX_PORT; location / { return 200 "ok\n"; } }
}
EOF
"${IN_CG[@]}" nginx -p "$D" -c "$D/nginx.conf" -e "$D/logs/error.log" >"$D/stdout.log" 2>&1 &
PIDS+=($!)
"${IN_CG[@]}" iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" >"$WORK/iperf3-server.log" 2>&1 &
PIDS+=($!)
"${IN_CG[@]}" "$WORK/pingpong" server 127.0.0.1 "$PP_PORT" >"$WORK/pingpong-server.log" 2>&1 &
PIDS+=($!)
for p in $NGINX_PORT $IPERF_PORT $PP_PORT; do wait_port "$p"; done

# ---------------------------------------------------------------- one mode, one round
RESULTS=$WORK/results.tsv  # mode round gbps pp64_p50 pp64_p99 pp64_rps pp1k_p50 pp1k_p99 pp1k_rps http_rps http_p50 http_p99 redirected
: >"$RESULTS"
counter() { ctl stats | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
wrk_ms() {  # wrk duration -> ms
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); printf "%.4f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.4f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.4f", v * 1000 } else printf "nan" }'
}

measure() {
  local mode=$1 round=$2 tag="$1-r$2" r0 r1 gbps pp64 pp1k rps p50 p99
  if [[ $mode == on ]]; then ctl on "$CG_DIR" >/dev/null; else ctl off >/dev/null; fi
  r0=$(ctl stats >/dev/null 2>&1 && counter msgs_redirected || echo 0)
  "${IN_CG[@]}" iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -t "$DURATION" -J >"$RAW/$tag-iperf3.json" 2>&1 ||
    die "iperf3 failed: $(tail -5 "$RAW/$tag-iperf3.json")"
  gbps=$(python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9))' "$RAW/$tag-iperf3.json")
  "${IN_CG[@]}" "$WORK/pingpong" client 127.0.0.1 "$PP_PORT" 64 "$PP_SECS" >"$RAW/$tag-pp64.txt"
  "${IN_CG[@]}" "$WORK/pingpong" client 127.0.0.1 "$PP_PORT" 1024 "$PP_SECS" >"$RAW/$tag-pp1k.txt"
  pp64=$(sed -E 's/.*p50_us=([0-9.]+).*p99_us=([0-9.]+) rps=([0-9]+).*/\1 \2 \3/' "$RAW/$tag-pp64.txt")
  pp1k=$(sed -E 's/.*p50_us=([0-9.]+).*p99_us=([0-9.]+) rps=([0-9]+).*/\1 \2 \3/' "$RAW/$tag-pp1k.txt")
  "${IN_CG[@]}" wrk -t1 -c8 -d"${DURATION}s" --latency "http://127.0.0.1:$NGINX_PORT/" >"$RAW/$tag-wrk.txt" 2>&1 ||
    die "wrk failed: $(cat "$RAW/$tag-wrk.txt")"
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$RAW/$tag-wrk.txt")
  p50=$(wrk_ms "$(awk '$1 == "50%" { print $2 }' "$RAW/$tag-wrk.txt")")
  p99=$(wrk_ms "$(awk '$1 == "99%" { print $2 }' "$RAW/$tag-wrk.txt")")
  r1=$(ctl stats >/dev/null 2>&1 && counter msgs_redirected || echo 0)
  # OFF removes the counters with the maps once no socket remains: count from 0.
  [[ -z $r1 ]] && r1=0
  [[ -z $r0 ]] && r0=0
  local redirected=$((r1 >= r0 ? r1 - r0 : r1))
  if [[ $mode == on ]]; then ((redirected > 0)) || die "ON round $round redirected nothing"; fi
  if [[ $mode == off ]]; then ((redirected == 0)) || die "OFF round $round redirected $redirected messages"; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$round" "$gbps" "${pp64// /$'\t'}" "${pp1k// /$'\t'}" \
    "$rps" "$p50" "$p99" "$redirected" >>"$RESULTS"
  log "$tag: ${gbps} Gbit/s; pp64 p50/p99 $(cut -d' ' -f1,2 <<<"$pp64") us; pp1k $(cut -d' ' -f1,2 <<<"$pp1k") us; http ${rps} req/s p99 ${p99} ms; redirected msgs $redirected"
}

START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then order=(on off); else order=(off on); fi
  for m in "${order[@]}"; do measure "$m" "$r"; done
done
ctl off >/dev/null
ELAPSED=$(($(date +%s) - START))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
col() { awk -F'\t' -v m="$1" -v c="$2" '$1 == m { print $c }' "$RESULTS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.2f", a / b }'; }
{
  echo "# Same-node socket redirect: off vs on ($STAMP)"
  echo
  echo "Command: \`sudo bench/redirect/run.sh --build-dir $BUILD_DIR --rounds $ROUNDS --duration $DURATION --pp-secs $PP_SECS\`"
  echo "Kernel $(uname -r), $(nproc) CPUs, load average before/after: $LOAD0 / $LOAD1; wall time ${ELAPSED}s."
  echo "Medians of $ROUNDS interleaved rounds; ratio = on / off (throughput: >1 is better; latency: <1 is better)."
  echo
  echo "| metric | off | on | on/off |"
  echo "| --- | ---: | ---: | ---: |"
  for spec in "iperf3 throughput (Gbit/s):3" "ping-pong 64 B p50 (us):4" "ping-pong 64 B p99 (us):5" \
    "ping-pong 64 B round trips/s:6" "ping-pong 1 KiB p50 (us):7" "ping-pong 1 KiB p99 (us):8" \
    "ping-pong 1 KiB round trips/s:9" "nginx keep-alive (wrk -c8) req/s:10" "nginx p50 (ms):11" "nginx p99 (ms):12"; do
    name=${spec%:*} c=${spec##*:}
    off=$(col off "$c" | median) on=$(col on "$c" | median)
    echo "| $name | $off | $on | $(ratio "$on" "$off") |"
  done
  echo
  echo "Per round (mode, round, Gbit/s, pp64 p50/p99/rps, pp1k p50/p99/rps, http rps/p50/p99, messages redirected):"
  echo
  echo '```'
  cat "$RESULTS"
  echo '```'
} >"$OUT"
mkdir -p "${OUT%.md}-raw"
cp "$RAW"/* "${OUT%.md}-raw/"
cat "$OUT"
log "wrote $OUT"
