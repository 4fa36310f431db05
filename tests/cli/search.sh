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
done_checks
