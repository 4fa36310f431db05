#!/usr/bin/env bash
# train_npy: a study over NumPy files trains; NPY files of the wrong dtype, truncated NPY files and
# labels beyond the study's classes give exit 2 with a message naming the file, and the study
# file is left as it was.
source "$(dirname "$0")/common.bash"

# npy FILE DESCR SHAPE BYTE: an NPY v1.0 file whose data is the byte BYTE (octal escape) repeated
# to fill SHAPE ("8, 6, 6") of DESCR ("|u1", "<f8", ...).
npy() {
  local file=$1 descr=$2 shape=$3 byte=$4
  local dict="{'descr': '$descr', 'fortran_order': False, 'shape': ($shape), }"
  local pad=$(( 64 - (10 + ${#dict} + 1) % 64 ))
  local header
  header=$(printf '%s%*s' "$dict" "$pad" '')
  local hlen=$(( ${#header} + 1 ))
  local elems=1 d
  for d in ${shape//,/ }; do elems=$((elems * d)); done
  local esize=${descr:2}
  {
    printf '\223NUMPY\001\000'
    printf "\\$(printf '%03o' $((hlen % 256)))\\$(printf '%03o' $((hlen / 256)))"
    printf '%s\n' "$header"
    head -c $((elems * esize)) /dev/zero | tr '\0' "$byte"
  } > "$file"
}

d="$tmp/data"
mkdir "$d"
# 60 grey 6x6 images, labels 0..2 (int64)
npy "$d/x.npy" "|u1" "60, 6, 6" '\200'
# labels: int64 little-endian, cycling 0, 1, 2
labels() {   # labels FILE N CLASSES [BAD_AT BAD_VALUE]
  local file=$1 n=$2 k=$3 bad_at=${4:--1} bad=${5:-0}
  npy "$file" "<i8" "$n," '\000'
  local dict_len
  dict_len=$(( $(wc -c < "$file") - n * 8 ))
  {
    head -c "$dict_len" "$file"
    local i v
    for ((i = 0; i < n; i++)); do
      v=$(( i == bad_at ? bad : i % k ))
      printf "\\$(printf '%03o' "$v")\\000\\000\\000\\000\\000\\000\\000"
    done
  } > "$file.tmp"
  mv "$file.tmp" "$file"
}
labels "$d/y.npy" 60 3
npy "$d/xt.npy" "|u1" "20, 6, 6" '\100'
labels "$d/yt.npy" 20 3

study() {   # study TOML over images $1 and labels $2, test files in folder $3
  cat <<EOT
[study]
name = "npy"
seed = 2
[data]
format = "npy"
train_images = "$1"
train_labels = "$2"
test_images = "$3/xt.npy"
test_labels = "$3/yt.npy"
validation = 0.2
[space]
family = "cnn"
stages = 1
width = 4
depth = 1
kernel = 3
block = "conv"
[train]
epochs = 1
batch_size = 16
EOT
}

study "$d/x.npy" "$d/y.npy" "$d" > "$tmp/s.toml"
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 2 --queue
expect_rc 0 "a study over NPY files"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'queued'")" "2" "two queued"
run nas-train --db "$db" --worker --format tsv
expect_rc 0 "train on NPY data"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'done'")" "2" "both done"
expect_eq "$(sql "$db" "select count(*) from result where metric = 'val_acc'")" "2" "two val_acc results"
expect_eq "$(sql "$db" "select count(*) from result where metric = 'test_acc'")" "2" "two test_acc results"

# The files change under the study: each error is exit 2, names the file, and touches nothing.
run nas-sample --db "$db" -n 1 --queue
expect_rc 0 "one more queued trial"
before=$(sql "$db" "select group_concat(id || state || attempts) from trial")
cp "$d/x.npy" "$d/x.good"
npy "$d/x.npy" "<f8" "60, 6, 6" '\000'
run nas-train --db "$db" --worker
expect_rc 2 "images of dtype float64"
expect_has "$err" "x.npy': dtype '<f8' is not supported" "names the file and the dtype"
head -c 1000 "$d/x.good" > "$d/x.npy"
run nas-train --db "$db" --worker
expect_rc 2 "truncated images"
expect_has "$err" "x.npy': truncated" "names the file"
cp "$d/x.good" "$d/x.npy"
cp "$d/y.npy" "$d/y.good"
npy "$d/y.npy" "<f4" "60," '\000'
run nas-train --db "$db" --worker
expect_rc 2 "float labels"
expect_has "$err" "y.npy': labels must be integers" "names the file"
labels "$d/y.npy" 60 3 17 7
run nas-train --db "$db" --worker
expect_rc 2 "a label beyond the study's classes"
expect_has "$err" "no longer match its trials" "says the data changed"
expect_eq "$(sql "$db" "select group_concat(id || state || attempts) from trial")" "$before" "trials untouched"
cp "$d/y.good" "$d/y.npy"
run nas-train --db "$db" --worker
expect_rc 0 "the restored files train again"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'done'")" "3" "all three done"
done_checks
