// teacher_test: cached soft targets round-trip and refuse a damaged or foreign file; a teacher of
// another task is refused; which trials distill
#include <torch/torch.h>

#include <doctest/doctest.h>

#include "../support.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/sha256.h"
#include "nas/distill/job.h"
#include "nas/distill/soft_targets.h"
#include "nas/distill/teacher.h"
#include "nas/space/hparams.h"

#include <string>

using namespace nas;

namespace {

data::StudyData tiny_data(int64_t classes) {
  data::StudyData d;
  d.train = data::synthetic({1, 8, 8}, classes, 40, 1);
  d.validation = data::synthetic({1, 8, 8}, classes, 20, 2);
  d.test = d.validation;
  d.classes = classes;
  d.mean = torch::full({1}, 0.5);
  d.std = torch::full({1}, 0.25);
  return d;
}

model::Network net_of(int64_t classes) {
  space::Genome g;
  g.family = "cnn";
  g.cnn.stem_width = 4;
  g.cnn.stages = {{"conv", 1, 8, 3, 2, 1, "relu"}};
  space::CostContext ctx;
  ctx.input = {1, 8, 8};
  ctx.classes = classes;
  return model::Network(g, ctx);
}

std::string with_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE("cached soft targets: written, read back bit for bit, refused when damaged or of another split") {
  test::TempDir dir;
  const torch::Tensor t = torch::randn({40, 3}).to(torch::kHalf);
  const distill::SoftTargetsFile f = distill::write_soft_targets(dir.path, t);
  const std::string path = dir.file(f.name), sha = f.sha256;
  CHECK(f.name == "soft-targets-" + sha.substr(0, 12) + ".bin");   // named by its contents
  CHECK(sha == sha256_file(path));
  CHECK(torch::equal(distill::read_soft_targets(path, sha, 40, 3, torch::kCPU), t));
  CHECK(with_error([&] { distill::read_soft_targets(path, sha, 41, 3, torch::kCPU); }).find("holds 40 x 3 soft targets") !=
        std::string::npos);
  std::string bytes = read_file(path);
  bytes[100] ^= 1;
  write_file_atomic(path, bytes);
  CHECK(with_error([&] { distill::read_soft_targets(path, sha, 40, 3, torch::kCPU); }).find("sha256 differs") !=
        std::string::npos);
  CHECK(with_error([&] { distill::read_soft_targets(dir.file("none.bin"), sha, 40, 3, torch::kCPU); })
            .find("run 'nas-distill teacher' again") != std::string::npos);
}

TEST_CASE("a teacher must give one logit per class of the study; its soft targets are its logits") {
  const auto data = tiny_data(3);
  auto wrong = distill::minnow_teacher(net_of(5), "five");
  CHECK(with_error([&] { distill::check_teacher(*wrong, data, "'five.pt'"); }) ==
        "teacher 'five.pt': gives an output of shape [4, 5] for 4 samples; the study has 3 classes, so 4 x 3 logits "
        "were expected");
  auto right = distill::minnow_teacher(net_of(3), "three");
  CHECK_NOTHROW(distill::check_teacher(*right, data, "three"));
  const torch::Tensor soft = distill::compute_soft_targets(*right, data, 16);
  REQUIRE(soft.size(0) == 40);
  REQUIRE(soft.size(1) == 3);
  CHECK((soft.scalar_type() == torch::kHalf));
  const torch::Tensor idx = torch::arange(40);
  const torch::Tensor direct = right->logits(data::gather_batch(data, data.train, idx, false, torch::Generator()));
  CHECK(torch::allclose(soft.to(torch::kFloat32), direct, 1e-2, 1e-2));   // half precision
  const double acc = distill::teacher_accuracy(*right, data, data.test, 7);
  CHECK(acc >= 0);
  CHECK(acc <= 1);
}

TEST_CASE("which trials distill: all, none, or the trial's gene -- stored, else a fair, reproducible draw") {
  config::StudyConfig cfg = config::parse_study_config(
      "[study]\nname='gene'\nseed=9\n[data]\nformat='synthetic'\nshape=[1,8,8]\nclasses=3\nsamples=30\n"
      "[space]\nfamily='cnn'\n[distill]\ntrials='searched'\n",
      "/tmp/gene.toml");
  REQUIRE(cfg.distill.given);
  store::TrialRecord rec;
  rec.hash = "0123456789abcdef0123456789abcdef";
  cfg.distill.trials = config::DistillTrials::all;
  CHECK(space::trial_distills(cfg, rec.hash, rec.hparams));
  cfg.distill.trials = config::DistillTrials::none;
  CHECK_FALSE(space::trial_distills(cfg, rec.hash, rec.hparams));
  cfg.distill.trials = config::DistillTrials::searched;
  int on = 0;
  for (int i = 0; i < 400; ++i) {
    rec.hash = sha256_hex(std::to_string(i));
    rec.hparams = "";   // stored before the gene was: the draw
    const bool drawn = space::trial_distills(cfg, rec.hash, rec.hparams);
    on += drawn;
    CHECK(space::trial_distills(cfg, rec.hash, rec.hparams) == drawn);
    // a fresh candidate stores the same draw; a stored gene wins over the draw either way
    rec.hparams = space::hparams_json(space::draw_hparams(cfg, rec.hash));
    CHECK(rec.hparams.find(drawn ? "\"distill\":true" : "\"distill\":false") != std::string::npos);
    CHECK(space::trial_distills(cfg, rec.hash, rec.hparams) == drawn);
    rec.hparams = drawn ? "{\"distill\":false}" : "{\"distill\":true}";
    CHECK(space::trial_distills(cfg, rec.hash, rec.hparams) == !drawn);
  }
  CHECK(on > 160);
  CHECK(on < 240);
  // the gene is stored only where it is searched
  cfg.distill.trials = config::DistillTrials::all;
  CHECK(space::hparams_json(space::draw_hparams(cfg, rec.hash)).find("distill") == std::string::npos);
  CHECK_THROWS_AS(space::parse_hparams("{\"distill\":3}", {}), UsageError);
}

TEST_CASE("a teacher's --augment switches crops and flips on for its training batches only") {
  const data::StudyData plain = tiny_data(3);
  const torch::Tensor idx = torch::arange(40);
  auto batch = [&](const data::StudyData& d) {
    return data::gather_batch(d, d.train, idx, true, at::make_generator<at::CPUGeneratorImpl>(5));
  };
  const torch::Tensor unaugmented = data::gather_batch(plain, plain.train, idx, false, torch::Generator());
  CHECK(batch(plain).equal(unaugmented));   // the study's own data: no augmentation

  const config::Augmentations both_names = config::parse_augmentations({"flip", "crop"});
  CHECK(both_names.names() == "crop,flip");
  const data::StudyData both = distill::teacher_training_data(plain, both_names);
  CHECK(both.crop);
  CHECK(both.flip);
  CHECK(both.train.images.data_ptr() == plain.train.images.data_ptr());   // shared, not copied
  CHECK_FALSE(plain.crop);
  CHECK_FALSE(plain.flip);
  const torch::Tensor augmented = batch(both);
  int changed = 0;
  for (int64_t i = 0; i < 40; ++i) changed += !augmented[i].equal(unaugmented[i]);
  CHECK(changed > 20);   // each image is shifted in [-4, 4]^2 and flipped with probability 1/2

  const data::StudyData flip = distill::teacher_training_data(plain, config::parse_augmentations({"flip"}));
  CHECK_FALSE(flip.crop);
  CHECK(flip.flip);
  const torch::Tensor flipped = batch(flip);
  int mirrored = 0, same = 0;
  for (int64_t i = 0; i < 40; ++i) {
    mirrored += flipped[i].equal(unaugmented[i].flip({2}));
    same += flipped[i].equal(unaugmented[i]);
  }
  CHECK(mirrored + same == 40);   // flipped or untouched, never shifted
  CHECK(mirrored > 5);
  CHECK(same > 5);

  CHECK(config::parse_augmentations({}).names().empty());
  CHECK_THROWS_WITH_AS(config::parse_augmentations({"flip", "crap"}),
                       doctest::Contains("unknown augmentation 'crap', did you mean 'crop'? (expected crop or flip)"), std::invalid_argument);
}
