#!/usr/bin/env bash
# Quick start, part 2: installs what is needed, builds, and runs every test:
# unit and kernel tests in the release build, the same again under
# ASan+UBSan, and a short run of each fuzz target.
# Kernel tests need root. Set NODEMESH_REQUIRE_PRIVILEGED=1 (CI does) to turn
# a skipped kernel test into a failure.
#   sudo ./scripts/test.sh [--fast]   --fast: release build only
set -euo pipefail
cd "$(dirname "$0")/.."
fast=false
[[ ${1:-} == --fast ]] && fast=true

if [[ $(id -u) -eq 0 ]]; then
  ./scripts/install-deps.sh
else
  echo "test: not root: skipping package installation; kernel tests will skip" >&2
fi

run_suite() {
  local preset=$1
  echo "== build ($preset)"
  ./scripts/build.sh "$preset"
  echo "== test ($preset)"
  ctest --preset "$preset" -j1 --timeout 600
}

run_suite release
if ! $fast; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_suite asan
  echo "== fuzz smoke (20 s per target)"
  ./scripts/build.sh fuzz
  for target in build-fuzz/tests/fuzz/*_fuzz; do
    name=$(basename "$target")
    corpus=tests/fuzz/corpus/${name%_fuzz}
    work=$(mktemp -d)
    [[ -d $corpus ]] && cp -r "$corpus"/. "$work"/
    "$target" -max_total_time=20 -max_len=65536 -print_final_stats=1 "$work" 2>&1 | tail -n 3
    rm -rf "$work"
  done
fi
echo "== all tests passed"
