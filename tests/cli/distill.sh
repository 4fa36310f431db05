#!/usr/bin/env bash
# distill: nas-distill as a user runs it (issue 15).
# (1) Refusals, exit 2, nothing recorded or claimed: no [distill] section, no teacher yet, a
# TorchScript teacher of another task (5 classes for 3), a file that is not TorchScript,
# --epochs without a network to train. (2) A TorchScript teacher trained elsewhere: measured,
# recorded with cached soft targets; every trial distils from it and says so in its results.
# (3) Cached soft targets damaged, or the online teacher's file replaced: the worker refuses
# (exit 2) and the queued trials keep their attempts. (4) SIGKILL, then SIGTERM mid-trial: the
# trial is reclaimed, released, and resumed from its checkpoint each time, as nas-train's. (5) On a Fashion-MNIST slice, a tiny
# student distilled from a trained minnow teacher beats the same student trained alone (same
# seed, initial weights and epochs) by more than 3 points of validation accuracy; --report pairs them.
source "$(dirname "$0")/common.bash"

make_teacher="$NAS_TEST_BIN/make_teacher"
attempts() { sql "$1" "select group_concat(state || ':' || attempts, ' ') from (select state, attempts from trial order by id)"; }

# (1) refusals
small_cnn_study plain 3 96 2 >"$tmp/plain.toml"
run nas-sample --db "$tmp/plain.db" --config "$tmp/plain.toml" -n 2 --queue
run nas-distill --db "$tmp/plain.db" --worker
expect_rc 2 "no [distill] section"
expect_has "$err" "has no [distill] section" "no [distill]: said so"

{ small_cnn_study ts 3 96 2; printf '[distill]\nteacher = "t.pt"\n'; } >"$tmp/ts.toml"
"$make_teacher" "$tmp/t.pt" 3 64
db="$tmp/ts.db"
run nas-sample --db "$db" --config "$tmp/ts.toml" -n 3 --queue
expect_rc 0 "sample a study with [distill]"
run nas-distill --db "$db" --worker
expect_rc 2 "a worker before any teacher"
expect_has "$err" "has no teacher yet: run 'nas-distill teacher" "no teacher: the fix is named"
run nas-distill teacher --db "$db" --epochs 3
expect_rc 2 "--epochs without --genome or --arch"
cp "$tmp/t.pt" "$tmp/good.pt"
"$make_teacher" "$tmp/t.pt" 5 64
run nas-distill teacher --db "$db"
expect_rc 2 "a teacher of 5 classes for a study of 3"
expect_has "$err" "gives an output of shape [4, 5] for 4 samples; the study has 3 classes" "mismatch: shapes named"
echo "not a model" >"$tmp/t.pt"
run nas-distill teacher --db "$db"
expect_rc 2 "a teacher file that is not TorchScript"
expect_has "$err" "teacher '$tmp/t.pt': not a TorchScript module" "not TorchScript: the file is named"
expect_eq "$(sql "$db" "select count(*) from teacher")" "0" "no teacher recorded by a refusal"
expect_eq "$(attempts "$db")" "queued:0 queued:0 queued:0" "nothing claimed by a refusal"

# (2) a TorchScript teacher: recorded with cached soft targets (the data is not augmented)
cp "$tmp/good.pt" "$tmp/t.pt"
run nas-distill teacher --db "$db" --format tsv
expect_rc 0 "record the TorchScript teacher"
expect_has "$out" $'1\ttorchscript\t'"$tmp/t.pt"$'\t3\t' "the teacher's row"
soft=$(sql "$db" "select soft_targets from teacher where id = 1")
[[ -f "$db.d/$soft" ]] || fail "no cached soft targets at $db.d/$soft"
ok
# nas-slurm: the array of a study with [distill] runs nas-distill workers
run nas-slurm plan --db "$db" --stages train --local
expect_rc 0 "plan a distillation study"
expect_has "$out" 'nas-distill --db "$db" --worker' "the rendered array runs nas-distill"
run nas-slurm plan --db "$tmp/plain.db" --stages train --local
expect_has "$out" 'nas-train --db "$db" --worker' "a study without [distill] runs nas-train"

run nas-distill --db "$db" --worker --threads 1 --format tsv
expect_rc 0 "three students distil"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'done'")" "3" "every trial done"
expect_eq "$(sql "$db" "select count(*) from result where metric = 'distilled' and value = 1 and note like 'kd T=4 alpha=0.9, cached from teacher 1 (torchscript%'")" \
  "3" "every trial records its distillation and teacher"

# [distill] trials = "searched": each trial's gene is stored in trial.hparams and the worker
# follows it. Trials 1 and 2 get the opposite of their drawn gene by hand (as breeding may give
# a child), so a worker that redrew the gene instead of reading it would fail here.
{ small_cnn_study gene 3 96 2; printf '[distill]\nteacher = "t.pt"\ntrials = "searched"\n'; } >"$tmp/gene.toml"
run nas-sample --db "$tmp/gene.db" --config "$tmp/gene.toml" -n 4 --queue
expect_eq "$(sql "$tmp/gene.db" "select count(*) from trial where json_type(hparams, '$.distill') in ('true', 'false')")" "4" \
  "every sampled trial stores its gene"
drawn=$(sql "$tmp/gene.db" "select group_concat(g, ' ') from (select json_extract(hparams, '$.distill') as g from trial where id in (1, 2) order by id)")
sql "$tmp/gene.db" "update trial set hparams = json_set(hparams, '$.distill',
  json(case json_extract(hparams, '$.distill') when 1 then 'false' else 'true' end)) where id in (1, 2)"
run nas-distill teacher --db "$tmp/gene.db"
expect_rc 0 "the searched study's teacher"
run nas-distill --db "$tmp/gene.db" --worker --threads 1
expect_rc 0 "the searched study's trials"
expect_eq "$(sql "$tmp/gene.db" "select group_concat(v, ' ') from (select t.id || ':' || (json_extract(t.hparams, '$.distill') = r.value) as v
  from trial t join result r on r.trial_id = t.id and r.metric = 'distilled' order by t.id)")" "1:1 2:1 3:1 4:1" \
  "each trial distilled exactly when its gene says so"
expect_eq "$(sql "$tmp/gene.db" "select group_concat(1 - r.value, ' ') from (select value from result where metric = 'distilled' and trial_id in (1, 2) order by trial_id) r")" \
  "$(sed 's/\b1\b/1.0/g; s/\b0\b/0.0/g' <<<"$drawn")" "trials 1 and 2 did the opposite of their first draw"

# (3) damaged soft targets: refused, nothing claimed
run nas-sample --db "$db" -n 2 --queue
printf '\x01' | dd of="$db.d/$soft" bs=1 seek=100 conv=notrunc 2>/dev/null
run nas-distill --db "$db" --worker
expect_rc 2 "damaged soft targets"
expect_has "$err" "the cached soft targets are not those the study recorded (sha256 differs)" "damaged: said so"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'queued' and attempts = 0")" "2" "damaged: nothing claimed"

# the online teacher's file replaced after it was recorded
{ small_cnn_study online 3 96 2; printf '[distill]\nteacher = "t.pt"\ntargets = "online"\nloss = "dkd"\n'; } >"$tmp/online.toml"
run nas-sample --db "$tmp/online.db" --config "$tmp/online.toml" -n 2 --queue
run nas-slurm submit --db "$tmp/online.db" --stages train --local
expect_rc 2 "submitting a distillation study without a teacher"
expect_has "$err" "has no teacher yet: run 'nas-distill teacher" "submit without a teacher: the fix is named"
run nas-distill teacher --db "$tmp/online.db"
expect_rc 0 "record an online teacher"
expect_eq "$(sql "$tmp/online.db" "select soft_targets is null from teacher")" "1" "online: no soft targets cached"
"$make_teacher" "$tmp/t.pt" 3 64 99
run nas-distill --db "$tmp/online.db" --worker
expect_rc 2 "the teacher's file replaced"
expect_has "$err" "changed since the study recorded it (sha256 differs)" "replaced: said so"
cp "$tmp/good.pt" "$tmp/t.pt"
run nas-distill --db "$tmp/online.db" --worker --threads 1
expect_rc 0 "the recorded teacher back: the students distil online with DKD"
expect_eq "$(sql "$tmp/online.db" "select count(*) from result where metric = 'distilled' and note like 'dkd T=4 alpha=1 beta=8 warm-up 20 epochs, online%'")" \
  "2" "online DKD recorded"

# (4) SIGTERM mid-trial: released with its checkpoint, resumed by the next worker
{ fm_cnn3_study resume 5 /usr/share/datasets/fashion-mnist "subset = 6000" "epochs = 3"; printf '[distill]\n'; } >"$tmp/fm.toml"
fm="$tmp/fm.db"
run nas-sample --db "$fm" --config "$tmp/fm.toml" --genome "$fixtures/fmnist-cnn3.json" --queue
run nas-distill teacher --db "$fm" --genome "$fixtures/fmnist-cnn3.json" --epochs 1 --threads 2
expect_rc 0 "a minnow teacher, trained"
wait_log() { for _ in $(seq 900); do grep -q "$2" "$1" && return 0; sleep 0.1; done; fail "timed out waiting for '$2' in $1"; }
nas-distill --db "$fm" --worker --threads 2 >"$tmp/w1.out" 2>"$tmp/w1.err" &
pid=$!
wait_log "$tmp/w1.err" "epoch 1/3:"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
run nas-db check --db "$fm" --repair
expect_rc 0 "SIGKILL: nas-db check --repair reclaims the killed worker's trial"
nas-distill --db "$fm" --worker --threads 2 >"$tmp/w2.out" 2>"$tmp/w2.err" &
pid=$!
wait_log "$tmp/w2.err" "epoch 2/3:"
expect_has "$(cat "$tmp/w2.err")" "trial 1: resuming" "SIGKILL: the next worker resumes from the checkpoint"
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
expect_rc 0 "SIGTERM stops the distillation worker cleanly"
expect_eq "$(attempts "$fm")" "queued:1" "SIGTERM: released, its attempt given back (the killed one counted)"
run nas-distill --db "$fm" --worker --threads 2
expect_rc 0 "the next worker finishes the trial"
expect_has "$err" "trial 1: resuming" "resumed from the checkpoint"
expect_eq "$(sql "$fm" "select state from trial")" "done" "done after the resume"
expect_eq "$(sql "$fm" "select value from result where metric = 'epochs'")" "3.0" "three epochs in all"

# (4b) a teacher trained with its own crops and flips: recorded with them, its students' soft
# targets still cached (the study's data are not augmented); another augmentation, another checkpoint
{ fm_cnn3_study aug 5 /usr/share/datasets/fashion-mnist "subset = 2000" "epochs = 1"; printf '[distill]\n'; } >"$tmp/aug.toml"
run nas-sample --db "$tmp/aug.db" --config "$tmp/aug.toml" --genome "$fixtures/fmnist-cnn3.json" --queue
run nas-distill teacher --db "$tmp/aug.db" --genome "$fixtures/fmnist-cnn3.json" --epochs 1 --threads 2 --augment crop,flip \
    --format tsv
expect_rc 0 "a teacher trained with --augment crop,flip"
expect_eq "$(tail -1 <<<"$out" | cut -f8)" "crop,flip" "its row names the augmentations"
expect_eq "$(sql "$tmp/aug.db" "select augment, soft_targets is not null from teacher")" "crop,flip|1" \
  "recorded with them, and its soft targets cached"
run nas-distill teacher --db "$tmp/aug.db" --genome "$fixtures/fmnist-cnn3.json" --epochs 1 --threads 2 --format tsv
expect_rc 0 "the same teacher without --augment"
expect_eq "$(sql "$tmp/aug.db" "select coalesce(augment, 'none') from teacher order by id")" $'crop,flip\nnone' \
  "recorded without augmentations"
expect_eq "$(cd "$tmp/aug.db.d/teacher" && ls -- *.ckpt | sed 's/^[0-9a-f]*-//' | sort | tr '\n' ' ')" "e1-crop-flip.ckpt e1.ckpt " \
  "trained anew under its own checkpoint, not resumed from the augmented one"
run nas-distill teacher --db "$tmp/aug.db" --genome "$fixtures/fmnist-cnn3.json" --epochs 1 --augment rotate
expect_rc 2 "an unknown augmentation"
expect_has "$err" "--augment: unknown augmentation 'rotate' (expected crop or flip)" "the option and the value named"
run nas-distill teacher --db "$tmp/aug.db" --augment flip
expect_rc 2 "--augment without a network to train"
expect_has "$err" "--augment is for a teacher to train" "said so"

# (5) the gain: a tiny student, alone and distilled, same seed
student='{"family":"cnn","head":{"width":0},"stages":[{"act":"relu","block":"conv","depth":1,"kernel":3,"stride":2,"width":8}],"stem":{"act":"relu","kernel":3,"stride":2,"width":4}}'
echo "$student" >"$tmp/student.json"
for v in alone kd; do
  { fm_cnn3_study "gain" 2 /usr/share/datasets/fashion-mnist $'subset = 3000\nvalidation = 0.25' \
      $'epochs = 4\nbatch_size = 64'; printf '[distill]\nloss = "kd"\n'; } >"$tmp/$v.toml"
  run nas-sample --db "$tmp/$v.db" --config "$tmp/$v.toml" --genome "$tmp/student.json" --queue
done
run nas-distill teacher --db "$tmp/kd.db" --genome "$fixtures/fmnist-cnn3.json" --epochs 8 --threads 2 --format tsv
teacher_acc=$(cut -f5 <<<"$out" | tail -1)
run nas-train --db "$tmp/alone.db" --worker --threads 2 --format tsv
alone=$(tail -1 <<<"$out" | cut -f4)
run nas-distill --db "$tmp/kd.db" --worker --threads 2 --format tsv
kd=$(tail -1 <<<"$out" | cut -f4)
echo "distill: teacher val acc $teacher_acc; student alone $alone, distilled $kd"
awk -v a="$alone" -v k="$kd" -v t="$teacher_acc" 'BEGIN { exit !(t > a + 0.2 && k > a + 0.03) }' ||
  fail "the distilled student ($kd) does not beat the one trained alone ($alone) by 3 points (teacher $teacher_acc)"
ok
run nas-distill --report --db "$tmp/kd.db" --baseline "$tmp/alone.db" --format tsv
expect_rc 0 "the report pairs the student with its twin trained alone"
pair=$(sed -n 2p <<<"$out")
expect_eq "$(cut -f5,6 <<<"$pair")" "$alone"$'\t'"$kd" "report: both accuracies of the pair"
expect_eq "$(tail -1 <<<"$out" | cut -f1,6)" $'1\t1' "report summary: one pair, which gained"
run nas-distill --report --db "$tmp/kd.db"
expect_rc 2 "--report without --baseline"
run nas-distill --report --db "$tmp/alone.db" --baseline "$tmp/kd.db"
expect_rc 2 "--report the wrong way round: no distilled trial to pair"
done_checks
