#!/usr/bin/env bash
# export_trained: the exporters on a trained network -- the 3-conv CNN trained five epochs on
# Fashion-MNIST (88.5% test accuracy), exported by nas-measure's own code: its int8 TFLite file
# gives LibTorch's top-1 class on 1,000 test images in Arm NN (measured 993 of 1,000 here; the
# issue's goal is 99%, asserted at 98.5% so that another CPU's slightly different training does
# not fail it by one image: after two epochs, with closer logits, it was 98.8%), and its float32
# TFLite and ONNX files give LibTorch's logits within 1e-4 in Arm NN and ONNX Runtime.
source "$(dirname "$0")/common.bash"
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/train-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist"
/usr/bin/python3 -c 'import pyarmnn' 2>/dev/null || { echo "pyarmnn is not installed: skipped"; exit 77; }
export_sample="$NAS_TEST_BIN/export_sample"
check_tflite="$NAS_SOURCE_DIR/tests/helpers/check_tflite.py"

fm_cnn3_study fm-export 1 "$fm" "validation = 0.05" "epochs = 5" > "$tmp/s.toml"
db="$tmp/s.db"
nas-sample --db "$db" --config "$tmp/s.toml" --genome "$fixtures/fmnist-cnn3.json" -q > /dev/null
run nas-train --db "$db" --trial 1
expect_rc 0 "train the 3-conv network five epochs"

run "$export_sample" --study "$db" --trial 1 --format tflite-int8 --inputs 1000 --out "$tmp/int8"
expect_rc 0 "export int8"
run /usr/bin/python3 "$check_tflite" --min-agreement 0.985 "$tmp/int8/0"
expect_rc 0 "int8 in Arm NN: the same top-1 on at least 98.5% of 1,000 test images ($out)"
echo "$out"
run "$export_sample" --study "$db" --trial 1 --format tflite --inputs 200 --out "$tmp/fp32"
expect_rc 0 "export float32"
run /usr/bin/python3 "$check_tflite" "$tmp/fp32/0"
expect_rc 0 "float32 in Arm NN within 1e-4 ($out)"
echo "$out"
expect_eq "$(sql "$db" "select count(*) from artifact where trial_id = 1 and kind in ('tflite','tflite-int8')")" "2" "both exports recorded"
if [ -f "$NAS_SOURCE_DIR/.deps/node/node_modules/onnxruntime-node/package.json" ] && command -v node > /dev/null; then
  run "$export_sample" --study "$db" --trial 1 --format onnx --inputs 200 --out "$tmp/onnx"
  expect_rc 0 "export ONNX"
  run node "$NAS_SOURCE_DIR/tests/helpers/check_onnx.js" "$tmp/onnx/0"
  expect_rc 0 "ONNX in ONNX Runtime within 1e-4 ($out)"
  echo "$out"
fi
done_checks
