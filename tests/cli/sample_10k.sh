#!/usr/bin/env bash
# sample_10k: 10,000 candidates of the example Fashion-MNIST space are unique, respect every
# constraint of the study, and are identical for the same seed
source "$(dirname "$0")/common.bash"
cfg="$NAS_SOURCE_DIR/examples/fashion-mnist/study.toml"
[[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] ||
  fail "dataset-fashion-mnist is not installed (scripts/install-deps installs it)"

for db in "$tmp/a.db" "$tmp/b.db"; do
  run nas-sample --config "$cfg" --db "$db" -n 10000 -q
  expect_rc 0 "sample 10000 into $(basename "$db")"
  expect_eq "$(echo "$out" | wc -l)" "10000" "10000 ids"
done
db="$tmp/a.db"
expect_eq "$(sql "$db" 'select count(*), count(distinct hash), count(distinct genome) from trial')" "10000|10000|10000" "unique"
limit() { grep -E "^$1 *=" "$cfg" | sed 's/.*= *//'; }
expect_eq "$(sql "$db" "select count(*) from trial where params > $(limit max_params) or macs > $(limit max_macs)
  or peak_act_bytes > $(limit max_peak_activation_bytes) or weight_bytes > $(limit max_weight_bytes)")" "0" "constraints"
# the first stage's override (stride 1, narrow widths) holds in every genome
expect_eq "$(sql "$db" "select count(*) from trial where json_extract(genome, '\$.stages[0].stride') <> 1
  or json_extract(genome, '\$.stages[0].width') not in (8, 12, 16, 24)")" "0" "per-stage choices"
expect_eq "$(sql "$db" "select count(*) from trial where json_array_length(genome, '\$.stages') not between 2 and 4")" "0" "stage count"
a=$(sql "$tmp/a.db" 'select genome from trial order by id' | sha256sum)
b=$(sql "$tmp/b.db" 'select genome from trial order by id' | sha256sum)
expect_eq "$a" "$b" "same seed, same 10,000 candidates"
done_checks
