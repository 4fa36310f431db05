#!/usr/bin/env bash
# slurm_plan: `nas-slurm plan` for 1,000 queued candidates on 8 GPUs. Trainings per GPU respect
# the GPU memory given (K of the largest training and its workspace fit in 80% of it, K + 1 do
# not, or K is the cap of 8), and the array, GPU hours and wall time agree with the epoch-time
# model recomputed here from the study file (steps x step_s + 6 x MACs x samples / throughput).
source "$(dirname "$0")/common.bash"

cat > "$tmp/s.toml" <<'EOT'
[study]
name = "plan-1000"
seed = 3
[data]
format = "synthetic"
shape = [3, 32, 32]
classes = 10
samples = 20000
validation = 0.1
[space]
family = "cnn"
stages = [2, 3]
stem_width = [16, 24, 32]
width = {min = 16, max = 128, step = 16}
depth = [1, 2, 3]
kernel = [3, 5]
block = ["conv", "dwsep", "mbconv"]
[train]
epochs = 12
batch_size = 64
optimizer = "adamw"
[slurm]
throughput = 1e12
step_s = 0.003
time = "02:00:00"
signal_s = 120
EOT
db="$tmp/s.db"
run nas-sample --db "$db" --config "$tmp/s.toml" -n 1000 --queue -q
expect_rc 0 "queue 1000 candidates"
expect_eq "$(sql "$db" "select count(*) from trial where state = 'queued'")" "1000" "1000 queued"

plan_value() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' <<<"$out"; }
for mem in 3GiB 6GiB 80GiB; do
  run nas-slurm plan --db "$db" --gpus 8 --gpu-mem "$mem" --format tsv
  expect_rc 0 "plan with $mem"
  k=$(plan_value pack)
  bytes=$(plan_value largest_training_bytes)
  gpu_mem=$(plan_value gpu_mem)
  awk -v k="$k" -v b="$bytes" -v m="$gpu_mem" 'BEGIN {
        per = b + 512 * 1048576; cap = 0.8 * m
        exit !(k >= 1 && (k == 1 || k * per <= cap) && (k == 8 || (k + 1) * per > cap)) }' ||
    fail "$mem: $k trainings of $bytes bytes (+512 MiB) against 80% of $gpu_mem"
  ok
  # the epoch-time model over the queued trials, from the study file
  work=$(sql "$db" "select sum(12 * (282 * 0.003 + 6.0 * macs * 18000 / 1e12)) from trial where state = 'queued'")
  usable=$((7200 - 120 - 60))
  expect_eq "$(plan_value usable_s)" "$usable" "$mem: usable time of a task"
  awk -v w="$work" -v pw="$(plan_value work_s)" 'BEGIN { exit !(pw > 0.99999 * w && pw < 1.00001 * w) }' ||
    fail "$mem: work $(plan_value work_s) s, expected $work s"
  ok
  tasks=$(awk -v w="$work" -v k="$k" -v u="$usable" 'BEGIN {
            t = w / (k * u); n = (t == int(t)) ? t : int(t) + 1
            fill = int((1000 + k - 1) / k); if (fill > 8) fill = 8
            if (fill > n) n = fill; if (n < 1) n = 1; if (n > 1001) n = 1001; print n }')
  expect_eq "$(plan_value tasks)" "$tasks" "$mem: array size from the work"
  expect_eq "$(plan_value array)" "0-$((tasks - 1))%8" "$mem: the array, 8 at a time"
  awk -v w="$work" -v k="$k" -v g="$(plan_value gpu_hours)" -v h="$(plan_value wall_hours)" 'BEGIN {
        e = w / k / 3600; exit !(g > 0.999 * e && g < 1.001 * e && h > 0.999 * e / 8 && h < 1.001 * e / 8) }' ||
    fail "$mem: GPU hours $(plan_value gpu_hours), wall $(plan_value wall_hours), expected $work / $k / 3600 and / 8"
  ok
  eval "k_$mem=$k"
done
[ "$k_3GiB" -lt "$k_80GiB" ] || fail "more memory gives no more trainings per GPU ($k_3GiB vs $k_80GiB)"; ok

run nas-slurm plan --db "$db" --gpus 8 --gpu-mem 6GiB
expect_rc 0 "plan as a table"
expect_has "$out" "queued      1000 trials, 12000 epochs left, 18000 samples an epoch" "the queued work"
expect_has "$out" "array       0-" "the array"
expect_has "$out" "no epoch measured yet" "says the epoch times are estimated"
expect_has "$out" "#SBATCH --array=0-" "the rendered script carries the array"
expect_has "$out" "#SBATCH --gres=gpu:1" "one GPU a task"
expect_has "$out" "#SBATCH --signal=B:USR1@120" "the early warning"
expect_has "$out" 'if ! left=$(nas-db count --db "$db" --claimable); then' "the requeue check's failure is caught"
if grep -qF '|| echo 0' <<<"$out"; then fail "the rendered script turns a failed count into 0 ('|| echo 0')"; else ok; fi
run nas-slurm plan --db "$db" --gpus 8 --gpu-mem 1KiB
expect_rc 2 "a GPU memory below 1 MiB is refused"
run nas-slurm plan --db "$db" --gpus 8 --gpu-mem lots
expect_rc 2 "an unreadable size is refused"
expect_has "$err" "--gpu-mem: 'lots'" "names the option and the value"

# [measure] after_training = true: a measure stage between the training array and the report
{ sed 's/plan-1000/plan-measure/' "$tmp/s.toml"; printf '[measure]\nbackend = "mimaas"\nboard = "nrf5340dk"\nwait_s = 7200\nafter_training = true\n'; } > "$tmp/m.toml"
run nas-sample --db "$tmp/m.db" --config "$tmp/m.toml" -n 5 --queue -q
expect_rc 0 "a study with [measure]"
run nas-slurm plan --db "$tmp/m.db" --gpus 1 --gpu-mem 6GiB
expect_rc 0 "plan with a measure stage"
expect_has "$out" "#SBATCH --job-name=plan-measure-measure" "the measure stage's script"
expect_has "$out" 'nas-measure --db "$db" --format tsv' "it runs nas-measure on the study"
expect_has "$out" "#SBATCH --time=2:30:00" "its time limit from wait_s"
[[ "$out" == *"plan-measure-measure"*"plan-measure-pareto"* ]] || fail "measure comes before the report"; ok

# a teacher stage first (--teacher-*): nas-distill teacher under srun, the array after it (afterok)
{ sed 's/plan-1000/plan-kd/' "$tmp/s.toml"; printf '[distill]
'; } > "$tmp/kd.toml"
run nas-sample --db "$tmp/kd.db" --config "$tmp/kd.toml" -n 5 --queue -q
expect_rc 0 "a study with [distill]"
echo '{"family":"cnn","head":{"width":0},"stages":[{"act":"relu","block":"conv","depth":1,"kernel":3,"stride":2,"width":8}],"stem":{"act":"relu","kernel":3,"stride":2,"width":4}}' > "$tmp/teacher json.json"
run nas-slurm plan --db "$tmp/kd.db" --gpus 1 --gpu-mem 6GiB --teacher-genome "$tmp/teacher json.json" --teacher-epochs 30 \
    --teacher-nodes 2 --teacher-ranks 4 --teacher-time 08:00:00
expect_rc 0 "plan with a teacher stage"
expect_has "$out" "#SBATCH --job-name=plan-kd-teacher" "the teacher stage's script"
expect_has "$out" "#SBATCH --nodes=2" "its nodes"
expect_has "$out" "#SBATCH --ntasks-per-node=4" "its ranks a node"
expect_has "$out" "#SBATCH --time=08:00:00" "its time limit"
expect_has "$out" "#SBATCH --gres=gpu:4" "a GPU a rank"
expect_has "$out" "srun --kill-on-bad-exit=1 nas-distill teacher --db \"\$db\" --genome '$tmp/teacher json.json' --epochs 30" \
           "nas-distill teacher with the quoted genome path"
expect_has "$out" "submit      sbatch --parsable '--dependency=afterok:<teacher job id>'" "the next stage waits for the teacher"
[[ "$out" == *"plan-kd-teacher"*"plan-kd-train"* ]] || fail "the teacher comes first"; ok
expect_has "$out" "#SBATCH --mem=64G" "the teacher's --mem: [slurm] memory (16G) for each of its 4 ranks a node"
expect_has "$out" "#SBATCH --mem=16G" "the training array's --mem: [slurm] memory"
expect_has "$out" "nas-distill --db" "the array trains by distillation"
run nas-slurm plan --db "$tmp/kd.db" --gpus 1 --teacher-genome "$tmp/teacher json.json" --teacher-epochs 3 --teacher-mem 100G
expect_rc 0 "plan with the teacher's memory given"
expect_has "$out" "#SBATCH --mem=100G" "--teacher-mem is the teacher's --mem"
run nas-slurm plan --db "$tmp/kd.db" --gpus 1 --teacher-genome "$tmp/teacher json.json" --teacher-epochs 3 --teacher-mem 100GiB
expect_rc 2 "a --teacher-mem Slurm would not take"
expect_has "$err" "--teacher-mem: '100GiB' is not a Slurm memory size" "the option and the value named"
run nas-slurm plan --db "$tmp/kd.db" --gpus 1 --teacher-genome "$tmp/teacher json.json" --teacher-epochs 3 --teacher-augment flip,crop
expect_rc 0 "plan with the teacher's own augmentations"
expect_has "$out" "nas-distill teacher --db \"\$db\" --genome '$tmp/teacher json.json' --augment crop,flip --epochs 3" \
           "nas-distill teacher gets --augment, in canonical order"
run nas-slurm plan --db "$tmp/kd.db" --gpus 1 --teacher-genome "$tmp/teacher json.json" --teacher-epochs 3 --teacher-augment crop,rotate
expect_rc 2 "an augmentation nas-distill teacher would refuse"
expect_has "$err" "--teacher-augment: unknown augmentation 'rotate'" "the option and the name"
run nas-slurm plan --db "$tmp/kd.db" --gpus 1 --teacher-arch '|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|' --teacher-epochs 3
expect_rc 2 "a NAS-Bench-201 teacher for a cnn study, refused here as nas-distill teacher would refuse it"
expect_has "$err" "is a nb201 network; study 'plan-kd' searches the cnn family" "the families named"
{ nb201_table_study plan-nb 3; printf '[distill]\n'; } > "$tmp/nb.toml"
run nas-sample --db "$tmp/nb.db" --config "$tmp/nb.toml" -n 2 --queue -q
expect_rc 0 "an nb201 study with [distill]"
run nas-slurm plan --db "$tmp/nb.db" --gpus 1 --teacher-arch '|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|' --teacher-epochs 3
expect_rc 0 "a NAS-Bench-201 teacher string for an nb201 study"
expect_has "$out" "--arch '|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|'" "quoted for the shell"
run nas-slurm plan --db "$tmp/kd.db" --teacher-genome "$tmp/teacher json.json"
expect_rc 2 "a teacher without epochs"
expect_has "$err" "--teacher-epochs" "the option named"
run nas-slurm plan --db "$tmp/kd.db" --teacher-genome "$tmp/nope.json" --teacher-epochs 3
expect_rc 2 "a missing genome file"
expect_has "$err" "--teacher-genome: cannot read" "the option and the file named"
echo '{"family":"cnn"' > "$tmp/bad.json"
run nas-slurm plan --db "$tmp/kd.db" --teacher-genome "$tmp/bad.json" --teacher-epochs 3
expect_rc 2 "a genome that does not parse"
expect_has "$err" "bad.json line 1" "the file and line named"
run nas-slurm plan --db "$tmp/kd.db" --teacher-arch 'conv3x3' --teacher-epochs 3
expect_rc 2 "a bad NAS-Bench-201 string"
expect_has "$err" "--teacher-arch:" "the option named"
run nas-slurm plan --db "$tmp/kd.db" --local --teacher-genome "$tmp/teacher json.json" --teacher-epochs 3
expect_rc 2 "a teacher stage with --local"
expect_has "$err" "nas-distill teacher --db ... --ranks N" "says what to do instead"
run nas-slurm plan --db "$tmp/kd.db" --stages teacher,train
expect_rc 2 "stage teacher without its network"
expect_has "$err" "stage 'teacher' needs the teacher's network" "said so"
run nas-slurm plan --db "$tmp/kd.db" --stages train,teacher --teacher-genome "$tmp/teacher json.json" --teacher-epochs 3
expect_rc 2 "the teacher stage not first"
expect_has "$err" "must come first" "said so"
run nas-slurm plan --db "$tmp/m.db" --teacher-genome "$tmp/teacher json.json" --teacher-epochs 3
expect_rc 2 "a teacher for a study that does not distill"
expect_has "$err" "has no [distill] section" "said so"
run nas-slurm submit --db "$tmp/kd.db" --local
expect_rc 2 "a study that distills, without a teacher or a teacher stage"
expect_has "$err" "--teacher-genome/--teacher-arch" "names the teacher stage as a way out"
printf '\n\n' | cat - "$tmp/teacher json.json" > "$tmp/blank-first.json"
run nas-slurm plan --db "$tmp/kd.db" --gpus 1 --teacher-genome "$tmp/blank-first.json" --teacher-epochs 3
expect_rc 0 "a genome file whose first lines are blank, as nas-distill reads it"
sql "$tmp/kd.db" "insert into teacher (kind, path, sha256, arch, genome, epochs, classes, val_acc, test_acc, created_at)
                  values ('minnow', 'teacher/x.pt', 'ab', 'stem4k3s2 conv:8x1k3s2 head0', '{}', 3, 10, 0.5, 0.5, 0)"
run nas-slurm plan --db "$tmp/kd.db" --gpus 1 --teacher-genome "$tmp/teacher json.json" --teacher-epochs 3
expect_rc 2 "a second teacher for a study that has one"
expect_has "$err" "already has teacher 1 (stem4k3s2 conv:8x1k3s2 head0)" "the teacher named"
# submit refuses these before it reserves a submission folder
run nas-slurm submit --db "$tmp/kd.db" --gpus 1 --teacher-genome "$tmp/teacher json.json" --teacher-epochs 3
expect_rc 2 "submit: a second teacher"
run nas-slurm submit --db "$tmp/kd.db" --gpus 1 --stages train,pareto,teacher --teacher-genome "$tmp/teacher json.json" \
    --teacher-epochs 3
expect_rc 2 "submit: the teacher stage not first"
run nas-slurm submit --db "$tmp/kd.db" --gpus 1 --stages train,report
expect_rc 2 "submit: an unknown stage"
expect_has "$err" "unknown stage 'report'" "the stage named"
ls "$tmp/kd.db.d/slurm" 2>/dev/null | grep -q . && fail "a refused submit left a submission folder: $(ls "$tmp/kd.db.d/slurm")"; ok
done_checks
