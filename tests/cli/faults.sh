#!/usr/bin/env bash
# faults: a queue of trials trained while the environment fails under the workers (issue 13).
# The study's artifact folder is a small tmpfs the test mounts (root only; skipped otherwise).
# (1) The folder read-only, (2) the disk full: the worker stops with exit 1 naming the file and
# the fault, the trial goes back to the queue with no attempt counted, no other trial is touched
# and no temporary file is left. (3) A worker stopped by SIGTERM mid-trial, its checkpoint then
# truncated: the next worker says the file is unreadable, removes it and trains from scratch.
# (4) A worker killed with SIGKILL: nas-db check names the orphaned trial at once (its process
# is gone), --repair reclaims it; a stale temporary of a killed writer is removed at the claim.
# (5) The environment restored, one worker drains the queue: every trial done exactly once, no
# attempt failed, no temporary file, nas-db check clean.
source "$(dirname "$0")/common.bash"

if [[ "$(id -u)" != 0 ]]; then
  echo "faults: skipped: mounting the small tmpfs needs root"
  exit 77
fi

db="$tmp/s.db"
art="$db.d"
mkdir -p "$art"
mount -t tmpfs -o size=2m tmpfs "$art" || { echo "faults: skipped: cannot mount a tmpfs here"; exit 77; }
trap 'umount "$art" 2>/dev/null; rm -rf "$tmp"' EXIT

cat >"$tmp/s.toml" <<'EOT'
[study]
name = "faults"
seed = 5
[data]
format = "synthetic"
shape = [1, 16, 16]
classes = 3
samples = 3000
[space]
family = "cnn"
stages = 2
width = [8, 16]
depth = 1
block = "conv"
[train]
epochs = 12
batch_size = 64
EOT
run nas-sample --db "$db" --config "$tmp/s.toml" -n 5 --queue
expect_rc 0 "sample 5 queued trials"

attempts() { sql "$db" "select group_concat(state || ':' || attempts, ' ') from (select state, attempts from trial order by id)"; }
no_temps() { expect_eq "$(find "$art" -name '*.tmp' | wc -l)" "0" "$1: no temporary file left"; }
env_fault_run() {  # NAME MESSAGE: one worker meets the fault
  run nas-train --db "$db" --worker --threads 1
  expect_rc 1 "$1: the worker stops with exit 1"
  expect_has "$err" "$2" "$1: the fault is named"
  expect_has "$err" "no attempt was counted" "$1: the user is told the attempt was not counted"
  expect_eq "$(attempts)" "queued:0 queued:0 queued:0 queued:0 queued:0" "$1: every trial queued, no attempt counted"
  expect_eq "$(sql "$db" "select count(*) from event where kind = 'fail'")" "0" "$1: no attempt failed"
  no_temps "$1"
}

# (1) read-only folder
mount -o remount,ro "$art"
env_fault_run "read-only" "read-only file system"
mount -o remount,rw "$art"

# (2) disk full: what is left cannot hold a checkpoint
avail=$(df -k --output=avail "$art" | tail -1)
fallocate -l $(((avail - 24) * 1024)) "$art/filler"
env_fault_run "disk full" "no space left on device"
expect_has "$err" "checkpoints/trial-1.pt" "disk full: the message names the checkpoint"
rm -f "$art/filler"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'release' and detail like '%fault of the environment%'")" \
  "2" "one release per environment fault, with its reason"

# wait_for COND: polls a shell condition for up to 60 s
wait_for() {
  for _ in $(seq 600); do eval "$1" && return 0; sleep 0.1; done
  fail "timed out waiting for: $1"
}
running_ckpt() {  # the checkpoint of the trial that is running, once it exists
  local id
  id=$(sql "$db" "select id from trial where state = 'running' limit 1")
  [[ -n "$id" && -f "$art/checkpoints/trial-$id.pt" ]] && echo "$id"
}

# (3) SIGTERM mid-trial, then the checkpoint truncated
nas-train --db "$db" --worker --threads 1 >"$tmp/w3.out" 2>"$tmp/w3.err" &
pid=$!
wait_for '[[ -n "$(running_ckpt)" ]]'
victim=$(running_ckpt)
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
expect_rc 0 "SIGTERM: the worker stops cleanly"
expect_eq "$(sql "$db" "select state from trial where id = $victim")" "queued" "SIGTERM: trial $victim released"
truncate -s 1000 "$art/checkpoints/trial-$victim.pt"

# (4) SIGKILL while training; a stale temporary of a dead writer for a queued trial
stale=$(sql "$db" "select max(id) from trial where state = 'queued'")
touch -d '-1 hour' "$art/checkpoints/trial-$stale.pt.999999-1.tmp"
nas-train --db "$db" --worker --threads 1 >"$tmp/w4.out" 2>"$tmp/w4.err" &
pid=$!
wait_for 'grep -q "trial $victim: checkpoint .* unreadable" "$tmp/w4.err"'
expect_has "$(cat "$tmp/w4.err")" "trial-$victim.pt' is unreadable" "truncated: the file is named"
expect_has "$(cat "$tmp/w4.err")" "removed; training from scratch" "truncated: the fallback is said"
wait_for '[[ -n "$(running_ckpt)" ]]'
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
killed=$(sql "$db" "select id from trial where state = 'running'")
run nas-db check --db "$db"
expect_rc 1 "SIGKILL: nas-db check finds a problem at once"
expect_has "$out" "orphaned (trials $killed)" "SIGKILL: the orphaned trial is named before its lease expires"
run nas-db check --db "$db" --repair
expect_rc 0 "nas-db check --repair"
expect_eq "$(sql "$db" "select state from trial where id = $killed")" "queued" "repair: the killed worker's trial is queued"

# (5) the environment restored: one worker drains the queue
run nas-train --db "$db" --worker --threads 1 --format tsv
expect_rc 0 "the last worker drains the queue"
expect_has "$err" "removed 1 unfinished checkpoint file" "the stale temporary is removed at the claim"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'done'")" "5" "every trial done"
expect_eq "$(sql "$db" "select count(*) from (select trial_id from event where to_state = 'done' group by trial_id having count(*) = 1)")" \
  "5" "every trial done exactly once"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'fail'")" "0" "no attempt failed"
expect_eq "$(sql "$db" "select count(*) from trial where attempts = case when id = $killed then 2 else 1 end")" "5" \
  "one attempt each, two for the killed trial: no environment fault counted one"
no_temps "the end"
run nas-db check --db "$db"
expect_rc 0 "nas-db check is clean at the end"
done_checks
