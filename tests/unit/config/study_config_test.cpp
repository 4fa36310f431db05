// study_config_test: parsing (no I/O), defaults, ranges and error places; the data probe is
// tested with it in tests/unit/data/probe_test.cpp
#include <doctest/doctest.h>

#include "nas/config/study_config.h"
#include "nas/core/error.h"

#include <filesystem>
#include <fstream>

using namespace nas;
using nas::config::parse_study_config;

static const char* kBase = R"(
[study]
name = "t"
seed = 3
[data]
format = "synthetic"
shape = [1, 28, 28]
classes = 10
)";

static config::StudyConfig parse(const std::string& extra) {
  return parse_study_config(std::string(kBase) + extra, "/tmp/t.toml");
}

static std::string error_of(const std::string& text) {
  try {
    parse_study_config(text, "study.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST_CASE("cnn space: lists, ranges, per-stage overrides and defaults") {
  auto c = parse("[space]\nfamily='cnn'\nstages={min=2,max=4}\nwidth=[8,16]\n[[space.stage]]\nwidth=[4]\n");
  CHECK(c.name == "t");
  CHECK(c.seed == 3);
  CHECK(c.space.cnn.stages.values == std::vector<int64_t>{2, 3, 4});
  CHECK(c.space.cnn.defaults.width.values == std::vector<int64_t>{8, 16});
  CHECK(c.space.cnn.choices_for(0).width.values == std::vector<int64_t>{4});
  CHECK(c.space.cnn.choices_for(1).width.values == std::vector<int64_t>{8, 16});
  CHECK(c.space.cnn.choices_for(0).kernel.values == c.space.cnn.defaults.kernel.values);
  CHECK(c.data.shape == std::vector<int64_t>{1, 28, 28});
  CHECK(config::to_string(c.constraints.precision) == "int8");
}

TEST_CASE("the canonical hash ignores comments and layout but not values") {
  auto a = parse("[space]\nfamily='nb201'\n");
  auto b = parse("# comment\n[space]\n  family = \"nb201\"   # same\n");
  auto d = parse("[space]\nfamily='nb201'\nchannels=8\n");
  CHECK(a.canonical_hash == b.canonical_hash);
  CHECK(a.canonical_hash != d.canonical_hash);
}

TEST_CASE("errors name file, line, column and key") {
  std::string base = kBase;
  CHECK(error_of(base + "[space]\nfamily='cnn'\nwidht=[8]\n") ==
        "study.toml:11:1: key 'space.widht': unknown key, did you mean 'width'?");
  CHECK(error_of(base + "[space]\nfamily='cnn'\nwidth='wide'\n").find("study.toml:11:7: key 'space.width': expected") == 0);
  CHECK(error_of(base + "[space]\nfamily='cnn'\ndepth={min=3,max=1}\n").find("empty range") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='cnn'\nwidth=[]\n").find("empty list") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='cnn'\nkernel=[4]\n").find("odd") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='nb201'\nops=['nor_conv_5x5']\n").find("unknown value 'nor_conv_5x5'") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='cnm'\n").find("did you mean 'cnn'") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='nb201'\n[distill]\nteacher=3\n").find("reserved") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='nb201'\n[train]\nlr={min=0.1,max=0.01}\n") ==
        "study.toml:12:4: key 'train.lr': empty range: min 0.1 > max 0.01");
  CHECK(error_of(base + "[space]\nfamily='nb201'\n[train]\nmomentum=[0.9, 1.5]\n").find("value 1.5 is outside 0..1") != std::string::npos);
  CHECK(error_of("[study\n").find("study.toml:1:") == 0);
}

TEST_CASE("[train]: defaults, fixed and searched values") {
  auto d = parse("[space]\nfamily='nb201'\n");
  CHECK(d.train.epochs == 5);
  CHECK(d.train.batch_size.values == std::vector<int64_t>{128});
  CHECK(d.train.optimizer.values == std::vector<config::Optimizer>{config::Optimizer::sgd});
  CHECK(d.train.lr.values == std::vector<double>{0.05});
  CHECK(!d.train.lr.searched());
  CHECK(config::to_string(d.train.precision) == "auto");
  auto t = parse("[space]\nfamily='nb201'\n[train]\nepochs=3\nbatch_size=[64,256]\noptimizer=['sgd','adamw']\n"
                 "lr={min=1e-3,max=1e-1,log=true}\nweight_decay=[0.0,5e-4]\nnesterov=false\ngrad_clip=5.0\n"
                 "schedule='constant'\nprecision='bf16'\nlease_s=60\nmax_attempts=2\n");
  CHECK(t.train.epochs == 3);
  CHECK(t.train.batch_size.values == std::vector<int64_t>{64, 256});
  CHECK(t.train.lr.range);
  CHECK(t.train.lr.log);
  CHECK(t.train.lr.min == 1e-3);
  CHECK(t.train.lr.searched());
  CHECK(t.train.weight_decay.values == std::vector<double>{0.0, 5e-4});
  CHECK(!t.train.nesterov);
  CHECK(t.train.grad_clip == 5.0);
  CHECK(config::to_string(t.train.schedule) == "constant");
  CHECK(config::to_string(t.train.precision) == "bf16");
  CHECK(t.train.lease_s == 60);
  CHECK(t.train.max_attempts == 2);
}

TEST_CASE("enumerated values parse from their TOML spelling and spell back the same") {
  using namespace nas::config;
  for (const char* s : {"fp32", "bf16", "fp16", "auto"}) CHECK(to_string(*parse_precision(s)) == s);
  for (const char* s : {"int8", "fp16", "fp32"}) CHECK(to_string(*parse_weight_precision(s)) == s);
  for (const char* s : {"cosine", "constant"}) CHECK(to_string(*parse_schedule(s)) == s);
  for (const char* s : {"sgd", "adamw"}) CHECK(to_string(*parse_optimizer(s)) == s);
  for (const char* s : {"sum", "vote", "none"}) CHECK(to_string(*parse_ensemble(s)) == s);
  for (const char* s : {"asynchronous", "synchronous"}) CHECK(to_string(*parse_promotion(s)) == s);
  for (const char* s : {"gres", "gpus-per-task", "none"}) CHECK(to_string(*parse_gpu_option(s)) == s);
  CHECK(parse_precision("auto") == Precision::automatic);
  CHECK(parse_gpu_option("gpus-per-task") == GpuOption::gpus_per_task);
  CHECK(!parse_precision("fp8"));
  CHECK(!parse_optimizer("adam"));
  CHECK(!parse_gpu_option("gpus_per_task"));
  CHECK(precision_bytes(WeightPrecision::fp16) == 2);
}
