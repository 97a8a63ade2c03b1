#!/usr/bin/env bash
# Prints iptables-restore input (nat table, for use with --noflush) that models
# kube-proxy's iptables mode for N ClusterIP services with 2 endpoints each:
#   OUTPUT -> NMBENCH-SERVICES -> one "-d VIP --dport 80" rule per service
#   NMBENCH-SVC-<n>: statistic random 0.5 -> SEP-<n>a, else -> SEP-<n>b
#   NMBENCH-SEP-<n>x: DNAT to the endpoint
# No masquerade / mark rules and no -m comment (kube-proxy has both; the model
# keeps only the lookup and DNAT structure).
#
# Usage: gen_iptables.sh N MEASURED_INDEX PORT_A PORT_B
#   Service MEASURED_INDEX DNATs to 127.0.0.1:PORT_A / 127.0.0.1:PORT_B; every
#   other service points at addresses in 127.97/16 and 127.98/16 (never hit).
#   VIP of service i: see vip_of in common.sh (127.96.x.y).
set -euo pipefail
n=${1:?N} measured=${2:?MEASURED_INDEX} pa=${3:?PORT_A} pb=${4:?PORT_B}
awk -v n="$n" -v m="$measured" -v pa="$pa" -v pb="$pb" '
function ip(net, i) { return net "." int(i / 250) "." (i % 250 + 1) }
BEGIN {
  print "*nat"
  print ":NMBENCH-SERVICES - [0:0]"
  for (i = 0; i < n; i++) {
    print ":NMBENCH-SVC-" i " - [0:0]"
    print ":NMBENCH-SEP-" i "a - [0:0]"
    print ":NMBENCH-SEP-" i "b - [0:0]"
  }
  for (i = 0; i < n; i++)
    print "-A NMBENCH-SERVICES -d " ip("127.96", i) "/32 -p tcp -m tcp --dport 80 -j NMBENCH-SVC-" i
  for (i = 0; i < n; i++) {
    if (i == m) { a = "127.0.0.1:" pa; b = "127.0.0.1:" pb }
    else { a = ip("127.97", i) ":8080"; b = ip("127.98", i) ":8080" }
    print "-A NMBENCH-SVC-" i " -m statistic --mode random --probability 0.50000000000 -j NMBENCH-SEP-" i "a"
    print "-A NMBENCH-SVC-" i " -j NMBENCH-SEP-" i "b"
    print "-A NMBENCH-SEP-" i "a -p tcp -m tcp -j DNAT --to-destination " a
    print "-A NMBENCH-SEP-" i "b -p tcp -m tcp -j DNAT --to-destination " b
  }
  # The jump comes last so that the chain is complete before traffic enters it.
  print "-A OUTPUT -j NMBENCH-SERVICES"
  print "COMMIT"
}'
