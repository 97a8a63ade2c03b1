#!/usr/bin/env bash
# Schema-validates deploy/kubernetes (see validate_manifests.mjs).
# Usage: validate_manifests.sh [AGENT_BINARY]   (the agent checks the ConfigMap's config)
# Exit 77 (ctest skip) without node/npm, unless NODEMESH_REQUIRE_PRIVILEGED=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "validate_manifests: $tool not found (Node.js >= 20 is needed)" >&2
    [[ ${NODEMESH_REQUIRE_PRIVILEGED:-0} == 1 ]] && exit 1 || exit 77
  fi
done

# npm ci installs exactly package-lock.json; it needs the npm registry once.
if [[ ! -d $here/node_modules/kubernetes-models || ! -d $here/node_modules/js-yaml ]]; then
  if ! npm ci --prefix "$here" --no-audit --no-fund --loglevel=error; then
    echo "validate_manifests: 'npm ci --prefix $here' failed (is the npm registry reachable?);" \
         "the manifests were NOT validated" >&2
    exit 1
  fi
fi

[[ $# -ge 1 ]] && export NODEMESH_AGENT=$1
exec node "$here/validate_manifests.mjs" "$here/../../deploy/kubernetes"
