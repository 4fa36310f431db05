#!/usr/bin/env bash
# train_diverged: a learning rate of 1e6 makes its trial fail with reason 'diverged' (its
# hyperparameters kept), and the worker goes on to train the next trial.
source "$(dirname "$0")/common.bash"
cat > "$tmp/s.toml" <<'EOT'
[study]
name = "diverge"
seed = 2
[data]
format = "synthetic"
shape = [1, 8, 8]
classes = 4
samples = 256
[space]
family = "cnn"
stages = 2
width = [8, 16]
depth = 1
block = ["conv", "residual"]
[train]
epochs = 2
batch_size = 32
EOT
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 2 --queue
expect_rc 0 "sample and queue 2 trials"
sql "$db" "update trial set hparams = json_set(hparams, '$.lr', 1e6) where id = 1"
run nas-train --db "$db" --worker --format tsv
expect_rc 0 "the worker finishes"
expect_eq "$(sql "$db" "select id, state, reason from trial order by id")" "$(printf '1|failed|diverged\n2|done|')" "states"
expect_has "$(sql "$db" "select error from trial where id = 1")" "loss became" "the error says what happened"
expect_eq "$(sql "$db" "select json_extract(hparams, '$.lr') from trial where id = 1")" "1000000.0" "hyperparameters kept"
expect_eq "$(sql "$db" "select attempts from trial where id = 1")" "1" "not retried"
expect_has "$err" "trial 1: failed: diverged" "logged"
run nas-train --db "$db" --trial 1
expect_rc 1 "training a failed trial is refused"
done_checks
