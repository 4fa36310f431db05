#!/usr/bin/env bash
# export_onnx: random genomes of both families exported as ONNX (opsets 13 and 14, dynamic and
# fixed batch) compute LibTorch's logits within 1e-4 when ONNX Runtime (onnxruntime-node) runs
# them; a perturbed expectation and a fixed-batch model fed a batch are reported as failures.
# Skips (77) when node or onnxruntime-node (scripts/install-onnxruntime) is not installed.
source "$(dirname "$0")/common.bash"
: "${NAS_TEST_BIN:?NAS_TEST_BIN must name the folder of the built test helpers}"

runtime=${NAS_ONNXRUNTIME_DIR:-$NAS_SOURCE_DIR/.deps/node}
if ! command -v node >/dev/null; then
  echo "export_onnx: skipped: node is not installed (Debian: nodejs)"
  exit 77
fi
if [[ ! -f "$runtime/node_modules/onnxruntime-node/package.json" ]]; then
  echo "export_onnx: skipped: onnxruntime-node is not installed in '$runtime' (scripts/install-onnxruntime)"
  exit 77
fi
export NAS_ONNXRUNTIME_DIR=$runtime
check="node $NAS_SOURCE_DIR/tests/helpers/check_onnx.js"

# export NAME ARGS...: export_sample --format onnx ARGS into $tmp/NAME, which must succeed.
export_set() {
  local name=$1
  shift
  run "$NAS_TEST_BIN/export_sample" --format onnx --out "$tmp/$name" "$@"
  expect_rc 0 "export_sample $*"
}

export_set cnn13 --family cnn --count 8 --seed 21
export_set cnn14 --family cnn --count 4 --seed 22 --opset 14
export_set nb201 --family nb201 --count 6 --seed 23
export_set fixed --family cnn --count 2 --seed 24 --static-batch

for set in cnn13 cnn14 nb201; do
  n=$(ls "$tmp/$set" | wc -l)
  run $check "$tmp/$set"/*
  echo "$out" | tail -n 1
  expect_rc 0 "ONNX Runtime on $set: $out"
  expect_has "$out" "check_onnx: $n of $n models match" "$set summary"
done
run $check --per-sample "$tmp/fixed"/*
expect_rc 0 "ONNX Runtime on fixed-batch models one sample at a time: $out"
echo "$out" | tail -n 1

# The model carries its genome; the file names are those the checker looks for.
genome=$(cat "$tmp/nb201/0/genome.json")
grep -aqF "$genome" "$tmp/nb201/0/model.onnx" || fail "genome '$genome' not in the model's metadata"
ok

# A fixed batch is fixed: sixteen inputs at once are refused.
run $check "$tmp/fixed/0"
expect_rc 1 "a fixed-batch model fed a batch"
expect_has "$out" "ERROR" "fixed batch refused"

# The checker fails when one logit is off by 1e-3.
cp -r "$tmp/cnn13/0" "$tmp/off"
node -e '
  const fs = require("fs"), f = process.argv[1], b = fs.readFileSync(f);
  b.writeFloatLE(b.readFloatLE(b.length - 4) + 1e-3, b.length - 4);
  fs.writeFileSync(f, b);' "$tmp/off/expected.npy"
run $check "$tmp/off"
expect_rc 1 "a logit off by 1e-3"
expect_has "$out" "MISMATCH" "mismatch reported"

done_checks
