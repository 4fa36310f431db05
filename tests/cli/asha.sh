#!/usr/bin/env bash
# asha: asynchronous successive halving in the workers. 9 trials at rung 0 (1 epoch), eta 3,
# the last rung at 3 epochs. (1) One worker: every promotion went to a trial in the top
# floor(n/3) of the n trials that had finished rung 0 when it was promoted; the best third of
# rung 0 ends at rung 1, done; the rest stay paused; promotions continue from the checkpoint.
# (2) Workers killed with SIGKILL at random moments, again and again, then one to the end: no
# trial promoted twice, no paused trial lost (the top third of rung 0 is promoted), none left
# running or queued. (3) nas-proxy with proxy_start: the proxies' best start at rung 1.
# (4) early_stop, eta 2, rungs 1/2/4 epochs: a trial whose val_acc at epoch 3 (inside rung 2) was
# out of the top floor(n/2) of the n trials at epoch 3 when it got there stopped there, done with
# the reason; every other one trained on. (5) promotion = "synchronous" and anneal, eta 2, rungs
# 1/2/4 epochs, two trainers: every rung keeps exactly the top floor(n/2) of all its trials, each
# promotion after its rung's last result, 16 epochs in all; the learning rate is annealed at the
# end of every rung and resumes at the full schedule's rate.
source "$(dirname "$0")/common.bash"

asha_study() {  # NAME LEASE_S [proxy_start]
  small_cnn_study "$1" 21 12000 3
  printf 'lease_s = %s\nmax_attempts = 100\n[proxy]\nproxies = ["synflow", "params"]\n[budget]\nmin_epochs = 1\nmax_epochs = 3\neta = 3\n' "$2"
  [ "${3:-}" = start ] && printf 'proxy_start = true\n'
  true
}

# every promote event: the promoted trial's rung-0 val_acc is within the top floor(n/3) of the n
# rung-0 results recorded before the event
check_promotions() {
  expect_eq "$(sql "$1" "
    select count(*) from event e
    where e.kind = 'promote' and
      (select count(*) from result r where r.metric = 'val_acc' and r.rung = 0 and r.created_at <= e.at and
         r.value > (select value from result where trial_id = e.trial_id and rung = 0 and metric = 'val_acc'))
      >= (select count(*) from result r where r.metric = 'val_acc' and r.rung = 0 and r.created_at <= e.at) / 3")" \
    "0" "$2: every promotion was in the top third of its rung at the time"
  expect_eq "$(sql "$1" "select count(*) from (select trial_id from event where kind = 'promote' group by trial_id having count(*) > 1)")" \
    "0" "$2: no trial promoted twice"
  # the best floor(9/3) of rung 0 all reached rung 1 (nothing promotable is left behind)
  expect_eq "$(sql "$1" "select count(*) from (select r.trial_id from result r where r.rung = 0 and r.metric = 'val_acc'
                          order by r.value desc, r.trial_id limit 3) top join trial t on t.id = top.trial_id where t.rung = 1")" \
    "3" "$2: the top third of rung 0 is at rung 1"
  expect_eq "$(sql "$1" "select count(*) from trial where state in ('running', 'queued')")" "0" "$2: nothing left running or queued"
  expect_eq "$(sql "$1" "select count(*) from trial where rung = 1 and state = 'done' and budget = 3.0")" \
    "$(sql "$1" "select count(distinct trial_id) from event where kind = 'promote'")" "$2: every promoted trial done at 3 epochs"
  expect_eq "$(sql "$1" "select count(*) from trial where rung = 0 and state = 'paused' and budget = 1.0")" \
    "$((9 - $(sql "$1" "select count(*) from trial where rung = 1")))" "$2: the others paused at rung 0"
}

# (1) one worker
asha_study one 60 > "$tmp/one.toml"
db="$tmp/one.db"
run nas-sample --db "$db" --config "$tmp/one.toml" -n 9 --queue --budget 1 -q
expect_rc 0 "queue 9 at rung 0"
run nas-train --db "$db" --worker --threads 2
expect_rc 0 "one worker"
check_promotions "$db" "one worker"
expect_eq "$(nas-db count --db "$db" --claimable)" "0" "nothing left to claim or promote"
expect_has "$err" "resuming" "a promoted trial continues from its checkpoint"
expect_eq "$(sql "$db" "select count(*) from result r join trial t on t.id = r.trial_id where r.metric = 'epochs' and r.rung = 1 and r.value = 3.0")" \
  "$(sql "$db" "select count(*) from trial where rung = 1")" "rung 1 results at 3 epochs"

# (2) SIGKILL at random moments
asha_study kill 5 > "$tmp/kill.toml"
db="$tmp/kill.db"
run nas-sample --db "$db" --config "$tmp/kill.toml" -n 9 --queue --budget 1 -q
expect_rc 0 "queue 9 for the kills"
kills=0
for i in $(seq 1 30); do
  nas-train --db "$db" --worker --threads 1 -q > /dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.3 + (r % 250) / 100 }')"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
  [ "$(sql "$db" "select count(*) from trial where state in ('queued', 'running')")" = 0 ] &&
    [ "$(sql "$db" "select count(*) from event where kind = 'finish'")" -ge 9 ] && break
done
[ "$kills" -ge 3 ] || fail "only $kills workers were killed mid-run"; ok
sleep 5.5   # the last lease expires
run nas-train --db "$db" --worker --threads 2
expect_rc 0 "a worker after the kills"
check_promotions "$db" "after $kills kills"
expect_eq "$(sql "$db" "select count(*) from (select trial_id, rung from result where metric = 'val_acc' group by trial_id, rung having count(*) > 1)")" \
  "0" "one result per trial and rung"

# (3) proxy-guided first budgets
asha_study start 60 start > "$tmp/start.toml"
db="$tmp/start.db"
run nas-sample --db "$db" --config "$tmp/start.toml" -n 9 -q
run nas-proxy --db "$db"
expect_rc 0 "nas-proxy with proxy_start"
expect_eq "$(sql "$db" "select rung, budget, count(*) from trial group by rung order by rung")" \
  "$(printf '0|1.0|6\n1|3.0|3')" "the proxies' best third starts at the last rung"
expect_eq "$(sql "$db" "select min(priority) >= (select max(priority) from trial where rung = 0) from trial where rung = 1")" \
  "1" "and those are the best ranked"
expect_eq "$(nas-db count --db "$db" --claimable)" "9" "9 claimable"
# (4) early stopping inside a rung
{ small_cnn_study early 5 12000 4
  printf 'max_attempts = 100\n[budget]\nmin_epochs = 1\nmax_epochs = 4\neta = 2\nearly_stop = true\n'; } > "$tmp/early.toml"
db="$tmp/early.db"
# 24 candidates, so that 6 or more reach the last rung: the synthetic labels are unlearnable, the
# epoch-3 accuracies near-ties around 1/3, and with only 3 there (12 candidates) a change of
# float rounding could order them best-last, leaving nothing to stop (1 chance in 6; in 720 here).
run nas-sample --db "$db" --config "$tmp/early.toml" -n 24 --queue --budget 1 -q
run nas-train --db "$db" --worker --threads 2
expect_rc 0 "one worker with early stopping"
# each trial's standing at epoch 3 when it got there: position among the epoch-3 val_acc written
# by then (ties: lower id first), of n
standing="with m as (select trial_id, value, created_at from epoch_metric where metric = 'val_acc' and epoch = 3),
  s as (select m.trial_id,
          (select count(*) from m o where o.created_at <= m.created_at) as n,
          (select count(*) from m o where o.created_at <= m.created_at and
             (o.value > m.value or (o.value = m.value and o.trial_id < m.trial_id))) + 1 as pos from m)"
stopped=$(sql "$db" "select count(*) from trial where reason like 'early stop%'")
[ "$stopped" -ge 1 ] || fail "no trial stopped early (the study is sized so that some do)"; ok
expect_eq "$(sql "$db" "$standing select count(*) from s join trial t on t.id = s.trial_id
                         where (s.n / 2 >= 1 and s.pos > s.n / 2) != (t.reason like 'early stop%')")" \
  "0" "stopped exactly the trials out of the top half at epoch 3 at the time"
expect_eq "$(sql "$db" "select count(*) from trial t where reason like 'early stop%' and
                         (state != 'done' or rung != 2 or exists (select 1 from epoch_metric where trial_id = t.id and epoch = 4)
                          or (select value from result where trial_id = t.id and rung = 2 and metric = 'epochs') != 3.0)")" \
  "0" "a stopped trial is done at rung 2 after 3 epochs, with nothing trained after"
expect_eq "$(sql "$db" "select count(*) from trial where rung = 2 and reason is null and state = 'done' and
                         (select value from result where trial_id = trial.id and rung = 2 and metric = 'epochs') = 4.0")" \
  "$(( $(sql "$db" "select count(*) from trial where rung = 2") - stopped ))" "the others at rung 2 trained all 4 epochs"
expect_has "$(sql "$db" "select reason from trial where reason like 'early stop%' limit 1")" "at epoch 3 is number" "the reason gives the standing"
expect_eq "$(sql "$db" "select count(*) from trial where state in ('running', 'queued')")" "0" "early stop: nothing left running or queued"
expect_eq "$(nas-db count --db "$db" --claimable)" "0" "early stop: nothing left to claim or promote"
# a trial stopped after 3 of rung 2's 4 epochs is not compared with those that trained all 4
run nas-pareto --db "$db" -o val_acc:max -o params:min --all --format tsv
expect_rc 0 "nas-pareto at the last rung"
expect_eq "$(printf '%s\n' "$out" | awk -F'\t' 'NR > 1 { print $1 }' | sort -n | tr '\n' ' ')" \
  "$(sql "$db" "select id from trial where rung = 2 and reason is null order by id" | tr '\n' ' ')" \
  "nas-pareto at rung 2: the trials that trained 4 epochs, not the ones stopped early"

# (5) synchronous successive halving with annealed rungs, one worker with two trainers
{ small_cnn_study sync 8 4000 4
  printf 'lr = 0.1\nwarmup_epochs = 0\n[budget]\nmin_epochs = 1\nmax_epochs = 4\neta = 2\npromotion = "synchronous"\nanneal = true\n'; } > "$tmp/sync.toml"
db="$tmp/sync.db"
run nas-sample --db "$db" --config "$tmp/sync.toml" -n 8 --queue --budget 1 -q
run nas-train --db "$db" --worker --pack 2 --threads 2
expect_rc 0 "two trainers, synchronous promotion"
expect_eq "$(sql "$db" "select rung, count(*) from result where metric = 'val_acc' group by rung order by rung" | tr '\n' ' ')" \
  "0|8 1|4 2|2 " "results: 8 at rung 0, 4 at rung 1, 2 at rung 2 (halving, no more)"
expect_eq "$(sql "$db" "select count(*) from epoch_metric where metric = 'val_acc'")" "16" "16 epochs trained (8 x 1 + 4 x 1 + 2 x 2)"
for r in 0 1; do
  expect_eq "$(sql "$db" "select group_concat(trial_id) from (select trial_id from result where rung = $r and metric = 'val_acc'
                          order by value desc, trial_id limit $(( (r == 0 ? 8 : 4) / 2 )))")" \
    "$(sql "$db" "select group_concat(trial_id) from (select r.trial_id from result r join trial t on t.id = r.trial_id
                   where r.rung = $r and r.metric = 'val_acc' and t.rung > $r order by r.value desc, r.trial_id)")" \
    "rung $r: the promoted are its top half of all its results"
done
expect_eq "$(sql "$db" "select count(*) from event e where e.kind = 'promote' and exists (select 1 from result r
                         where r.rung = json_extract(e.detail, '$.rung') - 1 and r.created_at > e.at)")" \
  "0" "every promotion came after its rung's last result"
expect_eq "$(sql "$db" "select count(*) from trial where state in ('running', 'queued')")" "0" "sync: nothing left running or queued"
expect_eq "$(nas-db count --db "$db" --claimable)" "0" "sync: nothing left to claim or promote"
# anneal: at the end of epochs 1, 2 and 4 (each a rung's end) the rate is near zero; epoch 3 is
# halfway through rung 2's cosine from the full schedule's 0.05 at epoch 2: about 0.025
expect_eq "$(sql "$db" "select count(*) from epoch_metric where metric = 'lr' and epoch in (1, 2, 4) and value > 0.001")" \
  "0" "the rate is annealed at every rung's end"
expect_eq "$(sql "$db" "select count(*) from epoch_metric where metric = 'lr' and epoch = 3 and value between 0.02 and 0.03")" \
  "2" "rung 2 resumes at the full schedule's rate (epoch 3 about 0.025)"
done_checks
