#!/usr/bin/env bash
# The price of the socket-LB hook on connect() itself, without HTTP: p50/p99
# of one connect() (RST close, no TIME_WAIT) for
#   direct          127.0.0.1:PORT from outside the served cgroup (no hook runs)
#   direct+hook     127.0.0.1:PORT from inside it (hook runs, no service matches)
#   vip             a service VIP from inside it (hook picks a backend)
# with N services installed (default 10000). Medians over rounds, cases
# alternating each round. Loopback only; bounded by --count and --rounds.
#   sudo bench/socklb/connect_cost.sh [--services N] [--count C] [--rounds R] [--build-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
services=10000 count=20000 rounds=5 build=build
while (($#)); do
  case $1 in
    --services) services=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "connect_cost: run as root" >&2; exit 1; }
tool=$build/bench/connect_cost
agent=$build/agent/nodemesh-agent
meshctl=$build/cli/meshctl
cg2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
cg=/nodemesh-connect-cost
pin=/sys/fs/bpf/nodemesh-connect-cost
work=$(mktemp -d /tmp/nmcc.XXXXXX)
port=$((20000 + RANDOM % 20000))
pids=() agent_pid=

stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
  set +e
  echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
  [[ -n $agent_pid ]] && kill "$agent_pid" && wait "$agent_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null; done
  "$agent" --cleanup --pin-root "$pin" >/dev/null 2>&1
  rmdir "$cg2$cg/client" "$cg2$cg" 2>/dev/null
  [[ -f $work/agent.log ]] && tail -5 "$work/agent.log" >&2
  rm -rf "$work"
}
trap cleanup EXIT

"$tool" serve "$port" & pids+=($!)
"$tool" serve $((port + 1)) & pids+=($!)
measured=$((services / 2))
bash bench/socklb/gen_config.sh "$services" "$measured" "$port" $((port + 1)) "$cg" >"$work/node.yaml"
vip=$(awk -v i="$measured" 'BEGIN { print "127.96." int(i / 250) "." (i % 250 + 1) }')
"$agent" --config "$work/node.yaml" --pin-root "$pin" --admin-socket "$work/admin.sock" >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 200); do "$meshctl" --socket "$work/admin.sock" node status >/dev/null 2>&1 && break; sleep 0.1; done
mkdir -p "$cg2$cg/client"
in_cgroup() { sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg2$cg/client" "$@"; }

# The kernel's own accounting of time spent in the program (run_time_ns /
# run_cnt) is exact where the connect() timings above are noisy.
echo 1 >/proc/sys/kernel/bpf_stats_enabled
connect4_stats() {  # prints "run_time_ns run_cnt" of the attached nm_connect4
  local id
  id=$(bpftool cgroup show "$cg2$cg" 2>/dev/null | awk '$2 == "cgroup_inet4_connect" {print $1; exit}')
  bpftool prog show id "$id" 2>/dev/null | awk '
    { for (i = 1; i < NF; i++) { if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
    END { print t + 0, c + 0 }'
}
declare -A p50 p99 hook_ns hook_runs
for r in $(seq "$rounds"); do
  for c in direct direct+hook vip; do
    read -r t0 n0 < <(connect4_stats)
    case $c in
      direct) out=$("$tool" dial 127.0.0.1 "$port" "$count") ;;
      direct+hook) out=$(in_cgroup "$tool" dial 127.0.0.1 "$port" "$count") ;;
      vip) out=$(in_cgroup "$tool" dial "$vip" 80 "$count") ;;
    esac
    p50[$c]+="$(sed -E 's/.*p50_ns=([0-9]+).*/\1/' <<<"$out") "
    p99[$c]+="$(sed -E 's/.*p99_ns=([0-9]+).*/\1/' <<<"$out") "
    read -r t1 n1 < <(connect4_stats)
    hook_ns[$c]=$(( ${hook_ns[$c]:-0} + t1 - t0 ))
    hook_runs[$c]=$(( ${hook_runs[$c]:-0} + n1 - n0 ))
    echo "round $r $c: $out" >&2
  done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(median "${p50[direct]}")
echo "| case | services | connect() p50 ns | p99 ns | p50 added vs direct | connect4 hook runs | hook ns per run (kernel bpf_stats) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for c in direct direct+hook vip; do
  m=$(median "${p50[$c]}")
  runs=${hook_runs[$c]}
  per_run=-
  ((runs > 0)) && per_run=$(( ${hook_ns[$c]} / runs ))
  printf '| %s | %s | %s | %s | %+d ns | %s | %s |\n' "$c" "$services" "$m" "$(median "${p99[$c]}")" $((m - base)) "$runs" "$per_run"
done
