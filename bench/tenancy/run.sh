#!/usr/bin/env bash
# Noisy neighbour, side by side: the quiet tenant's round-trip latency through
# one shared proxy worker, alone and while another tenant uploads in bulk
# through the same worker, for nodemesh's mesh proxy (1 worker, in-process,
# same-node path) and for haproxy (1 thread, TCP mode: the shared-proxy peer).
# See bench/tenancy/fairness.cpp for the load.
#
# Usage: bench/tenancy/run.sh [--repeat 3] [--duration 5] [--noisy-conns 16] [--out FILE]
# Needs: build/bench/tenancy_fairness (./scripts/build.sh release), haproxy.
# Traffic stays on 127.0.0.0/8: clients 127.0.3.x, backends 127.0.4.x,
# haproxy's frontends 127.0.5.1. Everything it starts it stops (by PID).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${NODEMESH_BUILD:-$ROOT/build}/bench/tenancy_fairness
REPEAT=3 DURATION=5 CONNS=16
OUT=$ROOT/bench/results/tenancy-$(date +%Y%m%d-%H%M%S).md
while (($#)); do
  case $1 in
    --repeat) REPEAT=${2:?}; shift 2 ;;
    --duration) DURATION=${2:?}; shift 2 ;;
    --noisy-conns) CONNS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -x $BIN ]] || { echo "no $BIN: build it first (./scripts/build.sh release)" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "haproxy is not installed (scripts/install-deps.sh --bench)" >&2; exit 1; }

ECHO_PORT=19101 SINK_PORT=19102 Q_PORT=19111 N_PORT=19112
for p in $ECHO_PORT $SINK_PORT $Q_PORT $N_PORT; do
  if ss -Hltn "sport = :$p" | grep -q .; then echo "port $p is in use; stop what holds it" >&2; exit 1; fi
done

WORK=$(mktemp -d /tmp/nmtenancy.XXXXXX)
HAPROXY_PID=
cleanup() {
  [[ -n $HAPROXY_PID ]] && kill "$HAPROXY_PID" 2>/dev/null && wait "$HAPROXY_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend quiet
  bind 127.0.5.1:$Q_PORT
  default_backend echo
frontend noisy
  bind 127.0.5.1:$N_PORT
  default_backend sink
backend echo
  server e 127.0.4.1:$ECHO_PORT
backend sink
  server s 127.0.4.2:$SINK_PORT
EOF

run_haproxy() {
  haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  for _ in $(seq 50); do ss -Hltn "sport = :$Q_PORT" | grep -q . && break; sleep 0.1; done
  timeout $((DURATION * 2 + 30)) "$BIN" --proxy external --quiet-target 127.0.5.1:$Q_PORT --noisy-target 127.0.5.1:$N_PORT \
    --echo-port $ECHO_PORT --discard-port $SINK_PORT --duration "$DURATION" --noisy-conns "$CONNS"
  kill "$HAPROXY_PID"; wait "$HAPROXY_PID" 2>/dev/null || true; HAPROXY_PID=
}
run_nodemesh() {
  timeout $((DURATION * 2 + 30)) "$BIN" --proxy nodemesh --duration "$DURATION" --noisy-conns "$CONNS"
}

: >"$WORK/lines"
for r in $(seq "$REPEAT"); do
  # Alternate the order so neither proxy always runs on a warmer machine.
  if ((r % 2)); then order="nodemesh haproxy"; else order="haproxy nodemesh"; fi
  for c in $order; do
    echo "[round $r] $c" >&2
    "run_$c" | sed "s/^proxy=external/proxy=haproxy/; s/^/round=$r /" | tee -a "$WORK/lines"
  done
done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
med() {  # PROXY PHASE FIELD
  grep "proxy=$1 phase=$2 " "$WORK/lines" | field "$3" | sort -g |
    awk '{ a[NR] = $1 } END { if (!NR) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
{
  echo "# Noisy neighbour through one shared proxy worker, $(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo
  echo "Command: \`bench/tenancy/run.sh --repeat $REPEAT --duration $DURATION --noisy-conns $CONNS\`;" \
    "$(nproc) CPUs, kernel $(uname -r), $(haproxy -v | awk 'NR == 1 { print $1, $3 }'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "Quiet tenant: sequential 64-byte echo round trips, one per ms; noisy tenant: $CONNS connections uploading" \
    "64 KiB writes to a discard backend. nodemesh: MeshProxy, 1 worker, same-node path (no TLS); haproxy: 1 thread, TCP mode." \
    "Medians of $REPEAT rounds of ${DURATION} s per phase; latencies in µs."
  echo
  echo "| proxy | quiet p50 alone | quiet p99 alone | quiet p50 with neighbour | quiet p99 with neighbour | p99.9 with neighbour | neighbour MB/s | p99 with / alone |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for p in nodemesh haproxy; do
    echo "| $p | $(med $p alone p50_us) | $(med $p alone p99_us) | $(med $p noisy-neighbour p50_us) |" \
      "$(med $p noisy-neighbour p99_us) | $(med $p noisy-neighbour p999_us) | $(med $p noisy-neighbour noisy_MBps) |" \
      "$(ratio "$(med $p noisy-neighbour p99_us)" "$(med $p alone p99_us)") |"
  done
  echo
  echo "nodemesh / haproxy with the neighbour: quiet p99 $(ratio "$(med nodemesh noisy-neighbour p99_us)" "$(med haproxy noisy-neighbour p99_us)")," \
    "neighbour throughput $(ratio "$(med nodemesh noisy-neighbour noisy_MBps)" "$(med haproxy noisy-neighbour noisy_MBps)")."
  echo
  echo "Every round:"
  echo
  echo '```'
  cat "$WORK/lines"
  echo '```'
} >"$OUT"
cat "$OUT"
echo "results: $OUT" >&2
