#!/usr/bin/env bash
# pipeline: `nas-slurm submit` on the one-host cluster of scripts/local-slurm (fake GPUs as GRES):
# the rendered chain -- proxy scoring, then (afterok) a 2-task training array packed 2 trainings
# a task, then (afterany) the Pareto report -- runs a tiny CPU study of sampled candidates to the
# end. The proxies keep 6 of 8, each trained once, the job ids are in the study file and on the
# workers, and the report ran after the last training finished.
# Skipped (exit 77) when not root or without slurm-wlm.
source "$(dirname "$0")/../cli/common.bash"
source "$(dirname "$0")/cluster.bash"

{ small_cnn_study pipe 12 96 2; cat <<'EOT'; } > "$tmp/s.toml"
[proxy]
proxies = ["synflow", "params"]
[budget]
keep = 6
min_epochs = 2
[slurm]
gpus = 2
pack = 2
time = "00:10:00"
memory = ""
cpus_per_task = 1
signal_s = 30
EOT
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 8
expect_rc 0 "sample 8 candidates"
run nas-slurm plan --db "$db"
expect_rc 0 "plan"
expect_has "$out" "array       0-1%2" "2 tasks, 2 at a time"
expect_has "$out" "proxy stage 6 of 8 sampled candidates" "plans for what the proxy stage keeps"
expect_has "$out" "#SBATCH --gres=gpu:1" "one GPU a task"
run timeout 300 nas-slurm submit --db "$db" --wait
expect_rc 0 "submit --wait"
proxy_job=$(sql "$db" "select job_id from job where stage = 'proxy'")
train_job=$(sql "$db" "select job_id from job where stage = 'train'")
pareto_job=$(sql "$db" "select job_id from job where stage = 'pareto'")
[[ "$proxy_job" =~ ^[0-9]+$ && "$train_job" =~ ^[0-9]+$ && "$pareto_job" =~ ^[0-9]+$ ]] ||
  fail "job ids not recorded: '$proxy_job' '$train_job' '$pareto_job'"
ok
expect_eq "$(sql "$db" "select depends from job where stage = 'train'")" "afterok:$proxy_job" "the array waits for the scoring"
expect_has "$out" "$train_job" "submit prints the training job"
expect_eq "$(sql "$db" "select depends from job where stage = 'pareto'")" "afterany:$train_job" "the report waits for the array"
expect_eq "$(sql "$db" "select array from job where stage = 'train'")" "0-1%2" "the array"
expect_eq "$(sql "$db" "select state, count(*) from trial group by state order by state")" "$(printf 'done|6\npruned|2')" \
  "the proxies kept 6, each trained to the end"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'claim'")" "6" "each trained once"
expect_eq "$(sql "$db" "select count(*) from result where metric = 'val_acc'")" "6" "one result each"
expect_has "$(cat "$db.d/logs/pipe-proxy_$proxy_job.out")" "queued 6" "the scoring job's log"
expect_eq "$(sql "$db" "select group_concat(distinct slurm_array_job_id) from worker")" "$train_job" "workers carry the array's id"
expect_eq "$(sql "$db" "select count(distinct slurm_array_task_id) from worker")" "2" "both tasks trained"
log="$db.d/logs/pipe-pareto_$pareto_job.out"
[ -f "$log" ] || fail "no log of the report: $(ls "$db.d/logs")"; ok
expect_has "$(cat "$log")" "front:" "the report ran"
[ -s "$db.d/front.tsv" ] || fail "no front.tsv"; ok
last_finish=$(sql "$db" "select cast(max(at) as integer) from event where kind = 'finish'")
front_at=$(stat -c %Y "$db.d/front.tsv")
[ "$front_at" -ge "$last_finish" ] || fail "the report ($front_at) ran before the last training finished ($last_finish)"; ok
for t in 0 1; do
  out_t=$(cat "$db.d/logs/pipe-train_${train_job}_$t.out")
  expect_has "$out_t" "workers ended (exit 0); 0 trials queued" "task $t ended cleanly"
  [[ "$out_t" != *requeueing* ]] || fail "task $t requeued with nothing left"; ok
done
run nas-slurm status --db "$db"
expect_rc 0 "status"
expect_has "$out" "$train_job" "status lists the jobs"
done_checks
