#!/usr/bin/env bash
# queue_concurrency: 16 samplers and 16 workers start at once on one study file that does not
# exist yet. Afterwards: every sampler succeeded, no genome twice, every trial done, claimed once
# and finished once, and every state change is in the event log.
set -euo pipefail

name=queue_concurrency
: "${NAS_BIN:?set NAS_BIN to the tools folder of the build}"
: "${NAS_TEST_BIN:?set NAS_TEST_BIN to the tests folder of the build}"
: "${NAS_SOURCE_DIR:?set NAS_SOURCE_DIR to the source tree}"

procs=16                 # samplers, and as many workers
per_sampler=40           # 16 x 40 = 640 of the 15625 nb201 architectures
expected=$((procs * per_sampler))
sampler="$NAS_BIN/nas-sample"
qs="$NAS_TEST_BIN/queue_stress"
config="$NAS_SOURCE_DIR/tests/fixtures/nb201-small.toml"

fail() { echo "$name: FAIL: $*" >&2; exit 1; }
for f in "$sampler" "$qs"; do [ -x "$f" ] || fail "'$f' is missing (build it first)"; done
[ -f "$config" ] || fail "fixture '$config' is missing"
command -v sqlite3 >/dev/null || fail "the sqlite3 shell is missing"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

db="$tmp/study.db"
gate="$tmp/go"
q() { sqlite3 -batch -noheader -cmd ".timeout 10000" "$db" "$1"; }
# Runs a command once the gate opens, so that all 32 processes start together.
gated() { while [ ! -e "$gate" ]; do sleep 0.01; done; exec timeout 300 "$@"; }

samplers=()
workers=()
for i in $(seq 1 "$procs"); do
  gated "$sampler" --config "$config" --db "$db" -n "$per_sampler" -q \
    >"$tmp/sampler-$i.out" 2>"$tmp/sampler-$i.err" &
  samplers+=($!)
  gated "$qs" work "$db" >"$tmp/worker-$i.out" 2>"$tmp/worker-$i.err" &
  workers+=($!)
done
pids=("${samplers[@]}" "${workers[@]}")
touch "$gate"

failed_samplers=0
for i in "${!samplers[@]}"; do
  rc=0
  wait "${samplers[$i]}" || rc=$?
  if [ "$rc" != 0 ]; then
    failed_samplers=$((failed_samplers + 1))
    echo "$name: sampler $((i + 1)) exited $rc: $(tail -n 3 "$tmp/sampler-$((i + 1)).err")" >&2
  fi
done
touch "$db.samplers-done"

failed_workers=0
for i in "${!workers[@]}"; do
  rc=0
  wait "${workers[$i]}" || rc=$?
  if [ "$rc" != 0 ]; then
    failed_workers=$((failed_workers + 1))
    echo "$name: worker $((i + 1)) exited $rc: $(tail -n 3 "$tmp/worker-$((i + 1)).err")" >&2
  fi
done
pids=()

[ "$failed_samplers" = 0 ] || fail "$failed_samplers of $procs samplers failed"
[ "$failed_workers" = 0 ] || fail "$failed_workers of $procs workers failed"

# The workers' own counts.
claims=0
errors=0
for i in $(seq 1 "$procs"); do
  line=$(tail -n 1 "$tmp/worker-$i.out")
  [[ "$line" =~ ^claims=([0-9]+)\ finishes=([0-9]+)\ errors=([0-9]+)$ ]] ||
    fail "worker $i printed '$line', expected 'claims=N finishes=M errors=E'"
  claims=$((claims + BASH_REMATCH[1]))
  errors=$((errors + BASH_REMATCH[3]))
  [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] || fail "worker $i: $line (claims and finishes differ)"
done

# The study file.
check() {   # check WHAT SQL EXPECTED
  local got
  got=$(q "$2") || fail "$1: query failed: $2"
  [ "$got" = "$3" ] || fail "$1: got '$got', expected '$3'"
}
check "integrity" "PRAGMA integrity_check" ok
check "trials" "SELECT count(*) FROM trial" "$expected"
check "distinct genomes" "SELECT count(DISTINCT hash) = count(*) FROM trial" 1
check "trials not done" "SELECT count(*) FROM trial WHERE state <> 'done'" 0
check "trials with attempts other than 1" "SELECT count(*) FROM trial WHERE attempts <> 1" 0
check "trials still leased" "SELECT count(*) FROM trial WHERE lease_owner IS NOT NULL OR lease_expires IS NOT NULL" 0
check "trials without exactly one claim" \
  "SELECT count(*) FROM trial t WHERE (SELECT count(*) FROM event e WHERE e.trial_id = t.id AND e.kind = 'claim') <> 1" 0
check "trials without exactly one finish" \
  "SELECT count(*) FROM trial t WHERE (SELECT count(*) FROM event e WHERE e.trial_id = t.id AND e.kind = 'finish' AND e.from_state = 'running' AND e.to_state = 'done') <> 1" 0
check "trials without exactly one enqueue" \
  "SELECT count(*) FROM trial t WHERE (SELECT count(*) FROM event e WHERE e.trial_id = t.id AND e.kind = 'enqueue' AND e.from_state = 'sampled' AND e.to_state = 'queued') <> 1" 0
check "enqueue, claim and finish events" \
  "SELECT count(*) FROM event WHERE kind IN ('enqueue', 'claim', 'finish')" "$((3 * expected))"
check "reclaim, release or fail events" \
  "SELECT count(*) FROM event WHERE kind IN ('reclaim', 'release', 'fail')" 0
check "trials by a given origin" "SELECT count(*) FROM trial WHERE origin <> 'sample'" 0
[ "$claims" = "$expected" ] || fail "the workers claimed $claims trials in all, expected $expected"
[ "$errors" = 0 ] || fail "the workers counted $errors errors"

echo "$name: ok ($expected trials, $procs samplers, $procs workers, journal $(q 'PRAGMA journal_mode'))"
