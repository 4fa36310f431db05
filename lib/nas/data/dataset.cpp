// dataset: readers into tensors, the study's split, and on-device batches
#include "nas/data/dataset.h"
#include "nas/core/error.h"
#include "nas/data/probe.h"

#include <fstream>

namespace nas::data {
namespace {

torch::Tensor bytes_tensor(const std::vector<uint8_t>& bytes, size_t offset, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  torch::Tensor t = torch::empty(shape, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + offset, size_t(n));
  return t;
}

void check_labels(const torch::Tensor& labels, const std::string& path) {
  if (labels.numel() && labels.min().item<int64_t>() < 0)
    throw UsageError("'" + path + "': negative label");
}

} // namespace

Split read_idx(const std::string& images, const std::string& labels) {
  Probe p = probe_idx(images, labels);  // validates magic numbers, counts and lengths
  auto ib = read_gz_file(images), lb = read_gz_file(labels);
  int64_t n = p.samples, h = p.shape[1], w = p.shape[2];
  if (int64_t(ib.size()) != 16 + n * h * w)
    throw UsageError("'" + images + "': " + std::to_string(ib.size() - 16) + " bytes of pixels, the header promises " +
                     std::to_string(n * h * w));
  if (int64_t(lb.size()) != 8 + n)
    throw UsageError("'" + labels + "': " + std::to_string(lb.size() - 8) + " labels, the header promises " + std::to_string(n));
  Split s;
  s.images = bytes_tensor(ib, 16, {n, 1, h, w});
  s.labels = bytes_tensor(lb, 8, {n}).to(torch::kInt64);
  return s;
}

Split read_cifar10(const std::vector<std::string>& files) {
  probe_cifar10(files);  // sizes and label range
  std::vector<torch::Tensor> imgs, labs;
  const int64_t rec = 1 + 3 * 32 * 32;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int64_t n = int64_t(bytes.size()) / rec;
    torch::Tensor raw = bytes_tensor(bytes, 0, {n, rec});
    labs.push_back(raw.select(1, 0).to(torch::kInt64));
    imgs.push_back(raw.narrow(1, 1, rec - 1).reshape({n, 3, 32, 32}).contiguous());
  }
  return {torch::cat(imgs), torch::cat(labs)};
}

Split read_npy(const std::string& images, const std::string& labels, const std::string& layout) {
  Probe p = probe_npy(images, labels, layout);  // dtypes, shapes, label range
  NpyHeader hi = read_npy_header(images), hl = read_npy_header(labels);
  std::ifstream in(images, std::ios::binary);
  std::vector<uint8_t> ib((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const bool f32 = hi.descr == "<f4";
  torch::Tensor img = torch::empty(hi.shape, f32 ? torch::kFloat32 : torch::kUInt8);
  std::memcpy(img.data_ptr(), ib.data() + hi.data_offset, size_t(img.numel() * (f32 ? 4 : 1)));
  if (img.dim() == 3) img = img.unsqueeze(1);
  else if (npy_channels_last(hi.shape, layout)) img = img.permute({0, 3, 1, 2});
  std::ifstream li(labels, std::ios::binary);
  std::vector<uint8_t> lb((std::istreambuf_iterator<char>(li)), std::istreambuf_iterator<char>());
  static const std::map<std::string, torch::ScalarType> types = {
      {"|u1", torch::kUInt8}, {"|i1", torch::kInt8}, {"<i2", torch::kInt16}, {"<i4", torch::kInt32}, {"<i8", torch::kInt64},
      {"<u2", torch::kInt32}, {"<u4", torch::kInt64}, {"<u8", torch::kInt64}};
  int esize = std::atoi(hl.descr.c_str() + 2);
  torch::Tensor lab;
  if (hl.descr == "<u2" || hl.descr == "<u4" || hl.descr == "<u8") {
    // unsigned wider than the signed type of the same size: widen by hand (probe checked the range)
    lab = torch::empty({p.samples}, torch::kInt64);
    auto* out = lab.data_ptr<int64_t>();
    for (int64_t i = 0; i < p.samples; ++i) {
      uint64_t u = 0;
      for (int b = esize - 1; b >= 0; --b) u = (u << 8) | lb[size_t(hl.data_offset + i * esize + b)];
      out[i] = int64_t(u);
    }
  } else {
    torch::Tensor raw = torch::empty({p.samples}, types.at(hl.descr));
    std::memcpy(raw.data_ptr(), lb.data() + hl.data_offset, size_t(p.samples * esize));
    lab = raw.to(torch::kInt64);
  }
  check_labels(lab, labels);
  return {img.contiguous(), lab};
}

Split synthetic(const std::vector<int64_t>& shape, int64_t classes, int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Split s;
  s.images = torch::randint(0, 256, {n, shape[0], shape[1], shape[2]}, gen, torch::kUInt8);
  s.labels = torch::arange(n, torch::kInt64).remainder(classes).index_select(0, torch::randperm(n, gen));
  return s;
}

namespace {

// One split's files read as their format says; a fault of a file is reported at its key.
Split read_split(const config::DataConfig& cfg, const std::string& name) {
  const SplitFiles split = split_files(cfg, name);
  const auto& f = split.files;
  Split s;
  at_file_keys(cfg, split, [&] {
    if (cfg.format == "idx") s = read_idx(f[0], f[1]);
    else if (cfg.format == "npy") s = read_npy(f[0], f[1], cfg.layout);
    else s = read_cifar10(f);
  });
  return s;
}

} // namespace

StudyData load_study_data(const config::DataConfig& cfg, uint64_t seed, const torch::Device& device) {
  Split train, test;
  if (cfg.format == "synthetic") {
    train = synthetic(cfg.shape, cfg.classes, cfg.train_samples, seed);
    test = synthetic(cfg.shape, cfg.classes, cfg.test_samples, seed ^ 0x5851f42d4c957f2dULL);
  } else {
    train = read_split(cfg, "train");
    test = read_split(cfg, "test");
  }
  // One permutation from the seed decides the subset and the validation split.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::Tensor perm = torch::randperm(train.size(), gen);
  int64_t used = cfg.subset ? cfg.subset : train.size();
  int64_t n_val = int64_t(double(used) * cfg.validation);
  torch::Tensor val_idx = perm.narrow(0, 0, n_val), train_idx = perm.narrow(0, n_val, used - n_val);
  StudyData d;
  d.classes = cfg.classes;
  d.crop = cfg.crop;
  d.flip = cfg.flip;
  d.crop_padding = cfg.crop_padding;
  d.train = {train.images.index_select(0, train_idx).to(device), train.labels.index_select(0, train_idx).to(device)};
  d.validation = {train.images.index_select(0, val_idx).to(device), train.labels.index_select(0, val_idx).to(device)};
  d.test = {test.images.to(device), test.labels.to(device)};
  torch::Tensor x = d.train.images.to(torch::kFloat32);
  if (d.train.images.scalar_type() == torch::kUInt8) x = x / 255.0;
  d.mean = x.mean({0, 2, 3});
  d.std = x.std({0, 2, 3}).clamp_min(1e-6);
  return d;
}

torch::Tensor random_crop(const torch::Tensor& x, int64_t padding, torch::Generator gen) {
  if (padding <= 0) return x;
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  torch::Tensor padded = torch::constant_pad_nd(x, {padding, padding, padding, padding}, 0);
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  torch::Tensor oy = torch::randint(0, 2 * padding + 1, {b}, gen, opts);
  torch::Tensor ox = torch::randint(0, 2 * padding + 1, {b}, gen, opts);
  torch::Tensor rows = (oy.view({b, 1}) + torch::arange(h, opts).view({1, h})).view({b, 1, h, 1});
  torch::Tensor cols = (ox.view({b, 1}) + torch::arange(w, opts).view({1, w})).view({b, 1, 1, w});
  torch::Tensor y = padded.gather(2, rows.expand({b, c, h, padded.size(3)}));
  return y.gather(3, cols.expand({b, c, h, w}));
}

torch::Tensor random_flip(const torch::Tensor& x, torch::Generator gen) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  torch::Tensor mask = torch::rand({x.size(0)}, gen, opts).lt(0.5).view({-1, 1, 1, 1});
  return torch::where(mask, x.flip({3}), x);
}

torch::Tensor gather_batch(const StudyData& data, const Split& split, const torch::Tensor& index, bool augment,
                           torch::Generator gen) {
  torch::Tensor x = split.images.index_select(0, index).to(torch::kFloat32);
  if (split.images.scalar_type() == torch::kUInt8) x = x / 255.0;
  x = (x - data.mean.view({1, -1, 1, 1})) / data.std.view({1, -1, 1, 1});
  if (augment) {
    // Padding is zero in the normalised space, i.e. the mean colour, as in common pipelines.
    if (data.crop) x = random_crop(x, data.crop_padding, gen);
    if (data.flip) x = random_flip(x, gen);
  }
  return x;
}

} // namespace nas::data
