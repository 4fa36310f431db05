// fit_test: the training loop on a small learnable data set -- it learns, the schedule is what
// it says, a run stopped mid-epoch and resumed from its checkpoint ends with the same weights
// as an uninterrupted one, NaN/Inf is reported as divergence, and the packing planner
#include <torch/torch.h>

#include <doctest/doctest.h>

#include "../bands.h"
#include "../support.h"
#include "nas/core/error.h"
#include "nas/train/fit.h"
#include "nas/train/pack.h"

#include <cmath>
#include <filesystem>
#include <fstream>

using namespace nas;

namespace {

data::StudyData study_data() { return test::bands_data(); }

model::Network tiny_net(uint64_t seed) {
  space::Genome g;
  g.family = "cnn";
  g.cnn.stem_width = 4;
  g.cnn.stages = {{"conv", 1, 8, 3, 2, 1, "relu"}, {"residual", 1, 8, 3, 1, 1, "relu"}};
  space::CostContext ctx;
  ctx.input = {1, 8, 8};
  ctx.classes = 4;
  torch::manual_seed(seed);
  return model::Network(g, ctx);
}

train::FitPlan plan(const std::string& checkpoint, int64_t epochs) {
  train::FitPlan p;
  p.hp.batch_size = 32;
  p.hp.lr = 0.1;
  p.hp.warmup_epochs = 0.5;
  p.schedule_epochs = epochs;
  p.budget_epochs = epochs;
  p.seed = 7;
  p.eval_batch_size = 50;
  p.checkpoint = checkpoint;
  return p;
}

void check_same_state(model::Network& a, model::Network& b) {
  auto pa = a->named_parameters(), pb = b->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (const auto& item : pa) DOCTEST_CHECK_MESSAGE(torch::equal(item.value(), pb[item.key()]), item.key());
  auto ba = a->named_buffers(), bb = b->named_buffers();
  for (const auto& item : ba) DOCTEST_CHECK_MESSAGE(torch::equal(item.value(), bb[item.key()]), item.key());
}

} // namespace

TEST_CASE("the learning rate warms up linearly, then follows a cosine to zero") {
  space::HParams hp;
  hp.lr = 0.2;
  DOCTEST_CHECK(train::lr_at(hp, 0, 100, 10) == doctest::Approx(0.02));
  DOCTEST_CHECK(train::lr_at(hp, 9, 100, 10) == doctest::Approx(0.2));
  DOCTEST_CHECK(train::lr_at(hp, 10, 100, 10) == doctest::Approx(0.2));
  DOCTEST_CHECK(train::lr_at(hp, 55, 100, 10) == doctest::Approx(0.1));
  DOCTEST_CHECK(train::lr_at(hp, 100, 100, 10) == doctest::Approx(0.0));
  hp.schedule = config::Schedule::constant;
  DOCTEST_CHECK(train::lr_at(hp, 80, 100, 10) == doctest::Approx(0.2));
}

TEST_CASE("[budget] anneal: the cosine ends at each rung's budget, from the full schedule's rate there") {
  space::HParams hp;
  hp.lr = 0.1;
  // 900 steps, no warm-up; rungs end at 300, 600, 900
  DOCTEST_CHECK(train::lr_at(hp, 0, 900, 0, 0, 300) == doctest::Approx(0.1));
  DOCTEST_CHECK(train::lr_at(hp, 150, 900, 0, 0, 300) == doctest::Approx(0.05));
  DOCTEST_CHECK(train::lr_at(hp, 299, 900, 0, 0, 300) < 1e-5);          // annealed at the rung's end
  DOCTEST_CHECK(train::lr_at(hp, 299, 900, 0) > 0.07);                   // the full schedule is not
  // rung 1 resumes at the full schedule's rate at step 300: 0.05 (1 + cos(pi / 3)) = 0.075
  DOCTEST_CHECK(train::lr_at(hp, 300, 900, 0, 300, 600) == doctest::Approx(0.075));
  DOCTEST_CHECK(train::lr_at(hp, 450, 900, 0, 300, 600) == doctest::Approx(0.0375));
  DOCTEST_CHECK(train::lr_at(hp, 600, 900, 0, 600, 900) == doctest::Approx(0.025));
  DOCTEST_CHECK(train::lr_at(hp, 899, 900, 0, 600, 900) < 1e-5);
  // warm-up first; the rung's cosine starts where it ends
  DOCTEST_CHECK(train::lr_at(hp, 10, 900, 30, 0, 300) == doctest::Approx(0.1 * 11 / 30));
  DOCTEST_CHECK(train::lr_at(hp, 30, 900, 30, 0, 300) == doctest::Approx(0.1));
  DOCTEST_CHECK(train::lr_at(hp, 165, 900, 30, 0, 300) == doctest::Approx(0.05));
  // a constant schedule is not annealed
  hp.schedule = config::Schedule::constant;
  DOCTEST_CHECK(train::lr_at(hp, 299, 900, 0, 0, 300) == doctest::Approx(0.1));
}

TEST_CASE("fit learns a learnable task and reports every epoch") {
  torch::set_num_threads(1);
  test::TempDir dir;
  auto data = study_data();
  auto net = tiny_net(1);
  std::vector<train::EpochStats> epochs;
  train::FitHooks hooks;
  hooks.on_epoch = [&](const train::EpochStats& e) { epochs.push_back(e); };
  auto out = train::fit(net, data, plan(dir.file("c.pt"), 6), hooks);
  DOCTEST_CHECK(!out.stopped);
  DOCTEST_CHECK(out.epochs_done == 6);
  REQUIRE(epochs.size() == 6);
  DOCTEST_CHECK(epochs[0].epoch == 1);
  DOCTEST_CHECK(epochs[5].train_loss < epochs[0].train_loss);
  DOCTEST_CHECK(epochs[5].lr < 0.01);                       // the cosine ends near zero
  DOCTEST_CHECK(out.samples == 6 * 192);
  auto test = train::evaluate(net, data, data.test, 50, plan("", 1));
  DOCTEST_CHECK(test.acc > 0.8);                            // chance is 0.25
  DOCTEST_CHECK(std::filesystem::exists(dir.file("c.pt")));
}

// Trains 3 epochs in one go, and again stopped in the middle of epoch 2 (6 steps an epoch: after
// 8 steps) and resumed in a network with other initial weights: the two end bitwise equal.
static void check_stop_and_resume(bool channels_last) {
  torch::set_num_threads(1);
  test::TempDir dir;
  auto data = study_data();
  auto make = [&](uint64_t seed) {
    auto net = tiny_net(seed);
    if (channels_last) net->to_channels_last();
    return net;
  };
  auto make_plan = [&](const std::string& file) {
    auto p = plan(file.empty() ? "" : dir.file(file), 3);
    p.channels_last = channels_last;
    return p;
  };
  auto whole = make(3);
  train::fit(whole, data, make_plan("whole.pt"), {});
  DOCTEST_CHECK(train::evaluate(whole, data, data.test, 50, make_plan("")).acc > 0.7);

  auto first = make(3);
  int polls = 0;
  train::FitHooks stop_hooks;
  stop_hooks.should_stop = [&] { return ++polls > 8; };
  auto part = train::fit(first, data, make_plan("split.pt"), stop_hooks);
  DOCTEST_CHECK(part.stopped);
  DOCTEST_CHECK(!part.lease_lost);
  DOCTEST_CHECK(part.epochs_done == 1);
  DOCTEST_CHECK(part.step == 2);
  auto resumed = make(99);   // other initial weights: everything must come from the checkpoint
  std::vector<int> seen;
  train::FitHooks hooks;
  hooks.on_epoch = [&](const train::EpochStats& e) { seen.push_back(e.epoch); };
  auto rest = train::fit(resumed, data, make_plan("split.pt"), hooks);
  DOCTEST_CHECK(!rest.stopped);
  DOCTEST_CHECK(seen == std::vector<int>{2, 3});
  check_same_state(whole, resumed);
}

TEST_CASE("a run stopped mid-epoch and resumed from its checkpoint ends with the same weights") {
  check_stop_and_resume(false);
}

TEST_CASE("channels-last training (the layout nas-train uses) learns and resumes exactly too") {
  // one channel: contiguous(ChannelsLast) would leave this NCHW; to_channels_last restrides it
  torch::Tensor one = model::to_channels_last(torch::zeros({2, 1, 4, 4}));
  DOCTEST_CHECK(one.suggest_memory_format() == torch::MemoryFormat::ChannelsLast);
  check_stop_and_resume(true);
}

TEST_CASE("on a CUDA device, fp32, bf16 and fp16 (loss-scaled) training learn the task") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped (run on a GPU machine)");
    return;
  }
  const torch::Device cuda(torch::kCUDA, 0);
  auto data = study_data();
  for (auto* split : {&data.train, &data.validation, &data.test}) {
    split->images = split->images.to(cuda);
    split->labels = split->labels.to(cuda);
  }
  data.mean = data.mean.to(cuda);
  data.std = data.std.to(cuda);
  for (const std::string precision : {"fp32", "bf16", "fp16"}) {
    CAPTURE(precision);
    test::TempDir dir;
    auto net = tiny_net(1);
    net->to(cuda);
    net->to_channels_last();
    auto p = plan(dir.file("c.pt"), 6);
    p.precision = *config::parse_precision(precision);
    p.channels_last = true;
    p.budget_epochs = 3;
    DOCTEST_CHECK(train::fit(net, data, p, {}).epochs_done == 3);
    p.budget_epochs = 6;   // continues from the checkpoint, scaler state included
    auto out = train::fit(net, data, p, {});
    DOCTEST_CHECK(out.epochs_done == 6);
    DOCTEST_CHECK(train::evaluate(net, data, data.test, 50, p).acc > 0.8);
  }
}

TEST_CASE("a later budget continues from the checkpoint of an earlier one") {
  torch::set_num_threads(1);
  test::TempDir dir;
  auto data = study_data();
  auto a = tiny_net(5);
  auto p = plan(dir.file("c.pt"), 4);
  p.budget_epochs = 2;
  DOCTEST_CHECK(train::fit(a, data, p, {}).epochs_done == 2);
  auto b = tiny_net(6);
  p.budget_epochs = 4;
  int first_epoch = 0;
  train::FitHooks hooks;
  hooks.on_epoch = [&](const train::EpochStats& e) { if (!first_epoch) first_epoch = e.epoch; };
  DOCTEST_CHECK(train::fit(b, data, p, hooks).epochs_done == 4);
  DOCTEST_CHECK(first_epoch == 3);
}

TEST_CASE("a lost lease stops training without writing a checkpoint") {
  torch::set_num_threads(1);
  test::TempDir dir;
  auto data = study_data();
  auto net = tiny_net(1);
  int polls = 0;
  train::FitHooks hooks;
  hooks.lease_lost = [&] { return ++polls > 3; };
  auto out = train::fit(net, data, plan(dir.file("c.pt"), 2), hooks);
  DOCTEST_CHECK(out.stopped);
  DOCTEST_CHECK(out.lease_lost);
  DOCTEST_CHECK(out.step == 3);
  DOCTEST_CHECK(out.epochs_done == 0);
  DOCTEST_CHECK(!std::filesystem::exists(dir.file("c.pt")));   // the new owner's file is not touched
  for (const auto& f : std::filesystem::directory_iterator(dir.path))
    DOCTEST_CHECK_MESSAGE(f.path().extension() != ".tmp", f.path().string());
}

TEST_CASE("a huge learning rate is reported as divergence") {
  torch::set_num_threads(1);
  auto data = study_data();
  auto net = tiny_net(1);
  auto p = plan("", 3);
  p.hp.lr = 1e6;
  p.hp.warmup_epochs = 0;
  DOCTEST_CHECK_THROWS_AS(train::fit(net, data, p, {}), train::Diverged);
}

TEST_CASE("the packing planner") {
  space::Cost c;
  c.params = 1000;
  c.layers = {{"a", "conv", 0, 0, {8, 4, 4}}, {"b", "linear", 0, 0, {10}}};
  // weights, gradients, momentum: 3 x 4 bytes a parameter; activations: 2 x (128 + 10) floats a sample
  DOCTEST_CHECK(train::training_bytes(c, 10, config::Optimizer::sgd) == 12000 + 4 * 2 * 138 * 10);
  DOCTEST_CHECK(train::training_bytes(c, 10, config::Optimizer::adamw) == 16000 + 4 * 2 * 138 * 10);
  DOCTEST_CHECK(train::plan_pack("cpu", 0, 1, 1).k == 1);
  DOCTEST_CHECK(train::plan_pack("cpu", 0, 2, 1).k == 2);
  DOCTEST_CHECK(train::plan_pack("cpu", 0, 4, 1).k == 2);
  DOCTEST_CHECK(train::plan_pack("cpu", 0, 16, 1).k == 8);
  DOCTEST_CHECK(train::plan_pack("cpu", 0, 256, 1).k == 8);
  const int64_t gib = int64_t(1) << 30;
  DOCTEST_CHECK(train::plan_pack("cuda", 10 * gib, 16, gib / 2).k == 8);     // 8 GiB usable, 1 GiB each
  DOCTEST_CHECK(train::plan_pack("cuda", 4 * gib, 16, gib / 2).k == 3);
  DOCTEST_CHECK(train::plan_pack("cuda", gib / 4, 16, gib).k == 1);          // never below one
}

TEST_CASE("an unreadable checkpoint is CheckpointUnreadable naming the file; an unwritable one a FileError") {
  torch::set_num_threads(1);
  test::TempDir dir;
  auto data = study_data();
  const std::string ckpt = dir.file("c.pt");
  auto net = tiny_net(1);
  auto p = plan(ckpt, 2);
  p.budget_epochs = 1;
  DOCTEST_REQUIRE(train::fit(net, data, p, {}).epochs_done == 1);
  const auto whole = std::filesystem::file_size(ckpt);
  p.budget_epochs = 2;
  for (auto size : {uintmax_t(0), uintmax_t(100), whole / 2, whole - 8}) {
    DOCTEST_CAPTURE(size);
    auto copy = tiny_net(1);
    {
      auto fresh = tiny_net(1);
      p.budget_epochs = 1;
      std::filesystem::remove(ckpt);
      train::fit(fresh, data, p, {});
      p.budget_epochs = 2;
    }
    std::filesystem::resize_file(ckpt, size);
    try {
      train::fit(copy, data, p, {});
      DOCTEST_FAIL("a truncated checkpoint was read");
    } catch (const train::CheckpointUnreadable& e) {
      DOCTEST_CHECK(e.path() == ckpt);
      DOCTEST_CHECK(std::string(e.what()).find("checkpoint '" + ckpt + "' is unreadable: ") == 0);
      DOCTEST_CHECK(std::string(e.what()).find('\n') == std::string::npos);   // no stack frames
    }
  }
  // the folder is a plain file: a FileError naming it, and nothing left behind
  const std::string blocked = dir.file("plain");
  { std::ofstream(blocked) << "x"; }
  auto other = tiny_net(2);
  DOCTEST_CHECK_THROWS_AS(train::fit(other, data, plan(blocked + "/c.pt", 1), {}), FileError);
}

TEST_CASE("a checkpoint written inside an epoch resumes only with the epoch length it was written with") {
  torch::set_num_threads(1);
  test::TempDir dir;
  auto data = study_data();   // 192 training samples: batches of 38 leave 2
  auto ranks = [&](int world) {
    auto p = plan(dir.file("ranks.pt"), 2);
    p.hp.batch_size = 38;
    p.world = world;   // rank 0 of `world`, alone: its slice of every batch
    return p;
  };
  auto net = tiny_net(3);
  int polls = 0;
  train::FitHooks stop;
  stop.should_stop = [&] { return ++polls > 3; };
  const auto part = train::fit(net, data, ranks(2), stop);   // 2 ranks leave the last 2 out: 5 steps
  REQUIRE(part.stopped);
  DOCTEST_CHECK(part.steps == 5);
  DOCTEST_REQUIRE(part.step > 0);
  auto one = tiny_net(3);
  try {
    train::fit(one, data, ranks(1), {});   // 1 rank keeps them: 6 steps
    DOCTEST_FAIL("resumed with another epoch length");
  } catch (const UsageError& e) {
    const std::string m = e.what();
    DOCTEST_CHECK(m.find("5 steps an epoch; this one has 6") != std::string::npos);
    DOCTEST_CHECK(m.find("resume it with the ranks it was written with") != std::string::npos);
  }
  auto two = tiny_net(3);
  const auto rest = train::fit(two, data, ranks(2), {});   // the same ranks resume
  DOCTEST_CHECK(!rest.stopped);
  DOCTEST_CHECK(rest.epochs_done == 2);
}

TEST_CASE("eval_batch: the study's setting when given, else 128 on the CPU and 1024 on a GPU") {
  CHECK(train::eval_batch(0, torch::Device(torch::kCPU)) == 128);
  CHECK(train::eval_batch(0, torch::Device(torch::kCUDA, 0)) == 1024);
  CHECK(train::eval_batch(512, torch::Device(torch::kCPU)) == 512);
  CHECK(train::eval_batch(64, torch::Device(torch::kCUDA, 0)) == 64);
}
