// soft_targets: see soft_targets.h
#include "nas/distill/soft_targets.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/sha256.h"

#include <cstring>

namespace nas::distill {
namespace {

constexpr char kMagic[8] = {'M', 'N', 'S', 'O', 'F', 'T', '0', '1'};
constexpr size_t kHeader = sizeof kMagic + 2 * sizeof(int64_t);

} // namespace

torch::Tensor compute_soft_targets(Teacher& t, const data::StudyData& data, int64_t batch) {
  const data::Split& split = data.train;
  std::vector<torch::Tensor> parts;
  const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(split.images.device());
  for (int64_t at = 0; at < split.size(); at += batch) {
    const torch::Tensor idx = torch::arange(at, std::min(at + batch, split.size()), opts);
    parts.push_back(t.logits(data::gather_batch(data, split, idx, false, torch::Generator())).to(torch::kHalf));
  }
  torch::Tensor all = torch::cat(parts, 0);
  if (!torch::isfinite(all).all().item<bool>())
    throw UsageError("the teacher gives logits beyond half precision's range (|x| > 65504): they cannot be cached; "
                     "use [distill] targets = \"online\"");
  return all;
}

SoftTargetsFile write_soft_targets(const std::string& folder, const torch::Tensor& targets) {
  const torch::Tensor cpu = targets.to(torch::kCPU, torch::kHalf).contiguous();
  const int64_t dims[2] = {cpu.size(0), cpu.size(1)};
  std::string bytes(kHeader + size_t(cpu.numel()) * 2, '\0');
  std::memcpy(bytes.data(), kMagic, sizeof kMagic);
  std::memcpy(bytes.data() + sizeof kMagic, dims, sizeof dims);   // little-endian hosts only (x86-64, aarch64)
  std::memcpy(bytes.data() + kHeader, cpu.data_ptr(), size_t(cpu.numel()) * 2);
  SoftTargetsFile f;
  f.sha256 = sha256_hex(bytes);
  f.name = "soft-targets-" + f.sha256.substr(0, 12) + ".bin";
  write_file_atomic(folder + "/" + f.name, bytes);
  return f;
}

torch::Tensor read_soft_targets(const std::string& path, const std::string& sha256, int64_t rows, int64_t classes,
                                const torch::Device& device) {
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const FileError& e) {
    throw UsageError(std::string(e.what()) + " (the teacher's cached soft targets; run 'nas-distill teacher' again)");
  }
  if (sha256_hex(bytes) != sha256)
    throw UsageError("'" + path + "': the cached soft targets are not those the study recorded (sha256 differs): "
                     "replaced or damaged; run 'nas-distill teacher' again to record them anew");
  int64_t dims[2] = {0, 0};
  if (bytes.size() < kHeader || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw UsageError("'" + path + "': not a file of cached soft targets");
  std::memcpy(dims, bytes.data() + sizeof kMagic, sizeof dims);
  if (dims[0] != rows || dims[1] != classes || bytes.size() != kHeader + size_t(rows * classes) * 2)
    throw UsageError("'" + path + "': holds " + std::to_string(dims[0]) + " x " + std::to_string(dims[1]) +
                     " soft targets; the training split needs " + std::to_string(rows) + " x " + std::to_string(classes));
  torch::Tensor t = torch::empty({rows, classes}, torch::kHalf);
  std::memcpy(t.data_ptr(), bytes.data() + kHeader, size_t(rows * classes) * 2);
  return t.to(device);
}

} // namespace nas::distill
