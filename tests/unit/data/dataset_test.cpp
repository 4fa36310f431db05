// dataset_test: readers (real Fashion-MNIST, written CIFAR-10 and NPY files), the deterministic
// split, normalisation and the on-device augmentations
#include <torch/torch.h>

// LibTorch's logging defines CHECK: torch tests use doctest's DOCTEST_-prefixed macros.
#include <doctest/doctest.h>

#include "../support.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/data/dataset.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>

using namespace nas;

namespace {

const std::string kFmnist = "/usr/share/datasets/fashion-mnist";

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// A version-1 NPY file.
void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
               const void* data, size_t bytes) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = uint16_t(header.size());
  f.write(reinterpret_cast<const char*>(&len), 2);
  f << header;
  f.write(static_cast<const char*>(data), std::streamsize(bytes));
}

} // namespace

TEST_CASE("IDX: the real Fashion-MNIST files") {
  if (!std::filesystem::exists(kFmnist + "/train-images-idx3-ubyte.gz")) {
    DOCTEST_MESSAGE("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  auto s = data::read_idx(kFmnist + "/t10k-images-idx3-ubyte.gz", kFmnist + "/t10k-labels-idx1-ubyte.gz");
  DOCTEST_CHECK(s.images.sizes() == torch::IntArrayRef({10000, 1, 28, 28}));
  DOCTEST_CHECK((s.images.scalar_type() == torch::kUInt8));
  // first test labels and pixels, read independently from the files
  DOCTEST_CHECK(s.labels.narrow(0, 0, 5).equal(torch::tensor({9, 2, 1, 1, 6}, torch::kInt64)));
  DOCTEST_CHECK(s.images[0].sum().item<int64_t>() == 33456);
  DOCTEST_CHECK(s.images[0][0][14][14].item<int64_t>() == 110);
  DOCTEST_CHECK(torch::bincount(s.labels).equal(torch::full({10}, 1000, torch::kInt64)));
}

TEST_CASE("IDX: a plain file reads like the gzipped one, a truncated one is refused") {
  test::TempDir dir("minnow-data-test");
  // 3 images of 2x2 and their labels
  std::vector<uint8_t> img = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<uint8_t> lab = {0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1};
  write_bytes(dir.file("img"), img);
  write_bytes(dir.file("lab"), lab);
  auto s = data::read_idx(dir.file("img"), dir.file("lab"));
  DOCTEST_CHECK(s.images.sizes() == torch::IntArrayRef({3, 1, 2, 2}));
  DOCTEST_CHECK(s.images[2][0][1][1].item<int64_t>() == 12);
  DOCTEST_CHECK(s.labels.equal(torch::tensor({2, 0, 1}, torch::kInt64)));
  img.pop_back();
  write_bytes(dir.file("short"), img);
  DOCTEST_CHECK_THROWS_AS(data::read_idx(dir.file("short"), dir.file("lab")), UsageError);
}

TEST_CASE("IDX: the loader calls a damaged gzip file corrupt, at its key") {
  test::TempDir dir("minnow-data-test");
  const std::vector<uint8_t> img = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  write_bytes(dir.file("lab"), {0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1});
  gzFile gz = gzopen(dir.file("img.gz").c_str(), "wb");
  gzwrite(gz, img.data(), unsigned(img.size()));
  gzclose(gz);
  DOCTEST_CHECK(data::read_idx(dir.file("img.gz"), dir.file("lab")).size() == 3);
  // the stream's CRC-32 (its last 8 bytes: CRC, then length) no longer matches the data
  std::fstream f(dir.file("img.gz"), std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-8, std::ios::end);
  const char crc = char(f.get());
  f.seekp(-8, std::ios::end);
  f.put(char(crc ^ 0xff));
  f.close();
  DOCTEST_CHECK_THROWS_WITH(data::read_idx(dir.file("img.gz"), dir.file("lab")),
                            doctest::Contains("corrupt gzip data (CRC mismatch)"));
  auto c = config::parse_study_config("[study]\n[data]\nformat='idx'\ntrain_images='img.gz'\ntrain_labels='lab'\n"
                                      "test_images='img.gz'\ntest_labels='lab'\n[space]\nfamily='cnn'\n",
                                      dir.file("s.toml"));
  DOCTEST_CHECK_THROWS_WITH_AS(data::load_study_data(c.data, 1, torch::kCPU),
                               doctest::Contains("s.toml:4:14: key 'data.train_images'"), ConfigError);
}

TEST_CASE("CIFAR-10 binary records and NPY files in both layouts") {
  test::TempDir dir("minnow-data-test");
  std::vector<uint8_t> rec;
  for (int r = 0; r < 2; ++r) {
    rec.push_back(uint8_t(7 - r));
    for (int i = 0; i < 3072; ++i) rec.push_back(uint8_t((i + r) % 251));
  }
  write_bytes(dir.file("batch.bin"), rec);
  auto c = data::read_cifar10({dir.file("batch.bin")});
  DOCTEST_CHECK(c.images.sizes() == torch::IntArrayRef({2, 3, 32, 32}));
  DOCTEST_CHECK(c.labels.equal(torch::tensor({7, 6}, torch::kInt64)));
  DOCTEST_CHECK(c.images[1][2][31][31].item<int64_t>() == (3071 + 1) % 251);

  // N x H x W x C uint8 with H = 6, W = 5, C = 3, int32 labels
  std::vector<uint8_t> px(2 * 6 * 5 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i);
  int32_t labels[2] = {4, 1};
  write_npy(dir.file("x.npy"), "|u1", {2, 6, 5, 3}, px.data(), px.size());
  write_npy(dir.file("y.npy"), "<i4", {2}, labels, sizeof labels);
  auto n = data::read_npy(dir.file("x.npy"), dir.file("y.npy"), "auto");
  DOCTEST_CHECK(n.images.sizes() == torch::IntArrayRef({2, 3, 6, 5}));
  // element (n=1, h=2, w=3, c=1) of the file
  DOCTEST_CHECK(n.images[1][1][2][3].item<int64_t>() == int64_t((((1 * 6 + 2) * 5 + 3) * 3 + 1) % 256));
  DOCTEST_CHECK(n.labels.equal(torch::tensor({4, 1}, torch::kInt64)));
  auto nc = data::read_npy(dir.file("x.npy"), dir.file("y.npy"), "nchw");
  DOCTEST_CHECK(nc.images.sizes() == torch::IntArrayRef({2, 6, 5, 3}));
  float fl[2 * 6 * 6];
  for (int i = 0; i < 72; ++i) fl[i] = float(i) / 72.0f;
  write_npy(dir.file("f.npy"), "<f4", {2, 6, 6}, fl, sizeof fl);
  auto f = data::read_npy(dir.file("f.npy"), dir.file("y.npy"), "auto");
  DOCTEST_CHECK((f.images.scalar_type() == torch::kFloat32));
  DOCTEST_CHECK(f.images[1][0][5][5].item<float>() == doctest::Approx(71.0 / 72));
}

TEST_CASE("the split is deterministic, disjoint, sized by the config, and normalises the training data") {
  auto cfg = config::parse_study_config("[study]\nseed=1\n[data]\nformat='synthetic'\nshape=[2,6,6]\nclasses=5\nsamples=500\n"
                                        "validation=0.2\nsubset=400\naugment=['crop','flip']\ncrop_padding=2\n"
                                        "[space]\nfamily='nb201'\n", "/tmp/d.toml");
  auto a = data::load_study_data(cfg.data, 11, torch::kCPU);
  auto b = data::load_study_data(cfg.data, 11, torch::kCPU);
  auto c = data::load_study_data(cfg.data, 12, torch::kCPU);
  DOCTEST_CHECK(a.train.size() == 320);
  DOCTEST_CHECK(a.validation.size() == 80);
  DOCTEST_CHECK(a.test.size() == 256);
  DOCTEST_CHECK(a.train.images.equal(b.train.images));
  DOCTEST_CHECK(a.validation.labels.equal(b.validation.labels));
  DOCTEST_CHECK_FALSE(a.train.images.equal(c.train.images));
  // disjoint: no validation image equals a training image (random 72-byte images never collide)
  auto flat_t = a.train.images.flatten(1).to(torch::kInt64), flat_v = a.validation.images.flatten(1).to(torch::kInt64);
  auto d = torch::cdist(flat_v.to(torch::kFloat32), flat_t.to(torch::kFloat32));
  DOCTEST_CHECK(d.min().item<float>() > 0);
  DOCTEST_CHECK(a.crop);
  DOCTEST_CHECK(a.flip);
  DOCTEST_CHECK(a.crop_padding == 2);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto x = data::gather_batch(a, a.train, torch::arange(320, torch::kInt64), false, gen);
  DOCTEST_CHECK(x.mean({0, 2, 3}).abs().max().item<float>() < 1e-4);
  DOCTEST_CHECK((x.std({0, 2, 3}) - 1).abs().max().item<float>() < 1e-3);
}

TEST_CASE("random crop shifts each image inside its zero padding; flip mirrors") {
  auto x = torch::arange(2 * 1 * 5 * 5, torch::kFloat32).view({2, 1, 5, 5}) + 1;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  DOCTEST_CHECK(data::random_crop(x, 0, gen).equal(x));
  for (int t = 0; t < 20; ++t) {
    auto y = data::random_crop(x, 2, gen);
    DOCTEST_CHECK(y.sizes() == x.sizes());
    for (int64_t i = 0; i < 2; ++i) {
      // y[i] is the 5x5 window at some offset of x[i] padded by 2 with zeros
      auto padded = torch::constant_pad_nd(x[i], {2, 2, 2, 2}, 0);
      bool found = false;
      for (int64_t oy = 0; oy <= 4 && !found; ++oy)
        for (int64_t ox = 0; ox <= 4 && !found; ++ox)
          found = padded.narrow(1, oy, 5).narrow(2, ox, 5).equal(y[i]);
      DOCTEST_CHECK(found);
    }
  }
  int flipped = 0;
  for (int t = 0; t < 200; ++t) {
    auto y = data::random_flip(x, gen);
    for (int64_t i = 0; i < 2; ++i) {
      bool same = y[i].equal(x[i]), mirrored = y[i].equal(x[i].flip({2}));
      DOCTEST_CHECK((same || mirrored));
      flipped += mirrored;
    }
  }
  DOCTEST_CHECK(flipped > 150);
  DOCTEST_CHECK(flipped < 250);
}
