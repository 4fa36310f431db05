#!/usr/bin/env bash
# measure: nas-measure on trained trials -- the local meter, exports written once, and MIMaaS
# over real HTTP on loopback (tests/helpers/mimaas_server.py): every trial measured once, a kill
# mid-poll resumed without a second submission, an exhausted quota, a token file others can
# read, and 200 trials with 20% injected faults where the server sees exactly one successful
# submission per model and the token appears in no log, argument or study-file row.
source "$(dirname "$0")/common.bash"
server="$NAS_SOURCE_DIR/tests/helpers/mimaas_server.py"
command -v /usr/bin/python3 >/dev/null || { echo "no /usr/bin/python3: skipped"; exit 77; }
token=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

# a study of N trained tiny trials
trained_study() {   # trained_study DB N [TIMEOUT_S]
  tiny_study measure 5 1 > "$tmp/$1.toml"
  sed -i 's/^width = \[4, 8\]/width = [4, 8, 12, 16]\nkernel = [1, 3, 5]\nstem_width = [4, 8, 12]/' "$tmp/$1.toml"
  sed -i 's/^stages = 2/stages = { min = 1, max = 3 }/' "$tmp/$1.toml"
  printf '[measure]\npoll_s = 0.05\ntimeout_s = %s\nbackoff_s = 0.05\n' "${3:-2}" >> "$tmp/$1.toml"   # the test server answers at once
  nas-sample --db "$tmp/$1.db" --config "$tmp/$1.toml" -n "$2" --queue -q > /dev/null
  nas-train --db "$tmp/$1.db" --worker --pack 2 -q > /dev/null 2>&1
  [[ $(sql "$tmp/$1.db" "select count(*) from trial where state = 'done'") == "$2" ]] || fail "training $2 trials"
}

server_pid=
state=(--state "$tmp/server.json")   # kept across a restart of the server
start_server() {   # start_server ARGS...: sets port
  rm -f "$tmp/server.out"
  /usr/bin/python3 "$server" --token "$token" "${state[@]}" "$@" > "$tmp/server.out" 2>"$tmp/server.err" &
  server_pid=$!
  for _ in $(seq 200); do [ -s "$tmp/server.out" ] && break; sleep 0.05; done
  port=$(head -1 "$tmp/server.out")
  [[ "$port" =~ ^[0-9]+$ ]] || fail "the test server did not start: $(cat "$tmp/server.err")"
}
stop_server() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; server_pid=; }
trap 'stop_server; rm -rf "$tmp"' EXIT
stats() { curl -s "http://127.0.0.1:$port/_control/stats"; }

# --- local ---------------------------------------------------------------------------------------
trained_study s 3
db="$tmp/s.db"
cp "$db" "$tmp/front.db" && cp -r "$tmp/s.db.d" "$tmp/front.db.d"   # the same trained trials, for --front
run nas-measure --db "$db" --runs 10 --warmup 1 --batch 4 --format tsv
expect_rc 0 "nas-measure on the local CPU"
expect_eq "$(sql "$db" "select count(distinct trial_id) from measurement where backend = 'local' and device = 'cpu'")" "3" "every trial measured"
expect_eq "$(sql "$db" "select unit from measurement where trial_id = 1 and metric = 'latency_ms'")" "ms" "latency unit"
expect_eq "$(sql "$db" "select count(*) from measurement where trial_id = 1 and metric in ('latency_ms','latency_p10_ms','latency_p90_ms','peak_mem_bytes') and value > 0")" "4" "latency and memory values"
expect_eq "$(sql "$db" "select count(*) from measurement where metric = 'latency_p10_ms' and value > (select value from measurement m where m.trial_id = measurement.trial_id and m.metric = 'latency_ms')")" "0" "p10 <= median"
run nas-measure --db "$db"
expect_rc 0 "a second run"
expect_has "$err" "nothing to measure" "nothing left to measure"
run nas-pareto --db "$db" -o val_acc:max -o latency_ms:min --format tsv
expect_rc 0 "nas-pareto over a measurement"
run nas-measure --db "$db" --trials 1,x
expect_rc 2 "a bad --trials"
expect_has "$err" "--trials" "the option named"

# --front: exactly the trials on nas-pareto's front of those objectives
run nas-pareto --db "$tmp/front.db" -o val_acc:max -o params:min --format tsv
expect_rc 0 "nas-pareto before --front"
front=$(echo "$out" | tail -n +2 | cut -f1 | sort -n | paste -sd,)
[[ -n "$front" ]] || fail "a front to measure"
run nas-measure --db "$tmp/front.db" --front val_acc:max --front params:min --runs 5 --warmup 1 --batch 2 --format tsv
expect_rc 0 "nas-measure --front"
expect_eq "$(sql "$tmp/front.db" "select group_concat(trial_id) from (select distinct trial_id from measurement order by trial_id)")" \
          "$front" "the front's trials measured, no other"
run nas-measure --db "$tmp/front.db" --front val_acc:best --front params:min
expect_rc 2 "a bad --front"
expect_has "$err" "val_acc:best" "the bad objective named"

# --- exports -------------------------------------------------------------------------------------
run nas-measure --db "$db" export --as onnx --as tflite --trials 1-2 --format tsv
expect_rc 0 "export"
expect_eq "$(sql "$db" "select count(*) from artifact where kind in ('onnx','tflite')")" "4" "artifact rows"
f="$tmp/s.db.d/$(sql "$db" "select path from artifact where trial_id = 2 and kind = 'tflite'")"
expect_eq "$(sha256sum "$f" | cut -d' ' -f1)" "$(sql "$db" "select sha256 from artifact where trial_id = 2 and kind = 'tflite'")" "the file's sha256"
expect_eq "$(head -c 8 "$f" | tail -c 4)" "TFL3" "a TFLite file"
run nas-measure --db "$db" export --as tflite --trials 2 --format tsv
expect_has "$out" "true" "exported once: the second export reuses the file"
run nas-measure --db "$db" export --as keras --trials 2
expect_rc 2 "an unknown export format"
run nas-measure --db "$db" export --as onnx --format tsv
expect_rc 0 "export without --trials"
expect_eq "$(echo "$out" | tail -n +2 | cut -f1 | paste -sd,)" "$(sql "$db" "select group_concat(id) from (select id from trial where state = 'done' order by id)")" \
          "every finished trial exported"

# --- MIMaaS on loopback --------------------------------------------------------------------------
export MIMAAS_API_TOKEN=$token
start_server --polls-pending 2 --polls-processing 1
run nas-measure --db "$db" --backend mimaas --url "http://127.0.0.1:$port" --board nrf5340dk --inflight 2 \
  --format tsv -v
expect_rc 0 "measuring on the test server"
expect_eq "$(sql "$db" "select count(distinct trial_id) from measurement where backend = 'mimaas' and device = 'nrf5340dk-int8'")" "3" "every trial measured on the board"
expect_eq "$(sql "$db" "select count(*) from measurement where backend = 'mimaas' and metric in ('latency_ms','rom_bytes','energy_uj','arena_bytes','firmware_ram_bytes') and value > 0")" "15" "the platform's metrics and the arena from the log"
expect_eq "$(sql "$db" "select count(*) from remote_request where status = 'done' and request_id is not null")" "3" "requests recorded"
expect_eq "$(stats | /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["successful_submissions"], max(s["submissions"].values()))')" "3 1" "one submission per model"
run nas-measure --db "$db" --backend mimaas --url "http://127.0.0.1:$port" --board nrf5340dk
expect_rc 0 "a second run"
expect_eq "$(stats | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["successful_submissions"])')" "3" "nothing paid twice"
run nas-measure --db "$db" --backend mimaas --url "http://127.0.0.1:$port" --board nrf9999
expect_rc 2 "an unknown board"
expect_has "$err" "nrf5340dk" "the boards named"
stop_server

# killed while polling: the next run resumes the open requests and submits nothing again
trained_study k 4
rm -f "$tmp/server.json"
start_server --polls-pending 1000
nas-measure --db "$tmp/k.db" --backend mimaas --url "http://127.0.0.1:$port" --board nrf5340dk --inflight 4 -q > /dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do
  [[ $(sql "$tmp/k.db" "select count(*) from remote_request where request_id is not null") == 4 ]] && break
  sleep 0.1
done
kill -9 $pid; wait $pid 2>/dev/null || true
expect_eq "$(sql "$tmp/k.db" "select count(*) from remote_request where status = 'pending'")" "4" "open requests kept after a kill"
stop_server
start_server --polls-pending 1
run nas-measure --db "$tmp/k.db" --backend mimaas --url "http://127.0.0.1:$port" --board nrf5340dk --format tsv
expect_rc 0 "the resumed run"
expect_eq "$(sql "$tmp/k.db" "select count(distinct trial_id) from measurement where backend = 'mimaas'")" "4" "measured after the resume"
expect_eq "$(stats | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["successful_submissions"])')" "4" "no submission twice across the kill"
stop_server

# an exhausted quota: what is left stays unsubmitted, exit 1, said plainly
trained_study q 3
rm -f "$tmp/server.json"
start_server --runs 1
run nas-measure --db "$tmp/q.db" --backend mimaas --url "http://127.0.0.1:$port" --board nrf5340dk --format tsv
expect_rc 1 "quota exhausted"
expect_has "$err" "no runs left" "the quota named"
expect_eq "$(sql "$tmp/q.db" "select count(distinct trial_id) from measurement where backend = 'mimaas'")" "1" "the one run measured"
expect_eq "$(sql "$tmp/q.db" "select count(*) from remote_request")" "1" "no request row for what was never sent"
stop_server

# a token file others can read is refused, naming it
unset MIMAAS_API_TOKEN
printf '%s\n' "$token" > "$tmp/token"
chmod 644 "$tmp/token"
run nas-measure --db "$tmp/q.db" --backend mimaas --url "http://127.0.0.1:9" --board nrf5340dk --token-file "$tmp/token"
expect_rc 2 "a token file readable by others"
expect_has "$err" "$tmp/token" "the file named"
export MIMAAS_API_TOKEN=$token

# 200 trials, 20% of the API calls faulted: each trial measured once, each model paid once
trained_study f 200 0.3   # a 'slow' answer (0.5 s) outlasts the 0.3 s time-out
state=()                             # in memory: the server's own file writes would dominate
start_server --fault-rate 0.2 --seed 7 --slow-s 0.5
run nas-measure --db "$tmp/f.db" --backend mimaas --url "http://127.0.0.1:$port" --board nrf5340dk --inflight 8 \
  --format tsv -v
rounds=1
while [[ $rc != 0 && $rounds -lt 4 ]]; do   # an unanswered upload stops submitting; the next run goes on
  run nas-measure --db "$tmp/f.db" --backend mimaas --url "http://127.0.0.1:$port" --board nrf5340dk --inflight 8 --format tsv -v
  rounds=$((rounds + 1))
done
expect_rc 0 "200 trials under 20% faults (after $rounds runs)"
expect_eq "$(sql "$tmp/f.db" "select count(distinct trial_id) from measurement where backend = 'mimaas' and metric = 'latency_ms'")" "200" "every trial measured"
expect_eq "$(sql "$tmp/f.db" "select count(*) from measurement where backend = 'mimaas' and metric = 'latency_ms'")" "200" "exactly one measurement each"
read -r succ maxper faults < <(stats | /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["successful_submissions"], max(s["submissions"].values()), sum(s["faults"].values()))')
expect_eq "$succ $maxper" "200 1" "one successful submission per distinct model"
[[ $faults -gt 20 ]] || fail "only $faults faults were injected"; ok
for f in "$tmp"/*.db; do
  ! sqlite3 "$f" .dump | grep -q "$token" || fail "the token is in $f"
done; ok
! grep -q "$token" "$tmp/.err" || fail "the token is in the log"; ok
stop_server
done_checks
