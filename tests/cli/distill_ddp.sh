#!/usr/bin/env bash
# distill_ddp: nas-distill teacher --ranks 2 (issue 15) -- two local Gloo rank processes train one
# teacher: exit 0, one teacher recorded (by rank 0), both ranks log the same train losses
# (their all-reduced sums), the rendezvous file is gone; --ranks for a TorchScript teacher is
# refused (exit 2). Skips (77) in a build without Gloo's headers.
source "$(dirname "$0")/common.bash"

genome='{"family":"cnn","head":{"width":0},"stages":[{"act":"relu","block":"conv","depth":1,"kernel":3,"stride":2,"width":8}],"stem":{"act":"relu","kernel":3,"stride":2,"width":4}}'
echo "$genome" >"$tmp/g.json"
{ small_cnn_study ddp 3 96 3; printf '[distill]\n'; } >"$tmp/s.toml"
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 1
expect_rc 0 "sample a study with [distill]"

run nas-distill teacher --db "$db" --genome "$tmp/g.json" --epochs 3 --ranks 2 --threads 1 --format tsv
if [[ $rc -eq 2 && "$err" == *"built without Gloo"* ]]; then echo "skip: $err"; exit 77; fi
expect_rc 0 "a teacher trained by 2 local ranks"
expect_eq "$(sql "$db" "select count(*) || ' ' || kind || ' ' || epochs from teacher")" "1 minnow 3" "one teacher recorded"
expect_eq "$(grep -c $'^1\tminnow\t' <<<"$out")" "1" "one teacher row printed (by rank 0 only)"
for r in 0 1; do
  expect_eq "$(grep -c "nas-distill rank $r: teacher epoch [123]/3: train loss" <<<"$err")" "3" "rank $r logs its 3 epochs"
done
losses() { grep "nas-distill rank $1: teacher epoch" <<<"$err" | sed 's/.*train loss \([0-9.]*\).*/\1/' | tr '\n' ' '; }
expect_eq "$(losses 1)" "$(losses 0)" "both ranks report the same (all-reduced) loss curve"
expect_has "$err" "nas-distill rank 1: trained; rank 0 records the teacher" "rank 1 leaves the recording to rank 0"
expect_eq "$(find "$db.d/teacher" -name 'ranks-*.store' | wc -l)" "0" "the rendezvous file is removed"
[[ -f "$db.d/$(sql "$db" "select path from teacher")" ]] || fail "no teacher weights"
ok

{ small_cnn_study ts 3 96 3; printf '[distill]\nteacher = "t.pt"\n'; } >"$tmp/ts.toml"
run nas-sample --db "$tmp/ts.db" --config "$tmp/ts.toml" -n 1
run nas-distill teacher --db "$tmp/ts.db" --ranks 2
expect_rc 2 "--ranks without a network to train"
expect_has "$err" "--ranks is for a teacher to train" "--ranks alone: said so"
done_checks
