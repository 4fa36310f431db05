#!/usr/bin/env bash
# search: the evolutionary strategies as a user runs them -- nas-sample --strategy breeds N now
# with its lineage recorded, [search] from the study file, refusals with exit 2
source "$(dirname "$0")/common.bash"
nb="$fixtures/nb201-small.toml"

# an nb201 study sampled at random, then evaluated by hand, then bred from
db="$tmp/evo.db"
run nas-sample --config "$nb" --db "$db" -n 30 -q
expect_rc 0 "random sample"
sql "$db" "insert into result (trial_id, rung, metric, value, created_at)
           select id, 0, 'val_acc', (id % 17) / 17.0, 0 from trial"
# the sampled trials belong to no island: the first children are random until island 0 has 20
# evaluated trials of its own; give it the 30 sampled ones
sql "$db" "insert into island_member (island, trial_id, joined_at) select 0, id, 0 from trial"
run nas-sample --db "$db" -n 40 --strategy evolution --format csv
expect_rc 0 "breed 40"
expect_eq "$(echo "$out" | head -1)" "id,arch,params,macs,peak_act_bytes,weight_bytes" "csv of the children"
expect_eq "$(echo "$out" | tail -n +2 | wc -l)" "40" "40 children printed"
expect_eq "$(sql "$db" 'select count(*) from breeding')" "40" "40 breeding rows"
expect_eq "$(sql "$db" "select count(*) from trial t where t.id > 30 and not exists
                        (select 1 from breeding b where b.trial_id = t.id)")" "0" "every child has its breeding row"
expect_eq "$(sql "$db" "select count(*) from breeding b, json_each(b.parents) p
                        where p.value not in (select id from trial where id < b.trial_id)")" "0" "parents are earlier trials"
expect_eq "$(sql "$db" "select count(*) from breeding where strategy = 'evolution' and island = 0")" "40" "strategy and island"
expect_eq "$(sql "$db" "select count(*) from breeding where operators <> 'random' and parents = '[]'")" "0" "bred children name parents"
bred=$(sql "$db" "select count(*) from breeding where operators <> 'random'")
[[ $bred -ge 25 ]] || fail "most children bred from parents (random share 0.1): $bred of 40"
ok
# parents come from the best 20 of the 30 evaluated trials (val_acc (id % 17) / 17)
expect_eq "$(sql "$db" "select count(*) from breeding b, json_each(b.parents) p
                        where p.value not in (select trial_id from result order by value desc, trial_id limit 20)")" "0" \
          "parents among the best 20"
expect_eq "$(sql "$db" "select count(*) from trial where id > 30 and island = 0 and origin in ('sample','mutation','crossover')")" \
          "40" "trial.origin and trial.island filled"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'breed'")" "40" "one breed event a child"
expect_eq "$(sql "$db" "select count(*) from v_lineage")" "40" "v_lineage"

# nsga2 from the command line; the same breeding seed order replays
run nas-sample --db "$db" -n 5 --strategy nsga2 -q
expect_rc 0 "nsga2"
expect_eq "$(sql "$db" "select count(*) from breeding where strategy = 'nsga2'")" "5" "nsga2 children"

# [search] in the study file: islands in turn
cat > "$tmp/islands.toml" <<TOML
$(cat "$nb")

[search]
strategy = "evolution"
islands = 3
population = 4
TOML
run nas-sample --config "$tmp/islands.toml" --db "$tmp/isl.db" -n 9 -q
expect_rc 0 "islands from [search]"
expect_eq "$(sql "$tmp/isl.db" 'select group_concat(island) from (select island from breeding order by trial_id)')" \
          "0,1,2,0,1,2,0,1,2" "islands in turn"
expect_eq "$(sql "$tmp/isl.db" "select count(*) from breeding where operators = 'random'")" "9" "random until populated"

# --strategy random on an evolutionary study samples as a random study with the same seed does
sed '/^\[search\]/,$d' "$tmp/islands.toml" > "$tmp/plain.toml"
run nas-sample --config "$tmp/islands.toml" --db "$tmp/r1.db" -n 20 --strategy random -q
expect_rc 0 "--strategy random on an evolution study"
run nas-sample --config "$tmp/plain.toml" --db "$tmp/r2.db" -n 20 -q
expect_rc 0 "a random study"
expect_eq "$(sql "$tmp/r1.db" 'select group_concat(hash) from (select hash from trial order by id)')" \
          "$(sql "$tmp/r2.db" 'select group_concat(hash) from (select hash from trial order by id)')" "the same random stream"
expect_eq "$(sql "$tmp/r1.db" 'select count(*) from breeding')" "0" "nothing bred"

# refusals
run nas-sample --db "$db" -n 2 --strategy evolutin
expect_rc 2 "unknown strategy"
expect_has "$err" "--strategy: unknown strategy 'evolutin', did you mean 'evolution'?" "unknown strategy message"
run nas-sample --db "$db" --arch '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|' --strategy evolution
expect_rc 2 "--strategy with --arch"
expect_has "$err" "--strategy applies to -n" "--strategy with --arch message"
cat > "$tmp/bad.toml" <<TOML
$(cat "$nb")

[search]
strategy = "nsga2"
objectives = ["test_acc:max", "params:min"]
TOML
run nas-sample --config "$tmp/bad.toml" --db "$tmp/bad.db" -n 2
expect_rc 2 "test_acc objective"
expect_has "$err" "key 'search.objectives': 'test_acc' is reported only" "test_acc refused at its key"
[[ ! -e "$tmp/bad.db" ]] || fail "no study file for a refused configuration"
ok
cat > "$tmp/bad-screen.toml" <<TOML
$(cat "$nb")

[search]
strategy = "evolution"
evaluations = 20
screen = 4
screen_proxies = ["nwot"]
TOML
run nas-sample --config "$tmp/bad-screen.toml" --db "$tmp/bad.db" -n 2
expect_rc 2 "a screen proxy that needs data"
expect_has "$err" "key 'search.screen_proxies': 'nwot' needs data" "screen_proxies refused at its key"

# nas-sample breeds unscreened, and says so
cat > "$tmp/screen.toml" <<TOML
$(cat "$nb")

[search]
strategy = "evolution"
population = 3
evaluations = 12
screen = 3
TOML
run nas-sample --config "$tmp/screen.toml" --db "$tmp/scr-sample.db" -n 2
expect_rc 0 "nas-sample on a screened study"
expect_has "$err" "[search] screen applies to the workers' breeding (nas-train): these were not screened" "unscreened note"
expect_eq "$(sql "$tmp/scr-sample.db" "select count(*) from event where kind = 'screen'")" "0" "no screen event from nas-sample"

# Proxy-guided moves through the real worker, in table mode (the NAS-Bench-201 table answers):
# every child the workers breed was the best of 3 candidates by synflow, and its screen event
# says so; then [search] epochs ends a search at its budget.
table="${NAS_SHARED_DIR:-}/benchmarks/nb201/nats_bench.csv"
if [[ -f $table ]]; then
  nbt() {
    nb201_table_study nb201-screen 4
    cat <<TOML
[train]
epochs = 2
[search]
strategy = "evolution"
population = 3
$1
TOML
  }
  nbt $'evaluations = 10\nscreen = 3' > "$tmp/t.toml"
  db="$tmp/tscr.db"
  run nas-sample --config "$tmp/t.toml" --db "$db" -n 1 --queue --strategy random -q
  expect_rc 0 "one random trial queued"
  run nas-train --db "$db" --worker --table "$table" --pack 2 -q
  expect_rc 0 "screened table workers"
  expect_eq "$(sql "$db" "select count(*) from trial where state = 'done'")" "10" "10 trials done"
  expect_eq "$(sql "$db" "select count(*) from event where kind = 'screen'")" "9" "each of the 9 bred children screened"
  expect_eq "$(sql "$db" "select count(*) from event where kind = 'screen' and (json_extract(detail, '\$.m') <> 3
             or json_extract(detail, '\$.by') <> 'synflow' or json_array_length(detail, '\$.candidates') <> 3)")" "0" \
            "m, proxy and 3 candidates recorded"
  expect_eq "$(sql "$db" "select count(*) from event e join trial t on t.id = e.trial_id where e.kind = 'screen'
             and json_extract(e.detail, '\$.candidates[' || json_extract(e.detail, '\$.chosen') || '].hash') <> t.hash")" \
            "0" "the chosen candidate is the child"
  # the best by synflow that the study did not hold yet (two workers may screen the same
  # candidates at once: the second takes the next best)
  expect_eq "$(sql "$db" "select count(*) from event e, json_each(e.detail, '\$.candidates') c where e.kind = 'screen'
             and json_extract(c.value, '\$.score')
                 > json_extract(e.detail, '\$.candidates[' || json_extract(e.detail, '\$.chosen') || '].score')
             and json_extract(c.value, '\$.hash') not in (select hash from trial where id < e.trial_id)")" \
            "0" "the chosen candidate has the best synflow of those still new"
  moved=$(sql "$db" "select count(*) from event where kind = 'screen' and json_extract(detail, '\$.chosen') > 0")
  [[ $moved -ge 1 ]] || fail "the screen never chose another candidate than the first proposed"
  ok
  # [search] epochs = 11 with 2 epochs a trial: 5 trials (10 epochs), then not even a child fits
  nbt 'epochs = 11' > "$tmp/e.toml"
  db="$tmp/tep.db"
  run nas-sample --config "$tmp/e.toml" --db "$db" -n 1 --queue --strategy random -q
  expect_rc 0 "epochs study"
  run nas-db count --claimable --db "$db"
  expect_eq "$out" "5" "1 queued (2 epochs) and the 4 children the 9 epochs left pay for"
  run nas-train --db "$db" --worker --table "$table" --pack 2 -q
  expect_rc 0 "table workers within [search] epochs"
  expect_eq "$(sql "$db" "select count(*) from trial")" "5" "5 trials of 2 epochs in 11"
  expect_eq "$(sql "$db" "select sum(value) from result where metric = 'epochs'")" "10.0" "10 epochs trained"
  run nas-db count --claimable --db "$db"
  expect_eq "$out" "0" "nothing left to claim"
else
  echo "no NAS-Bench-201 table at $table: the table-mode checks skipped"
fi
done_checks
