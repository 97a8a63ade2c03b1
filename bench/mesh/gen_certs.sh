#!/usr/bin/env bash
# Test PKI for bench/mesh/run.sh: an ECDSA P-256 CA and one certificate per pod
# (the same key type nodemesh issues), valid for 2 days.
#
# Usage: gen_certs.sh DIR PODS TRUST_DOMAIN
# Writes DIR/ca.pem, DIR/ca.key, and for i in 1..PODS:
#   DIR/a<i>.pem  client pod i on node A: cert + key, SAN URI spiffe://TD/ns/bench/sa/client-<i>, DNS a<i>.bench.svc
#   DIR/b<i>.pem  server pod i on node B: cert + key, SAN URI spiffe://TD/ns/bench/sa/server-<i>, DNS b<i>.bench.svc
set -euo pipefail
dir=${1:?DIR} pods=${2:?PODS} td=${3:?TRUST_DOMAIN}
mkdir -p "$dir"
cd "$dir"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/O=nodemesh-bench/CN=nodemesh-bench-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem 2>/dev/null

issue() {  # NAME SA
  local name=$1 sa=$2
  openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" 2>/dev/null
  openssl req -new -key "$name.key" -subj "/O=nodemesh-bench/CN=$name" -out "$name.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=URI:spiffe://$td/ns/bench/sa/$sa,DNS:$name.bench.svc" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  cat "$name.crt" "$name.key" >"$name.pem"
  rm -f "$name.csr" "$name.ext"
}
for ((i = 1; i <= pods; i++)); do
  issue "a$i" "client-$i"
  issue "b$i" "server-$i"
done
chmod 600 ./*.key ./*.pem
