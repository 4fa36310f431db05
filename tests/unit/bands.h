// bands: a small learnable data set for the training tests (tests/unit/train, tests/unit/distill)
#pragma once
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "nas/data/dataset.h"

namespace nas::test {

// 4 classes of 1x8x8 images: class c lights up rows 2c and 2c+1 (plus noise) -- learnable by a
// small CNN, and unchanged in meaning by horizontal flips and one-pixel crops.
inline data::Split bands(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::Tensor labels = torch::randint(0, 4, {n}, gen, torch::kInt64);
  torch::Tensor x = torch::randint(0, 96, {n, 1, 8, 8}, gen, torch::kInt64);
  torch::Tensor rows = torch::arange(8, torch::kInt64).div(2, "floor").view({1, 1, 8, 1});
  x = x + rows.eq(labels.view({n, 1, 1, 1})).to(torch::kInt64) * 150;
  return {x.to(torch::kUInt8), labels};
}

// 192 training, 64 validation and 64 test samples, normalised by the training split, augmented
// with flips and one-pixel crops (which draw random numbers: a resumed or sharded run must draw
// the same ones).
inline data::StudyData bands_data() {
  data::StudyData d;
  d.train = bands(192, 1);
  d.validation = bands(64, 2);
  d.test = bands(64, 3);
  d.classes = 4;
  torch::Tensor f = d.train.images.to(torch::kFloat32) / 255.0;
  d.mean = f.mean({0, 2, 3});
  d.std = f.std({0, 2, 3});
  d.flip = d.crop = true;
  d.crop_padding = 1;
  return d;
}

} // namespace nas::test
