#!/usr/bin/env bash
# train: nas-train --trial on the real Fashion-MNIST files: accuracy after 2 epochs, what the study
# file holds afterwards (results, per-epoch metrics, the checkpoint artifact), a second run that
# has nothing to do, and data files that are corrupt or changed after the study was created.
source "$(dirname "$0")/common.bash"
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/train-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist"

study() {   # study TOML over the data folder $1
  fm_cnn3_study fm-cnn3 1 "$1" "validation = 0.05" "epochs = 2"
}
study "$fm" > "$tmp/s.toml"
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" --genome "$fixtures/fmnist-cnn3.json" --format ids
expect_rc 0 "add the 3-conv network"

run nas-train --db "$db" --trial 1 --format tsv
expect_rc 0 "nas-train --trial 1"
expect_has "$err" "trial 1 epoch 2/2" "a log line per epoch"
expect_eq "$(sql "$db" "select state, attempts from trial where id = 1")" "done|1" "state after training"
acc=$(sql "$db" "select value from result where trial_id = 1 and rung = 0 and metric = 'test_acc'")
awk -v a="$acc" 'BEGIN { exit !(a >= 0.83) }' || fail "test accuracy after 2 epochs is $acc, expected at least 0.83"; ok
expect_has "$out" "$(printf '1\tdone\t2\t')" "the summary row on stdout"
expect_eq "$(sql "$db" "select count(*) from result where trial_id = 1")" "11" "one row per result metric"
expect_eq "$(sql "$db" "select value from result where trial_id = 1 and metric = 'epochs'")" "2.0" "epochs result"
note=$(sql "$db" "select note from result where trial_id = 1 and metric = 'device'")
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then   # --device auto takes the GPU
  expect_has "$note" "cuda:0 (" "device note on a GPU machine"
  expect_has "$note" ", bf16" "precision auto on a GPU"
else
  expect_eq "$note" "cpu, fp32" "device note"
fi
expect_has "$(sql "$db" "select note from result where trial_id = 1 and metric = 'energy_j'")" "" "energy note present"
[ -n "$(sql "$db" "select note from result where trial_id = 1 and metric = 'energy_j' and (value is not null or note like 'unknown: %')")" ] ||
  fail "energy is neither measured nor unknown with a reason"; ok
expect_eq "$(sql "$db" "select count(*) from v_epochs where trial_id = 1 and val_acc is not null and train_loss is not null")" "2" "per-epoch metrics"
expect_eq "$(sql "$db" "select hparams is not null from trial where id = 1")" "1" "hyperparameters kept"
ckpt="$tmp/s.db.d/$(sql "$db" "select path from artifact where trial_id = 1 and kind = 'checkpoint'")"
[ -f "$ckpt" ] || fail "checkpoint '$ckpt' missing"; ok
expect_eq "$(sha256sum "$ckpt" | cut -d' ' -f1)" "$(sql "$db" "select sha256 from artifact where trial_id = 1")" "checkpoint sha256"

run nas-train --db "$db" --trial 1
expect_rc 0 "a done trial: nothing to do"
expect_has "$err" "trial 1 is done: nothing to train" "says so"
run nas-train --db "$db" --worker
expect_rc 0 "an empty queue: nothing to do"
run nas-train --db "$db" --trial 7
expect_rc 2 "no such trial"
expect_has "$err" "has no trial 7" "names the trial"
run nas-train --db "$db" --worker --pack zero
expect_rc 2 "bad --pack"
expect_has "$err" "--pack: expected a number of trainings or auto, got 'zero'" "names the option"
run nas-train --db "$db" --worker --until tomorrow
expect_rc 2 "bad --until"

# Data files broken after the study was created: exit 2 naming the file, the study untouched.
mkdir "$tmp/d"
cp "$fm"/*-ubyte.gz "$tmp/d/"
study "$tmp/d" > "$tmp/c.toml"
cdb="$tmp/c.db"
run nas-sample --db "$cdb" --config "$tmp/c.toml" --genome "$fixtures/fmnist-cnn3.json" --queue
expect_rc 0 "study over a copy of the files"
before=$(sql "$cdb" "select state, attempts from trial")
gzip -dc "$fm/train-images-idx3-ubyte.gz" > "$tmp/images.raw"
gzip -dc "$fm/train-labels-idx1-ubyte.gz" > "$tmp/labels.raw"
head -c 1000000 "$tmp/images.raw" | gzip > "$tmp/d/train-images-idx3-ubyte.gz"
run nas-train --db "$cdb" --worker
expect_rc 2 "truncated images"
expect_has "$err" "train-images-idx3-ubyte.gz" "names the file"
expect_eq "$(sql "$cdb" "select state, attempts from trial")" "$before" "trial untouched"
{ printf 'GZ\x08\x03'; tail -c +5 "$tmp/images.raw"; } | gzip > "$tmp/d/train-images-idx3-ubyte.gz"
run nas-train --db "$cdb" --worker
expect_rc 2 "wrong magic"
expect_has "$err" "magic" "says what is wrong"
cp "$fm/train-images-idx3-ubyte.gz" "$tmp/d/"
{ head -c 8 "$tmp/labels.raw"; printf '\xc8'; tail -c +10 "$tmp/labels.raw"; } | gzip > "$tmp/d/train-labels-idx1-ubyte.gz"
run nas-train --db "$cdb" --worker
expect_rc 2 "a label out of the study's range"
expect_has "$err" "no longer match its trials: they now hold 201 classes" "says what changed"
expect_eq "$(sql "$cdb" "select state, attempts from trial")" "$before" "trial still untouched"
# nas-sample with the study's own configuration costs new candidates for the recorded data:
# files changed since are refused there too, before anything is added
run nas-sample --db "$cdb" --config "$tmp/c.toml" -n 2
expect_rc 2 "sampling into a study whose data changed"
expect_has "$err" "no longer match its trials" "says the data changed"
expect_eq "$(sql "$cdb" "select count(*) from trial")" "1" "nothing added"
done_checks
