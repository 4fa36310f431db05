#!/usr/bin/env bash
# array_workers: nas-train workers as a real Slurm array job on the one-host cluster of
# scripts/local-slurm (fake GPUs as GRES). (1) A 2-task array with one fake GPU per task drains a
# queue of 6 trials: each trained exactly once, the worker rows carry the array job and task ids.
# (2) Slurm's early warning (scancel --signal=USR1 --batch) reaches a worker through the job
# script's trap: the trial is checkpointed and queued again, the task exits 0, and the next worker
# finishes the trial from its checkpoint. Skipped (exit 77) when not root or without slurm-wlm.
source "$(dirname "$0")/../cli/common.bash"
source "$(dirname "$0")/cluster.bash"

# The job script: the worker runs in the background so that bash runs the trap as soon as the
# signal arrives (a foreground command would delay it), and forwards it.
cat > "$tmp/train.sbatch" <<EOF
#!/usr/bin/env bash
#SBATCH --gres=gpu:1
#SBATCH --signal=B:USR1@30
export PATH="$NAS_BIN:\$PATH"
nas-train --db "\$1" --worker --threads 1 &
worker=\$!
trap 'kill -USR1 \$worker' USR1 TERM
wait \$worker || wait \$worker
echo "worker exit \$?"
EOF

# --- (1) an array drains the queue ----------------------------------------------------------
small_cnn_study slurm-array 8 96 1 > "$tmp/s.toml"
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 6 --queue
expect_rc 0 "queue 6 trials"
job=$(sbatch --parsable --array=0-1 -o "$tmp/arr-%A_%a.out" "$tmp/train.sbatch" "$db") || fail "sbatch failed"; ok
wait_job "$job"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'done'")" "6" "every trial done"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'claim'")" "6" "each claimed once"
expect_eq "$(sql "$db" "select count(*), count(distinct metric) from result where metric = 'val_acc'")" "6|1" "one val_acc each"
expect_eq "$(sql "$db" "select group_concat(distinct slurm_array_job_id) from worker")" "$job" "workers carry the array job id"
expect_eq "$(sql "$db" "select group_concat(slurm_array_task_id) from (select distinct slurm_array_task_id from worker order by 1)")" \
          "0,1" "and their task ids"
expect_eq "$(sql "$db" "select count(*) from worker where stopped_at is null")" "0" "every worker stopped"
for t in 0 1; do
  expect_has "$(cat "$tmp/arr-${job}_$t.out")" "worker exit 0" "task $t exit 0"
done

# --- (2) the early-warning signal -------------------------------------------------------------
long_cnn_study slurm-signal 9 > "$tmp/long.toml"
db="$tmp/long.db"
run nas-sample --db "$db" --config "$tmp/long.toml" -n 1 --queue
expect_rc 0 "queue 1 longer trial"
job=$(sbatch --parsable -o "$tmp/sig-%j.out" "$tmp/train.sbatch" "$db") || fail "sbatch failed"; ok
for _ in $(seq 1 600); do
  [ "$(sql "$db" "select count(*) from v_epochs")" -ge 1 ] && break
  [ -z "$(squeue -h -j "$job" -o %i)" ] && fail "the job ended before epoch 1: $(cat "$tmp/sig-$job.out")"
  sleep 0.2
done
[ "$(sql "$db" "select count(*) from v_epochs")" -ge 1 ] || fail "no epoch within 120 s"; ok
scancel --signal=USR1 --batch "$job"
wait_job "$job"
out=$(cat "$tmp/sig-$job.out")
expect_has "$out" "worker exit 0" "the task exits 0"
expect_has "$out" "released to the queue (SIGUSR1)" "the worker says why"
expect_eq "$(sql "$db" "select state, attempts from trial")" "queued|0" "queued again, attempt not counted"
expect_eq "$(sql "$db" "select slurm_job_id from worker")" "$job" "the worker row names the job"
run nas-train --db "$db" --worker --threads 2
expect_rc 0 "the next worker"
expect_has "$err" "trial 1: resuming" "resumes from the checkpoint"
expect_eq "$(sql "$db" "select state from trial")" "done" "done"
expect_eq "$(sql "$db" "select count(*) from result where metric = 'val_acc'")" "1" "one result"
done_checks
