// teacher: see teacher.h
#include "nas/distill/teacher.h"
#include "nas/core/error.h"
#include "nas/core/text.h"

#include <torch/script.h>

namespace nas::distill {
namespace {

torch::Tensor per_channel(const std::vector<double>& v, const torch::Device& device) {
  std::vector<float> f(v.begin(), v.end());
  return torch::tensor(f, torch::kFloat32).view({1, -1, 1, 1}).to(device);
}

class TorchScriptTeacher : public Teacher {
public:
  TorchScriptTeacher(torch::jit::Module m, std::string path, torch::Tensor scale, torch::Tensor shift)
      : m_(std::move(m)), path_(std::move(path)), scale_(std::move(scale)), shift_(std::move(shift)) {}
  torch::Tensor logits(const torch::Tensor& x) override {
    torch::NoGradGuard no_grad;
    torch::Tensor in = scale_.defined() ? x * scale_ + shift_ : x;
    torch::IValue out = m_.forward({in});
    if (!out.isTensor()) throw UsageError("teacher '" + path_ + "': forward returned " + out.tagKind() + ", not a tensor of logits");
    return out.toTensor().to(torch::kFloat32);
  }
  std::string describe() const override { return "torchscript '" + path_ + "'"; }
private:
  torch::jit::Module m_;
  std::string path_;
  torch::Tensor scale_, shift_;   // study-normalised x -> the teacher's normalisation
};

class MinnowTeacher : public Teacher {
public:
  MinnowTeacher(model::Network net, std::string arch) : net_(std::move(net)), arch_(std::move(arch)) {}
  torch::Tensor logits(const torch::Tensor& x) override {
    torch::NoGradGuard no_grad;
    return net_->forward(x).to(torch::kFloat32);
  }
  std::string describe() const override { return "minnow " + arch_; }
private:
  model::Network net_;
  std::string arch_;
};

} // namespace

std::unique_ptr<Teacher> load_torchscript_teacher(const std::string& path, const std::vector<double>& mean,
                                                  const std::vector<double>& std, const data::StudyData& data) {
  const torch::Device device = data.train.images.device();
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, device);
  } catch (const c10::Error& e) {
    throw UsageError("teacher '" + path + "': not a TorchScript module LibTorch can load: " +
                     first_line(e.what_without_backtrace()));
  }
  m.eval();
  torch::Tensor scale, shift;
  if (!mean.empty()) {
    const int64_t channels = data.mean.size(0);
    if (int64_t(mean.size()) != channels)
      throw UsageError("teacher '" + path + "': teacher_mean has " + std::to_string(mean.size()) +
                       " values, the data has " + std::to_string(channels) + " channels");
    // x = (p - m_s) / s_s and the teacher wants (p - m_t) / s_t: x * s_s / s_t + (m_s - m_t) / s_t
    const torch::Tensor ms = data.mean.view({1, -1, 1, 1}), ss = data.std.view({1, -1, 1, 1});
    const torch::Tensor mt = per_channel(mean, device), st = per_channel(std, device);
    scale = ss / st;
    shift = (ms - mt) / st;
  }
  return std::make_unique<TorchScriptTeacher>(std::move(m), path, scale, shift);
}

std::unique_ptr<Teacher> minnow_teacher(model::Network net, const std::string& arch) {
  net->eval();
  return std::make_unique<MinnowTeacher>(std::move(net), arch);
}

void check_teacher(Teacher& t, const data::StudyData& data, const std::string& what) {
  const int64_t n = std::min<int64_t>(4, data.train.size());
  const torch::Tensor idx = torch::arange(n, torch::TensorOptions().dtype(torch::kInt64).device(data.train.images.device()));
  const torch::Tensor x = data::gather_batch(data, data.train, idx, false, torch::Generator());
  torch::Tensor out;
  try {
    out = t.logits(x);
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw UsageError("teacher " + what + ": fails on the study's input of shape " + c10::str(x.sizes()) + ": " +
                     first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {   // a TorchScript assert or raise (torch::jit::JITException)
    throw UsageError("teacher " + what + ": fails on the study's input of shape " + c10::str(x.sizes()) + ": " +
                     first_line(e.what()));
  }
  if (out.dim() != 2 || out.size(0) != n || out.size(1) != data.classes)
    throw UsageError("teacher " + what + ": gives an output of shape " + c10::str(out.sizes()) + " for " +
                     std::to_string(n) + " samples; the study has " + std::to_string(data.classes) +
                     " classes, so " + std::to_string(n) + " x " + std::to_string(data.classes) + " logits were expected");
  if (!torch::isfinite(out).all().item<bool>()) throw UsageError("teacher " + what + ": gives NaN or infinite logits");
}

data::StudyData teacher_training_data(const data::StudyData& data, const config::Augmentations& a) {
  data::StudyData d = data;
  d.crop = d.crop || a.crop;
  d.flip = d.flip || a.flip;
  return d;
}

double teacher_accuracy(Teacher& t, const data::StudyData& data, const data::Split& split, int64_t batch) {
  int64_t correct = 0;
  const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(split.images.device());
  for (int64_t at = 0; at < split.size(); at += batch) {
    const torch::Tensor idx = torch::arange(at, std::min(at + batch, split.size()), opts);
    const torch::Tensor x = data::gather_batch(data, split, idx, false, torch::Generator());
    correct += t.logits(x).argmax(1).eq(split.labels.index_select(0, idx)).sum().item<int64_t>();
  }
  return split.size() ? double(correct) / double(split.size()) : 0;
}

} // namespace nas::distill
