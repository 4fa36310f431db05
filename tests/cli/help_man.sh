#!/usr/bin/env bash
# help_man: every option that a tool's --help shows is documented in its man page (git's t0450)
source "$(dirname "$0")/common.bash"

options_of() { grep -oE '(^|[ ,])--?[a-zA-Z][a-zA-Z-]*' | sed 's/^[ ,]*//' | sort -u; }

for tool_dir in "$NAS_SOURCE_DIR"/tools/nas-*; do
  tool=$(basename "$tool_dir")
  page="$NAS_SOURCE_DIR/man/$tool.1"
  [[ -f "$page" ]] || fail "no man page for $tool"
  text=$(sed 's/\\-/-/g; s/\\f[BIR]//g' "$page")
  helps=$("$tool" --help)
  # subcommands have their own help
  for sub in $(echo "$helps" | awk '/^SUBCOMMANDS:/{f=1;next} f && /^  [a-z]/{print $1}'); do
    helps+=$'\n'$("$tool" "$sub" --help)
    expect_has "$text" "$tool $sub" "$tool: subcommand '$sub' in $page"
  done
  for opt in $(echo "$helps" | options_of); do
    grep -qE -- "(^|[^a-zA-Z-])$opt([^a-zA-Z-]|$)" <<<"$text" || fail "$tool: option '$opt' from --help is missing in $page"
    ok
  done
  run "$tool" --version
  expect_rc 0 "$tool --version"
  expect_has "$out" "minnow " "$tool --version"
done
for page in nas-study.5 minnow.7; do
  [[ -f "$NAS_SOURCE_DIR/man/$page" ]] || fail "missing man/$page"
done
# every tool's page says when it exits 0, 1 and 2, and minnow.7's table of exit codes names every tool
# exit_status PAGE: the EXIT STATUS section of a man page, without font escapes
exit_status() { sed 's/\\-/-/g; s/\\f[BIR]//g' "$1" | awk '/^\.SH EXIT STATUS/{f=1;next} /^\.SH/{f=0} f'; }
overview=$(exit_status "$NAS_SOURCE_DIR/man/minnow.7")
for tool_dir in "$NAS_SOURCE_DIR"/tools/nas-*; do
  tool=$(basename "$tool_dir")
  section=$(exit_status "$NAS_SOURCE_DIR/man/$tool.1")
  for code in 0 1 2; do
    grep -qx "\.B $code" <<<"$section" || fail "$tool.1: EXIT STATUS does not say when it exits $code"
    ok
  done
  grep -q "^$tool|" <<<"$overview" || fail "minnow.7: the table of exit codes has no row for $tool"
  ok
done
# every key the study format accepts is documented in nas-study.5
study=$(sed 's/\\-/-/g; s/\\f[BIR]//g' "$NAS_SOURCE_DIR/man/nas-study.5")
for key in name seed format train_images train_labels test_images test_labels train test layout shape classes samples \
           test_samples validation subset augment crop_padding family channels cells ops stages stem_width stem_kernel stem_stride stem_activation head_width \
           depth width kernel stride block expansion activation max_params max_macs max_peak_activation_bytes \
           max_weight_bytes precision v_trials v_states v_workers v_events \
           epochs batch_size eval_batch_size optimizer lr momentum nesterov weight_decay label_smoothing \
           warmup_epochs schedule grad_clip max_attempts lease_s hparams v_results v_epochs \
           partition account qos gpus gpus_per_task gpu_option cpus_per_task memory time array_parallelism \
           gpu_mem pack processes mps signal_s throughput cpu_throughput step_s device setup sbatch templates job v_jobs \
           proxies weights ensemble rank_by keep min_epochs max_epochs eta proxy_start early_stop promotion anneal \
           strategy objectives constraints population islands crossover mutation random migration migrants \
           pollination evaluations wall_time screen screen_proxies breeding island_member v_lineage \
           teacher teacher_mean teacher_std loss temperature alpha beta trials targets \
           backend board quantize build_mode url token_file inflight poll_s timeout_s backoff_s wait_s firmware_overhead_bytes \
           batch warmup runs threads min_energy_s attempts steady_ratio calibration_images after_training remote_request; do
  grep -qw -- "$key" <<<"$study" || fail "nas-study.5 does not document '$key'"
  ok
done
done_checks
