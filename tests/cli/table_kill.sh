#!/usr/bin/env bash
# table_kill: table-mode workers of an evolutionary search killed with SIGKILL at random moments,
# again and again, then one run to the end: every bred trial has its breeding row, no trial was
# claimed by two workers at once, none lost, and the budget of evaluations kept
source "$(dirname "$0")/common.bash"
table="$NAS_SHARED_DIR/benchmarks/nb201/nats_bench.csv"
[[ -f $table ]] || { echo "no NAS-Bench-201 table at $table: skipped"; exit 0; }
{ nb201_table_study nb201-kill 5
  cat <<'TOML'
[train]
lease_s = 5
max_attempts = 100
[search]
strategy = "evolution"
population = 5
islands = 2
evaluations = 400
TOML
} > "$tmp/k.toml"
db="$tmp/k.db"
run nas-sample --config "$tmp/k.toml" --db "$db" -n 1 --queue --strategy random -q
expect_rc 0 "the study with one random trial"
kills=0
stranded=0
claims() { sql "$db" "select count(*) from event where kind = 'claim'"; }
for i in $(seq 1 20); do
  before=$(claims)
  nas-train --db "$db" --worker --table "$table" --pack 3 -q > /dev/null 2>&1 &
  pid=$!
  # kill it at a random moment after its first claim (a loaded machine may take seconds to start it)
  for _ in $(seq 200); do [[ $(claims) -gt $before ]] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", (r % 40) / 100 }')"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
  # the trials this kill left running (none when it came between two claims)
  stranded=$((stranded + $(sql "$db" "select count(*) from trial t join worker w on w.id = t.lease_owner
                                     where t.state = 'running' and w.pid = $pid")))
  [[ $kills -ge 6 ]] && break
done
[[ $kills -ge 3 ]] || fail "only $kills workers were killed mid-run"; ok
sleep 5.5   # the last leases expire
run nas-train --db "$db" --worker --table "$table" --pack 3 -q
expect_rc 0 "a worker after $kills kills"
expect_eq "$(sql "$db" "select count(*) from trial")" "400" "the budget kept: 400 trials"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'done'")" "400" "none lost: every trial done"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'breed'")" "399" "one breed event a bred trial"
expect_eq "$(sql "$db" "select count(*) from trial t where t.id > 1 and not exists
                        (select 1 from breeding b where b.trial_id = t.id and b.island = t.island)")" "0" \
          "every bred trial has its breeding row"
expect_eq "$(sql "$db" "select count(*) from breeding b, json_each(b.parents) p
                        where p.value not in (select id from trial where id < b.trial_id)")" "0" "parents are earlier trials"
# a second claim of a trial only after the first lease ended (reclaimed, released or failed)
expect_eq "$(sql "$db" "select count(*) from event c2 where c2.kind = 'claim' and exists
                        (select 1 from event c1 where c1.kind = 'claim' and c1.trial_id = c2.trial_id and c1.id < c2.id
                         and not exists (select 1 from event e where e.trial_id = c2.trial_id and e.id > c1.id
                                         and e.id < c2.id and e.kind in ('reclaim', 'release', 'fail')))")" "0" \
          "no trial claimed twice at once"
expect_eq "$(sql "$db" "select count(*) from (select trial_id from result where metric = 'val_acc'
                        group by trial_id, rung having count(*) > 1)")" "0" "one result per trial"
# every trial a kill left running was taken back exactly once (how many depends on where the
# kills fell: the table job finishes a trial in milliseconds)
expect_eq "$(sql "$db" "select count(*) from event where kind = 'reclaim'")" "$stranded" \
          "each trial left running by a kill reclaimed once ($stranded)"
done_checks
