#!/usr/bin/env bash
# train_budget: nas-sample --queue --budget N queues candidates for a screening run of N of the
# study's epochs; nas-train trains them N epochs and leaves them paused with their checkpoints.
# A budget beyond train.epochs, or without --queue, is a usage error that writes nothing.
source "$(dirname "$0")/common.bash"
cat > "$tmp/s.toml" <<'EOT'
[study]
name = "budget"
seed = 4
[data]
format = "synthetic"
shape = [1, 8, 8]
classes = 3
samples = 192
[space]
family = "cnn"
stages = 2
width = [4, 8]
depth = 1
block = "conv"
[train]
epochs = 3
batch_size = 32
EOT
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 2 --queue --budget 4
expect_rc 2 "a budget beyond train.epochs"
expect_has "$err" "--budget: 4 epochs is more than the study's train.epochs (3)" "says why"
[ ! -e "$db" ] || fail "the study file was created although the options were refused"; ok
run nas-sample --db "$db" --config "$tmp/s.toml" -n 2 --budget 1
expect_rc 2 "--budget without --queue"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 2 --queue --budget 0
expect_rc 2 "--budget 0"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 2 --queue --budget 1
expect_rc 0 "queue two candidates for 1 epoch"
expect_has "$err" "queued for training (1 epochs)" "says the budget"
expect_eq "$(sql "$db" "select group_concat(state || ':' || rung || ':' || budget) from trial")" "queued:0:1.0,queued:0:1.0" "budget stored"
run nas-sample --db "$db" -n 1 --queue --budget 5
expect_rc 2 "a budget beyond the stored train.epochs"
expect_eq "$(sql "$db" "select count(*) from trial")" "2" "nothing added"
run nas-train --db "$db" --worker --format tsv
expect_rc 0 "train the screening run"
expect_eq "$(sql "$db" "select group_concat(state) from trial")" "paused,paused" "paused at their rung"
expect_eq "$(sql "$db" "select group_concat(cast(value as int)) from result where metric = 'epochs'")" "1,1" "one epoch each"
expect_eq "$(sql "$db" "select count(*) from v_epochs")" "2" "one epoch row each"
expect_eq "$(sql "$db" "select count(*) from artifact where kind = 'checkpoint'")" "2" "checkpoints kept"
# the schedule spans train.epochs: after 1 of 3 cosine epochs the rate has not decayed to 0
lr=$(sql "$db" "select min(lr) from v_epochs")
awk -v a="$lr" 'BEGIN { exit !(a > 0.01) }' || fail "lr after epoch 1 of 3 is $lr"; ok
run nas-train --db "$db" --worker
expect_rc 0 "nothing left to train"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'claim'")" "2" "no claim of a paused trial"
done_checks
