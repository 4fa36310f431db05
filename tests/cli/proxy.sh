#!/usr/bin/env bash
# proxy: nas-proxy on a small study -- every sampled candidate scored by every chosen proxy and
# the ensemble, the best `keep` queued by rank (priority by rank, budget min_epochs), the rest
# pruned with their rank; a second run scores nothing; degenerate networks are flagged and rank
# last; the report after training; bad input exits 2 and writes nothing.
source "$(dirname "$0")/common.bash"

{ small_cnn_study proxies 4 400 1; cat <<'EOT'; } > "$tmp/s.toml"
[proxy]
proxies = ["synflow", "nwot", "grad_norm", "params"]
weights = {synflow = 2.0}
[budget]
keep = 4
min_epochs = 1
EOT
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 12 -q
expect_rc 0 "sample 12 candidates"
run nas-proxy --db "$db" --proxies synflow,synfow
expect_rc 2 "an unknown proxy"
expect_has "$err" "unknown proxy 'synfow'" "names it"
expect_has "$err" "synflow" "and suggests one"
expect_eq "$(sql "$db" "select count(*) from proxy_score")" "0" "nothing written"
run nas-proxy --db "$db" --device tpu
expect_rc 2 "an unknown device"
expect_has "$err" "--device: unknown device 'tpu'" "names the argument"
if ! nas-train --version 2>&1 | grep -q "CUDA devices"; then
  run nas-proxy --db "$db" --device cuda
  expect_rc 2 "--device cuda without a GPU"
  expect_has "$err" "no CUDA device is available" "says why"
fi
expect_eq "$(sql "$db" "select count(*) from proxy_score")" "0" "still nothing written"
run nas-proxy --db "$db" --report
expect_rc 2 "a report without scores"

run nas-proxy --db "$db" --format json
expect_rc 0 "nas-proxy"
expect_has "$out" "\"scored\": 12" "scored every candidate"
expect_has "$out" "\"queued\": 4" "queued keep = 4"
expect_has "$out" "\"pruned\": 8" "pruned the rest"
expect_has "$out" "\"rank_by\": \"ensemble\"" "ranked by the ensemble"
expect_eq "$(sql "$db" "select proxy, count(*) from proxy_score group by proxy order by proxy")" \
  "$(printf 'ensemble|12\ngrad_norm|12\nnwot|12\nparams|12\nsynflow|12')" "every proxy and the ensemble for every candidate"
expect_eq "$(sql "$db" "select count(*) from proxy_score where proxy = 'params' and value = (select params from trial where id = trial_id)")" \
  "12" "params is the cost model's count"
expect_eq "$(sql "$db" "select state, count(*), min(budget), max(budget), min(rung) from trial group by state order by state")" \
  "$(printf 'pruned|8|||0\nqueued|4|1.0|1.0|0')" "4 queued at rung 0 with budget 1, 8 pruned"
# the queued are the best by the ensemble, and claimed best first
expect_eq "$(sql "$db" "select (select min(s.value) from proxy_score s join trial t on t.id = s.trial_id where s.proxy = 'ensemble' and t.state = 'queued')
                          >= (select max(s.value) from proxy_score s join trial t on t.id = s.trial_id where s.proxy = 'ensemble' and t.state = 'pruned')")" \
  "1" "the queued rank above the pruned"
expect_eq "$(sql "$db" "select count(*) from trial t where state = 'queued' and priority = (select max(priority) from trial) and
                          (select value from proxy_score where trial_id = t.id and proxy = 'ensemble') = (select max(value) from proxy_score where proxy = 'ensemble')")" \
  "1" "the best has the highest priority"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'pruned' and reason like 'proxy: rank _ of 12 by ensemble' or reason like 'proxy: rank __ of 12 by ensemble'")" \
  "8" "pruned with their rank"
expect_eq "$(sql "$db" "select count(*) from event where kind = 'prune'")" "8" "a prune event each"
expect_eq "$(sql "$db" "select count(*) from proxy_score where proxy = 'nwot' and batch_size = 128")" "12" "nwot's batch of 128"

run nas-proxy --db "$db" --format json
expect_rc 0 "a second run"
expect_has "$out" "\"scored\": 0" "scores nothing again"
expect_has "$out" "\"queued\": 0" "decides nothing again"

run nas-train --db "$db" --worker --threads 2 -q
expect_rc 0 "train the 4 queued"
run nas-proxy --db "$db" --report
expect_rc 0 "report"
expect_has "$out" "spearman" "the report's columns"
expect_has "$out" "(baseline)" "params is the baseline"
for p in synflow nwot grad_norm ensemble; do expect_has "$out" "$p" "the report has $p"; done
run nas-proxy --db "$db" --report --format json
expect_has "$out" "\"beats_params\"" "JSON for scripts"
expect_eq "$(grep -c '"n": 4' <<<"$out")" "5" "4 trained trials for each of 5 rows"

# --no-select on the trained study: other proxies for every trial, whatever its state; the
# ensemble of the chosen ones replaces the stored one; nothing queued, pruned or changed
states=$(sql "$db" "select state, count(*) from trial group by state order by state")
ens_before=$(sql "$db" "select group_concat(value) from (select value from proxy_score where proxy = 'ensemble' order by trial_id)")
run nas-proxy --db "$db" --proxies snip --no-select --format json
expect_rc 0 "--no-select with one proxy"
expect_has "$out" "\"scored\": 12" "scores all 12 trials, trained and pruned ones too"
expect_eq "$(sql "$db" "select count(*) from proxy_score where proxy = 'snip'")" "12" "snip for every trial"
expect_eq "$(sql "$db" "select group_concat(value) from (select value from proxy_score where proxy = 'ensemble' order by trial_id)")" \
  "$ens_before" "one proxy: the stored ensemble is kept"
run nas-proxy --db "$db" --proxies snip,params --no-select --format json
expect_rc 0 "--no-select with two proxies"
expect_has "$out" "\"scored\": 0" "every trial has both scores already"
expect_eq "$(sql "$db" "select state, count(*) from trial group by state order by state")" "$states" "no trial changed state"
# the ensemble of snip and params: the sum of log(rank / 12), ranks ascending, ties averaged
expect_eq "$(sql "$db" "with r as (select trial_id, proxy, (select count(*) from proxy_score o where o.proxy = p.proxy and o.value < p.value)
                                      + ((select count(*) from proxy_score o where o.proxy = p.proxy and o.value = p.value) + 1) / 2.0 as rk
                                  from proxy_score p where proxy in ('snip', 'params'))
                          select count(*) from proxy_score e where e.proxy = 'ensemble' and
                            abs(e.value - (select sum(ln(rk / 12.0)) from r where r.trial_id = e.trial_id)) > 1e-9")" \
  "0" "the stored ensemble is that of snip and params for all 12"
run nas-proxy --db "$db" --report --format tsv
expect_has "$out" "$(printf 'snip\t0\t4\t')" "the report ranks the 4 trained by snip"

# degenerate: an NB201 cell of 'none' edges has no path from input to output
cat > "$tmp/nb.toml" <<'EOT'
[study]
name = "degenerate"
seed = 2
[data]
format = "synthetic"
shape = [3, 8, 8]
classes = 10
samples = 64
[space]
family = "nb201"
channels = 4
cells = 1
[proxy]
proxies = ["synflow", "params"]
ensemble = "none"
rank_by = "synflow"
[budget]
keep = 2
EOT
db="$tmp/nb.db"
run nas-sample --db "$db" --config "$tmp/nb.toml" --arch '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|' \
  --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|' \
  --arch '|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|'
expect_rc 0 "add 3 NB201 cells"
run nas-proxy --db "$db"
expect_rc 0 "score them"
expect_eq "$(sql "$db" "select t.arch, s.value is null, s.flag from proxy_score s join trial t on t.id = s.trial_id
                        where s.proxy = 'synflow' and s.flag is not null")" \
  "|none~0|+|none~0|none~1|+|none~0|none~1|none~2||1|zero" "the empty cell is flagged, its value NULL"
expect_eq "$(sql "$db" "select reason from trial where arch like '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'")" \
  "proxy: rank 3 of 3 by synflow" "and ranks last"

# mo_study NAME EPOCHS [BUDGET LINES]: 12 sampled candidates of a study with two objectives,
# val_acc:max and params:min, screened by the params proxy alone (keep = 4); its file in $db
mo_study() {
  { small_cnn_study "$1" 4 400 "$2"; printf '[proxy]\nproxies = ["params"]\n[budget]\nkeep = 4\nmin_epochs = 1\n%s\n' "${3:-}"
    printf '[search]\nobjectives = ["val_acc:max", "params:min"]\n'; } > "$tmp/$1.toml"
  db="$tmp/$1.db"
  run nas-sample --db "$db" --config "$tmp/$1.toml" -n 12 -q
  expect_rc 0 "sample 12 for $1"
}

# several [search] objectives: the screen keeps the trade-off -- the proxy score stands for
# val_acc beside params:min, by non-dominated rank and crowding -- so the smallest candidate is
# queued although the proxy (params itself here) ranks it last, and the largest too
mo_study proxies_mo 1
run nas-proxy --db "$db" --format json
expect_rc 0 "screen them"
expect_has "$out" '"queued": 4' "queued keep = 4"
expect_has "$out" '"params:min"' "ranked beside params:min"
expect_eq "$(sql "$db" "select (select min(params) from trial where state = 'queued') = (select min(params) from trial),
                               (select max(params) from trial where state = 'queued') = (select max(params) from trial)")" \
  "1|1" "the smallest and the largest are both queued"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'pruned' and reason like 'proxy: rank % of 12 by params with params:min'")" \
  "8" "the pruned say what they were ranked by"

# with [budget] proxy_start the best by the score start at later rungs: the score alone ranks
mo_study proxies_mo_start 9 $'eta = 3\nproxy_start = true'
run nas-proxy --db "$db" -q
expect_rc 0 "screen them"
expect_eq "$(sql "$db" "select (select min(params) from trial where state = 'queued') >= (select max(params) from trial where state = 'pruned'),
                               (select count(*) from trial where state = 'pruned' and reason like 'proxy: rank % of 12 by params')")" \
  "1|8" "the largest by the score alone are queued"

run nas-sample --db "$tmp/bad.db" -n 1 --config <(sed 's/"synflow", "params"/"synflow", "parms"/' "$tmp/nb.toml")
expect_rc 2 "an unknown proxy in [proxy]"
expect_has "$err" "proxy.proxies" "names the key"
expect_has "$err" "did you mean 'params'" "and suggests"
done_checks
