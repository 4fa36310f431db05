#!/usr/bin/env bash
# open_study: every tool opens a study the same way -- a missing file is exit 2 "no such file",
# an empty file or one without a study exit 2 "holds no study", any other file that is not a
# study file (text, someone else's SQLite database, a directory) exit 2 "is not a minnow study
# file: WHAT", and the file is left as it was (man minnow.7, OPENING A STUDY; issue 13)
source "$(dirname "$0")/common.bash"

missing="$tmp/missing.db"
for cmd in "nas-db status" "nas-db count --claimable" "nas-db export" "nas-train --worker" "nas-proxy" \
           "nas-slurm plan" "nas-pareto --objective val_acc:max --objective params:min"; do
  # shellcheck disable=SC2086
  run $cmd --db "$missing"
  expect_rc 2 "$cmd on a missing file"
  expect_has "$err" "cannot open '$missing': no such file" "$cmd: missing-file message"
done
[[ ! -e "$missing" ]] || fail "a tool created '$missing'"; ok

empty="$tmp/empty.db"
: > "$empty"
run nas-train --db "$empty" --worker
expect_rc 2 "nas-train on a file without a study"
expect_has "$err" "'$empty' holds no study: create it with nas-sample --config FILE" "nas-train: no-study message"
for cmd in "nas-db status" "nas-db count --claimable" "nas-proxy" "nas-slurm plan" "nas-slurm status" \
           "nas-pareto --objective val_acc:max --objective params:min"; do
  # shellcheck disable=SC2086
  run $cmd --db "$empty"
  expect_rc 2 "$cmd on a file without a study"
  expect_has "$err" "'$empty' holds no study: create it with nas-sample --config FILE" "$cmd: no-study message"
done
[[ ! -s "$empty" ]] || fail "a tool wrote into the empty file '$empty'"; ok

# Every tool that takes --db, on files that are not study files.
tools=("nas-db status" "nas-db check" "nas-db export" "nas-db count" "nas-db count --claimable"
       "nas-db requeue --state failed" "nas-train --worker" "nas-proxy" "nas-slurm plan" "nas-slurm status"
       "nas-pareto --objective val_acc:max --objective params:min" "nas-sample -n 1")
printf 'these are my notes\n%.0s' {1..40} > "$tmp/notes.db"
sql "$tmp/photos.db" "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO photos VALUES (1, 'cat')"
mkdir "$tmp/folder.db"
tiny_study open 1 1 > "$tmp/s.toml"
for f in "notes.db:not an SQLite database" "photos.db:an SQLite database without minnow's table 'trial'" \
         "folder.db:a directory"; do
  file="$tmp/${f%%:*}" what="${f#*:}"
  before=$(ls -l --time-style=+%s.%N "$file"; [[ -d "$file" ]] || sha256sum "$file")
  for cmd in "${tools[@]}" "nas-sample --config $tmp/s.toml -n 1"; do
    # shellcheck disable=SC2086
    run $cmd --db "$file"
    expect_rc 2 "$cmd on $f"
    expect_has "$err" "'$file' is not a minnow study file: $what" "$cmd on $f: message"
  done
  expect_eq "$(ls -l --time-style=+%s.%N "$file"; [[ -d "$file" ]] || sha256sum "$file")" "$before" "$file left as it was"
done
[[ -z "$(ls "$tmp/folder.db")" ]] || fail "a tool wrote into the folder"; ok
# nas-sample --config may create a study in an empty file (as in one made by mktemp)
run nas-sample --config "$tmp/s.toml" --db "$empty" -n 1 -q
expect_rc 0 "nas-sample --config into an empty file"
expect_eq "$(sql "$empty" 'select count(*) from trial')" "1" "the study was created in it"
done_checks
