// ddp_test: data parallelism on 2 Gloo ranks (2 threads of this process meeting in a FileStore)
// -- gradients all-reduced in buckets equal one rank's on the combined batch, also for unequal
// slices; fit() on 2 ranks ends with identical weights on both and the loss curve of 1 rank
// with the combined batch, each rank having trained exactly its slice of every batch
#include <torch/torch.h>

#include <doctest/doctest.h>

#include "../bands.h"
#include "../support.h"
#include "nas/distill/ddp.h"
#include "nas/train/fit.h"

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

using namespace nas;

namespace {

bool gloo_here() {
  std::string why;
  if (distill::data_parallel_available(torch::kCPU, why)) return true;
  MESSAGE("skipped: " << why);
  return false;
}

// Runs body(rank) on 2 threads, each rank of a 2-rank group meeting in `store`; rethrows the
// first failure here (doctest's checks are not thread-safe: the bodies only record).
void on_two_ranks(const std::string& store, const std::function<void(distill::DataParallel&)>& body) {
  std::exception_ptr failure;
  std::mutex m;
  auto rank = [&](int r) {
    try {
      distill::Rendezvous rv;
      rv.rank = r;
      rv.world = 2;
      rv.file = store;
      distill::DataParallel dp(rv, torch::kCPU, std::chrono::seconds(60));
      body(dp);
    } catch (...) {
      std::lock_guard<std::mutex> lock(m);
      if (!failure) failure = std::current_exception();
    }
  };
  std::thread a(rank, 0), b(rank, 1);
  a.join();
  b.join();
  if (failure) std::rethrow_exception(failure);
}

torch::nn::Sequential mlp(uint64_t seed) {
  torch::manual_seed(seed);
  return torch::nn::Sequential(torch::nn::Linear(8, 16), torch::nn::ReLU(), torch::nn::Linear(16, 4));
}

bool same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    if (!torch::equal(pa[i], pb[i])) return false;
  auto ba = a.buffers(), bb = b.buffers();
  for (size_t i = 0; i < ba.size(); ++i)
    if (!torch::equal(ba[i], bb[i])) return false;
  return pa.size() == pb.size() && ba.size() == bb.size();
}

double max_difference(torch::nn::Module& a, torch::nn::Module& b) {
  double d = 0;
  auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i) d = std::max(d, (pa[i] - pb[i]).abs().max().item<double>());
  return d;
}

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

train::FitPlan fit_plan(const std::string& checkpoint) {
  train::FitPlan p;
  p.hp.batch_size = 32;
  p.hp.lr = 0.1;
  p.hp.warmup_epochs = 0.5;
  p.schedule_epochs = p.budget_epochs = 4;
  p.seed = 7;
  p.eval_batch_size = 50;
  p.checkpoint = checkpoint;
  return p;
}

// The loss of fit's default (no label smoothing), recording each step's sample indices.
train::LossFn recording_loss(std::vector<std::vector<int64_t>>& steps) {
  return [&steps](const torch::Tensor& logits, const train::LossBatch& b) {
    const torch::Tensor idx = b.indices.contiguous();
    steps.emplace_back(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
    return torch::nn::functional::cross_entropy(logits, b.labels);
  };
}

} // namespace

TEST_CASE("the rendezvous comes from the launcher's variables, or srun's with MASTER_ADDR:MASTER_PORT") {
  ::unsetenv(distill::kWorldEnv);
  ::unsetenv("SLURM_STEP_NUM_TASKS");
  ::unsetenv("SLURM_NTASKS");
  ::unsetenv("SLURM_PROCID");
  DOCTEST_CHECK(!distill::rendezvous_from_environment());
  ::setenv(distill::kWorldEnv, "3", 1);
  ::setenv(distill::kRankEnv, "2", 1);
  DOCTEST_CHECK_THROWS_AS(distill::rendezvous_from_environment(), UsageError);   // no store file
  ::setenv(distill::kStoreEnv, "/tmp/x.store", 1);
  auto r = distill::rendezvous_from_environment();
  REQUIRE(r);
  DOCTEST_CHECK(r->rank == 2);
  DOCTEST_CHECK(r->world == 3);
  DOCTEST_CHECK(r->file == "/tmp/x.store");
  ::setenv(distill::kRankEnv, "3", 1);
  DOCTEST_CHECK_THROWS_AS(distill::rendezvous_from_environment(), UsageError);   // rank >= world
  ::unsetenv(distill::kWorldEnv);
  ::unsetenv(distill::kRankEnv);
  ::unsetenv(distill::kStoreEnv);
  ::setenv("SLURM_NTASKS", "4", 1);
  ::setenv("SLURM_PROCID", "1", 1);
  ::unsetenv("MASTER_ADDR");
  DOCTEST_CHECK_THROWS_AS(distill::rendezvous_from_environment(), UsageError);   // no MASTER_ADDR
  ::setenv("MASTER_ADDR", "node1", 1);
  ::setenv("MASTER_PORT", "29511", 1);
  r = distill::rendezvous_from_environment();
  REQUIRE(r);
  DOCTEST_CHECK(r->rank == 1);
  DOCTEST_CHECK(r->world == 4);
  DOCTEST_CHECK(r->master_addr == "node1");
  DOCTEST_CHECK(r->master_port == 29511);
  ::setenv("SLURM_NTASKS", "1", 1);   // one task: not data-parallel
  DOCTEST_CHECK(!distill::rendezvous_from_environment());
  for (const char* v : {"SLURM_NTASKS", "SLURM_PROCID", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(v);
}

TEST_CASE("2 Gloo ranks, gradients in buckets: the weights of 1 rank with the combined batch, also for unequal slices") {
  if (!gloo_here()) return;
  torch::set_num_threads(1);
  test::TempDir dir;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const torch::Tensor x = torch::randn({32, 8}, gen);
  const torch::Tensor y = torch::randint(0, 4, {32}, gen, torch::kInt64);
  const int64_t split = 12;   // rank 0: samples [0, 12), rank 1: [12, 32)
  const int steps = 5;
  auto sgd = [](torch::nn::Sequential& net) {
    return torch::optim::SGD(net->parameters(), torch::optim::SGDOptions(0.2).momentum(0.9));
  };

  // one rank, the combined batch
  auto ref = mlp(1);
  auto ref_opt = sgd(ref);
  std::vector<double> ref_loss;
  for (int s = 0; s < steps; ++s) {
    ref_opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(ref->forward(x), y);
    loss.backward();
    ref_opt.step();
    ref_loss.push_back(loss.item<double>());
  }

  // two ranks, different initial weights (rank 0's are broadcast), buckets of 64 bytes: several
  torch::nn::Sequential nets[2] = {mlp(1), mlp(99)};
  std::vector<double> losses[2];
  on_two_ranks(dir.path + "/store", [&](distill::DataParallel& dp) {
    const int r = dp.rank();
    dp.bucket_bytes = 64;
    auto& net = nets[r];
    dp.broadcast_parameters(*net);
    auto opt = sgd(net);
    const int64_t lo = r == 0 ? 0 : split, n = r == 0 ? split : 32 - split;
    for (int s = 0; s < steps; ++s) {
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x.narrow(0, lo, n)), y.narrow(0, lo, n));
      loss.backward();
      dp.allreduce_gradients(net->parameters(), double(n) / 32.0);
      opt.step();
      torch::Tensor sum = loss.detach().to(torch::kFloat64).reshape({1}) * double(n);
      dp.allreduce_sum(sum);
      losses[r].push_back(sum.item<double>() / 32.0);
    }
  });
  DOCTEST_CHECK(same_parameters(*nets[0], *nets[1]));             // (a) exactly
  DOCTEST_CHECK(max_difference(*nets[0], *ref) < 1e-5);           // (b) up to float summation order
  REQUIRE(losses[0].size() == ref_loss.size());
  for (size_t s = 0; s < ref_loss.size(); ++s) {
    DOCTEST_CHECK(losses[0][s] == doctest::Approx(ref_loss[s]).epsilon(1e-5));
    DOCTEST_CHECK(losses[1][s] == losses[0][s]);
  }
  DOCTEST_CHECK(ref_loss.back() < ref_loss.front());               // it trained
}

TEST_CASE("fit on 2 Gloo ranks: identical weights, each rank its slice, the loss curve of 1 rank with the combined batch") {
  if (!gloo_here()) return;
  torch::set_num_threads(1);
  test::TempDir dir;
  const auto data = study_data();

  std::vector<std::vector<int64_t>> ref_steps;
  std::vector<double> ref_curve;
  auto ref = tiny_net(1);
  {
    train::FitPlan p = fit_plan("");
    p.loss = recording_loss(ref_steps);
    train::FitHooks h;
    h.on_epoch = [&](const train::EpochStats& e) { ref_curve.push_back(e.train_loss); };
    train::fit(ref, data, p, h);
  }

  model::Network nets[2] = {tiny_net(1), tiny_net(99)};
  std::vector<std::vector<int64_t>> steps[2];
  std::vector<double> curve[2];
  on_two_ranks(dir.path + "/store", [&](distill::DataParallel& dp) {
    const int r = dp.rank();
    train::FitPlan p = fit_plan(dir.path + "/rank" + std::to_string(r) + ".ckpt");
    p.loss = recording_loss(steps[r]);
    train::FitHooks h;
    h.on_epoch = [&curve, r](const train::EpochStats& e) { curve[r].push_back(e.train_loss); };
    distill::make_data_parallel(dp, nets[r], p, h);
    train::fit(nets[r], data, p, h);
  });

  // (a) the same weights and batch-norm statistics on both ranks, bit for bit
  DOCTEST_CHECK(same_parameters(*nets[0], *nets[1]));
  // each rank trained its contiguous half of every batch of the 1-rank run, nothing else
  REQUIRE(steps[0].size() == ref_steps.size());
  REQUIRE(steps[1].size() == ref_steps.size());
  for (size_t s = 0; s < ref_steps.size(); ++s) {
    std::vector<int64_t> both = steps[0][s];
    both.insert(both.end(), steps[1][s].begin(), steps[1][s].end());
    DOCTEST_CHECK(both == ref_steps[s]);
    DOCTEST_CHECK(steps[0][s].size() == ref_steps[s].size() / 2);
  }
  // (b) the loss curve of 1 rank with the combined batch. Not exact: batch norm normalises each
  // rank's 16 samples by their own statistics rather than the batch's 32 (as PyTorch's DDP does
  // without SyncBatchNorm), which changes the loss by a few percent on batches this small.
  REQUIRE(curve[0].size() == ref_curve.size());
  for (size_t e = 0; e < ref_curve.size(); ++e) {
    DOCTEST_CHECK(curve[1][e] == curve[0][e]);
    DOCTEST_CHECK(curve[0][e] == doctest::Approx(ref_curve[e]).epsilon(0.10));
  }
  DOCTEST_CHECK(ref_curve.back() < ref_curve.front());
  // only rank 0 writes the checkpoint
  DOCTEST_CHECK(std::filesystem::exists(dir.path + "/rank0.ckpt"));
  DOCTEST_CHECK(!std::filesystem::exists(dir.path + "/rank1.ckpt"));
}
