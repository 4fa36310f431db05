#!/usr/bin/env bash
# lease_sigkill: a worker killed with SIGKILL while holding a lease leaves its trial running; no
# one else gets it before the lease expires; afterwards the next claim reclaims it (attempt 2),
# and the event log says so.
set -euo pipefail

name=lease_sigkill
: "${NAS_TEST_BIN:?set NAS_TEST_BIN to the tests folder of the build}"
qs="$NAS_TEST_BIN/queue_stress"
[ -x "$qs" ] || { echo "$name: FAIL: '$qs' is missing (build the queue_stress target)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "$name: FAIL: the sqlite3 shell is missing" >&2; exit 1; }

tmp=$(mktemp -d)
holder=
cleanup() {
  if [ -n "$holder" ]; then kill -9 "$holder" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "$name: FAIL: $*" >&2; exit 1; }
q() { sqlite3 -batch -noheader -cmd ".timeout 10000" "$db" "$1"; }
now() { date +%s.%N; }
# lt A B: true when the number A is less than B
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# One run of the scenario with a lease of $1 seconds. Returns 3 when the machine was too slow to
# make the "before expiry" claim inside the lease (the run proves nothing; try a longer lease).
scenario() {
  local lease=$1
  db="$tmp/lease-$lease.db"
  "$qs" init "$db" --trials 3 || fail "queue_stress init failed"

  "$qs" hold "$db" --lease "$lease" >"$tmp/held" 2>"$tmp/hold.err" &
  holder=$!
  local id=
  for _ in $(seq 1 400); do
    id=$(head -n 1 "$tmp/held" 2>/dev/null || true)
    [ -n "$id" ] && break
    kill -0 "$holder" 2>/dev/null || fail "queue_stress hold exited early: $(cat "$tmp/hold.err")"
    sleep 0.025
  done
  [ -n "$id" ] || fail "queue_stress hold printed no trial id within 10 s"
  [ "$id" != none ] || fail "queue_stress hold found nothing to claim"

  kill -9 "$holder"
  wait "$holder" 2>/dev/null || true
  holder=

  local state expires owner
  state=$(q "SELECT state FROM trial WHERE id = $id")
  [ "$state" = running ] || fail "trial $id is '$state' right after its worker was killed, expected 'running'"
  owner=$(q "SELECT lease_owner FROM trial WHERE id = $id")
  [ -n "$owner" ] || fail "trial $id has no lease owner after its worker was killed"
  expires=$(q "SELECT printf('%.6f', lease_expires) FROM trial WHERE id = $id")

  # Before expiry: another worker must not get the held trial.
  local out other_id
  out=$("$qs" claim "$db" --lease "$lease") || fail "queue_stress claim (before expiry) failed"
  local claimed_at
  claimed_at=$(q "SELECT printf('%.6f', max(at)) FROM event WHERE kind = 'claim'")
  if [ "$out" != none ] && ! lt "$claimed_at" "$expires"; then
    return 3
  fi
  other_id=${out%% *}
  [ "$other_id" != "$id" ] || fail "trial $id was claimed by another worker before its lease expired"
  [ "$(q "SELECT state FROM trial WHERE id = $id")" = running ] ||
    fail "trial $id left 'running' before its lease expired"
  [ "$(q "SELECT count(*) FROM event WHERE kind = 'reclaim'")" = 0 ] ||
    fail "a reclaim was logged before the lease expired"

  # After expiry: the next claim reclaims it and gets it, as its second attempt.
  while lt "$(now)" "$(awk -v e="$expires" 'BEGIN { printf "%.6f", e + 0.2 }')"; do sleep 0.1; done
  out=$("$qs" claim "$db" --lease "$lease") || fail "queue_stress claim (after expiry) failed"
  [ "$out" = "$id 2" ] || fail "after the lease expired the claim got '$out', expected '$id 2'"

  [ "$(q "SELECT count(*) FROM event WHERE kind = 'reclaim' AND trial_id = $id AND from_state = 'running' AND to_state = 'queued' AND worker_id = $owner")" = 1 ] ||
    fail "no 'reclaim' event (running -> queued, worker $owner) for trial $id: $(q "SELECT kind, from_state, to_state, worker_id FROM event WHERE trial_id = $id")"
  [ "$(q "SELECT state || ' ' || attempts FROM trial WHERE id = $id")" = "done 2" ] ||
    fail "trial $id ended as '$(q "SELECT state || ' ' || attempts FROM trial WHERE id = $id")', expected 'done 2'"
  [ "$(q "SELECT count(*) FROM event WHERE kind = 'claim' AND trial_id = $id")" = 2 ] ||
    fail "trial $id should have two 'claim' events"
  return 0
}

for lease in 2 5 15; do
  rc=0
  scenario "$lease" || rc=$?
  if [ "$rc" = 0 ]; then
    echo "$name: ok (lease ${lease} s)"
    exit 0
  fi
  [ "$rc" = 3 ] || exit "$rc"
  echo "$name: the machine was too slow to claim within a ${lease} s lease; trying a longer one" >&2
done
fail "could not claim within a lease even at 15 s"
