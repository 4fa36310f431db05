// probe_test: the creation-time probe of a study's data files (parsing the config reads none)
#include <doctest/doctest.h>

#include "../support.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/data/probe.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>

using namespace nas;
using nas::config::parse_study_config;

TEST_CASE("idx data is probed for shape, classes and counts") {
  const char* dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(std::string(dir) + "/train-labels-idx1-ubyte.gz")) {
    MESSAGE("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  auto c = parse_study_config(std::string("[study]\nseed=1\n[data]\nformat='idx'\ntrain_images='") + dir +
                                  "/train-images-idx3-ubyte.gz'\ntrain_labels='" + dir +
                                  "/train-labels-idx1-ubyte.gz'\ntest_images='" + dir +
                                  "/t10k-images-idx3-ubyte.gz'\ntest_labels='" + dir +
                                  "/t10k-labels-idx1-ubyte.gz'\n[space]\nfamily='cnn'\n",
                              "/tmp/f.toml");
  CHECK_FALSE(c.data.probed);   // parsing reads no data file
  data::probe_study_data(c);    // the creation-time check (nas-sample)
  CHECK(c.data.shape == std::vector<int64_t>{1, 28, 28});
  CHECK(c.data.classes == 10);
  CHECK(c.data.train_samples == 60000);
  CHECK(c.data.test_samples == 10000);
}

TEST_CASE("a truncated idx file is refused at its key") {
  auto dir = std::filesystem::temp_directory_path() / "nas-config-test";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, std::vector<uint8_t> bytes) {
    std::ofstream f(dir / name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  };
  // 2 images of 2x2 promised, only 3 pixel bytes present
  write("img", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3});
  write("lab", {0, 0, 8, 1, 0, 0, 0, 2, 0, 1});
  std::string text = "[study]\n[data]\nformat='idx'\ntrain_images='img'\ntrain_labels='lab'\ntest_images='img'\n"
                     "test_labels='lab'\n[space]\nfamily='cnn'\n";
  // the creation-time probe of `text` refuses the data with a message holding both parts
  auto refusal = [&] {
    try {
      auto c = parse_study_config(text, (dir / "s.toml").string());
      data::probe_study_data(c);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
#define CHECK_REFUSED(key, what)                       \
  do {                                                 \
    const std::string m = refusal();                   \
    CHECK_MESSAGE(m.find(key) != std::string::npos, m);  \
    CHECK_MESSAGE(m.find(what) != std::string::npos, m); \
  } while (0)
  CHECK_REFUSED("key 'data.train_images'", "truncated");
  // issue 13, items 5 and 7: bytes after what the header promises are refused at creation (the
  // loader refuses them), and a labels file's fault is reported at the labels key
  write("img", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9});
  CHECK_REFUSED("key 'data.train_images'", "more bytes than the header's 2 images of 2x2");
  write("img", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8});
  write("lab", {0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 1});   // 3 labels for 2 images
  CHECK_REFUSED("key 'data.train_labels'", "3 labels for 2 images");
  write("lab", {0, 0, 8, 1, 0, 0, 0, 2, 0, 1, 7});   // a byte after the 2 labels
  CHECK_REFUSED("key 'data.train_labels'", "more bytes than the header's 2 labels");
#undef CHECK_REFUSED
  std::filesystem::remove_all(dir);
}

namespace {

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// `bytes` gzipped, as zlib writes them: the stream ends with its CRC-32 and length (8 bytes).
std::vector<uint8_t> gzipped(const test::TempDir& dir, const std::vector<uint8_t>& bytes) {
  const std::string path = dir.file(".gz");
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), unsigned(bytes.size()));
  gzclose(f);
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The ConfigError message of the creation-time probe of an idx study over the files img.gz and
// lab.gz of `dir` (train and test), or "no error".
std::string idx_refusal(const test::TempDir& dir) {
  const std::string text = "[study]\n[data]\nformat='idx'\ntrain_images='img.gz'\ntrain_labels='lab.gz'\n"
                           "test_images='img.gz'\ntest_labels='lab.gz'\n[space]\nfamily='cnn'\n";
  try {
    auto c = parse_study_config(text, dir.file("s.toml"));
    data::probe_study_data(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

// 20 images of 2x2 (enough for a validation split of 0.1) and their labels, 0 and 1 in turn.
std::vector<uint8_t> idx_images() {
  std::vector<uint8_t> b = {0, 0, 8, 3, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 2};
  for (int i = 0; i < 20 * 4; ++i) b.push_back(uint8_t(i * 3));
  return b;
}
std::vector<uint8_t> idx_labels() {
  std::vector<uint8_t> b = {0, 0, 8, 1, 0, 0, 0, 20};
  for (int i = 0; i < 20; ++i) b.push_back(uint8_t(i % 2));
  return b;
}

} // namespace

TEST_CASE("a gzip file with damaged data is called corrupt at its key, one cut short truncated") {
  test::TempDir dir("minnow-probe-test");
  const auto img = gzipped(dir, idx_images()), lab = gzipped(dir, idx_labels());
  write_bytes(dir.file("img.gz"), img);
  write_bytes(dir.file("lab.gz"), lab);
  CHECK(idx_refusal(dir) == "no error");
  // zlib checks the CRC only at the end of the stream, where a short file also ends
  auto bad_crc = img;
  bad_crc[bad_crc.size() - 8] ^= 0xff;
  write_bytes(dir.file("img.gz"), bad_crc);
  std::string m = idx_refusal(dir);
  CHECK_MESSAGE(m.find("key 'data.train_images': '" + dir.file("img.gz") + "': corrupt gzip data (CRC mismatch)") !=
                    std::string::npos, m);
  CHECK_MESSAGE(m.find("truncated") == std::string::npos, m);
  write_bytes(dir.file("img.gz"), img);
  bad_crc = lab;
  bad_crc[bad_crc.size() - 8] ^= 0xff;
  write_bytes(dir.file("lab.gz"), bad_crc);
  m = idx_refusal(dir);
  CHECK_MESSAGE(m.find("key 'data.train_labels'") != std::string::npos, m);
  CHECK_MESSAGE(m.find("corrupt gzip data (CRC mismatch)") != std::string::npos, m);
  // the compressed payload itself damaged (after the 10-byte gzip header)
  auto bad_payload = lab;
  for (size_t i = 10; i < bad_payload.size() - 8; ++i) bad_payload[i] ^= 0x55;
  write_bytes(dir.file("lab.gz"), bad_payload);
  m = idx_refusal(dir);
  CHECK_MESSAGE(m.find("key 'data.train_labels'") != std::string::npos, m);
  CHECK_MESSAGE(m.find("corrupt gzip data") != std::string::npos, m);
  // a stream that stops before its end is still called truncated
  write_bytes(dir.file("lab.gz"), std::vector<uint8_t>(lab.begin(), lab.end() - 10));
  m = idx_refusal(dir);
  CHECK_MESSAGE(m.find("key 'data.train_labels'") != std::string::npos, m);
  CHECK_MESSAGE(m.find("truncated") != std::string::npos, m);
  CHECK_MESSAGE(m.find("corrupt") == std::string::npos, m);
}

TEST_CASE("a data file without images is refused at its key, not at data.validation") {
  test::TempDir dir("minnow-probe-test");
  write_bytes(dir.file("img.gz"), {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2});   // 0 images of 2x2
  write_bytes(dir.file("lab.gz"), {0, 0, 8, 1, 0, 0, 0, 0});
  const std::string m = idx_refusal(dir);
  CHECK_MESSAGE(m.find("key 'data.train_images': '" + dir.file("img.gz") + "' holds no images") != std::string::npos, m);
}

namespace {

// An NPY file of format `version` (1 or 2) with the header dict `dict` and `data` bytes.
std::vector<uint8_t> npy_file(const std::string& dict, size_t data, int version = 1) {
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(version), 0};
  const size_t len = dict.size() + 1;
  for (int i = 0; i < (version == 1 ? 2 : 4); ++i) b.push_back(uint8_t(len >> (8 * i)));
  b.insert(b.end(), dict.begin(), dict.end());
  b.push_back('\n');
  b.resize(b.size() + data, 1);
  return b;
}

// The UsageError message of `probe`, or "no error".
template <class F> std::string usage_error(F probe) {
  try {
    probe();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "no error";
}

} // namespace

// Found by tests/fuzz/fuzz_idx_npy (bench/results/fuzz.md): headers that claim sizes their files
// do not hold were believed -- a 4 GB allocation, a signed overflow, std::stoll's out_of_range,
// a stack overflow in std::regex -- before they were refused, naming the file.
TEST_CASE("hostile IDX and NPY headers are refused, not believed") {
  test::TempDir dir("minnow-probe-test");
  const std::string img = dir.file("img"), lab = dir.file("lab");
  auto idx = [&] { data::probe_idx(img, lab); };
  write_bytes(img, {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 1});
  write_bytes(lab, {0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff, 0, 1});   // 4 G labels promised, 2 present
  CHECK(usage_error(idx) == "'" + lab + "': truncated: the header promises 4294967295 labels");
  write_bytes(img, {0, 0, 8, 3, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});   // 1 x 2^32 x 2^32
  write_bytes(lab, {0, 0, 8, 1, 0, 0, 0, 1, 5});
  CHECK(usage_error(idx) == "'" + img + "': truncated: the header promises 1 images of 4294967295x4294967295");

  auto header = [&] { data::read_npy_header(img); };
  auto npy = [&](const std::vector<uint8_t>& bytes) { write_bytes(img, bytes); return usage_error(header); };
  auto v2_huge = npy_file("{'descr': '|u1', 'shape': (1,), }", 1, 2);
  v2_huge[8] = v2_huge[9] = v2_huge[10] = v2_huge[11] = 0xff;
  CHECK(npy(v2_huge) == "'" + img + "': truncated NPY header (it promises 4294967295 bytes)");
  CHECK(npy(npy_file("{'descr': '|u1', 'shape': (99999999999999999999,), }", 0)).find("dimension past 2^62") !=
        std::string::npos);
  CHECK(npy(npy_file("{'descr': '<f4', 'shape': (4294967296, 4294967296), }", 0)) ==
        "'" + img + "': truncated: shape and dtype promise more than 2^63 bytes of data");
  CHECK(npy(npy_file("{'descr': '" + std::string(100000, 'a') + "', 'shape': (1,), }", 0, 2)) == "no error");
  CHECK(data::read_npy_header(img).descr.size() == 100000);

  write_bytes(img, npy_file("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 0, 3), }", 0));
  write_bytes(lab, npy_file("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", 2));
  CHECK(usage_error([&] { data::probe_npy(img, lab, "auto"); }) == "'" + img + "': images of size zero");
}
