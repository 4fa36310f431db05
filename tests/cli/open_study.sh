#!/usr/bin/env bash
# open_study: every tool opens a study the same way -- a missing file is exit 2 "no such file",
# a file without a study exit 2 "holds no study" (man minnow.7, OPENING A STUDY)
source "$(dirname "$0")/common.bash"

missing="$tmp/missing.db"
for cmd in "nas-db status" "nas-db count --claimable" "nas-db export" "nas-train --worker" "nas-proxy" \
           "nas-slurm plan" "nas-pareto --objective val_acc:max --objective params:min"; do
  # shellcheck disable=SC2086
  run $cmd --db "$missing"
  expect_rc 2 "$cmd on a missing file"
  expect_has "$err" "cannot open '$missing': no such file" "$cmd: missing-file message"
done
[[ ! -e "$missing" ]] || fail "a tool created '$missing'"; ok

empty="$tmp/empty.db"
: > "$empty"
run nas-train --db "$empty" --worker
expect_rc 2 "nas-train on a file without a study"
expect_has "$err" "'$empty' holds no study: create it with nas-sample --config FILE" "nas-train: no-study message"
for cmd in "nas-db status" "nas-db count --claimable" "nas-proxy" "nas-slurm plan" "nas-slurm status" \
           "nas-pareto --objective val_acc:max --objective params:min"; do
  # shellcheck disable=SC2086
  run $cmd --db "$empty"
  expect_rc 2 "$cmd on a file without a study"
  expect_has "$err" "'$empty' holds no study: create it with nas-sample --config FILE" "$cmd: no-study message"
done
done_checks
