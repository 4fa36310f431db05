# common.bash: sourced by the CLI tests (run by ctest with NAS_BIN, NAS_TEST_BIN, NAS_SOURCE_DIR)
set -euo pipefail
: "${NAS_BIN:?NAS_BIN must name the folder of the built tools}"
: "${NAS_SOURCE_DIR:?NAS_SOURCE_DIR must name the source tree}"
export PATH="$NAS_BIN:$PATH"
unset NAS_DB
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fixtures="$NAS_SOURCE_DIR/tests/fixtures"
checks=0

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); }

# run CMD...: runs it, keeping its exit code in rc, stdout in out, stderr in err.
run() {
  set +e
  "$@" >"$tmp/.out" 2>"$tmp/.err"
  rc=$?
  set -e
  out=$(cat "$tmp/.out")
  err=$(cat "$tmp/.err")
}

expect_rc() { [[ "$rc" == "$1" ]] || fail "$2: exit $rc, expected $1; stderr: $err"; ok; }
expect_eq() { [[ "$1" == "$2" ]] || fail "$3: got '$1', expected '$2'"; ok; }
expect_has() { [[ "$1" == *"$2"* ]] || fail "$3: '$2' not found in: $1"; ok; }
sql() { sqlite3 -batch -noheader "$1" "$2"; }
done_checks() { echo "$(basename "$0"): $checks checks passed"; }
