// study_config_test: parsing, defaults, ranges, data probes and error places
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
  CHECK(c.constraints.precision == "int8");
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

TEST_CASE("idx data is probed for shape, classes and counts") {
  const char* dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(std::string(dir) + "/train-labels-idx1-ubyte.gz")) {
    MESSAGE("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  auto c = parse_study_config(std::string("[study]\nseed=1\n[data]\nformat='idx'\ntrain_images='") + dir +
                                  "/train-images-idx3-ubyte.gz'\ntrain_labels='" + dir +
                                  "/train-labels-idx1-ubyte.gz'\ntest_images='" + dir +
                                  "/t10k-images-idx3-ubyte.gz'\ntest_labels='" + dir +
                                  "/t10k-labels-idx1-ubyte.gz'\n[space]\nfamily='cnn'\n",
                              "/tmp/f.toml");
  CHECK(c.data.shape == std::vector<int64_t>{1, 28, 28});
  CHECK(c.data.classes == 10);
  CHECK(c.data.train_samples == 60000);
  CHECK(c.data.test_samples == 10000);
}

TEST_CASE("a truncated idx file is refused at its key") {
  auto dir = std::filesystem::temp_directory_path() / "nas-config-test";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, std::vector<uint8_t> bytes) {
    std::ofstream f(dir / name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  };
  // 2 images of 2x2 promised, only 3 pixel bytes present
  write("img", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3});
  write("lab", {0, 0, 8, 1, 0, 0, 0, 2, 0, 1});
  std::string text = "[study]\n[data]\nformat='idx'\ntrain_images='img'\ntrain_labels='lab'\ntest_images='img'\n"
                     "test_labels='lab'\n[space]\nfamily='cnn'\n";
  try {
    parse_study_config(text, (dir / "s.toml").string());
    FAIL("expected an error");
  } catch (const ConfigError& e) {
    std::string m = e.what();
    CHECK(m.find("key 'data.train_images'") != std::string::npos);
    CHECK(m.find("truncated") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("[train]: defaults, fixed and searched values") {
  auto d = parse("[space]\nfamily='nb201'\n");
  CHECK(d.train.epochs == 5);
  CHECK(d.train.batch_size.values == std::vector<int64_t>{128});
  CHECK(d.train.optimizer.values == std::vector<std::string>{"sgd"});
  CHECK(d.train.lr.values == std::vector<double>{0.05});
  CHECK(!d.train.lr.searched());
  CHECK(d.train.precision == "auto");
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
  CHECK(t.train.schedule == "constant");
  CHECK(t.train.precision == "bf16");
  CHECK(t.train.lease_s == 60);
  CHECK(t.train.max_attempts == 2);
}
