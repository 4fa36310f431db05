// fuzz_idx_npy: the data probe (data/probe.h: IDX, NPY, CIFAR-10) on arbitrary files. The
// probe reads files by path (zlib's gzopen, ifstream), so each input is written to one or two
// files in a folder of this process under /tmp. A UsageError (any nas::Error) is the expected
// refusal; a crash, a sanitizer report, an allocation beyond libFuzzer's limit, any other
// exception or a probe result no loader could use is a finding.
//
// Input: byte 0 chooses what is probed and how the files are written, bytes 1-2 (little-endian)
// the length of the first file, the rest is the first file then the second.
//   bits 0-1  0 probe_idx(images, labels)  1 probe_npy(images, labels, layout)
//             2 read_npy_header(images)    3 probe_cifar10({images})
//   bit 2     images written gzip-compressed (what gzopen reads besides plain files)
//   bit 3     labels written gzip-compressed
//   bits 4-5  the NPY layout: auto, nchw, nhwc, auto
#include "fuzz_check.h"

#include "nas/core/error.h"
#include "nas/data/probe.h"

#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

// This process's folder under $NAS_FUZZ_TMP (bench/fuzz's, removed after the run) or the system's
// temporary folder: libFuzzer's -jobs/-workers run several processes at once.
const std::string& folder() {
  static const std::string dir = [] {
    const char* base = std::getenv("NAS_FUZZ_TMP");
    auto d = std::filesystem::path(base && *base ? base : std::filesystem::temp_directory_path().string()) /
             ("nas-fuzz-idx-npy." + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  // Registered after `dir` is built, so it runs before `dir` is destroyed.
  static const bool cleaned = std::atexit([] { std::error_code ec; std::filesystem::remove_all(folder(), ec); }) == 0;
  (void)cleaned;
  return dir;
}

void write(const std::string& path, const uint8_t* p, size_t n, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    FUZZ_CHECK(f != nullptr);
    if (n) FUZZ_CHECK(gzwrite(f, p, unsigned(n)) == int(n));
    gzclose(f);
    return;
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(p), std::streamsize(n));
  FUZZ_CHECK(bool(f));
}

// What a loader relies on when the probe accepts files: a C, H, W shape of positive sizes and
// sensible counts.
void check_probe(const nas::data::Probe& p) {
  FUZZ_CHECK(p.shape.size() == 3);
  for (int64_t d : p.shape) FUZZ_CHECK(d > 0);
  FUZZ_CHECK(p.samples >= 0 && p.classes >= 0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int mode = data[0] & 3;
  const bool gz_images = data[0] & 4, gz_labels = data[0] & 8;
  static const char* const layouts[] = {"auto", "nchw", "nhwc", "auto"};
  const std::string layout = layouts[(data[0] >> 4) & 3];
  size_t first = size_t(data[1]) | size_t(data[2]) << 8;
  data += 3;
  size -= 3;
  if (first > size) first = size;
  const std::string images = folder() + "/images", labels = folder() + "/labels";
  write(images, data, first, gz_images);
  write(labels, data + first, size - first, gz_labels);
  try {
    if (mode == 0) check_probe(nas::data::probe_idx(images, labels));
    if (mode == 1) check_probe(nas::data::probe_npy(images, labels, layout));
    if (mode == 2) FUZZ_CHECK(nas::data::read_npy_header(images).data_offset > 0);
    if (mode == 3) check_probe(nas::data::probe_cifar10({images}));
  } catch (const nas::Error&) {
    // a refusal naming the file: expected
  }
  return 0;
}
