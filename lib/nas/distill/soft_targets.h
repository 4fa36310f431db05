// soft_targets: the teacher's logits for every sample of the training split, computed once and
// shared by every student and worker when the inputs are deterministic (no random augmentation:
// targets computed for another view of an image are known to hurt)
#pragma once
#include <torch/torch.h>

#include <string>

#include "nas/data/dataset.h"
#include "nas/distill/teacher.h"

namespace nas::distill {

// Rows in the order of data.train (the study's deterministic split), half precision, on the
// data's device. Throws UsageError when a logit does not fit half precision (|x| > 65504).
torch::Tensor compute_soft_targets(Teacher& t, const data::StudyData& data, int64_t batch);

struct SoftTargetsFile {
  std::string name;                     // soft-targets-SHA12.bin
  std::string sha256;                   // of the whole file
};

// Writes them into `folder` (crash-safe) as "MNSOFT01", rows and classes (int64 little-endian),
// then the half-precision values, named by their own sha256: a file an earlier teacher record
// names is never overwritten with other contents.
SoftTargetsFile write_soft_targets(const std::string& folder, const torch::Tensor& targets);

// Reads them back onto `device`. Throws UsageError naming the file when its sha256 is not
// `sha256` (the study file's record: the file was replaced or damaged -- never used), when it
// is not such a file, or when its size is not rows x classes.
torch::Tensor read_soft_targets(const std::string& path, const std::string& sha256, int64_t rows, int64_t classes,
                                const torch::Device& device);

} // namespace nas::distill
