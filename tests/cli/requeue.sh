#!/usr/bin/env bash
# requeue: nas-db requeue puts failed (and pruned) trials back in the queue -- by id, state or
# reason -- with attempts at 0, a 'requeue' event each, in one transaction; a trial in any other
# state, or no filter, is a usage error that changes nothing (issue 13, item 2's command)
source "$(dirname "$0")/common.bash"
tiny_study requeue 6 1 > "$tmp/s.toml"
cat >> "$tmp/s.toml" <<'EOT'
[budget]
min_epochs = 1
max_epochs = 1
EOT
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 5
expect_rc 0 "five candidates"
# the states a study reaches: two failed (a diverged one, one whose leases kept expiring), one
# pruned by the proxies, one done, one sampled
sql "$db" "update trial set state = 'failed', attempts = 3, reason = 'diverged', error = 'loss became NaN', rung = 0, budget = 1 where id = 1;
           update trial set state = 'failed', attempts = 3, reason = 'lease expired', rung = 0, budget = 1 where id = 2;
           update trial set state = 'pruned', reason = 'proxy: rank 5 of 5 by snip' where id = 3;
           update trial set state = 'done', rung = 0, budget = 1 where id = 4"
before=$(sql "$db" "select group_concat(id || state || attempts, ' ') from trial")

run nas-db requeue --db "$db"
expect_rc 2 "no filter"
expect_has "$err" "give --trial ID, --state STATE or --reason TEXT" "says what to give"
run nas-db requeue --db "$db" --trial 4
expect_rc 2 "a done trial"
expect_has "$err" "trial 4 is done: only failed and pruned trials go back to the queue" "says why"
run nas-db requeue --db "$db" --trial 1,4
expect_rc 2 "a failed and a done trial together"
run nas-db requeue --db "$db" --trial 99
expect_rc 2 "a trial the study lacks"
expect_has "$err" "has no trial 99" "names it"
expect_eq "$(sql "$db" "select group_concat(id || state || attempts, ' ') from trial")" "$before" "nothing changed by the refusals"

run nas-db requeue --db "$db" --reason "lease"
expect_rc 0 "by reason"
expect_eq "$out" "$(printf 'trial\n    2')" "prints the id requeued"
expect_eq "$(sql "$db" "select state || ' ' || attempts || ' ' || coalesce(reason, '-') || ' ' || rung || ' ' || budget from trial where id = 2")" \
  "queued 0 - 0 1.0" "queued, attempts reset, no reason, its rung and budget kept"
run nas-db requeue --db "$db" --state failed,pruned --format tsv
expect_rc 0 "by state"
expect_eq "$out" "$(printf 'trial\n1\n3')" "the failed and the pruned one"
expect_eq "$(sql "$db" "select coalesce(error, '-') from trial where id = 1")" "loss became NaN" "the last error is kept"
expect_eq "$(sql "$db" "select state || ' ' || rung || ' ' || budget from trial where id = 3")" "queued 0 1.0" \
  "the pruned one enters at rung 0 with the first budget"
expect_eq "$(sql "$db" "select group_concat(trial_id || ':' || from_state || '>' || to_state, ' ') from event where kind = 'requeue'")" \
  "2:failed>queued 1:failed>queued 3:pruned>queued" "one event each"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'queued'")" "3" "three in the queue"
run nas-train --db "$db" --worker
expect_rc 0 "the requeued trials train"
expect_eq "$(sql "$db" "select group_concat(id || state, ' ') from trial where id in (1, 2, 3)")" "1done 2done 3done" \
  "all three done"
done_checks
