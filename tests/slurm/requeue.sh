#!/usr/bin/env bash
# requeue: Slurm's early warning reaches a task of the training array that `nas-slurm submit`
# rendered. `scancel --signal=USR1 --batch` (what --signal=B:USR1@s sends before the time limit)
# makes the task's worker checkpoint its trial and put it back in the queue; the task sees work
# left and requeues itself; its next run resumes the trial from the checkpoint and finishes it.
# Skipped (exit 77) when not root or without slurm-wlm.
source "$(dirname "$0")/../cli/common.bash"
source "$(dirname "$0")/cluster.bash"

{ long_cnn_study requeue 9; cat <<'EOT'; } > "$tmp/long.toml"
[slurm]
time = "00:10:00"
memory = ""
cpus_per_task = 2
pack = 1
EOT
db="$tmp/long.db"
run nas-sample --db "$db" --config "$tmp/long.toml" -n 1 --queue
expect_rc 0 "queue 1 trial"
run nas-slurm submit --db "$db" --stages train
expect_rc 0 "submit the training array"
job=$(sql "$db" "select job_id from job where stage = 'train'")
[[ "$job" =~ ^[0-9]+$ ]] || fail "no job id recorded: '$job'"; ok
for _ in $(seq 1 600); do
  [ "$(sql "$db" "select count(*) from v_epochs")" -ge 1 ] && break
  [ -z "$(squeue -h -j "$job" -o %i)" ] && fail "the job ended before epoch 1"
  sleep 0.2
done
[ "$(sql "$db" "select count(*) from v_epochs")" -ge 1 ] || fail "no epoch within 120 s"; ok
scancel --signal=USR1 --batch "${job}_0"

# the trial goes back to the queue, then the requeued task takes it again and finishes it
seen_queued=0
for _ in $(seq 1 1200); do
  state=$(sql "$db" "select state from trial")
  [ "$state" = queued ] && seen_queued=1
  [ "$state" = done ] && [ -z "$(squeue -h -j "$job" -o %i)" ] && break
  sleep 0.2
done
expect_eq "$(sql "$db" "select state from trial")" "done" "the trial finished"
log=$(cat "$db.d/logs/requeue-train_${job}_0.out")
expect_has "$log" "early warning (USR1): releasing the trials" "the task got the warning"
expect_has "$log" "released to the queue (SIGUSR1)" "the worker released its trial"
expect_has "$log" "1 trials queued" "the task saw the work left"
expect_has "$log" "requeueing task 0 (job" "and requeued itself"
expect_has "$log" "restart 1" "the second run of the task"
expect_has "$log" "trial 1: resuming" "resumed from the checkpoint"
expect_has "$log" "workers ended (exit 0); 0 trials queued" "and ended with nothing left"
expect_eq "$(echo "$log" | grep -c 'requeueing')" "1" "requeued once"
expect_eq "$(sql "$db" "select count(*), count(distinct slurm_array_job_id) from worker")" "2|1" "two runs of one task"
expect_eq "$(sql "$db" "select attempts from trial")" "1" "the release did not count an attempt"
expect_eq "$(sql "$db" "select count(*) from result where metric = 'val_acc'")" "1" "one result"
expect_eq "$(sql "$db" "select max(epoch) from v_epochs")" "3" "trained to its budget"
expect_eq "$(sql "$db" "select count(*) from (select epoch from v_epochs group by epoch having count(*) > 1)")" "0" \
          "no epoch trained twice"
echo "queued seen by polling: $seen_queued" >&2
done_checks
