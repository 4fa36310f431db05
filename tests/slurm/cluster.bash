# cluster.bash: sourced by the Slurm tests after common.bash. Skips the test (exit 77) when not
# root or without slurm-wlm and munge; else starts a one-host cluster of scripts/local-slurm in
# the test's own folder on random ports (fake GPUs as GRES), stopped when the test exits.
if [ "$(id -u)" -ne 0 ] || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "skipped: needs root and Debian's slurm-wlm and munge (scripts/install-deps)"
  exit 77
fi
export NAS_SLURM_DIR="$tmp/slurm"
export NAS_SLURM_PORT=$((17000 + RANDOM % 2000 * 2))
trap '"$NAS_SOURCE_DIR/scripts/local-slurm" stop >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
eval "$("$NAS_SOURCE_DIR/scripts/local-slurm" start)"
[ -n "${SLURM_CONF:-}" ] || fail "local-slurm start printed no SLURM_CONF"
ok

# wait_job ID: until the job (all its tasks) has left the queue, at most 120 s
wait_job() {
  for _ in $(seq 1 240); do
    [ -z "$(squeue -h -j "$1" -o %i 2>/dev/null)" ] && return 0
    sleep 0.5
  done
  fail "job $1 still in the queue after 120 s: $(squeue -j "$1")"
}
