#!/usr/bin/env bash
# teacher: `nas-slurm submit --teacher-genome ... --teacher-ranks 2` on the one-host cluster of
# scripts/local-slurm: the teacher job runs nas-distill teacher as 2 srun tasks (Gloo ranks
# meeting at the job's first node), records one teacher, and the training array (nas-distill
# workers) starts only after it (afterok) and distills every trial from that teacher.
# Skipped (exit 77) when not root or without slurm-wlm, or in a build without Gloo.
source "$(dirname "$0")/../cli/common.bash"
source "$(dirname "$0")/cluster.bash"

{ small_cnn_study kd 7 96 2; cat <<'EOT'; } > "$tmp/s.toml"
[distill]
[slurm]
gpus = 1
pack = 2
time = "00:10:00"
memory = ""
cpus_per_task = 1
signal_s = 30
EOT
echo '{"family":"cnn","head":{"width":0},"stages":[{"act":"relu","block":"conv","depth":1,"kernel":3,"stride":1,"width":8}],"stem":{"act":"relu","kernel":3,"stride":1,"width":8}}' > "$tmp/teacher.json"
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 3 --queue
expect_rc 0 "sample 3 students"
run timeout 300 nas-slurm submit --db "$db" --teacher-genome "$tmp/teacher.json" --teacher-epochs 2 --teacher-ranks 2 \
    --stages teacher,train --wait
teacher_job=$(sql "$db" "select job_id from job where stage = 'teacher'")
log="$db.d/logs/kd-teacher_$teacher_job.out"
if [[ -f "$log" ]] && grep -q "built without Gloo" "$log"; then echo "skip: $(grep 'built without Gloo' "$log")"; exit 77; fi
expect_rc 0 "submit --wait"
train_job=$(sql "$db" "select job_id from job where stage = 'train'")
[[ "$teacher_job" =~ ^[0-9]+$ && "$train_job" =~ ^[0-9]+$ ]] || fail "job ids not recorded: '$teacher_job' '$train_job'"; ok
expect_eq "$(sql "$db" "select depends from job where stage = 'train'")" "afterok:$teacher_job" "the array waits for the teacher"
[ -f "$log" ] || fail "no log of the teacher job: $(ls "$db.d/logs")"; ok
expect_has "$(cat "$log")" "2 ranks, rank 0 at" "the job started 2 ranks"
for r in 0 1; do
  expect_eq "$(grep -c "nas-distill rank $r: teacher epoch [12]/2: train loss" "$log")" "2" "rank $r trained both epochs"
done
expect_eq "$(sql "$db" "select count(*) || ' ' || kind || ' ' || epochs from teacher")" "1 minnow 2" "one teacher, recorded by rank 0"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'done'")" "3" "the students trained after it"
expect_eq "$(sql "$db" "select count(*) from result where metric = 'distilled' and value = 1")" "3" "each distilled"
expect_eq "$(sql "$db" "select count(distinct value) || ' ' || cast(min(value) as integer) from result where metric = 'teacher_id'")" \
          "1 $(sql "$db" "select id from teacher")" "from the teacher the job trained"
done_checks
