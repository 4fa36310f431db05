// probe: dataset file headers and labels, read with zlib (which also reads plain files)
#include "nas/data/probe.h"
#include "nas/core/error.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
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

// zlib reports a damaged stream (a changed payload byte, or a CRC that does not match, which it
// checks only at the end of the stream) as a failed read, the same as the end of a short file:
// gzerror tells them apart. Throws UsageError naming `path`: "corrupt gzip data" for damage, a
// read error, else `short_msg` (the file really ends early).
[[noreturn]] void throw_read_failure(gzFile f, const std::string& path, const std::string& short_msg) {
  int err = Z_OK;
  std::string msg = gzerror(f, &err);
  if (msg.rfind(path + ": ", 0) == 0) msg.erase(0, path.size() + 2);  // zlib prefixes the path
  if (err == Z_DATA_ERROR)
    throw UsageError("'" + path + "': corrupt gzip data (" +
                     (msg == "incorrect data check" ? std::string("CRC mismatch") : msg) + ")");
  if (err == Z_ERRNO) throw UsageError("'" + path + "': read error (" + msg + ")");
  throw UsageError("'" + path + "': " + short_msg);
}

// Reads exactly n bytes; throws as throw_read_failure, with `short_msg` when the file ends first.
void read_exact(gzFile f, void* buf, size_t n, const std::string& path, const std::string& short_msg) {
  size_t got = 0;
  while (got < n) {
    int r = gzread(f, static_cast<char*>(buf) + got, unsigned(std::min<size_t>(n - got, 1 << 30)));
    if (r <= 0) throw_read_failure(f, path, short_msg);
    got += size_t(r);
  }
}

// Whether the stream is at its end; a damaged stream is not an end (throws UsageError).
bool at_end(gzFile f, const std::string& path) {
  if (gzgetc(f) >= 0) return false;
  int err = Z_OK;
  gzerror(f, &err);
  if (err != Z_OK) throw_read_failure(f, path, "truncated");
  return true;
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// IDX header: 0x00 0x00 type ndims, then ndims big-endian uint32.
std::vector<int64_t> idx_header(gzFile f, const std::string& path, int want_dims) {
  uint8_t magic[4];
  read_exact(f, magic, 4, path, "file too short for an IDX header");
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
    read_exact(f, b, 4, path, "truncated IDX header");
    dims.push_back(be32(b));
  }
  return dims;
}

// The product of `dims` times `esize`; nullopt past int64 (no file holds that many bytes).
std::optional<int64_t> bytes_of(const std::vector<int64_t>& dims, int64_t esize) {
  int64_t n = esize;
  for (int64_t d : dims)
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}

// The largest of the `n` label bytes next in `f`, read in chunks: a header may promise 4 G
// labels, which the file must hold, not memory. -1 for none; throws as read_exact.
int64_t idx_labels_max(gzFile f, int64_t n, const std::string& path) {
  int64_t maxlab = -1;
  std::vector<uint8_t> buf(size_t(std::min<int64_t>(n, 1 << 16)));
  for (int64_t left = n; left > 0;) {
    const size_t chunk = size_t(std::min<int64_t>(left, int64_t(buf.size())));
    read_exact(f, buf.data(), chunk, path, "truncated: the header promises " + std::to_string(n) + " labels");
    maxlab = std::max<int64_t>(maxlab, *std::max_element(buf.begin(), buf.begin() + long(chunk)));
    left -= int64_t(chunk);
  }
  return maxlab;
}

} // namespace

std::vector<uint8_t> read_gz_file(const std::string& path) {
  Gz f = open_gz(path);
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f.get(), buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  if (n < 0) throw_read_failure(f.get(), path, "truncated");
  return out;
}

Probe probe_idx(const std::string& images, const std::string& labels) {
  Gz fi = open_gz(images);
  auto idims = idx_header(fi.get(), images, 3);
  Gz fl = open_gz(labels);
  auto ldims = idx_header(fl.get(), labels, 1);
  if (idims[0] != ldims[0])
    throw UsageError("'" + labels + "': " + std::to_string(ldims[0]) + " labels for " + std::to_string(idims[0]) +
                     " images in '" + images + "'");
  if (idims[1] == 0 || idims[2] == 0) throw UsageError("'" + images + "': images of size zero");
  const int64_t maxlab = idx_labels_max(fl.get(), ldims[0], labels);
  // The loader reads exactly what the headers promise: anything after it is refused here too,
  // so that a study is never created over files its workers cannot load.
  if (!at_end(fl.get(), labels))
    throw UsageError("'" + labels + "': more bytes than the header's " + std::to_string(ldims[0]) + " labels");
  // Check the images file holds all it promises by seeking to its last byte, and no more.
  const std::string promised = std::to_string(idims[0]) + " images of " + std::to_string(idims[1]) + "x" +
                               std::to_string(idims[2]);
  const auto bytes = bytes_of(idims, 1);   // 2^96 at most: overflows int64
  if (!bytes) throw UsageError("'" + images + "': truncated: the header promises " + promised);
  if (*bytes > 0 && (gzseek(fi.get(), z_off_t(16 + *bytes - 1), SEEK_SET) < 0 || gzgetc(fi.get()) < 0))
    throw_read_failure(fi.get(), images, "truncated: the header promises " + promised);
  if (!at_end(fi.get(), images)) throw UsageError("'" + images + "': more bytes than the header's " + promised);
  Probe p;
  p.shape = {1, idims[1], idims[2]};
  p.samples = idims[0];
  p.classes = maxlab + 1;
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

namespace {

// The header text of an NPY file, `in` left at the data. The length field is checked against the
// file's size before anything is allocated for it (a hostile one says 4 GB).
std::string npy_header_text(std::ifstream& in, const std::string& path, int64_t file_size) {
  char magic[8];
  if (!in.read(magic, 8) || std::string(magic, 6) != "\x93NUMPY")
    throw UsageError("'" + path + "': not an NPY file (bad magic string)");
  int major = static_cast<unsigned char>(magic[6]);
  if (major < 1 || major > 3)
    throw UsageError("'" + path + "': NPY format version " + std::to_string(major) + " is not supported");
  unsigned char b[4] = {0, 0, 0, 0};
  const int len_bytes = major == 1 ? 2 : 4;
  if (!in.read(reinterpret_cast<char*>(b), len_bytes)) throw UsageError("'" + path + "': truncated NPY header");
  const uint32_t hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t(b[3]) << 24);
  if (8 + len_bytes + int64_t(hlen) > file_size)
    throw UsageError("'" + path + "': truncated NPY header (it promises " + std::to_string(hlen) + " bytes)");
  std::string h(hlen, '\0');
  if (!in.read(h.data(), hlen)) throw UsageError("'" + path + "': truncated NPY header");
  return h;
}

// Where the value of 'key' starts in the header dict ("{'descr': '<f4', ...}"), or npos. A scan,
// not std::regex: libstdc++'s matcher recurses once per character, and a descr of 30 kB
// overflowed an 8 MB stack.
size_t npy_value(const std::string& h, const std::string& key) {
  size_t at = h.find("'" + key + "'");
  if (at == std::string::npos) return at;
  at = h.find_first_not_of(" \t\r\n", at + key.size() + 2);
  if (at == std::string::npos || h[at] != ':') return std::string::npos;
  return h.find_first_not_of(" \t\r\n", at + 1);
}

// The numbers of a shape tuple's text ("2, 28, 28"), each at most 2^62.
std::vector<int64_t> npy_dims(const std::string& text, const std::string& path) {
  std::vector<int64_t> dims;
  for (size_t i = text.find_first_of("0123456789"); i != std::string::npos; i = text.find_first_of("0123456789", i)) {
    int64_t d = 0;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
      if (d > (int64_t(1) << 62) / 10) throw UsageError("'" + path + "': NPY shape has a dimension past 2^62");
      d = d * 10 + (text[i] - '0');
    }
    dims.push_back(d);
  }
  return dims;
}

// Bytes per element of a dtype such as "<f4" or "|u1" (the digits after byte order and kind);
// 0 when those are not 1 to 3 digits.
int64_t npy_item_size(const std::string& descr) {
  if (descr.size() < 3 || descr.size() > 5 || descr.find_first_not_of("0123456789", 2) != std::string::npos) return 0;
  return std::stoll(descr.substr(2));
}

} // namespace

NpyHeader read_npy_header(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) throw UsageError("cannot open '" + path + "': no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot open '" + path + "': permission denied");
  const std::string h = npy_header_text(in, path, st.st_size);
  NpyHeader out;
  out.data_offset = in.tellg();
  size_t at = npy_value(h, "descr"), end = std::string::npos;
  if (at != std::string::npos && h[at] == '\'') end = h.find('\'', at + 1);
  if (end == std::string::npos || end == at + 1) throw UsageError("'" + path + "': NPY header has no 'descr'");
  out.descr = h.substr(at + 1, end - at - 1);
  at = npy_value(h, "fortran_order");
  out.fortran_order = at != std::string::npos && h.compare(at, 4, "True") == 0;
  at = npy_value(h, "shape");
  end = at != std::string::npos && h[at] == '(' ? h.find(')', at) : std::string::npos;
  if (end == std::string::npos) throw UsageError("'" + path + "': NPY header has no 'shape'");
  out.shape = npy_dims(h.substr(at + 1, end - at - 1), path);
  const int64_t esize = npy_item_size(out.descr);
  const auto bytes = bytes_of(out.shape, esize);
  if (esize > 0 && (!bytes || *bytes > st.st_size - out.data_offset))
    throw UsageError("'" + path + "': truncated: shape and dtype promise " +
                     (bytes ? std::to_string(*bytes) : "more than 2^63") + " bytes of data");
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
  if (std::count(p.shape.begin(), p.shape.end(), 0)) throw UsageError("'" + images + "': images of size zero");
  NpyHeader hl = read_npy_header(labels);
  if (hl.shape.size() != 1 || hl.shape[0] != p.samples)
    throw UsageError("'" + labels + "': expected " + std::to_string(p.samples) + " labels (one dimension) for '" + images + "'");
  static const std::vector<std::string> int_types = {"|u1", "|i1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8"};
  if (std::find(int_types.begin(), int_types.end(), hl.descr) == int_types.end())
    throw UsageError("'" + labels + "': labels must be integers, dtype is '" + hl.descr + "'");
  const int esize = int(npy_item_size(hl.descr));
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

// One split's probe: a missing file, or one the probe refuses, is reported at its own key.
config::SplitProbe probe_split(const config::DataConfig& d, const SplitFiles& split) {
  const auto& files = split.files;
  for (size_t i = 0; i < files.size(); ++i) {
    struct stat st{};
    if (::stat(files[i].c_str(), &st) != 0)
      throw config::data_error(d, split.keys[i], "file '" + files[i] + "' does not exist");
    if (S_ISDIR(st.st_mode)) throw config::data_error(d, split.keys[i], "'" + files[i] + "' is a directory, not a data file");
  }
  Probe p;
  at_file_keys(d, split, [&] {
    if (d.format == "idx") p = probe_idx(files[0], files[1]);
    else if (d.format == "npy") p = probe_npy(files[0], files[1], d.layout);
    else p = probe_cifar10(files);
  });
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

SplitFiles split_files(const config::DataConfig& d, const std::string& split) {
  if (d.format == "cifar10") {
    auto files = config::data_files(d, split);
    return {std::vector<std::string>(files.size(), split), files};
  }
  if (d.format == "synthetic") return {};
  std::vector<std::string> keys = {split + "_images", split + "_labels"};
  return {keys, {d.files.at(keys[0]), d.files.at(keys[1])}};
}

void at_file_keys(const config::DataConfig& d, const SplitFiles& split, const std::function<void()>& read) {
  try {
    read();
  } catch (const ConfigError&) {
    throw;
  } catch (const UsageError& e) {
    // The data readers' messages start with the file they are about ('PATH': ...): reported at
    // that file's key (a labels file's fault is not the images key's).
    const std::string what = e.what();
    size_t at = 0;
    for (size_t i = 0; i < split.files.size(); ++i)
      if (what.rfind("'" + split.files[i] + "'", 0) == 0) at = i;
    throw config::data_error(d, split.keys.empty() ? "" : split.keys[at], what);
  }
}

config::DataProbe probe_data_files(const config::DataConfig& d) {
  config::DataProbe p;
  if (d.format == "synthetic") {
    p.train = {{}, d.shape, d.classes, d.train_samples};
    p.test = {{}, d.shape, d.classes, d.test_samples};
    return p;
  }
  p.train = probe_split(d, split_files(d, "train"));
  p.test = probe_split(d, split_files(d, "test"));
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
