#!/usr/bin/env bash
# bad_args: command-line values and environment variables a tool reads are checked where they
# enter (issue 13, items 3, 8, 9, 10, 12, 13, 14, and 15's messages: subcommands, folders,
# corrupt gzip files, files without images): exit 2 with a message that names the option,
# variable or config key and says what it must be; nothing is written, nothing is clamped or
# ignored.
source "$(dirname "$0")/common.bash"
tiny_study args 5 1 > "$tmp/s.toml"
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 2 --queue
expect_rc 0 "a study of two queued trials"
before=$(sql "$db" "select group_concat(id || state || attempts) from trial")

# 3, 9: thread counts, trial counts and grace periods out of range (were a LibTorch abort, or
# accepted and silently meaningless)
for bad in 0 -1 x; do
  run nas-train --db "$db" --worker --threads "$bad"
  expect_rc 2 "nas-train --threads $bad"
  expect_has "$err" "expected a whole number from 1 to 1024, got '$bad'" "--threads $bad says what it must be"
done
run nas-train --db "$db" --worker --max-trials -1
expect_rc 2 "--max-trials -1"
expect_has "$err" "--max-trials" "names the option"
run nas-train --db "$db" --worker --grace -5
expect_rc 2 "--grace -5"
expect_has "$err" "expected a number of at least 0, got '-5'" "says what --grace must be"
run nas-db status --db "$db" --events -3
expect_rc 2 "--events -3"
run nas-proxy --db "$db" --threads -2
expect_rc 2 "nas-proxy --threads -2"
expect_eq "$(sql "$db" "select group_concat(id || state || attempts) from trial")" "$before" "nothing trained or changed"

# 12, 13: sample counts and budgets: no 309-digit range, no clamping to INT64_MAX
run nas-sample --db "$db" -n 99999999999999999999
expect_rc 2 "-n beyond 64 bits"
expect_has "$err" "expected a whole number from 0 to 100000000, got '99999999999999999999'" "refused, not clamped"
run nas-sample --db "$db" -n 2 --queue --budget 0
expect_rc 2 "--budget 0"
expect_has "$err" "--budget" "names the option"
[[ "$err" != *"1797693"* ]] || fail "--budget 0 prints the largest double: $err"; ok

# 8: the common options after a subcommand too
run nas-db status --db "$db" -q
expect_rc 0 "nas-db status -q"
run nas-db count -v --db "$db"
expect_rc 0 "nas-db count -v"
expect_eq "$out" "2" "counts"
run nas-db check --version
expect_rc 0 "nas-db check --version"
expect_has "$out" "minnow " "prints the version"
run nas-slurm status --db "$db" -q
expect_rc 0 "nas-slurm status -q"

# 10: a folder, or input without a genome, is an error, not a silent success
mkdir "$tmp/dir"
run nas-sample --db "$db" --genome "$tmp/dir"
expect_rc 2 "--genome DIR"
expect_has "$err" "is a directory" "says so"
run nas-sample --db "$db" --genome - < /dev/null
expect_rc 2 "--genome - with nothing on stdin"
expect_has "$err" "holds no genome" "says so"
expect_eq "$(sql "$db" "select count(*) from trial")" "2" "nothing added"

# 15: an unknown subcommand is named (was "a subcommand is required"); a folder given as a
# data file is called a folder (was "file too short for an IDX header")
run nas-db stats --db "$db"
expect_rc 2 "nas-db stats"
expect_has "$err" "unknown subcommand 'stats', did you mean 'status'?" "names it and suggests"
run nas-slurm plna --db "$db"
expect_rc 2 "nas-slurm plna"
expect_has "$err" "unknown subcommand 'plna'" "names it"
fmd=/usr/share/datasets/fashion-mnist
cat > "$tmp/dir.toml" <<EOT
[study]
name = "dir"
seed = 1
[data]
format = "idx"
train_images = "$tmp/dir"
train_labels = "$fmd/train-labels-idx1-ubyte.gz"
test_images = "$fmd/t10k-images-idx3-ubyte.gz"
test_labels = "$fmd/t10k-labels-idx1-ubyte.gz"
[space]
family = "cnn"
EOT
run nas-sample --db "$tmp/dir.db" --config "$tmp/dir.toml" -n 1
expect_rc 2 "a folder as the training images"
expect_has "$err" "key 'data.train_images': '$tmp/dir' is a directory, not a data file" "says so at the key"
[ ! -e "$tmp/dir.db" ] || fail "a study file was created"; ok

# 15: a gzip file whose CRC or data are damaged is called corrupt (was "truncated"), at its key,
# when the study is created and when a worker checks the files again; a file without images is
# blamed at its own key (was data.validation)
# flip_crc FILE: inverts the first byte of a gzip file's CRC-32 (its last 8 bytes: CRC, length)
flip_crc() {
  local at byte
  at=$(( $(stat -c %s "$1") - 8 ))
  byte=$(od -An -tu1 -j "$at" -N1 "$1" | tr -d ' ')
  printf "\\$(printf '%03o' $((byte ^ 255)))" | dd of="$1" bs=1 seek="$at" conv=notrunc status=none
}
# idx_study NAME TRAIN_IMAGES TRAIN_LABELS: a study of the files, tested on Fashion-MNIST's
idx_study() {
  cat <<EOT
[study]
name = "$1"
seed = 1
[data]
format = "idx"
train_images = "$2"
train_labels = "$3"
test_images = "$fmd/t10k-images-idx3-ubyte.gz"
test_labels = "$fmd/t10k-labels-idx1-ubyte.gz"
[space]
family = "cnn"
stages = 1
width = 4
depth = 1
block = "conv"
[train]
epochs = 1
EOT
}
mkdir "$tmp/gz"
for key in images labels; do
  cp "$fmd/t10k-images-idx3-ubyte.gz" "$fmd/t10k-labels-idx1-ubyte.gz" "$tmp/gz/"
  file="$tmp/gz/t10k-$key-idx$([[ $key == images ]] && echo 3 || echo 1)-ubyte.gz"
  flip_crc "$file"
  idx_study crc "$tmp/gz/t10k-images-idx3-ubyte.gz" "$tmp/gz/t10k-labels-idx1-ubyte.gz" > "$tmp/crc.toml"
  run nas-sample --db "$tmp/crc.db" --config "$tmp/crc.toml" -n 1
  expect_rc 2 "a CRC-corrupt $key file"
  expect_has "$err" "key 'data.train_$key': '$file': corrupt gzip data (CRC mismatch)" "called corrupt at its key"
  [[ "$err" != *truncated* ]] || fail "a CRC-corrupt $key file called truncated: $err"; ok
  [ ! -e "$tmp/crc.db" ] || fail "a study file was created"; ok
done
cp "$fmd/t10k-images-idx3-ubyte.gz" "$fmd/t10k-labels-idx1-ubyte.gz" "$tmp/gz/"
run nas-sample --db "$tmp/crc.db" --config "$tmp/crc.toml" -n 1 --queue -q
expect_rc 0 "a study over the intact files"
flip_crc "$tmp/gz/t10k-images-idx3-ubyte.gz"
run nas-train --db "$tmp/crc.db" --worker
expect_rc 2 "a worker over a file damaged since"
expect_has "$err" "key 'data.train_images': '$tmp/gz/t10k-images-idx3-ubyte.gz': corrupt gzip data (CRC mismatch)" "the worker calls it corrupt at its key"
expect_eq "$(sql "$tmp/crc.db" "select state || attempts from trial")" "queued0" "the trial is untouched"
printf '\x00\x00\x08\x03\x00\x00\x00\x00\x00\x00\x00\x1c\x00\x00\x00\x1c' | gzip -n > "$tmp/gz/none-images.gz"
printf '\x00\x00\x08\x01\x00\x00\x00\x00' | gzip -n > "$tmp/gz/none-labels.gz"
idx_study none "$tmp/gz/none-images.gz" "$tmp/gz/none-labels.gz" > "$tmp/none.toml"
run nas-sample --db "$tmp/none.db" --config "$tmp/none.toml" -n 1
expect_rc 2 "a training file without images"
expect_has "$err" "none.toml:6:16: key 'data.train_images': '$tmp/gz/none-images.gz' holds no images" "blamed at its own key"

# 14: environment variables are validated like options
run env SLURM_JOB_END_TIME=soon nas-train --db "$db" --worker
expect_rc 2 "SLURM_JOB_END_TIME=soon"
expect_has "$err" "SLURM_JOB_END_TIME: expected Unix seconds, got 'soon'" "names the variable"
run env NAS_PEAK_FLOPS=fast nas-train --db "$db" --worker
expect_rc 2 "NAS_PEAK_FLOPS=fast"
expect_has "$err" "NAS_PEAK_FLOPS: expected the device's peak FLOP/s as a positive number, got 'fast'" "names the variable"
expect_eq "$(sql "$db" "select group_concat(id || state || attempts) from trial")" "$before" "nothing trained"
done_checks
