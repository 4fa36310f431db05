#!/usr/bin/env bash
# sample: nas-sample and nas-db as a user runs them -- ids, formats, reproducibility,
# duplicates, given candidates, configuration changes, status/export/check
source "$(dirname "$0")/common.bash"
nb="$fixtures/nb201-small.toml"

db="$tmp/a.db"
run nas-sample --config "$nb" --db "$db" -n 100
expect_rc 0 "sample 100"
expect_eq "$(echo "$out" | wc -l)" "100" "100 ids printed"
expect_eq "$(echo "$out" | sort -u | wc -l)" "100" "ids are unique"
expect_eq "$(sql "$db" "select count(*) from trial where state='sampled' and origin='sample'")" "100" "100 sampled trials"
expect_eq "$(sql "$db" "select count(*) from event where kind='sample' and to_state='sampled'")" "100" "one event per trial"
expect_eq "$(sql "$db" "select count(*) from event where kind='create'")" "1" "one create event"
expect_eq "$(sql "$db" "select count(distinct hash) from trial")" "100" "distinct hashes"
expect_eq "$(sql "$db" "select count(*) from trial where arch not like '|%~0|+|%~0|%~1|+|%~0|%~1|%~2|'")" "0" "arch strings"

# the same seed gives the same candidates; a second run gives new ones
db2="$tmp/b.db"
NAS_DB="$db2" run nas-sample --config "$nb" -n 100 -q
expect_rc 0 "sample via NAS_DB"
expect_eq "$(sql "$db2" 'select group_concat(hash) from (select hash from trial order by id)')" \
          "$(sql "$db" 'select group_concat(hash) from (select hash from trial order by id)')" "same seed, same candidates"
run nas-sample --db "$db" -n 50 -q
expect_rc 0 "second run without --config"
expect_eq "$(sql "$db" 'select count(distinct hash) from trial')" "150" "second run adds new candidates"

# formats
run nas-sample --db "$db" -n 3 --format csv
expect_eq "$(echo "$out" | head -1)" "id,arch,params,macs,peak_act_bytes,weight_bytes" "csv header"
expect_eq "$(echo "$out" | wc -l)" "4" "csv rows"
run nas-sample --db "$db" -n 2 --format json
expect_has "$out" '"params":' "json output"
expect_eq "$(echo "$out" | grep -c '"id":')" "2" "json objects"

# given candidates: costs printed, duplicates reported and not added twice
all_conv='|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|'
n_before=$(sql "$db" 'select count(*) from trial')
run nas-sample --db "$db" --arch "$all_conv" --format tsv
expect_rc 0 "add arch"
expect_eq "$(echo "$out" | tail -1 | cut -f2,3,7)" "$all_conv	1531546	added" "added with its params"
id=$(echo "$out" | tail -1 | cut -f1)
run nas-sample --db "$db" --arch "$all_conv" --format tsv
expect_rc 0 "duplicate is not an error"
expect_eq "$(echo "$out" | tail -1 | cut -f1,7)" "$id	duplicate" "duplicate reported with the existing id"
expect_has "$err" "is already trial $id" "duplicate message"
expect_eq "$(sql "$db" 'select count(*) from trial')" "$((n_before + 1))" "added once"
expect_eq "$(sql "$db" "select origin from trial where id=$id")" "given" "origin given"
sql "$db" "select genome from trial where id=$id" > "$tmp/g.jsonl"
run nas-sample --db "$db" --genome - < "$tmp/g.jsonl"
expect_eq "$(echo "$out" | tail -1 | awk '{print $NF}')" "duplicate" "genome from stdin is the same candidate"

# a different configuration is refused unless replaced
sed 's/seed = 7/seed = 8/' "$nb" > "$tmp/other.toml"
before=$(sha256sum "$db" | cut -d' ' -f1)
run nas-sample --config "$tmp/other.toml" --db "$db" -n 1
expect_rc 2 "different config refused"
expect_has "$err" "created from another configuration" "refusal message"
expect_eq "$(sha256sum "$db" | cut -d' ' -f1)" "$before" "refused change leaves the file alone"
# comments and layout do not make a configuration different
{ echo "# a comment"; cat "$nb"; } > "$tmp/same.toml"
run nas-sample --config "$tmp/same.toml" --db "$db" -n 1 -q
expect_rc 0 "same config with a comment"
run nas-sample --config "$tmp/other.toml" --db "$db" -n 1 --replace-config -q
expect_rc 0 "replace config"
expect_eq "$(sql "$db" 'select seed from study')" "8" "config replaced"
expect_eq "$(sql "$db" "select count(*) from event where kind='config'")" "1" "config event"

# a constraint-breaking given candidate is added as pruned, with the reason
cat > "$tmp/small.toml" <<TOML
[study]
seed = 1
[data]
format = "synthetic"
shape = [3, 32, 32]
classes = 10
[space]
family = "nb201"
[constraints]
max_params = 1000000
TOML
run nas-sample --config "$tmp/small.toml" --db "$tmp/c.db" --arch "$all_conv" --format csv
expect_rc 0 "add a too-large cell"
expect_has "$out" ",pruned" "status pruned"
expect_has "$err" "added as pruned: constraint: max_params (1531546 > 1000000)" "pruned warning"
expect_eq "$(sql "$tmp/c.db" "select state || ' ' || reason from trial")" "pruned constraint: max_params (1531546 > 1000000)" "reason kept"
run nas-sample --db "$tmp/c.db" -n 20 -q
expect_eq "$(sql "$tmp/c.db" "select count(*) from trial where state='sampled' and params > 1000000")" "0" "sampling respects max_params"

# nas-db
run nas-db status --db "$db"
expect_rc 0 "status"
expect_has "$out" "study  nb201-synthetic" "status names the study"
expect_has "$out" "sampled" "status counts"
run nas-db status --db "$db" --format json
expect_has "$out" '"trials": 158' "status json total"
run nas-db --db "$db" status --format csv
expect_eq "$(echo "$out" | head -1)" "state,rung,trials" "status csv"
run nas-db export --db "$db"
expect_eq "$(echo "$out" | head -1 | cut -d, -f1-6)" "id,state,rung,budget,origin,arch" "export header"
expect_eq "$(echo "$out" | tail -n +2 | wc -l)" "158" "export rows"
run nas-db export --db "$db" --format json
expect_has "$out" '"genome": "{\"family\":\"nb201\"' "export json genome"
run nas-db check --db "$db"
expect_rc 0 "check passes"
expect_has "$out" "integrity" "check output"
run nas-db check --db "$tmp/missing.db"
expect_rc 2 "check of a missing file"
run nas-db
expect_rc 2 "no subcommand"
echo "not a database" > "$tmp/junk.db"
run nas-db status --db "$tmp/junk.db"
expect_rc 2 "junk file (bad input, issue 13)"
expect_has "$err" "'$tmp/junk.db' is not a minnow study file: not an SQLite database" "junk file named"
done_checks
