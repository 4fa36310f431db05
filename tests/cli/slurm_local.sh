#!/usr/bin/env bash
# slurm_local: nas-slurm without Slurm -- the plan, the rendered scripts, `submit --local --wait`
# running the training stage and then the Pareto stage as local processes, status, cancel (the
# trial in training goes back to the queue, the report does not run), and bad input (exit 2).
source "$(dirname "$0")/common.bash"

small_study() {  # NAME SAMPLES EPOCHS, with a [slurm] section
  small_cnn_study "$1" 5 "$2" "$3"
  printf '[slurm]
time = "00:20:00"
memory = ""
'
}

small_study local 96 1 > "$tmp/s.toml"
db="$tmp/s.db"
run nas-slurm plan --db "$db" --local
expect_rc 2 "plan of a missing file"
expect_has "$err" "cannot open '$db'" "names the file"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 5 -q
run nas-slurm plan --db "$db" --local --stages train,pareto
expect_rc 2 "nothing queued for a plan without a proxy stage"
expect_has "$err" "no queued trials" "says why"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 5 --queue -q
expect_rc 0 "queue 5 more"

run nas-slurm plan --db "$db" --local --time "four hours"
expect_rc 2 "bad --time"
expect_has "$err" "--time: 'four hours' is not a Slurm time" "names the option and the value"
run nas-slurm plan --db "$db" --local --stages train,report
expect_rc 2 "unknown stage"
expect_has "$err" "unknown stage 'report'" "names the stage"
run env PATH="$NAS_BIN" nas-slurm submit --db "$db"
expect_rc 2 "submit without sbatch"
expect_has "$err" "'sbatch' is not on PATH" "says what is missing"
expect_eq "$(sql "$db" "select count(*) from job")" "0" "no job recorded"

run nas-slurm plan --db "$db" --local
expect_rc 0 "plan"
expect_has "$out" "queued      10 trials, 10 epochs left" "the queued work, and what the proxy stage will queue"
expect_has "$out" "proxy stage 5 of 5 sampled candidates" "a proxy stage for the sampled candidates"
expect_has "$out" "==> proxy.sbatch <==" "prints the proxy script"
expect_has "$out" "==> train.sbatch <==" "prints the training script"
expect_has "$out" "nas-train --db \"\$db\" --worker --pack" "which runs packed workers"
expect_has "$out" "==> pareto.sbatch <==" "and the report"
[ ! -d "$db.d/slurm" ] || fail "plan without --dry-run wrote scripts"; ok

run nas-slurm plan --db "$db" --local --dry-run
expect_rc 0 "plan --dry-run"
for f in proxy.sbatch train.sbatch pareto.sbatch local.sh; do
  [ -x "$db.d/slurm/plan/$f" ] || fail "--dry-run did not write $f"
  bash -n "$db.d/slurm/plan/$f" || fail "$f is not valid bash"
  ok
done
expect_has "$(cat "$db.d/slurm/plan/train.sbatch")" "#SBATCH --time=00:20:00" "[slurm] time in the script"

run nas-slurm submit --db "$db" --local --wait
expect_rc 0 "submit --local --wait"
expect_has "$out" "local" "prints the job"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'done'")" "10" "every queued trial done, and those the proxy stage queued"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'sampled'")" "0" "no sampled one left"
expect_eq "$(sql "$db" "select count(distinct trial_id) from proxy_score")" "5" "the proxy stage scored the sampled ones"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'claim'")" "10" "each claimed once"
expect_eq "$(sql "$db" "select submission, stage, backend from job")" "1|local|local" "the job is recorded"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'submit'")" "1" "with a submit event"
[ -s "$db.d/front.tsv" ] || fail "the Pareto stage wrote no front.tsv"; ok
expect_has "$(head -1 "$db.d/front.tsv")" "val_acc" "the front has the objectives"
expect_has "$(cat "$db.d/logs/local-pareto_local.out")" "front:" "the report's log"
expect_has "$(cat "$db.d/logs/local-proxy_local.out")" "queued 5" "the proxy stage's log"
run nas-slurm status --db "$db"
expect_rc 0 "status"
expect_has "$out" "finished (exit 0)" "the local run finished"
expect_has "$out" "done" "the counts by state"
run nas-slurm status --db "$db" --format json
expect_has "$out" "\"jobs\"" "status as JSON"

# cancel: a longer training is released to the queue, the report does not run
small_study cancel 6000 20 > "$tmp/c.toml"
db="$tmp/c.db"
run nas-sample --db "$db" --config "$tmp/c.toml" -n 1 --queue -q
run nas-slurm submit --db "$db" --local
expect_rc 0 "submit --local"
pid=$(sql "$db" "select job_id from job")
for _ in $(seq 1 600); do
  [ "$(sql "$db" "select count(*) from v_epochs")" -ge 1 ] && break
  sleep 0.2
done
[ "$(sql "$db" "select count(*) from v_epochs")" -ge 1 ] || fail "no epoch within 120 s"; ok
run nas-slurm status --db "$db"
expect_has "$out" "running" "status while it runs"
run nas-slurm cancel --db "$db"
expect_rc 0 "cancel"
expect_has "$out" "sent SIGTERM" "says what it did"
for _ in $(seq 1 300); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
kill -0 "$pid" 2>/dev/null && fail "the local runner still runs 60 s after cancel"; ok
expect_eq "$(sql "$db" "select state, attempts from trial")" "queued|0" "the trial is queued again, attempt not counted"
[ ! -e "$db.d/front.tsv" ] || fail "the report ran after cancel"; ok
run nas-slurm cancel --db "$db"
expect_has "$out" "not running" "a second cancel has nothing to do"
done_checks
