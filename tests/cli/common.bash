# common.bash: sourced by the CLI tests (run by ctest with NAS_BIN, NAS_TEST_BIN, NAS_SOURCE_DIR)
set -euo pipefail
: "${NAS_BIN:?NAS_BIN must name the folder of the built tools}"
: "${NAS_SOURCE_DIR:?NAS_SOURCE_DIR must name the source tree}"
export PATH="$NAS_BIN:$PATH"
unset NAS_DB
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fixtures="$NAS_SOURCE_DIR/tests/fixtures"
checks=0

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); }

# run CMD...: runs it, keeping its exit code in rc, stdout in out, stderr in err.
run() {
  set +e
  "$@" >"$tmp/.out" 2>"$tmp/.err"
  rc=$?
  set -e
  out=$(cat "$tmp/.out")
  err=$(cat "$tmp/.err")
}

expect_rc() { [[ "$rc" == "$1" ]] || fail "$2: exit $rc, expected $1; stderr: $err"; ok; }
expect_eq() { [[ "$1" == "$2" ]] || fail "$3: got '$1', expected '$2'"; ok; }
expect_has() { [[ "$1" == *"$2"* ]] || fail "$3: '$2' not found in: $1"; ok; }
# sql DB QUERY: the sqlite3 shell, waiting up to 10 s for a writer (the tools hold short write locks)
sql() { sqlite3 -batch -noheader -cmd ".timeout 10000" "$1" "$2"; }
done_checks() { echo "$(basename "$0"): $checks checks passed"; }

# tiny_study NAME SEED EPOCHS: a study TOML of two-stage conv networks over 96 synthetic 8x8
# samples of 3 classes, trained EPOCHS epochs in batches of 32 (seconds on a CPU); the caller
# appends any further sections.
tiny_study() {
  cat <<EOT
[study]
name = "$1"
seed = $2
[data]
format = "synthetic"
shape = [1, 8, 8]
classes = 3
samples = 96
[space]
family = "cnn"
stages = 2
width = [4, 8]
depth = 1
block = "conv"
[train]
epochs = $3
batch_size = 32
EOT
}

# fm_cnn3_study NAME SEED DIR DATA_KEYS TRAIN_KEYS: a study TOML of the 3-conv network of
# fixtures/fmnist-cnn3.json over the Fashion-MNIST files in DIR, with more [data] and [train] lines.
fm_cnn3_study() {
  cat <<EOT
[study]
name = "$1"
seed = $2
[data]
format = "idx"
train_images = "$3/train-images-idx3-ubyte.gz"
train_labels = "$3/train-labels-idx1-ubyte.gz"
test_images = "$3/t10k-images-idx3-ubyte.gz"
test_labels = "$3/t10k-labels-idx1-ubyte.gz"
$4
[space]
family = "cnn"
stages = 2
stem_width = 16
width = [32, 64]
block = "conv"
kernel = 3
stride = 2
depth = 1
head_width = 0
[train]
$5
EOT
}

# small_cnn_study NAME SEED SAMPLES EPOCHS: a study TOML of tiny CNNs on synthetic 8x8 images
# (3 classes, batch 16); callers append sections such as [slurm].
small_cnn_study() {
  cat <<EOT
[study]
name = "$1"
seed = $2
[data]
format = "synthetic"
shape = [1, 8, 8]
classes = 3
samples = $3
[space]
family = "cnn"
stages = 1
width = [4, 8]
depth = [1, 2]
kernel = [1, 3]
block = ["conv", "dwsep"]
[train]
epochs = $4
batch_size = 16
EOT
}

# long_cnn_study NAME SEED: one network of 2 conv stages on 6,000 synthetic 16x16 images for 3
# epochs, long enough on a CPU to be interrupted after its first epoch.
long_cnn_study() {
  cat <<EOT
[study]
name = "$1"
seed = $2
[data]
format = "synthetic"
shape = [1, 16, 16]
classes = 4
samples = 6000
[space]
family = "cnn"
stages = 2
stem_width = 16
width = [32, 48]
depth = 1
kernel = 3
stride = 1
block = "conv"
[train]
epochs = 3
batch_size = 32
EOT
}

# nb201_table_study NAME SEED: a study TOML of NAS-Bench-201 cells on synthetic CIFAR-shaped data
# (10 classes, 1000 samples), for table mode, where the NAS-Bench-201 table answers instead of
# training; the caller appends [train] and [search].
nb201_table_study() {
  cat <<EOT
[study]
name = "$1"
seed = $2
[data]
format = "synthetic"
shape = [3, 32, 32]
classes = 10
samples = 1000
[space]
family = "nb201"
EOT
}
