// slurm: template rendering, Slurm time strings and the plan (packing, array size, hours)
#include <doctest/doctest.h>

#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/slurm/command.h"
#include "nas/slurm/plan.h"
#include "nas/slurm/render.h"

#include <cmath>

using namespace nas;

TEST_CASE("render fills placeholders and names the line of an unknown one") {
  CHECK(slurm::render("a {{X}} b {{Y}}{{X}}\n", {{"X", "1"}, {"Y", "two"}}, "t.in") == "a 1 b two1\n");
  CHECK(slurm::render("#SBATCH --signal=B:USR1@120 {x}\n", {}, "t.in") == "#SBATCH --signal=B:USR1@120 {x}\n");
  try {
    slurm::render("ok\nline {{NOPE}}\n", {{"X", "1"}}, "t.in");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.line() == 2);
    CHECK(e.file() == "t.in");
    CHECK(std::string(e.what()).find("NOPE") != std::string::npos);
  }
  CHECK_THROWS_AS(slurm::render("a {{X\n}}", {{"X", "1"}}, "t.in"), ConfigError);
}

TEST_CASE("Slurm time strings and sizes") {
  CHECK(config::parse_slurm_time("30") == 1800);
  CHECK(config::parse_slurm_time("30:15") == 1815);
  CHECK(config::parse_slurm_time("04:00:00") == 14400);
  CHECK(config::parse_slurm_time("1-02") == 93600);
  CHECK(config::parse_slurm_time("2-00:30:00") == 2 * 86400 + 1800);
  CHECK_THROWS_AS(config::parse_slurm_time("1:2:3:4"), std::invalid_argument);
  CHECK_THROWS_AS(config::parse_slurm_time("four hours"), std::invalid_argument);
  CHECK_THROWS_AS(config::parse_slurm_time("00:00:00"), std::invalid_argument);
  CHECK(config::parse_bytes("80GiB") == int64_t(80) << 30);
  CHECK(config::parse_bytes("512MiB") == int64_t(512) << 20);
  CHECK(config::parse_bytes("1000") == 1000);
  CHECK_THROWS_AS(config::parse_bytes("12 parsecs"), std::invalid_argument);
}

TEST_CASE("the [slurm] section: values, and errors with file, line and key") {
  const std::string base = "[study]\nname='s'\n[data]\nformat='synthetic'\nshape=[1,8,8]\nclasses=2\n"
                           "[space]\nfamily='cnn'\n";
  auto cfg = config::parse_study_config(base + "[slurm]\ngpus = 4\ntime = '02:00:00'\ngpu_mem = '40GiB'\n"
                                               "partition = 'gpu'\nsetup = ['module load cuda']\n",
                                        "s.toml");
  CHECK(cfg.slurm.gpus == 4);
  CHECK(cfg.slurm.gpu_mem == int64_t(40) << 30);
  CHECK(cfg.slurm.partition == "gpu");
  CHECK(cfg.slurm.setup == std::vector<std::string>{"module load cuda"});
  try {
    config::parse_study_config(base + "[slurm]\ntime = 'soon'\n", "s.toml");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.line() == 10);
    CHECK(e.key() == "slurm.time");
  }
  CHECK_THROWS_AS(config::parse_study_config(base + "[slurm]\ngpu_option = 'gress'\n", "s.toml"), ConfigError);
  CHECK_THROWS_AS(config::parse_study_config(base + "[slurm]\nsbatch = ['constraint=a100']\n", "s.toml"), ConfigError);
  CHECK_THROWS_AS(config::parse_study_config(base + "[slurm]\ngpus_total = 3\n", "s.toml"), ConfigError);
}

namespace {
slurm::PlanInput input(int n, int64_t bytes, int64_t macs, double epochs) {
  slurm::PlanInput in;
  for (int i = 0; i < n; ++i) in.trials.push_back({i + 1, epochs, bytes, macs, 100});
  in.train_samples = 10000;
  in.slurm.gpus = 8;
  in.slurm.gpu_mem = int64_t(16) << 30;
  in.slurm.time = "01:00:00";
  in.slurm.signal_s = 120;
  in.slurm.throughput = 1e12;
  in.slurm.step_s = 0.002;
  return in;
}
} // namespace

TEST_CASE("plan: trainings per GPU from the memory given") {
  // 3 GiB a training + 512 MiB workspace in 80% of 16 GiB: 12.8 / 3.5 -> 3
  auto p = slurm::make_plan(input(1000, int64_t(3) << 30, 1000000, 5));
  CHECK(p.pack == 3);
  CHECK(int64_t(p.pack) * ((int64_t(3) << 30) + (int64_t(512) << 20)) <= int64_t(0.8 * double(int64_t(16) << 30)));
  // small networks: at most 8
  CHECK(slurm::make_plan(input(1000, int64_t(1) << 20, 1000000, 5)).pack == 8);
  // larger than the GPU: still 1, never 0
  CHECK(slurm::make_plan(input(10, int64_t(40) << 30, 1000000, 5)).pack == 1);
}

TEST_CASE("plan: work, array size and hours agree with the epoch-time model") {
  auto in = input(1000, int64_t(3) << 30, 1000000, 5);
  // one epoch: 100 steps x 2 ms + 6 x 1e6 MACs x 1e4 samples / 1e12 FLOP/s = 0.2 + 0.06 s
  CHECK(slurm::predicted_epoch_s(in.trials[0], in.train_samples, in.slurm, true) == doctest::Approx(0.26));
  in.slurm.cpu_throughput = 1e10;   // CPU trainings: the same FLOPs at the CPU rate
  CHECK(slurm::predicted_epoch_s(in.trials[0], in.train_samples, in.slurm, false) == doctest::Approx(0.2 + 6.0));
  auto p = slurm::make_plan(in);
  CHECK(p.work_s == doctest::Approx(1000 * 5 * 0.26));
  CHECK(p.time_s == 3600);
  CHECK(p.usable_s == 3600 - 120 - 60);
  // 1300 s of work fits one task's hour many times over, but the trials fill all 8 GPUs
  CHECK(p.tasks == 8);
  CHECK(p.parallel == 8);
  CHECK(p.array() == "0-7%8");
  CHECK(p.gpu_hours == doctest::Approx(1300.0 / 3 / 3600));
  CHECK(p.wall_hours == doctest::Approx(p.gpu_hours / 8));

  // 100x the FLOPs: work outgrows 8 tasks of an hour
  in = input(1000, int64_t(3) << 30, 1000000000, 5);
  p = slurm::make_plan(in);
  const double epoch = 0.2 + 6.0 * 1e9 * 1e4 / 1e12;
  CHECK(p.work_s == doctest::Approx(1000 * 5 * epoch));
  CHECK(p.tasks == int(std::ceil(p.work_s / (3.0 * 3420))));
  CHECK(p.tasks > 8);
  CHECK(p.parallel == 8);

  // measured epochs calibrate the model: twice as slow as predicted doubles the work
  in.measured_epochs = 10;
  in.predicted_s = 10;
  in.measured_s = 20;
  auto q = slurm::make_plan(in);
  CHECK(q.calibration == doctest::Approx(2.0));
  CHECK(q.work_s == doctest::Approx(2 * p.work_s));
  CHECK(q.rate_source.find("10 measured epochs") != std::string::npos);
}

TEST_CASE("plan: limits") {
  auto in = input(1000, int64_t(3) << 30, 100000000000, 50);
  auto p = slurm::make_plan(in);
  CHECK(p.tasks == 1001);
  CHECK(p.notes.size() == 2);   // the array cap, and trials longer than a task
  in.trials.clear();
  CHECK_THROWS_AS(slurm::make_plan(in), UsageError);
  in = input(2, int64_t(1) << 20, 1000, 1);
  in.slurm.pack = 4;
  in.slurm.processes = 2;
  p = slurm::make_plan(in);
  CHECK(p.pack == 4);
  CHECK(p.processes == 2);
  CHECK(p.pack_per_process == 2);
  CHECK(p.tasks == 1);          // 2 trials fill one GPU of 4 trainings
}

TEST_CASE("commands run without a shell, and are quoted for people") {
  auto r = slurm::run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  CHECK(r.rc == 3);
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  CHECK(slurm::run_command({"echo", "a b; rm -rf /"}).out == "a b; rm -rf /\n");
  CHECK_THROWS_AS(slurm::run_command({"no-such-program-minnow"}), Error);
  CHECK(slurm::shell_quote({"sbatch", "--parsable", "a b", "it's"}) == "sbatch --parsable 'a b' 'it'\\''s'");
}
