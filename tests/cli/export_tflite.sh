#!/usr/bin/env bash
# export_tflite: TFLite files of random genomes of both families, float32 and int8, run by Arm NN
# (Debian's python3-pyarmnn 20.08, TfLite parser + CpuRef backend) give LibTorch's logits: float32
# within 1e-4 (relative beyond 1), int8 the same top-1 on most images; the checker fails on logits
# that are off by 1e-3 or on classes in the wrong order; flatc decodes a file against the schema
# subset with version 3, the empty buffer 0, both operator-code fields and NHWC input.
# Skips (77) where pyarmnn is not installed.
source "$(dirname "$0")/common.bash"
: "${NAS_TEST_BIN:?NAS_TEST_BIN must name the folder of the built test helpers}"
py=/usr/bin/python3
check="$NAS_SOURCE_DIR/tests/helpers/check_tflite.py"
if ! "$py" -c 'import pyarmnn' >/dev/null 2>&1; then
  echo "export_tflite: skipped: python3-pyarmnn is not installed"
  exit 77
fi

for family in cnn nb201; do
  for format in tflite tflite-int8; do
    run "$NAS_TEST_BIN/export_sample" --format "$format" --family "$family" --count 4 --seed 21 --out "$tmp/$family-$format"
    expect_rc 0 "export_sample $family $format"
    expect_eq "$(wc -l <<<"$out")" 4 "one line per genome ($family $format)"
    [[ -s "$tmp/$family-$format/3/model.tflite" ]] || fail "no model.tflite for $family $format"
    ok
  done
done

# float32: every model within the tolerance
run "$py" "$check" "$tmp"/cnn-tflite/* "$tmp"/nb201-tflite/*
echo "$out"
expect_rc 0 "float32 models against LibTorch"
expect_eq "$(grep -c $'\tfloat32\t.*\tok$' <<<"$out")" 8 "eight float32 models pass"

# int8: most images keep LibTorch's class (random networks have close logits: a threshold well
# above chance, 0.1), and no model's logits are off by more than a tenth of their range
run "$py" "$check" --min-agreement 0.85 --max-rel-error 0.1 "$tmp"/cnn-tflite-int8/* "$tmp"/nb201-tflite-int8/*
echo "$out"
expect_rc 0 "int8 models against LibTorch"
expect_eq "$(grep -c $'\tint8\t.*\tok$' <<<"$out")" 8 "eight int8 models pass"
expect_has "$out" "int8 top-1 agreement" "the agreement is reported"

# the checker can fail: one logit off by 1e-3 (float32), the classes reversed (int8)
cp -r "$tmp/cnn-tflite/0" "$tmp/off"
cp -r "$tmp/cnn-tflite-int8/0" "$tmp/reversed"
"$py" - "$tmp/off/expected.npy" "$tmp/reversed/expected.npy" <<'EOF'
import sys
import numpy as np
e = np.load(sys.argv[1]); e[3, 2] += 1e-3; np.save(sys.argv[1], e)
r = np.load(sys.argv[2]); np.save(sys.argv[2], np.ascontiguousarray(r[:, ::-1]))
EOF
run "$py" "$check" "$tmp/off"
expect_rc 1 "a logit off by 1e-3 fails"
expect_has "$out" "FAIL" "the failing model is named"
run "$py" "$check" --min-agreement 0.85 --max-rel-error 0.1 "$tmp/reversed"
expect_rc 1 "reversed classes fail"

# structure, decoded by flatc against the schema subset
for model in "$tmp/nb201-tflite/0" "$tmp/cnn-tflite-int8/1"; do
  mkdir -p "$model/json"
  run flatc --json --strict-json --raw-binary -o "$model/json" "$NAS_SOURCE_DIR/lib/nas/model/tflite_schema.fbs" -- "$model/model.tflite"
  expect_rc 0 "flatc decodes $model"
  run "$py" - "$model/json/model.json" "$model/input.npy" <<'EOF'
import json, sys
import numpy as np
m = json.load(open(sys.argv[1]))
codes = {"ADD": 0, "AVERAGE_POOL_2D": 1, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4, "FULLY_CONNECTED": 9,
         "LOGISTIC": 14, "MUL": 18, "RELU": 19, "RELU6": 21, "RESHAPE": 22, "PAD": 34, "MEAN": 40, "HARD_SWISH": 117}
assert m["version"] == 3, m["version"]
assert m["buffers"][0] in ({}, {"data": []}), m["buffers"][0]
assert len(m["subgraphs"]) == 1
for c in m["operator_codes"]:
    assert c["deprecated_builtin_code"] == codes[c["builtin_code"]], c
sg = m["subgraphs"][0]
n, ch, h, w = np.load(sys.argv[2]).shape
assert sg["tensors"][sg["inputs"][0]]["shape"] == [1, h, w, ch], sg["tensors"][sg["inputs"][0]]
int8 = sg["tensors"][sg["inputs"][0]].get("type") == "INT8"
for t in sg["tensors"]:
    kind = t.get("type", "FLOAT32")
    assert kind in (("INT8", "INT32") if int8 else ("FLOAT32", "INT32")), (t["name"], kind)
    if int8:   # a quantisation table on every tensor of an int8 model
        q = t["quantization"]
        assert len(q["scale"]) == len(q["zero_point"]) >= 1, t["name"]
print("structure ok:", len(sg["tensors"]), "tensors,", len(sg["operators"]), "operators")
EOF
  expect_rc 0 "structure of $model"
  expect_has "$out" "structure ok" "structure of $model"
done

done_checks
