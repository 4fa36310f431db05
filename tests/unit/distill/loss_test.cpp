// loss_test: KD and DKD against values computed by hand (python's math module, the formulas of
// the papers), their decomposition, and their gradients
#include <torch/torch.h>

#include <doctest/doctest.h>

#include "nas/distill/loss.h"

using namespace nas;

namespace {

// two samples, three classes; targets 0 and 2
torch::Tensor student() { return torch::tensor({{1.0, 2.0, 0.5}, {0.2, -1.0, 3.0}}, torch::kFloat32); }
torch::Tensor teacher() { return torch::tensor({{2.0, 0.5, -1.0}, {0.0, 0.3, 2.5}}, torch::kFloat32); }
torch::Tensor labels() { return torch::tensor({0, 2}, torch::kInt64); }

} // namespace

TEST_CASE("KD's KL term and loss are the hand-computed values") {
  CHECK(distill::kd_term(student(), teacher(), 4).item<double>() == doctest::Approx(0.5139597239794753).epsilon(1e-5));
  distill::KdParams p;   // T 4, alpha 0.9
  CHECK(distill::kd_loss(student(), teacher(), labels(), p).item<double>() ==
        doctest::Approx(0.5395897496694239).epsilon(1e-5));
  CHECK(distill::kd_term(student(), student(), 4).item<double>() == doctest::Approx(0).epsilon(1e-7));
}

TEST_CASE("DKD's terms, its warm-up, and KL = TCKD + (1 - p_t(target)) * NCKD per sample") {
  const auto d = distill::dkd_terms(student(), teacher(), labels(), 4);
  CHECK(d.tckd.item<double>() == doctest::Approx(0.44010170987164765).epsilon(1e-5));
  CHECK(d.nckd.item<double>() == doctest::Approx(0.1402644767694605).epsilon(1e-5));
  distill::DkdParams p;   // alpha 1, beta 8, T 4, 20 warm-up epochs
  CHECK(distill::dkd_loss(student(), teacher(), labels(), p, 0).item<double>() ==
        doctest::Approx(0.8483708570803273).epsilon(1e-5));
  CHECK(distill::dkd_loss(student(), teacher(), labels(), p, 30).item<double>() ==
        doctest::Approx(2.3324775049062927).epsilon(1e-5));
  for (int64_t i = 0; i < 2; ++i) {   // the decomposition, one sample at a time
    const auto s = student().narrow(0, i, 1), t = teacher().narrow(0, i, 1), y = labels().narrow(0, i, 1);
    const auto di = distill::dkd_terms(s, t, y, 4);
    const double pt_target = torch::softmax(t / 4, 1)[0][y[0].item<int64_t>()].item<double>();
    CHECK(distill::kd_term(s, t, 4).item<double>() ==
          doctest::Approx(di.tckd.item<double>() + (1 - pt_target) * di.nckd.item<double>()).epsilon(1e-5));
  }
}

TEST_CASE("the losses pull the student towards the teacher, and half-precision teachers are widened") {
  for (bool dkd : {false, true}) {
    CAPTURE(dkd);
    torch::Tensor s = student().clone().requires_grad_(true);
    const torch::Tensor t = teacher().to(torch::kHalf);
    auto loss = [&] {
      return dkd ? distill::dkd_loss(s, t, labels(), {}, 100) : distill::kd_term(s, t, 4);
    };
    const double before = loss().item<double>();
    torch::optim::SGD opt({s}, torch::optim::SGDOptions(1.0));
    for (int i = 0; i < 50; ++i) {
      opt.zero_grad();
      loss().backward();
      CHECK(torch::isfinite(s.grad()).all().item<bool>());
      opt.step();
    }
    CHECK(loss().item<double>() < before * 0.5);
  }
}
