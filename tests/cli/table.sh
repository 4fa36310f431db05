#!/usr/bin/env bash
# table: nas-train --table as a user runs it -- an nb201 study evaluated from the NAS-Bench-201
# table through the worker: random trials queued by nas-sample, an evolutionary search bred by
# the workers themselves up to [search] evaluations; refusals
source "$(dirname "$0")/common.bash"
table="$NAS_SHARED_DIR/benchmarks/nb201/nats_bench.csv"
[[ -f $table ]] || { echo "no NAS-Bench-201 table at $table: skipped"; exit 0; }
{ nb201_table_study nb201-table 3
  cat <<'TOML'
[search]
strategy = "evolution"
population = 5
evaluations = 60
TOML
} > "$tmp/s.toml"
run nas-sample --config "$tmp/s.toml" --db "$tmp/s.db" -n 3 --queue --strategy random -q
expect_rc 0 "3 random trials queued"
run nas-train --db "$tmp/s.db" --worker --table "$table" --pack 3 --format tsv
expect_rc 0 "table worker"
expect_eq "$(echo "$out" | wc -l)" "61" "60 rows and a header"
expect_eq "$(sql "$tmp/s.db" "select count(*) from trial where state = 'done'")" "60" "every trial done"
expect_eq "$(sql "$tmp/s.db" "select count(*) from breeding where worker_id is not null")" "57" "the workers bred the other 57"
expect_eq "$(sql "$tmp/s.db" "select count(*) from result where metric = 'wall_s' and note like 'simulated%'")" "60" "time simulated"
best=$(sql "$tmp/s.db" "select max(value) from result where metric = 'test_acc'")
awk -v b="$best" 'BEGIN { exit !(b > 0.93) }' || fail "best test accuracy after 60 evaluations: $best"
ok
# nothing left: a second worker exits 0 at once
run nas-train --db "$tmp/s.db" --worker --table "$table"
expect_rc 0 "nothing left to claim or breed"
# refusals
run nas-train --db "$tmp/s.db" --worker --table "$tmp/none.csv"
expect_rc 2 "missing table"
expect_has "$err" "cannot open table '$tmp/none.csv'" "missing table message"
run nas-train --db "$tmp/s.db" --table "$table"
expect_rc 2 "--table without --worker or --trial"
tiny_study cnn 1 1 > "$tmp/cnn.toml"
run nas-sample --config "$tmp/cnn.toml" --db "$tmp/cnn.db" -n 1 -q
run nas-train --db "$tmp/cnn.db" --worker --table "$table"
expect_rc 2 "a cnn study"
expect_has "$err" "searches the cnn family; the table holds nb201 cells" "cnn study message"
done_checks
