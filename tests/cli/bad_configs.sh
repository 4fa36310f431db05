#!/usr/bin/env bash
# bad_configs: every malformed configuration gives exit 2, a message naming its place, and
# leaves the study file untouched (not created, or byte-for-byte the same)
source "$(dirname "$0")/common.bash"

# a valid study to try the bad configurations against
good="$tmp/good.db"
run nas-sample --config "$fixtures/nb201-small.toml" --db "$good" -n 5 -q
expect_rc 0 "valid study"
before=$(sha256sum "$good" | cut -d' ' -f1)

n=0
for f in "$fixtures"/bad/*.toml; do
  want=$(head -1 "$f" | sed 's/^# expect: //')
  name=$(basename "$f")
  run nas-sample --config "$f" --db "$tmp/new.db" -n 3
  expect_rc 2 "$name"
  expect_has "$err" "$want" "$name message"
  expect_has "$err" "nas-sample: error: " "$name prefix"
  [[ -z "$out" ]] || fail "$name printed data: $out"
  [[ ! -e "$tmp/new.db" ]] || fail "$name created the study file"
  run nas-sample --config "$f" --db "$good" -n 3 --replace-config
  expect_rc 2 "$name against an existing study"
  n=$((n + 1))
done
[[ $n -ge 20 ]] || fail "only $n bad configurations"

# bad arguments: place is the argument, or FILE:LINE for genome files
run nas-sample --db "$good" --arch '|nor_conv_3x3~0|+|none~0|'
expect_rc 2 "bad arch"
expect_has "$err" "--arch: bad architecture string '|nor_conv_3x3~0|+|none~0|'" "bad arch message"
printf '%s\n' '{"family":"nb201","ops":["none","none","none","none","none","none"]}' '{"family":"nb201","ops":["none"]}' > "$tmp/g.jsonl"
run nas-sample --db "$good" --genome "$tmp/g.jsonl"
expect_rc 2 "bad genome line"
expect_has "$err" "g.jsonl:2: bad genome: nb201 'ops' must be an array of 6 operations" "genome line place"
run nas-sample --db "$good" --genome "$tmp/missing.jsonl"
expect_rc 2 "missing genome file"
run nas-sample --config "$tmp/missing.toml" --db "$tmp/new.db" -n 1
expect_rc 2 "missing config"
expect_has "$err" "cannot open '$tmp/missing.toml': no such file" "missing config message"
run nas-sample --db "$good" -n 0
expect_rc 2 "nothing to do"
run nas-sample --db "$good" -n 3 --format xml
expect_rc 2 "bad format"
run nas-sample --db "$good" --bogus
expect_rc 2 "unknown option"
run nas-sample --db "$tmp/new.db" -n 3
expect_rc 2 "no study file and no --config"
expect_has "$err" "give --config FILE to create the study" "missing study message"
run nas-sample -n 3
expect_rc 2 "no db"
expect_has "$err" "give --db PATH or set NAS_DB" "no db message"
[[ ! -e "$tmp/new.db" ]] || fail "a bad argument created a study file"

after=$(sha256sum "$good" | cut -d' ' -f1)
expect_eq "$after" "$before" "the existing study file is unchanged"
expect_eq "$(sql "$good" 'select count(*) from trial')" "5" "trial count"
done_checks
