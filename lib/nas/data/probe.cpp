// probe: dataset file headers and labels, read with zlib (which also reads plain files)
#include "nas/data/probe.h"
#include "nas/core/error.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <regex>
#include <sys/stat.h>

namespace nas::data {
namespace {

struct GzCloser { void operator()(gzFile_s* f) const { if (f) gzclose(f); } };
using Gz = std::unique_ptr<gzFile_s, GzCloser>;

Gz open_gz(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) throw UsageError("cannot open '" + path + "': no such file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw UsageError("cannot open '" + path + "': permission denied or unreadable");
  return Gz(f);
}

// Reads exactly n bytes; false at end of file before n.
bool read_exact(gzFile f, void* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    int r = gzread(f, static_cast<char*>(buf) + got, unsigned(std::min<size_t>(n - got, 1 << 30)));
    if (r <= 0) return false;
    got += size_t(r);
  }
  return true;
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// IDX header: 0x00 0x00 type ndims, then ndims big-endian uint32.
std::vector<int64_t> idx_header(gzFile f, const std::string& path, int want_dims) {
  uint8_t magic[4];
  if (!read_exact(f, magic, 4)) throw UsageError("'" + path + "': file too short for an IDX header");
  if (magic[0] != 0 || magic[1] != 0)
    throw UsageError("'" + path + "': not an IDX file (bad magic number)");
  if (magic[2] != 0x08)
    throw UsageError("'" + path + "': IDX element type 0x" + [&] { char b[4]; std::snprintf(b, 4, "%02x", magic[2]); return std::string(b); }() +
                     " is not supported (expected unsigned byte, 0x08)");
  if (magic[3] != want_dims)
    throw UsageError("'" + path + "': IDX file has " + std::to_string(magic[3]) + " dimensions, expected " +
                     std::to_string(want_dims));
  std::vector<int64_t> dims;
  for (int i = 0; i < want_dims; ++i) {
    uint8_t b[4];
    if (!read_exact(f, b, 4)) throw UsageError("'" + path + "': truncated IDX header");
    dims.push_back(be32(b));
  }
  return dims;
}

int64_t labels_max(const std::vector<uint8_t>& labels) {
  return labels.empty() ? -1 : *std::max_element(labels.begin(), labels.end());
}

} // namespace

Probe probe_idx(const std::string& images, const std::string& labels) {
  Gz fi = open_gz(images);
  auto idims = idx_header(fi.get(), images, 3);
  Gz fl = open_gz(labels);
  auto ldims = idx_header(fl.get(), labels, 1);
  if (idims[0] != ldims[0])
    throw UsageError("'" + labels + "': " + std::to_string(ldims[0]) + " labels for " + std::to_string(idims[0]) +
                     " images in '" + images + "'");
  if (idims[1] == 0 || idims[2] == 0) throw UsageError("'" + images + "': images of size zero");
  std::vector<uint8_t> lab(static_cast<size_t>(ldims[0]));
  if (!read_exact(fl.get(), lab.data(), lab.size()))
    throw UsageError("'" + labels + "': truncated: the header promises " + std::to_string(ldims[0]) + " labels");
  // The loader reads exactly what the headers promise: anything after it is refused here too,
  // so that a study is never created over files its workers cannot load.
  if (gzgetc(fl.get()) >= 0)
    throw UsageError("'" + labels + "': more bytes than the header's " + std::to_string(ldims[0]) + " labels");
  // Check the images file holds all it promises by seeking to its last byte, and no more.
  int64_t bytes = idims[0] * idims[1] * idims[2];
  if (bytes > 0) {
    if (gzseek(fi.get(), z_off_t(16 + bytes - 1), SEEK_SET) < 0 || gzgetc(fi.get()) < 0)
      throw UsageError("'" + images + "': truncated: the header promises " + std::to_string(idims[0]) + " images of " +
                       std::to_string(idims[1]) + "x" + std::to_string(idims[2]));
    if (gzgetc(fi.get()) >= 0)
      throw UsageError("'" + images + "': more bytes than the header's " + std::to_string(idims[0]) + " images of " +
                       std::to_string(idims[1]) + "x" + std::to_string(idims[2]));
  }
  Probe p;
  p.shape = {1, idims[1], idims[2]};
  p.samples = idims[0];
  p.classes = labels_max(lab) + 1;
  return p;
}

Probe probe_cifar10(const std::vector<std::string>& files) {
  const int64_t rec = 1 + 3 * 32 * 32;
  Probe p;
  p.shape = {3, 32, 32};
  int64_t maxlab = -1;
  for (const auto& path : files) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) throw UsageError("cannot open '" + path + "': no such file");
    if (st.st_size == 0 || st.st_size % rec != 0)
      throw UsageError("'" + path + "': size " + std::to_string(st.st_size) +
                       " is not a whole number of CIFAR-10 records (3073 bytes each)");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError("cannot open '" + path + "': permission denied");
    int64_t n = st.st_size / rec;
    for (int64_t i = 0; i < n; ++i) {
      in.seekg(i * rec);
      int lab = in.get();
      if (lab < 0) throw UsageError("'" + path + "': unreadable at record " + std::to_string(i));
      if (lab > 9) throw UsageError("'" + path + "': record " + std::to_string(i) + " has label " + std::to_string(lab) + ", outside 0..9");
      maxlab = std::max<int64_t>(maxlab, lab);
    }
    p.samples += n;
  }
  p.classes = 10;
  (void)maxlab;
  return p;
}

NpyHeader read_npy_header(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) throw UsageError("cannot open '" + path + "': no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot open '" + path + "': permission denied");
  char magic[8];
  if (!in.read(magic, 8) || std::string(magic, 6) != "\x93NUMPY")
    throw UsageError("'" + path + "': not an NPY file (bad magic string)");
  int major = static_cast<unsigned char>(magic[6]);
  uint32_t hlen = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) throw UsageError("'" + path + "': truncated NPY header");
    hlen = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) throw UsageError("'" + path + "': truncated NPY header");
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t(b[3]) << 24);
  } else {
    throw UsageError("'" + path + "': NPY format version " + std::to_string(major) + " is not supported");
  }
  std::string h(hlen, '\0');
  if (!in.read(h.data(), hlen)) throw UsageError("'" + path + "': truncated NPY header");
  NpyHeader out;
  out.data_offset = in.tellg();
  std::smatch m;
  if (!std::regex_search(h, m, std::regex("'descr'\\s*:\\s*'([^']+)'")))
    throw UsageError("'" + path + "': NPY header has no 'descr'");
  out.descr = m[1];
  if (std::regex_search(h, m, std::regex("'fortran_order'\\s*:\\s*(True|False)"))) out.fortran_order = m[1] == "True";
  if (!std::regex_search(h, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")))
    throw UsageError("'" + path + "': NPY header has no 'shape'");
  std::string dims = m[1];
  std::regex num("[0-9]+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it)
    out.shape.push_back(std::stoll(it->str()));
  int64_t elems = 1;
  for (auto d : out.shape) elems *= d;
  int64_t esize = 0;
  if (out.descr.size() >= 3) esize = std::atoi(out.descr.c_str() + 2);
  if (esize > 0 && out.data_offset + elems * esize > st.st_size)
    throw UsageError("'" + path + "': truncated: shape and dtype promise " + std::to_string(elems * esize) +
                     " bytes of data");
  return out;
}

bool npy_channels_last(const std::vector<int64_t>& s, const std::string& layout) {
  return s.size() == 4 && (layout == "nhwc" || (layout == "auto" && s[3] <= 4 && s[1] > 4));
}

Probe probe_npy(const std::string& images, const std::string& labels, const std::string& layout) {
  NpyHeader hi = read_npy_header(images);
  if (hi.descr != "|u1" && hi.descr != "<f4")
    throw UsageError("'" + images + "': dtype '" + hi.descr + "' is not supported (expected uint8 '|u1' or float32 '<f4')");
  if (hi.fortran_order) throw UsageError("'" + images + "': Fortran-ordered arrays are not supported");
  Probe p;
  p.samples = hi.shape.empty() ? 0 : hi.shape[0];
  const auto& s = hi.shape;
  if (s.size() == 3) {
    p.shape = {1, s[1], s[2]};
  } else if (s.size() == 4) {
    bool nhwc = npy_channels_last(s, layout);
    p.shape = nhwc ? std::vector<int64_t>{s[3], s[1], s[2]} : std::vector<int64_t>{s[1], s[2], s[3]};
  } else {
    throw UsageError("'" + images + "': images must have 3 or 4 dimensions, this file has " + std::to_string(s.size()));
  }
  NpyHeader hl = read_npy_header(labels);
  if (hl.shape.size() != 1 || hl.shape[0] != p.samples)
    throw UsageError("'" + labels + "': expected " + std::to_string(p.samples) + " labels (one dimension) for '" + images + "'");
  static const std::vector<std::string> int_types = {"|u1", "|i1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8"};
  if (std::find(int_types.begin(), int_types.end(), hl.descr) == int_types.end())
    throw UsageError("'" + labels + "': labels must be integers, dtype is '" + hl.descr + "'");
  int esize = std::atoi(hl.descr.c_str() + 2);
  bool is_signed = hl.descr[1] == 'i';
  std::ifstream in(labels, std::ios::binary);
  in.seekg(hl.data_offset);
  std::vector<unsigned char> raw(size_t(p.samples) * esize);
  if (!in.read(reinterpret_cast<char*>(raw.data()), std::streamsize(raw.size())))
    throw UsageError("'" + labels + "': truncated label data");
  int64_t maxlab = -1;
  for (int64_t i = 0; i < p.samples; ++i) {
    uint64_t u = 0;
    for (int b = esize - 1; b >= 0; --b) u = (u << 8) | raw[size_t(i * esize + b)];
    int64_t v = int64_t(u);
    if (is_signed && esize < 8 && (u >> (esize * 8 - 1)) & 1) v = int64_t(u) - (int64_t(1) << (esize * 8));
    if (v < 0) throw UsageError("'" + labels + "': label " + std::to_string(v) + " at index " + std::to_string(i) + " is negative");
    maxlab = std::max(maxlab, v);
  }
  p.classes = maxlab + 1;
  return p;
}

namespace {

// One split's probe: a missing file, or one the probe refuses, is reported at its own key
// (`keys`, parallel to `files`).
config::SplitProbe probe_split(const config::DataConfig& d, const std::vector<std::string>& keys,
                               const std::vector<std::string>& files) {
  for (size_t i = 0; i < files.size(); ++i) {
    struct stat st{};
    if (::stat(files[i].c_str(), &st) != 0)
      throw config::data_error(d, keys[i], "file '" + files[i] + "' does not exist");
    if (S_ISDIR(st.st_mode)) throw config::data_error(d, keys[i], "'" + files[i] + "' is a directory, not a data file");
  }
  Probe p;
  try {
    if (d.format == "idx") p = probe_idx(files[0], files[1]);
    else if (d.format == "npy") p = probe_npy(files[0], files[1], d.layout);
    else p = probe_cifar10(files);
  } catch (const ConfigError&) {
    throw;
  } catch (const UsageError& e) {
    // The probe's messages start with the file they are about ('PATH': ...): reported at that
    // file's key (a labels file's fault is not the images key's).
    const std::string what = e.what();
    size_t at = 0;
    for (size_t i = 0; i < files.size(); ++i)
      if (what.rfind("'" + files[i] + "'", 0) == 0) at = i;
    throw config::data_error(d, keys[at], what);
  }
  return {files, p.shape, p.classes, p.samples};
}

// "10 classes of 1x28x28 samples (60000 training, 10000 test)", for messages.
std::string describe(const config::DataProbe& p) {
  std::string shape;
  for (int64_t d : p.train.shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
  return std::to_string(std::max(p.train.classes, p.test.classes)) + " classes of " + shape + " samples (" +
         std::to_string(p.train.samples) + " training, " + std::to_string(p.test.samples) + " test)";
}

} // namespace

config::DataProbe probe_data_files(const config::DataConfig& d) {
  config::DataProbe p;
  if (d.format == "synthetic") {
    p.train = {{}, d.shape, d.classes, d.train_samples};
    p.test = {{}, d.shape, d.classes, d.test_samples};
  } else if (d.format == "cifar10") {
    for (auto [split, key] : {std::pair{&p.train, "train"}, std::pair{&p.test, "test"}}) {
      auto files = config::data_files(d, key);
      *split = probe_split(d, std::vector<std::string>(files.size(), key), files);
    }
  } else {
    for (auto [split, name] : {std::pair{&p.train, "train"}, std::pair{&p.test, "test"}}) {
      std::vector<std::string> keys = {std::string(name) + "_images", std::string(name) + "_labels"};
      *split = probe_split(d, keys, {d.files.at(keys[0]), d.files.at(keys[1])});
    }
  }
  return p;
}

config::DataProbe probe_study_data(config::StudyConfig& cfg) {
  config::DataProbe p = probe_data_files(cfg.data);
  if (cfg.data.format != "synthetic") config::apply_data_probe(cfg, p);
  return p;
}

void check_same_data(const config::StudyConfig& cfg, const config::DataProbe& now, const config::DataProbe& recorded) {
  // The trials' networks depend on the shape and the classes: those must match (the sample
  // counts may change with the files, as they could before the probe was recorded).
  auto same = [](const config::SplitProbe& a, const config::SplitProbe& b) {
    return a.shape == b.shape && a.classes == b.classes;
  };
  if (same(now.train, recorded.train) && same(now.test, recorded.test)) return;
  throw UsageError("the data files of study '" + cfg.name + "' no longer match its trials: they now hold " +
                   describe(now) + ", the study was created with " + describe(recorded) +
                   "; restore the files or create a new study");
}

void check_data_unchanged(const config::StudyConfig& cfg, const config::DataProbe& recorded) {
  if (cfg.data.format == "synthetic") return;
  check_same_data(cfg, probe_data_files(cfg.data), recorded);
}

} // namespace nas::data
