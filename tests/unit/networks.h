// networks: search spaces to draw random networks from, and random batch-norm statistics, for the
// model tests (tests/unit/model) and tests/helpers/export_sample.cpp
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "nas/config/study_config.h"
#include "nas/model/network.h"

namespace nas::test {

// What the callers of wide_cnn choose; every other key of the space is the same for all of them.
struct CnnSpace {
  std::string shape = "[1,28,28]";     // [data] shape
  uint64_t seed = 17;                  // [study] seed
  int64_t classes = 7;
  std::string stem_width = "[4,8,12]";
  std::string stem_kernel = "[1,3,5]";
  std::string width = "[4,8,16,24]";
  std::string path = "/tmp/wide.toml"; // names the file in messages (and the study)
};

// A synthetic-data study over a wide cnn space: 1-4 stages of 1-3 blocks of every kind, stride
// and activation. Throws ConfigError if a field of `s` is not valid TOML for its key.
inline config::StudyConfig wide_cnn(const CnnSpace& s) {
  return config::parse_study_config(
      "[study]\nseed=" + std::to_string(s.seed) + "\n[data]\nformat='synthetic'\nshape=" + s.shape +
          "\nclasses=" + std::to_string(s.classes) + "\n[space]\nfamily='cnn'\nstages={min=1,max=4}\nstem_width=" +
          s.stem_width + "\nstem_kernel=" + s.stem_kernel +
          "\nstem_stride=[1,2]\nhead_width=[0,24]\ndepth={min=1,max=3}\nwidth=" + s.width +
          "\nkernel=[1,3,5,7]\nstride=[1,2]\nblock=['conv','dwsep','mbconv','residual']\nexpansion=[1,2,6]\n"
          "activation=['relu','relu6','hswish','silu']\n",
      s.path);
}

// A synthetic-data study (seed 3, 10 classes) over the nb201 cell space with that skeleton.
inline config::StudyConfig nb201_space(int64_t channels, int64_t cells, const std::string& shape = "[3,32,32]",
                                       const std::string& path = "/tmp/nb.toml") {
  return config::parse_study_config("[study]\nseed=3\n[data]\nformat='synthetic'\nshape=" + shape +
                                        "\nclasses=10\n[space]\nfamily='nb201'\nchannels=" + std::to_string(channels) +
                                        "\ncells=" + std::to_string(cells) + "\n",
                                    path);
}

// Draws every batch norm's running statistics and affine parameters from the global torch
// generator, so that a network in eval mode does not compute the identity there (what folding
// batch norm into the convolutions must get right).
inline void randomise_batch_norms(model::Network& net) {
  torch::NoGradGuard no_grad;
  for (auto& m : net->modules(false))
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->running_mean.uniform_(-0.5, 0.5);
      bn->running_var.uniform_(0.5, 2.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.3, 0.3);
    }
}

} // namespace nas::test
