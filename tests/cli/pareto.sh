#!/usr/bin/env bash
# pareto: nas-pareto as a user runs it, on a study whose results and measurements are written
# with sqlite3: the front equals the one computed in SQL from the definition, rung and --where
# filters, reference points, history, plots, and errors
source "$(dirname "$0")/common.bash"
db="$tmp/p.db"
run nas-sample --config "$fixtures/nb201-small.toml" --db "$db" -n 60 -q
expect_rc 0 "sample"
now=$(date +%s)
# val_acc at rung 0 for every trial, at rung 1 for the even ones; latency measured on one device;
# trials finish in reverse id order
sql "$db" "
  insert into result (trial_id, rung, metric, value, unit, created_at)
    select id, 0, 'val_acc', 0.5 + ((id * 37) % 41) / 100.0, 'fraction', $now from trial;
  insert into result (trial_id, rung, metric, value, unit, created_at)
    select id, 1, 'val_acc', 0.6 + ((id * 53) % 31) / 100.0, 'fraction', $now from trial where id % 2 = 0;
  insert into measurement (trial_id, backend, device, metric, value, unit, created_at)
    select id, 'local', 'cpu', 'latency_s', macs / 1e9 + (id % 7) / 1000.0, 's', $now from trial;
  insert into event (at, kind, trial_id, from_state, to_state)
    select $now, 'finish', id, 'running', 'done' from trial order by id desc;"

front_sql() { # $1 = rung: the front of (params min, val_acc max) from the definition
  sql "$db" "with c as (select t.id, t.params p, r.value a from trial t join result r on r.trial_id = t.id
                        where r.metric = 'val_acc' and r.rung = $1)
             select group_concat(id) from (select id from c where not exists (select 1 from c u
               where u.p <= c.p and u.a >= c.a and (u.p < c.p or u.a > c.a)) order by id)"
}
ids_of() { tail -n +2 | cut -d, -f1 | sort -n | paste -sd, -; }

run nas-pareto --db "$db" -o params:min -o val_acc:max --format csv
expect_rc 0 "front"
expect_eq "$(echo "$out" | head -1)" "trial,params,val_acc,crowding,knee,arch" "csv header"
expect_eq "$(echo "$out" | ids_of)" "$(front_sql 1)" "front at the last rung (1) equals the definition"
expect_eq "$(echo "$out" | tail -n +2 | grep -c ',knee,')" "1" "one knee"
expect_has "$err" "of 30 trials" "only trials with results at rung 1"
run nas-pareto --db "$db" -o params:min -o val_acc:max --format csv --rung 0
expect_eq "$(echo "$out" | ids_of)" "$(front_sql 0)" "front at rung 0"
expect_has "$err" "of 60 trials" "every trial at rung 0"

# --where keeps only trials that meet it
limit=$(sql "$db" "select params from trial order by params limit 1 offset 30")
run nas-pareto --db "$db" -o latency_s:min -o val_acc:max -w "params<=$limit" --rung 0 --all --format csv
expect_rc 0 "where"
expect_eq "$(echo "$out" | tail -n +2 | wc -l)" "$(sql "$db" "select count(*) from trial where params <= $limit")" "where filters trials"
expect_eq "$(echo "$out" | head -1)" "trial,latency_s,val_acc,front,crowding,knee,arch" "--all adds the front rank"

# json: the hypervolume with a given reference equals the one computed from the front by hand
run nas-pareto --db "$db" -o params:min -o val_acc:max --reference 2000000,0 --format json
expect_rc 0 "json"
hv=$(echo "$out" | sed -n 's/^  "hypervolume": \(.*\),$/\1/p')
want=$(sql "$db" "with c as (select t.id, t.params p, r.value a from trial t join result r on r.trial_id = t.id
                      where r.metric='val_acc' and r.rung=1),
                  f as (select * from c where not exists (select 1 from c u where u.p <= c.p and u.a >= c.a
                        and (u.p < c.p or u.a > c.a))),
                  s as (select p, a, lead(p, 1, 2000000) over (order by p) np from f)
                  select printf('%.6f', sum((np - p) * a)) from s")
expect_eq "$(printf '%.6f' "$hv")" "$want" "hypervolume of the staircase"
expect_has "$out" '"reference": 2000000' "reference echoed"

# history: one row per considered trial, in finishing order, never decreasing, ends at the front's
run nas-pareto --db "$db" -o params:min -o val_acc:max --reference 2000000,0 --history --format csv
expect_rc 0 "history"
expect_eq "$(echo "$out" | tail -n +2 | wc -l)" "30" "history rows"
expect_eq "$(echo "$out" | sed -n 2p | cut -d, -f2)" "$(sql "$db" 'select max(id) from trial where id % 2 = 0')" "finishing order"
expect_eq "$(echo "$out" | tail -n +2 | cut -d, -f3 | sort -g -c && echo sorted)" "sorted" "hypervolume never decreases"
expect_eq "$(printf '%.6f' "$(echo "$out" | tail -1 | cut -d, -f3)")" "$want" "history ends at the front's hypervolume"
run nas-pareto --db "$db" -o params:min -o val_acc:max --history --plot "$tmp/h.svg"
expect_rc 0 "history plot"
expect_eq "$(grep -o 'class="point"' "$tmp/h.svg" | wc -l)" "30" "history plot markers"

# the plot: every trial drawn, the front highlighted and labelled
run nas-pareto --db "$db" -o params:min -o val_acc:max --plot "$tmp/f.svg" --format csv
expect_rc 0 "plot"
nfront=$(echo "$out" | tail -n +2 | wc -l)
expect_eq "$(grep -o 'class="front"' "$tmp/f.svg" | wc -l)" "$nfront" "front markers"
expect_eq "$(grep -o 'class="point"' "$tmp/f.svg" | wc -l)" "30" "every trial drawn"
expect_eq "$(grep -o 'class="knee"' "$tmp/f.svg" | wc -l)" "1" "knee marked"
expect_has "$(cat "$tmp/f.svg")" "val_acc [fraction] (max)" "axis title with unit and direction"
run nas-pareto --db "$db" -o params:min -o val_acc:max -o local:cpu:latency_s:min --plot "$tmp/g.svg" -q
expect_rc 0 "three objectives"
expect_eq "$(grep -o 'class="panel"' "$tmp/g.svg" | wc -l)" "3" "pairwise panels"

# errors: exit 2, the argument named, the file untouched
before=$(sha256sum "$db" | cut -d' ' -f1)
run nas-pareto --db "$db" -o parms:min -o val_acc:max
expect_rc 2 "unknown objective"
expect_has "$err" "--objective 'parms:min': the study has no metric 'parms', did you mean 'params'?" "suggestion"
run nas-pareto --db "$db" -o params:least -o val_acc:max
expect_rc 2 "bad direction"
run nas-pareto --db "$db" -o params:min
expect_rc 2 "one objective"
run nas-pareto --db "$db" -o params:min -o val_acc:max -w 'params = 3'
expect_rc 2 "bad condition"
expect_has "$err" "--where 'params = 3'" "condition named"
run nas-pareto --db "$db" -o params:min -o val_acc:max --reference 1,2,3
expect_rc 2 "reference size"
run nas-pareto --db "$db" -o params:min -o val_acc:max -w 'params<1'
expect_rc 1 "nothing left"
expect_eq "$(sha256sum "$db" | cut -d' ' -f1)" "$before" "nas-pareto never writes the study file"
done_checks
