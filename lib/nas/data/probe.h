// probe: reads the headers (and labels) of dataset files to learn their shape and classes,
// validating magic numbers, shapes, label range and lengths; no LibTorch, no image data loaded
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nas/config/study_config.h"

namespace nas::data {

// The creation-time check of a study's data (parsing a config does no I/O): probes the files the
// configuration names (nothing for synthetic data), applies what it found to cfg.data
// (config::apply_data_probe) and returns it, for the study file to keep. Throws ConfigError at
// the config's key (FILE:LINE:COL) for a missing file, one the probe refuses (bad magic,
// truncated, wrong type) or data that contradict what the file declares.
config::DataProbe probe_study_data(config::StudyConfig& cfg);

// What the data files hold now, without applying it to a configuration: the same probe and the
// same ConfigErrors as probe_study_data. Synthetic data: its declaration.
config::DataProbe probe_data_files(const config::DataConfig& d);

// Throws UsageError (naming the study, what the files hold now and what it was created with)
// when `now` differs from `recorded` in a split's sample shape or classes -- what the trials'
// networks were built and costed for. Does no I/O.
void check_same_data(const config::StudyConfig& cfg, const config::DataProbe& now, const config::DataProbe& recorded);

// A worker's check before it loads the data: probes the files again and compares with what the
// study recorded when it was created. Throws UsageError (exit 2) saying the files no longer match
// the study's trials when a split's shape or classes differ; ConfigError as the probe does
// for a file now missing or refused.
void check_data_unchanged(const config::StudyConfig& cfg, const config::DataProbe& recorded);

// The files of one split ("train" or "test") and the [data] key that names each (cifar10: every
// batch at the split's key); nothing for synthetic data.
struct SplitFiles {
  std::vector<std::string> keys;  // parallel to files
  std::vector<std::string> files;
};
SplitFiles split_files(const config::DataConfig& d, const std::string& split);

// Runs `read` (a probe or a reader of the split's files). A UsageError about one of the files
// (its message starts with 'PATH') is rethrown as a ConfigError at that file's key (FILE:LINE:COL
// of the study's TOML), any other at the split's first key; ConfigErrors pass unchanged.
void at_file_keys(const config::DataConfig& d, const SplitFiles& split, const std::function<void()>& read);

struct Probe {
  std::vector<int64_t> shape;     // C, H, W of one sample
  int64_t classes = 0;            // max label + 1
  int64_t samples = 0;
};

// IDX images (ubyte, 3 dims: N x H x W) and labels (ubyte, 1 dim), gzipped or not.
// Throws UsageError naming the file and what is wrong (bad magic, wrong type, count mismatch,
// truncated file, corrupt gzip data).
Probe probe_idx(const std::string& images, const std::string& labels);

// The whole decompressed content of a file read with zlib (which also reads plain files).
// Throws UsageError naming the file when it is missing or unreadable, "corrupt gzip data" (with
// "CRC mismatch" or zlib's reason) for a damaged stream, "truncated" for one that ends early.
std::vector<uint8_t> read_gz_file(const std::string& path);

// CIFAR-10 binary batches: records of 1 label byte + 3 x 32 x 32 bytes.
Probe probe_cifar10(const std::vector<std::string>& files);

// NPY images (uint8 or float32; N x H x W, N x H x W x C or N x C x H x W as `layout` says:
// "nchw", "nhwc" or "auto") and integer labels (N).
Probe probe_npy(const std::string& images, const std::string& labels, const std::string& layout);

// Whether 4-dimensional NPY images of `shape` are channels-last under `layout` ("nhwc",
// "nchw", or "auto": channels-last when the last dimension is at most 4 and the second is not).
bool npy_channels_last(const std::vector<int64_t>& shape, const std::string& layout);

// NPY header: dtype descr (e.g. "|u1", "<f4"), shape, fortran order, and data offset.
struct NpyHeader {
  std::string descr;
  std::vector<int64_t> shape;
  bool fortran_order = false;
  int64_t data_offset = 0;
};
NpyHeader read_npy_header(const std::string& path);

} // namespace nas::data
