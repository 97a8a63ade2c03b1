#!/usr/bin/env bash
# Makes the one CA every node of a mesh shares: DIR/ca.pem (certificate) and
# DIR/ca-key.pem (unencrypted ECDSA P-256 key, mode 0600), the two files
# `mesh.ca.certFile` / `mesh.ca.keyFile` name (docs/CONFIG.md). Nodes with
# different CAs refuse each other; without one, each agent makes its own
# development CA. The e2e tests make their CAs with this script.
#
# Usage: deploy/make-mesh-ca.sh DIR [--days N] [--name CN]
#   --days  validity of the CA (default 3650); the agent issues workload
#           certificates from it for mesh.certificateTtlSeconds each
#   --name  the CA's common name (default "nodemesh mesh CA")
# Then, on VMs: copy both files to every node (readable by root only) and set
# mesh.ca; on Kubernetes:
#   kubectl -n nodemesh create secret generic nodemesh-ca --from-file=DIR/ca.pem --from-file=DIR/ca-key.pem
set -euo pipefail

usage() { sed -n '2,15p' "$0" >&2; exit 2; }
[[ $# -ge 1 && $1 != -* ]] || usage
DIR=$1; shift
DAYS=3650 NAME="nodemesh mesh CA"
while (($#)); do
  case $1 in
    --days) DAYS=${2:?--days needs a value}; shift 2 ;;
    --name) NAME=${2:?--name needs a value}; shift 2 ;;
    *) usage ;;
  esac
done
[[ $DAYS =~ ^[0-9]+$ && $DAYS -ge 1 ]] || { echo "make-mesh-ca: --days must be a positive integer, got '$DAYS'" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make-mesh-ca: openssl is not installed (apt install openssl)" >&2; exit 1; }
for f in "$DIR/ca.pem" "$DIR/ca-key.pem"; do
  [[ -e $f ]] && { echo "make-mesh-ca: $f exists; not overwriting a CA (move it away first)" >&2; exit 1; }
done
mkdir -p "$DIR"
# The key is created unreadable by others before anything is written to it.
(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$DIR/ca-key.pem" -out "$DIR/ca.pem" -days "$DAYS" -subj "/O=nodemesh/CN=$NAME" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null) ||
  { echo "make-mesh-ca: openssl failed to make the CA in $DIR" >&2; exit 1; }
chmod 0644 "$DIR/ca.pem"
echo "make-mesh-ca: $DIR/ca.pem and $DIR/ca-key.pem (valid $DAYS days): give every node both" >&2
