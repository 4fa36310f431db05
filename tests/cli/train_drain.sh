#!/usr/bin/env bash
# train_drain: four nas-train processes with --worker --pack 2 drain a queue of 40 tiny trials:
# every trial trained exactly once (one claim, one finish, one result row per metric), no
# database error, and every worker row stopped.
source "$(dirname "$0")/common.bash"
cat > "$tmp/s.toml" <<'EOT'
[study]
name = "drain"
seed = 3
[data]
format = "synthetic"
shape = [1, 8, 8]
classes = 4
samples = 64
[space]
family = "cnn"
stages = [1, 2]
width = [4, 8, 12]
depth = [1, 2]
kernel = [1, 3]
block = ["conv", "dwsep", "residual"]
[train]
epochs = 1
batch_size = 16
lease_s = 30
EOT
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 40 --queue
expect_rc 0 "sample and queue 40 trials"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'queued'")" "40" "queued"
pids=()
for i in 1 2 3 4; do
  nas-train --db "$db" --worker --pack 2 --threads 1 --format tsv >"$tmp/out.$i" 2>"$tmp/err.$i" &
  pids+=($!)
done
for i in 0 1 2 3; do
  wait "${pids[$i]}" || fail "worker $((i + 1)) exited $?: $(cat "$tmp/err.$((i + 1))")"
done; ok
cat "$tmp"/err.* | grep -i "error" && fail "a worker logged an error"; ok
expect_eq "$(sql "$db" "select count(*) from trial where state = 'done'")" "40" "every trial done"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'claim'")" "40" "one claim each"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'finish'")" "40" "one finish each"
expect_eq "$(sql "$db" "select count(distinct trial_id), count(*) from result where metric = 'val_acc'")" "40|40" "one result each"
expect_eq "$(sql "$db" "select count(*) from worker")" "8" "4 processes x 2 trainers"
expect_eq "$(sql "$db" "select count(*) from worker where stopped_at is null")" "0" "every worker stopped"
expect_eq "$(sql "$db" "select count(distinct pid) from worker")" "4" "four processes"
rows=$(cat "$tmp"/out.* | grep -c "	done	" || true)
expect_eq "$rows" "40" "the workers' summaries list 40 trials"
done_checks
