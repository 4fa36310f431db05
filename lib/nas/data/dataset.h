// dataset: a study's data read once into tensors that stay on the device (uint8 images, int64
// labels), a deterministic train/validation split, and batches gathered, normalised and
// augmented on the device -- no per-sample loader
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nas/config/study_config.h"

namespace nas::data {

// Images N x C x H x W (uint8, or float32 from float NPY files) and labels N (int64).
struct Split {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// IDX images (N x H x W, unsigned bytes; gzipped or not) as N x 1 x H x W uint8, and labels.
// Both validated as probe_idx does; throws UsageError naming the file.
Split read_idx(const std::string& images, const std::string& labels);
// CIFAR-10 binary batches, concatenated.
Split read_cifar10(const std::vector<std::string>& files);
// NPY images (uint8 or float32, layout auto|nchw|nhwc) and integer labels.
Split read_npy(const std::string& images, const std::string& labels, const std::string& layout);
// Seeded random data: uniform uint8 pixels, labels i mod classes, shuffled by the seed.
Split synthetic(const std::vector<int64_t>& shape, int64_t classes, int64_t n, uint64_t seed);

// The data of a study on one device.
struct StudyData {
  Split train, validation, test;
  torch::Tensor mean, std;        // per channel (float32, on the device), from the training split
  bool crop = false, flip = false;
  int64_t crop_padding = 4;
  int64_t classes = 0;
};

// Reads the files of the [data] section (or makes the synthetic data), takes the `subset`
// and the validation fraction from a permutation drawn from `seed` (the same seed gives the
// same split on every machine), and moves everything to `device` once. The test split is only
// ever reported on, never used for a decision. Throws ConfigError at the [data] key of a file
// that is missing or refused (as the probe does: corrupt, truncated, wrong type).
StudyData load_study_data(const config::DataConfig& cfg, uint64_t seed, const torch::Device& device);

// The rows `index` (int64, on the data's device) of a split as a float batch: scaled to [0, 1]
// when uint8, normalised by mean/std, and -- when `augment` -- randomly cropped after zero
// padding and flipped as the study asks, with random numbers from `gen` (one per trainer).
torch::Tensor gather_batch(const StudyData& data, const Split& split, const torch::Tensor& index, bool augment,
                           torch::Generator gen);

// Random crop after zero padding: each image is shifted by its own offset in [-p, p] in both
// directions, what leaves the frame is cut and what enters is zero (as torchvision's
// RandomCrop(size, padding=p)). x is B x C x H x W.
torch::Tensor random_crop(const torch::Tensor& x, int64_t padding, torch::Generator gen);

// Each image flipped left-right with probability 1/2.
torch::Tensor random_flip(const torch::Tensor& x, torch::Generator gen);

} // namespace nas::data
