#!/usr/bin/env bash
# train_signals: kill tests on real Fashion-MNIST data (a 20,000-sample slice, 3 epochs).
# SIGTERM mid-epoch: the worker checkpoints, returns the trial to 'queued' without counting the
# attempt and exits 0; the next worker resumes it from the checkpoint and finishes it.
# SIGKILL mid-epoch: the trial stays 'running' until its lease expires; the next worker
# reclaims it (attempt 2), resumes from the last epoch's checkpoint and finishes it.
# Both leave exactly one result per (trial, rung, metric) and one row per epoch.
source "$(dirname "$0")/common.bash"
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/train-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist"
worker=
trap '[ -n "$worker" ] && kill -9 "$worker" 2>/dev/null; rm -rf "$tmp"' EXIT

study() {   # study TOML named $1
  fm_cnn3_study "$1" 5 "$fm" "$(printf 'subset = 20000\nvalidation = 0.1')" "$(printf 'epochs = 3\nlease_s = 5')"
}

# start_worker DB LOG: a worker in the background; returns when it has finished epoch 1 and is
# part-way into epoch 2.
start_worker() {
  nas-train --db "$1" --worker --threads 2 >"$2.out" 2>"$2" &
  worker=$!
  for _ in $(seq 1 1200); do
    [ "$(sql "$1" "select count(*) from v_epochs where epoch = 1")" = 1 ] && break
    kill -0 "$worker" 2>/dev/null || fail "the worker exited before epoch 1: $(cat "$2")"
    sleep 0.1
  done
  [ "$(sql "$1" "select count(*) from v_epochs where epoch = 1")" = 1 ] || fail "no epoch 1 within 120 s"
  sleep 0.3
  kill -0 "$worker" 2>/dev/null || fail "the worker finished too soon to be interrupted: $(cat "$2")"
}

# finished DB WHAT: the trial of DB finished after an interruption, once.
finished() {
  expect_eq "$(sql "$1" "select state from trial")" "done" "$2: done"
  expect_eq "$(sql "$1" "select count(*), count(distinct metric) from result")" \
            "$(sql "$1" "select count(distinct metric), count(distinct metric) from result")" "$2: one result per metric"
  expect_eq "$(sql "$1" "select count(*) from result where metric = 'val_acc' and rung = 0")" "1" "$2: one val_acc"
  expect_eq "$(sql "$1" "select group_concat(epoch) from v_epochs")" "1,2,3" "$2: one row per epoch"
  expect_eq "$(sql "$1" "select cast(value as int) from result where metric = 'epochs'")" "3" "$2: 3 epochs"
  expect_eq "$(sql "$1" "select count(*) from event where kind = 'finish'")" "1" "$2: one finish"
  local acc
  acc=$(sql "$1" "select value from result where metric = 'test_acc'")
  awk -v a="$acc" 'BEGIN { exit !(a > 0.8) }' || fail "$2: test accuracy $acc after 3 epochs on 18,000 samples"; ok
}

# --- SIGTERM -------------------------------------------------------------------------------
study term > "$tmp/term.toml"
db="$tmp/term.db"
run nas-sample --db "$db" --config "$tmp/term.toml" --genome "$fixtures/fmnist-cnn3.json" --queue
expect_rc 0 "queue the 3-conv network"
start_worker "$db" "$tmp/term.log"
t0=$(date +%s.%N)
kill -TERM "$worker"
set +e; wait "$worker"; rc=$?; set -e
worker=
t1=$(date +%s.%N)
err=$(cat "$tmp/term.log")
expect_rc 0 "SIGTERM: exit 0"
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 20) }' || fail "SIGTERM: the worker took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s to exit"; ok
expect_has "$err" "checkpointed in epoch " "SIGTERM: checkpointed mid-epoch"
expect_eq "$(sql "$db" "select state, attempts, lease_owner is null from trial")" "queued|0|1" "SIGTERM: queued again, attempt not counted"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'release'")" "1" "SIGTERM: a release event"
expect_eq "$(sql "$db" "select count(*) from result")" "0" "SIGTERM: no results yet"
expect_eq "$(sql "$db" "select count(*) from worker where stopped_at is null")" "0" "SIGTERM: the worker row is stopped"
[ -s "$db.d/checkpoints/trial-1.pt" ] || fail "SIGTERM: no checkpoint"; ok
run nas-train --db "$db" --worker --threads 2
expect_rc 0 "SIGTERM: the next worker"
expect_has "$err" "trial 1: resuming" "SIGTERM: resumed from the checkpoint"
finished "$db" "SIGTERM"
expect_eq "$(sql "$db" "select attempts from trial")" "1" "SIGTERM: one counted attempt"

# --- SIGKILL -------------------------------------------------------------------------------
study kill > "$tmp/kill.toml"
db="$tmp/kill.db"
run nas-sample --db "$db" --config "$tmp/kill.toml" --genome "$fixtures/fmnist-cnn3.json" --queue
expect_rc 0 "queue the 3-conv network"
start_worker "$db" "$tmp/kill.log"
kill -KILL "$worker"
wait "$worker" 2>/dev/null || true
worker=
expect_eq "$(sql "$db" "select state, attempts from trial")" "running|1" "SIGKILL: still running, leased"
expect_eq "$(sql "$db" "select count(*) from worker where stopped_at is null")" "1" "SIGKILL: the dead worker never stopped"
sleep 6   # lease_s = 5
run nas-train --db "$db" --worker --threads 2
expect_rc 0 "SIGKILL: the next worker"
expect_has "$err" "trial 1: resuming" "SIGKILL: resumed from the checkpoint"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'reclaim'")" "1" "SIGKILL: a reclaim event"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'claim'")" "2" "SIGKILL: claimed twice"
expect_eq "$(sql "$db" "select attempts from trial")" "2" "SIGKILL: attempt 2"
finished "$db" "SIGKILL"
done_checks
