#!/usr/bin/env bash
# smoke.sh: the fuzz.smoke test of the NAS_FUZZ build: each target runs its seed corpus and a few
# thousand mutations of it; any crash, sanitizer report or uncaught exception fails the test.
#   smoke.sh FUZZ_BUILD_DIR SOURCE_DIR
set -euo pipefail
bin=${1:?usage: smoke.sh FUZZ_BUILD_DIR SOURCE_DIR}
src=${2:?usage: smoke.sh FUZZ_BUILD_DIR SOURCE_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$src/tests/fuzz/seed-corpus" "$tmp/seeds" "$src"
export NAS_FUZZ_TMP=$tmp
for target in fuzz_config fuzz_genome fuzz_idx_npy; do
  mkdir -p "$tmp/new/$target"
  # New inputs go to the first (scratch) folder; the seeds are only read.
  "$bin/$target" -runs=5000 -seed=1 -max_len=8192 -timeout=10 -rss_limit_mb=2048 -dict="$tmp/seeds/$target.dict" \
    "$tmp/new/$target" "$tmp/seeds/$target" 2>"$tmp/$target.log" || {
    tail -n 40 "$tmp/$target.log" >&2
    echo "fuzz.smoke: $target failed" >&2
    exit 1
  }
  echo "fuzz.smoke: $target: $(grep -o 'Done [0-9]* runs' "$tmp/$target.log")"
done
