// study_config: the study TOML -> validated structs. Every error names FILE:LINE:COL and the
// dotted key; unknown keys get a suggestion; nothing is written before this succeeds.
#include "nas/config/augment.h"
#include "nas/config/slurm_memory.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/sha256.h"
#include "nas/core/text.h"

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <filesystem>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace nas::config {
namespace {

const std::vector<std::string> kBlocks = {"conv", "dwsep", "mbconv", "residual"};
const std::vector<std::string> kActivations = {"relu", "relu6", "hswish", "silu"};
const std::vector<std::string> kNb201Ops = {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"};
// The largest cost-model limit a constraint may name (params, MACs, bytes): far beyond any
// network minnow searches, far below overflow.
constexpr int64_t kMaxCost = 1000000000000000;

const std::vector<std::string> kReserved = {"pareto"};

// The spellings of each enumerated value, in the order messages list them.
template <class E> using Spellings = std::vector<std::pair<E, std::string>>;
const Spellings<Precision> kPrecisions = {
    {Precision::fp32, "fp32"}, {Precision::bf16, "bf16"}, {Precision::fp16, "fp16"}, {Precision::automatic, "auto"}};
const Spellings<WeightPrecision> kWeightPrecisions = {
    {WeightPrecision::int8, "int8"}, {WeightPrecision::fp16, "fp16"}, {WeightPrecision::fp32, "fp32"}};
const Spellings<Schedule> kSchedules = {{Schedule::cosine, "cosine"}, {Schedule::constant, "constant"}};
const Spellings<Optimizer> kOptimizers = {{Optimizer::sgd, "sgd"}, {Optimizer::adamw, "adamw"}};
const Spellings<Ensemble> kEnsembles = {{Ensemble::sum, "sum"}, {Ensemble::vote, "vote"}, {Ensemble::none, "none"}};
const Spellings<Promotion> kPromotions = {{Promotion::asynchronous, "asynchronous"}, {Promotion::synchronous, "synchronous"}};
const Spellings<GpuOption> kGpuOptions = {
    {GpuOption::gres, "gres"}, {GpuOption::gpus_per_task, "gpus-per-task"}, {GpuOption::none, "none"}};
const Spellings<DistillLoss> kDistillLosses = {{DistillLoss::kd, "kd"}, {DistillLoss::dkd, "dkd"}};
const Spellings<DistillTrials> kDistillTrials = {
    {DistillTrials::all, "all"}, {DistillTrials::none, "none"}, {DistillTrials::searched, "searched"}};
const Spellings<SoftTargets> kSoftTargets = {
    {SoftTargets::automatic, "auto"}, {SoftTargets::cached, "cached"}, {SoftTargets::online, "online"}};
const Spellings<StrategyKind> kStrategies = {
    {StrategyKind::random, "random"}, {StrategyKind::evolution, "evolution"}, {StrategyKind::nsga2, "nsga2"}};

template <class E> std::string spelling(const Spellings<E>& table, E e) {
  for (const auto& [v, name] : table)
    if (v == e) return name;
  return "?";
}
template <class E> std::optional<E> lookup(const Spellings<E>& table, const std::string& s) {
  for (const auto& [v, name] : table)
    if (name == s) return v;
  return std::nullopt;
}
template <class E> std::vector<std::string> names_of(const Spellings<E>& table) {
  std::vector<std::string> out;
  for (const auto& [v, name] : table) out.push_back(name);
  return out;
}

// toml++ 3.3 (Debian's) reaches __builtin_unreachable -- undefined behaviour -- when it asks
// whether U+00A1..U+0499, U+2C5E..U+3057 (but U+3000) or U+FB26..U+FEFE is whitespace, which it
// does wherever such a character stands outside a string (marzer/tomlplusplus#190 and #295, fixed
// upstream by #305). The text toml++ reads has each moved to the private-use plane 15 (U+F0000 +
// c: still one character, so lines and columns stay) and every string read back is moved back.
constexpr char32_t kShield = 0xF0000;
bool toml_unsafe(char32_t c) {
  return (c > 0xA0 && c < 0x49A) || (c >= 0x2C5E && c < 0x3058 && c != 0x3000) || (c >= 0xFB26 && c < 0xFEFF);
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
  }
  out += char(0x80 | (c & 0x3F));
}

// Moves the characters of `text` for which `move` gives a new code point (0: kept). Only
// well-formed 2- to 4-byte UTF-8 sequences are decoded; any other byte is kept for toml++ to refuse.
template <class F> std::string remap_utf8(const std::string& text, F move) {
  static const char32_t shortest[5] = {0, 0, 0x80, 0x800, 0x10000};   // overlong forms are not decoded
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(k < text.size() ? text[k] : 0); };
    const size_t len = b(i) >= 0xF0 ? 4 : b(i) >= 0xE0 ? 3 : b(i) >= 0xC2 ? 2 : 1;
    char32_t c = b(i) & (0x7F >> len);
    bool ok = len > 1;
    for (size_t k = 1; k < len; ++k) {
      ok = ok && (b(i + k) & 0xC0) == 0x80;
      c = c << 6 | (b(i + k) & 0x3F);
    }
    const char32_t to = ok && c >= shortest[len] ? move(c) : 0;
    if (to) append_utf8(out, to);
    else out.append(text, i, ok ? len : 1);
    i += ok ? len : 1;
  }
  return out;
}

std::string unshield(const std::string& s) {
  if (s.find('\xF3') == std::string::npos) return s;   // U+F0000.. are F3 B0 .. in UTF-8
  return remap_utf8(s, [](char32_t c) { return c >= kShield && toml_unsafe(c - kShield) ? c - kShield : 0; });
}

std::string shield(const std::string& text, const std::string& file) {
  return remap_utf8(text, [&](char32_t c) -> char32_t {
    if (c >= kShield && toml_unsafe(c - kShield)) {   // would come back as another character
      char name[16];
      std::snprintf(name, sizeof name, "U+%05X", unsigned(c));
      throw ConfigError(file, 0, 0, "", "the private-use character " + std::string(name) + " is not supported");
    }
    return toml_unsafe(c) ? kShield + c : 0;
  });
}

void unshield_strings(toml::node& n) {
  if (auto* s = n.as_string()) {
    s->get() = unshield(s->get());
  } else if (auto* t = n.as_table()) {
    for (auto&& [k, v] : *t) unshield_strings(v);
  } else if (auto* a = n.as_array()) {
    for (auto& v : *a) unshield_strings(v);
  }
}

// A TOML table being read: remembers which keys were consumed so that the rest can be
// reported as unknown, and turns type problems into ConfigErrors with their place.
class Section {
public:
  Section(const toml::table& t, std::string prefix, const std::string& file)
      : t_(t), prefix_(std::move(prefix)), file_(file) {}

  std::string key(const std::string& k) const { return prefix_.empty() ? k : prefix_ + "." + k; }

  // (Keys come from the text toml++ read: unshielded for messages, as values are.)
  [[noreturn]] void fail_at(const toml::node& n, const std::string& k, const std::string& msg) const {
    throw ConfigError(file_, int(n.source().begin.line), int(n.source().begin.column), unshield(key(k)),
                      unshield(msg));
  }
  [[noreturn]] void fail_here(const std::string& k, const std::string& msg) const {
    throw ConfigError(file_, int(t_.source().begin.line), int(t_.source().begin.column), unshield(key(k)),
                      unshield(msg));
  }
  Place place(const toml::node& n) const {
    return {file_, int(n.source().begin.line), int(n.source().begin.column)};
  }

  const toml::node* get(const std::string& k) {
    allowed_.insert(k);
    return t_.get(k);
  }

  std::optional<std::string> str(const std::string& k) {
    const toml::node* n = get(k);
    if (!n) return std::nullopt;
    if (!n->is_string()) fail_at(*n, k, "expected a string, got " + type_name(*n));
    return n->value<std::string>();
  }
  // A string that must spell one of `table`'s values; an unknown one names the key and
  // suggests the nearest.
  template <class E> std::optional<E> one_of(const std::string& k, const Spellings<E>& table) {
    auto v = str(k);
    if (!v) return std::nullopt;
    if (auto e = lookup(table, *v)) return e;
    const auto known = names_of(table);
    fail_at(*t_.get(k), k, "unknown value '" + *v + "'" + suggestion_suffix(*v, known) + " (expected one of " +
                               quoted_list(known) + ")");
  }
  // An integer key in [min, max]: every caller names a sane upper bound (a count of epochs
  // near INT64_MAX overflows the loops that use it).
  std::optional<int64_t> integer(const std::string& k, int64_t min, int64_t max) {
    const toml::node* n = get(k);
    if (!n) return std::nullopt;
    if (!n->is_integer()) fail_at(*n, k, "expected an integer, got " + type_name(*n));
    int64_t v = *n->value<int64_t>();
    if (v < min) fail_at(*n, k, "must be at least " + std::to_string(min) + ", got " + std::to_string(v));
    if (v > max) fail_at(*n, k, "must be at most " + std::to_string(max) + ", got " + std::to_string(v));
    return v;
  }
  // A number key; TOML's nan and inf are refused (no setting means them, and every check
  // after this one would let nan through).
  std::optional<double> number(const std::string& k) {
    const toml::node* n = get(k);
    if (!n) return std::nullopt;
    if (!n->is_number()) fail_at(*n, k, "expected a number, got " + type_name(*n));
    const double v = *n->value<double>();
    if (!std::isfinite(v)) fail_at(*n, k, "expected a finite number, got " + format_number(v));
    return v;
  }
  std::optional<std::vector<int64_t>> int_list(const std::string& k) {
    const toml::node* n = get(k);
    if (!n) return std::nullopt;
    const toml::array* a = n->as_array();
    if (!a) fail_at(*n, k, "expected an array of integers, got " + type_name(*n));
    std::vector<int64_t> out;
    for (const auto& e : *a) {
      if (!e.is_integer()) fail_at(e, k, "expected an array of integers, found " + type_name(e));
      out.push_back(*e.value<int64_t>());
    }
    return out;
  }
  std::optional<std::vector<std::string>> str_list(const std::string& k) {
    const toml::node* n = get(k);
    if (!n) return std::nullopt;
    if (n->is_string()) return std::vector<std::string>{*n->value<std::string>()};
    const toml::array* a = n->as_array();
    if (!a) fail_at(*n, k, "expected a string or an array of strings, got " + type_name(*n));
    std::vector<std::string> out;
    for (const auto& e : *a) {
      if (!e.is_string()) fail_at(e, k, "expected an array of strings, found " + type_name(e));
      out.push_back(*e.value<std::string>());
    }
    return out;
  }
  const toml::table* table(const std::string& k) {
    const toml::node* n = get(k);
    if (!n) return nullptr;
    if (!n->is_table()) fail_at(*n, k, "expected a table, got " + type_name(*n));
    return n->as_table();
  }

  // An integer choice: N, [a, b, c] or {min = a, max = b, step = s}. Values are checked
  // against [lo, hi]; an empty list or range is an error.
  std::optional<IntChoice> int_choice(const std::string& k, int64_t lo, int64_t hi) {
    const toml::node* n = get(k);
    if (!n) return std::nullopt;
    IntChoice c;
    c.key = key(k);
    c.place = place(*n);
    auto check = [&](const toml::node& at, int64_t v) {
      if (v < lo || v > hi)
        fail_at(at, k, "value " + std::to_string(v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    };
    if (n->is_integer()) {
      check(*n, *n->value<int64_t>());
      c.values = {*n->value<int64_t>()};
    } else if (const toml::array* a = n->as_array()) {
      if (a->empty()) fail_at(*n, k, "empty list: give at least one value");
      for (const auto& e : *a) {
        if (!e.is_integer()) fail_at(e, k, "expected integers in the list, found " + type_name(e));
        check(e, *e.value<int64_t>());
        if (std::find(c.values.begin(), c.values.end(), *e.value<int64_t>()) != c.values.end())
          fail_at(e, k, "value " + std::to_string(*e.value<int64_t>()) + " is listed twice");
        c.values.push_back(*e.value<int64_t>());
      }
    } else if (const toml::table* t = n->as_table()) {
      Section r(*t, key(k), file_);
      auto mn = r.integer("min", INT64_MIN / 2, INT64_MAX / 2), mx = r.integer("max", INT64_MIN / 2, INT64_MAX / 2),
           st = r.integer("step", INT64_MIN, INT64_MAX / 2);
      r.finish();
      if (!mn || !mx) fail_at(*n, k, "a range needs both 'min' and 'max'");
      int64_t step = st.value_or(1);
      if (step <= 0) fail_at(*n, k, "range step must be positive, got " + std::to_string(step));
      if (*mn > *mx) fail_at(*n, k, "empty range: min " + std::to_string(*mn) + " > max " + std::to_string(*mx));
      check(*n, *mn);
      check(*n, *mx);
      for (int64_t v = *mn; v <= *mx; v += step) c.values.push_back(v);
    } else {
      fail_at(*n, k, "expected an integer, a list of integers or a {min, max} range, got " + type_name(*n));
    }
    return c;
  }

  // A real choice: X, [a, b, c] or {min = a, max = b, log = true}. Values are checked against
  // [lo, hi]; an empty list or range is an error; log ranges need min > 0.
  std::optional<RealChoice> real_choice(const std::string& k, double lo, double hi) {
    const toml::node* n = get(k);
    if (!n) return std::nullopt;
    RealChoice c;
    c.key = key(k);
    c.place = place(*n);
    auto check = [&](const toml::node& at, double v) {
      if (!(v >= lo && v <= hi))
        fail_at(at, k, "value " + format_number(v) + " is outside " + format_number(lo) + ".." + format_number(hi));
    };
    if (n->is_number()) {
      check(*n, *n->value<double>());
      c.values = {*n->value<double>()};
    } else if (const toml::array* a = n->as_array()) {
      if (a->empty()) fail_at(*n, k, "empty list: give at least one value");
      for (const auto& e : *a) {
        if (!e.is_number()) fail_at(e, k, "expected numbers in the list, found " + type_name(e));
        check(e, *e.value<double>());
        c.values.push_back(*e.value<double>());
      }
    } else if (const toml::table* t = n->as_table()) {
      Section r(*t, key(k), file_);
      auto mn = r.number("min"), mx = r.number("max");
      const toml::node* lg = r.get("log");
      if (lg && !lg->is_boolean()) r.fail_at(*lg, "log", "expected a boolean, got " + type_name(*lg));
      r.finish();
      if (!mn || !mx) fail_at(*n, k, "a range needs both 'min' and 'max'");
      if (*mn > *mx) fail_at(*n, k, "empty range: min " + format_number(*mn) + " > max " + format_number(*mx));
      check(*n, *mn);
      check(*n, *mx);
      c.range = true;
      c.min = *mn;
      c.max = *mx;
      c.log = lg && *lg->value<bool>();
      if (c.log && c.min <= 0) fail_at(*n, k, "a log range needs min > 0");
    } else {
      fail_at(*n, k, "expected a number, a list of numbers or a {min, max, log} range, got " + type_name(*n));
    }
    return c;
  }

  std::optional<bool> boolean(const std::string& k) {
    const toml::node* n = get(k);
    if (!n) return std::nullopt;
    if (!n->is_boolean()) fail_at(*n, k, "expected a boolean, got " + type_name(*n));
    return *n->value<bool>();
  }

  std::optional<NameChoice> name_choice(const std::string& k, const std::vector<std::string>& known) {
    auto v = str_list(k);
    if (!v) return std::nullopt;
    const toml::node* n = t_.get(k);
    if (v->empty()) fail_at(*n, k, "empty list: give at least one value");
    for (const auto& s : *v)
      if (std::find(known.begin(), known.end(), s) == known.end())
        fail_at(*n, k, "unknown value '" + s + "'" + suggestion_suffix(s, known) + " (expected one of " + quoted_list(known) + ")");
    NameChoice c;
    c.values = *v;
    c.key = key(k);
    c.place = place(*n);
    return c;
  }

  // Rejects every key that was not read.
  void finish() const {
    for (auto&& [k, v] : t_) {
      std::string name(k.str());
      if (!allowed_.count(name)) {
        std::vector<std::string> known(allowed_.begin(), allowed_.end());
        throw ConfigError(file_, int(k.source().begin.line), int(k.source().begin.column), unshield(key(name)),
                          "unknown key" + suggestion_suffix(unshield(name), known));
      }
    }
  }

  static std::string type_name(const toml::node& n) {
    switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
    }
  }

  const toml::table& raw() const { return t_; }
  const std::string& file() const { return file_; }

private:
  const toml::table& t_;
  std::string prefix_;
  const std::string& file_;
  std::set<std::string> allowed_;
};

nlohmann::json to_json(const toml::node& n) {
  if (auto t = n.as_table()) {
    nlohmann::json o = nlohmann::json::object();
    for (auto&& [k, v] : *t) o[std::string(k.str())] = to_json(v);
    return o;
  }
  if (auto a = n.as_array()) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : *a) arr.push_back(to_json(e));
    return arr;
  }
  if (n.is_string()) return *n.value<std::string>();
  if (n.is_integer()) return *n.value<int64_t>();
  if (n.is_floating_point()) return *n.value<double>();
  if (n.is_boolean()) return *n.value<bool>();
  // dates and times: their TOML text
  if (auto d = n.as_date()) { std::ostringstream s; s << *d; return s.str(); }
  if (auto t = n.as_time()) { std::ostringstream s; s << *t; return s.str(); }
  if (auto dt = n.as_date_time()) { std::ostringstream s; s << *dt; return s.str(); }
  return nullptr;
}

std::string resolve(const std::string& base_dir, const std::string& p) {
  fs::path path(p);
  if (path.is_absolute()) return path.lexically_normal().string();
  return (fs::path(base_dir) / path).lexically_normal().string();
}

// [data], without I/O: the data files are kept as paths (resolved against the config's folder)
// and probed when the study is created; synthetic data is "probed" here from its declaration.
void parse_data(Section& s, StudyConfig& cfg, const std::string& base_dir) {
  DataConfig& d = cfg.data;
  d.places[""] = s.place(s.raw());
  auto fmt = s.str("format");
  if (!fmt) s.fail_here("format", "missing: give format = \"idx\", \"cifar10\", \"npy\" or \"synthetic\"");
  d.format = *fmt;
  static const std::vector<std::string> formats = {"idx", "cifar10", "npy", "synthetic"};
  if (std::find(formats.begin(), formats.end(), d.format) == formats.end())
    s.fail_at(*s.raw().get("format"), "format",
              "unknown format '" + d.format + "'" + suggestion_suffix(d.format, formats) + " (expected idx, cifar10, npy or synthetic)");
  d.declared_shape = s.int_list("shape");
  d.declared_classes = s.integer("classes", 2, 1000000);
  const auto& shape = d.declared_shape;
  if (shape && (shape->size() != 3 || std::any_of(shape->begin(), shape->end(), [](int64_t v) { return v <= 0 || v > 65536; })))
    s.fail_at(*s.raw().get("shape"), "shape", "expected [channels, height, width] with positive values of at most 65536");
  for (const char* k : {"shape", "classes"})
    if (const toml::node* n = s.raw().get(k)) d.places[k] = s.place(*n);

  // A data-file key: a string naming a file, kept with its place for the probe's messages.
  auto file_key = [&](const std::string& k) {
    auto v = s.str(k);
    if (!v) s.fail_here(k, "missing: format '" + d.format + "' needs this file");
    d.files[k] = resolve(base_dir, *v);
    d.places[k] = s.place(*s.raw().get(k));
  };
  DataProbe synthetic;
  if (d.format == "synthetic") {
    if (!shape) s.fail_here("shape", "missing: synthetic data needs shape = [channels, height, width]");
    if (!d.declared_classes) s.fail_here("classes", "missing: synthetic data needs the number of classes");
    synthetic.train.shape = synthetic.test.shape = *shape;
    synthetic.train.classes = synthetic.test.classes = *d.declared_classes;
    synthetic.train.samples = s.integer("samples", 1, 100000000).value_or(1024);
    synthetic.test.samples = s.integer("test_samples", 1, 100000000).value_or(256);
    // The data are held in memory as uint8: refuse what could never be (64 GiB a split).
    for (const auto& [key, n] : {std::pair{"samples", synthetic.train.samples}, std::pair{"test_samples", synthetic.test.samples}}) {
      const double bytes = double(n) * double((*shape)[0]) * double((*shape)[1]) * double((*shape)[2]);
      if (bytes <= double(int64_t(1) << 36)) continue;
      const std::string msg = std::to_string(n) + " samples of this shape take " +
                              format_number(std::round(bytes / double(1 << 30))) + " GiB, more than the 64 GiB a split may hold";
      if (const toml::node* at = s.raw().get(key)) s.fail_at(*at, key, msg);
      s.fail_at(*s.raw().get("shape"), "shape", msg);
    }
  } else if (d.format == "idx" || d.format == "npy") {
    for (const char* k : {"train_images", "train_labels", "test_images", "test_labels"}) file_key(k);
    if (d.format == "npy") {
      d.layout = s.str("layout").value_or("auto");
      if (d.layout != "auto" && d.layout != "nchw" && d.layout != "nhwc")
        s.fail_at(*s.raw().get("layout"), "layout", "expected 'auto', 'nchw' or 'nhwc', got '" + d.layout + "'");
    }
  } else { // cifar10
    for (const char* k : {"train", "test"}) {
      auto v = s.str_list(k);
      if (!v || v->empty()) s.fail_here(k, "missing: format 'cifar10' needs a list of batch files");
      std::vector<std::string> out;
      for (const auto& f : *v) out.push_back(resolve(base_dir, f));
      d.files[k] = join(out, ":");
      d.places[k] = s.place(*s.raw().get(k));
    }
  }
  if (auto v = s.number("validation")) {
    if (!(*v > 0 && *v < 1)) s.fail_at(*s.raw().get("validation"), "validation", "must be a fraction between 0 and 1, got " + std::to_string(*v));
    d.validation = *v;
  }
  // DataConfig::subset 0 stands for "every sample", so a written 0 (a subset of nothing) is
  // refused rather than read as all of them.
  if (const toml::node* n = s.raw().get("subset"); n && n->is_integer() && *n->value<int64_t>() < 1)
    s.fail_at(*n, "subset", "must be at least 1, got " + std::to_string(*n->value<int64_t>()) +
                                "; leave the key out to use every training sample");
  if (auto n = s.integer("subset", 1, 1000000000)) {
    d.subset = *n;
    d.places["subset"] = s.place(*s.raw().get("subset"));
  }
  if (auto aug = s.str_list("augment")) {
    try {
      const Augmentations a = parse_augmentations(*aug);
      d.crop = a.crop;
      d.flip = a.flip;
    } catch (const std::invalid_argument& e) {
      s.fail_at(*s.raw().get("augment"), "augment", e.what());
    }
  }
  if (auto p = s.integer("crop_padding", 0, 1024)) d.crop_padding = *p;
  s.finish();
  if (d.format == "synthetic") apply_data_probe(cfg, synthetic);
}

void read_stage_choices(Section& s, CnnStageChoices& c, const CnnStageChoices* defaults) {
  auto pick_int = [&](IntChoice& out, const std::string& k, int64_t lo, int64_t hi, std::vector<int64_t> dflt) {
    if (auto v = s.int_choice(k, lo, hi)) out = *v;
    else if (defaults) return;
    else { out.values = std::move(dflt); out.key = s.key(k); }
  };
  auto pick_name = [&](NameChoice& out, const std::string& k, const std::vector<std::string>& known, std::vector<std::string> dflt) {
    if (auto v = s.name_choice(k, known)) out = *v;
    else if (defaults) return;
    else { out.values = std::move(dflt); out.key = s.key(k); }
  };
  pick_int(c.depth, "depth", 1, 16, {1, 2, 3});
  pick_int(c.width, "width", 1, 4096, {8, 16, 32, 64});
  pick_int(c.kernel, "kernel", 1, 15, {3, 5});
  pick_int(c.stride, "stride", 1, 4, {1, 2});
  pick_int(c.expansion, "expansion", 1, 16, {3, 6});
  pick_name(c.block, "block", kBlocks, {"conv", "dwsep", "mbconv", "residual"});
  pick_name(c.activation, "activation", kActivations, {"relu"});
  for (int64_t k : c.kernel.values)
    if (k % 2 == 0)
      throw ConfigError(c.kernel.place.file, c.kernel.place.line, c.kernel.place.col, c.kernel.key,
                        "kernel sizes must be odd (same padding), got " + std::to_string(k));
}

void parse_space(Section& s, SpaceConfig& sp) {
  auto fam = s.str("family");
  if (!fam) s.fail_here("family", "missing: give family = \"cnn\" or \"nb201\"");
  sp.family = *fam;
  if (sp.family == "nb201") {
    sp.nb201.channels = s.integer("channels", 1, 4096).value_or(16);
    sp.nb201.cells = s.integer("cells", 1, 64).value_or(5);
    if (auto ops = s.name_choice("ops", kNb201Ops)) sp.nb201.ops = ops->values;
    else sp.nb201.ops = kNb201Ops;
    s.finish();
  } else if (sp.family == "cnn") {
    CnnSpace& c = sp.cnn;
    c.stages = s.int_choice("stages", 1, 8).value_or(IntChoice{{2, 3, 4}, s.key("stages"), {}});
    c.stem_width = s.int_choice("stem_width", 1, 4096).value_or(IntChoice{{8, 16}, s.key("stem_width"), {}});
    c.stem_kernel = s.int_choice("stem_kernel", 1, 15).value_or(IntChoice{{3}, s.key("stem_kernel"), {}});
    c.stem_stride = s.int_choice("stem_stride", 1, 4).value_or(IntChoice{{1, 2}, s.key("stem_stride"), {}});
    c.head_width = s.int_choice("head_width", 0, 4096).value_or(IntChoice{{0}, s.key("head_width"), {}});
    read_stage_choices(s, c.defaults, nullptr);
    c.stem_activation = s.name_choice("stem_activation", kActivations).value_or(c.defaults.activation);
    for (int64_t k : c.stem_kernel.values)
      if (k % 2 == 0) s.fail_at(*s.raw().get("stem_kernel"), "stem_kernel", "kernel sizes must be odd (same padding), got " + std::to_string(k));
    if (const toml::node* st = s.get("stage")) {
      const toml::array* arr = st->as_array();
      if (!arr || !arr->is_array_of_tables()) s.fail_at(*st, "stage", "expected [[space.stage]] tables");
      int64_t max_stages = *std::max_element(c.stages.values.begin(), c.stages.values.end());
      if (int64_t(arr->size()) > max_stages)
        s.fail_at(*st, "stage", std::to_string(arr->size()) + " [[space.stage]] tables but at most " +
                                    std::to_string(max_stages) + " stages");
      for (size_t i = 0; i < arr->size(); ++i) {
        Section ss(*arr->at(i).as_table(), s.key("stage[" + std::to_string(i) + "]"), s.file());
        CnnStageChoices sc = c.defaults;
        read_stage_choices(ss, sc, &c.defaults);
        ss.finish();
        c.stage.push_back(sc);
      }
    }
    s.finish();
  } else {
    s.fail_at(*s.raw().get("family"), "family", "unknown family '" + sp.family + "'" +
                                                    suggestion_suffix(sp.family, {"cnn", "nb201"}) + " (expected cnn or nb201)");
  }
}

void parse_constraints(Section& s, Constraints& c) {
  c.max_params = s.integer("max_params", 1, kMaxCost);
  c.max_macs = s.integer("max_macs", 1, kMaxCost);
  c.max_peak_activation_bytes = s.integer("max_peak_activation_bytes", 1, kMaxCost);
  c.max_weight_bytes = s.integer("max_weight_bytes", 1, kMaxCost);
  if (auto p = s.str("precision")) {
    const auto e = lookup(kWeightPrecisions, *p);
    if (!e)
      s.fail_at(*s.raw().get("precision"), "precision", "unknown precision '" + *p + "'" +
                                                            suggestion_suffix(*p, names_of(kWeightPrecisions)) + " (expected int8, fp16 or fp32)");
    c.precision = *e;
  }
  s.finish();
}

RealChoice fixed(double v, const std::string& key) {
  RealChoice c;
  c.values = {v};
  c.key = key;
  return c;
}

// [train]; called with nullptr when the file has none (the defaults).
void parse_train(Section* s, TrainConfig& t) {
  t.batch_size.values = {128};
  t.batch_size.key = "train.batch_size";
  t.optimizer.values = {Optimizer::sgd};
  t.optimizer.key = "train.optimizer";
  t.lr = fixed(0.05, "train.lr");
  t.momentum = fixed(0.9, "train.momentum");
  t.weight_decay = fixed(5e-4, "train.weight_decay");
  t.label_smoothing = fixed(0, "train.label_smoothing");
  t.warmup_epochs = fixed(0, "train.warmup_epochs");
  if (!s) return;
  t.epochs = s->integer("epochs", 1, 100000).value_or(t.epochs);
  if (auto v = s->int_choice("batch_size", 1, 1 << 20)) t.batch_size = *v;
  t.eval_batch_size = s->integer("eval_batch_size", 1, 10000000).value_or(t.eval_batch_size);
  if (auto v = s->name_choice("optimizer", names_of(kOptimizers))) {
    t.optimizer.values.clear();
    for (const auto& name : v->values) t.optimizer.values.push_back(*lookup(kOptimizers, name));
    t.optimizer.place = v->place;
  }
  if (auto v = s->real_choice("lr", 0, 1e300)) t.lr = *v;
  if (auto v = s->real_choice("momentum", 0, 1)) t.momentum = *v;
  t.nesterov = s->boolean("nesterov").value_or(t.nesterov);
  if (auto v = s->real_choice("weight_decay", 0, 1)) t.weight_decay = *v;
  if (auto v = s->real_choice("label_smoothing", 0, 0.999)) t.label_smoothing = *v;
  if (auto v = s->real_choice("warmup_epochs", 0, 1e6)) t.warmup_epochs = *v;
  if (auto v = s->number("grad_clip")) {
    if (*v < 0) s->fail_at(*s->raw().get("grad_clip"), "grad_clip", "must be at least 0 (0 turns clipping off)");
    t.grad_clip = *v;
  }
  t.schedule = s->one_of("schedule", kSchedules).value_or(t.schedule);
  t.precision = s->one_of("precision", kPrecisions).value_or(t.precision);
  t.max_attempts = int(s->integer("max_attempts", 1, 1000).value_or(t.max_attempts));
  if (auto v = s->number("lease_s")) {
    if (*v < 5) s->fail_at(*s->raw().get("lease_s"), "lease_s", "must be at least 5 seconds");
    t.lease_s = *v;
  }
  s->finish();
}

// [slurm]
void parse_slurm(Section& s, SlurmConfig& c) {
  c.partition = s.str("partition").value_or("");
  c.account = s.str("account").value_or("");
  c.qos = s.str("qos").value_or("");
  c.gpus = int(s.integer("gpus", 1, 100000).value_or(c.gpus));
  c.gpus_per_task = int(s.integer("gpus_per_task", 1, 64).value_or(c.gpus_per_task));
  c.gpu_option = s.one_of("gpu_option", kGpuOptions).value_or(c.gpu_option);
  c.cpus_per_task = int(s.integer("cpus_per_task", 1, 4096).value_or(c.cpus_per_task));
  if (auto v = s.str("memory")) {
    try {
      if (!v->empty()) parse_slurm_memory(*v);
    } catch (const std::invalid_argument& e) {
      s.fail_at(*s.raw().get("memory"), "memory", e.what());
    }
    c.memory = *v;
  }
  if (auto v = s.str("time")) {
    try {
      parse_slurm_time(*v);
    } catch (const std::invalid_argument& e) {
      s.fail_at(*s.raw().get("time"), "time", e.what());
    }
    c.time = *v;
  }
  c.array_parallelism = int(s.integer("array_parallelism", 0, 100000).value_or(0));
  if (const toml::node* n = s.get("gpu_mem")) {
    try {
      if (n->is_integer()) c.gpu_mem = *n->value<int64_t>();
      else if (n->is_string()) c.gpu_mem = parse_bytes(*n->value<std::string>());
      else s.fail_at(*n, "gpu_mem", "expected bytes as an integer or a string like \"80GiB\", got " + Section::type_name(*n));
    } catch (const std::invalid_argument& e) {
      s.fail_at(*n, "gpu_mem", e.what());
    }
    if (c.gpu_mem < (int64_t(1) << 20)) s.fail_at(*n, "gpu_mem", "must be at least 1MiB");
  }
  c.pack = int(s.integer("pack", 0, 64).value_or(0));
  c.processes = int(s.integer("processes", 1, 64).value_or(c.processes));
  c.mps = s.boolean("mps").value_or(false);
  c.signal_s = int(s.integer("signal_s", 10, 86400).value_or(c.signal_s));
  if (auto v = s.number("throughput")) {
    if (*v <= 0) s.fail_at(*s.raw().get("throughput"), "throughput", "must be positive (FLOP/s)");
    c.throughput = *v;
  }
  if (auto v = s.number("cpu_throughput")) {
    if (*v <= 0) s.fail_at(*s.raw().get("cpu_throughput"), "cpu_throughput", "must be positive (FLOP/s)");
    c.cpu_throughput = *v;
  }
  if (auto v = s.number("step_s")) {
    if (*v < 0) s.fail_at(*s.raw().get("step_s"), "step_s", "must be at least 0 (seconds)");
    c.step_s = *v;
  }
  if (auto v = s.str("device")) {
    if (*v != "auto" && *v != "cpu" && v->rfind("cuda", 0) != 0)
      s.fail_at(*s.raw().get("device"), "device", "unknown device '" + *v + "' (expected auto, cpu, cuda or cuda:N)");
    c.device = *v;
  }
  c.setup = s.str_list("setup").value_or(std::vector<std::string>{});
  c.sbatch = s.str_list("sbatch").value_or(std::vector<std::string>{});
  for (const auto& line : c.sbatch)
    if (line.rfind("--", 0) != 0 || line.find('\n') != std::string::npos)
      s.fail_here("sbatch", "each entry is one sbatch option starting with '--', got '" + line + "'");
  c.templates = s.str("templates").value_or("");
  if (!c.templates.empty() && std::filesystem::path(c.templates).is_relative()) {
    // A relative folder is taken inside the study's artifact folder and must stay there.
    const std::filesystem::path rel = std::filesystem::path(c.templates).lexically_normal();
    if (!rel.empty() && *rel.begin() == "..")
      s.fail_at(*s.raw().get("templates"), "templates", "'" + c.templates + "' leaves the study's folder (give an absolute path)");
  }
  s.finish();
}

// [proxy]
void parse_proxy(Section& s, ProxyConfig& c) {
  const auto& known = proxy_names();
  if (auto v = s.str_list("proxies")) {
    if (v->empty()) s.fail_at(*s.raw().get("proxies"), "proxies", "empty list: give at least one proxy");
    for (const auto& n : *v)
      if (std::find(known.begin(), known.end(), n) == known.end())
        s.fail_at(*s.raw().get("proxies"), "proxies", "unknown proxy '" + n + "'" + suggestion_suffix(n, known) +
                                                          " (expected one of " + quoted_list(known) + ")");
    c.proxies = *v;
  }
  if (const toml::table* w = s.table("weights")) {
    for (const auto& [k, node] : *w) {
      const std::string name(k.str());
      if (std::find(c.proxies.begin(), c.proxies.end(), name) == c.proxies.end())
        s.fail_at(node, "weights." + name, "'" + name + "' is not one of the chosen proxies " + quoted_list(c.proxies));
      if (!node.is_number()) s.fail_at(node, "weights." + name, "expected a number, got " + Section::type_name(node));
      const double v = *node.value<double>();
      if (!(v >= 0) || !std::isfinite(v)) s.fail_at(node, "weights." + name, "must be a finite number of at least 0");
      c.weights[name] = v;
    }
  }
  c.ensemble = s.one_of("ensemble", kEnsembles).value_or(c.ensemble);
  if (auto v = s.str("rank_by")) {
    if (*v != "ensemble" && std::find(c.proxies.begin(), c.proxies.end(), *v) == c.proxies.end())
      s.fail_at(*s.raw().get("rank_by"), "rank_by", "'" + *v + "' is neither 'ensemble' nor one of the chosen proxies " +
                                                        quoted_list(c.proxies));
    if (*v == "ensemble" && c.ensemble == Ensemble::none)
      s.fail_at(*s.raw().get("rank_by"), "rank_by", "ranking by the ensemble needs ensemble = \"sum\" or \"vote\"");
    c.rank_by = *v;
  }
  c.batch_size = s.integer("batch_size", 2, 1000000).value_or(c.batch_size);
  c.threads = int(s.integer("threads", 0, 1024).value_or(0));
  s.finish();
}

// [distill]: the teacher's file is kept as a path; nas-distill loads and checks it.
void parse_distill(Section& s, DistillConfig& d, const std::string& base_dir) {
  if (auto v = s.str("teacher")) {
    if (v->empty()) s.fail_at(*s.raw().get("teacher"), "teacher", "must not be empty (leave it out for the study's own teacher)");
    d.teacher = resolve(base_dir, *v);
    d.teacher_place = s.place(*s.raw().get("teacher"));
  }
  auto stats = [&](const char* k, std::vector<double>& out, bool positive) {
    const toml::node* n = s.get(k);
    if (!n) return;
    const toml::array* a = n->as_array();
    if (!a || a->empty()) s.fail_at(*n, k, "expected a non-empty array of numbers, one per channel");
    for (const auto& e : *a) {
      if (!e.is_number() || !std::isfinite(*e.value<double>()) || (positive && !(*e.value<double>() > 0)))
        s.fail_at(e, k, positive ? "expected positive numbers" : "expected finite numbers");
      out.push_back(*e.value<double>());
    }
  };
  stats("teacher_mean", d.teacher_mean, false);
  stats("teacher_std", d.teacher_std, true);
  if (d.teacher_mean.size() != d.teacher_std.size())
    s.fail_here(d.teacher_mean.empty() ? "teacher_mean" : "teacher_std", "teacher_mean and teacher_std go together, one value per channel each");
  if (!d.teacher_mean.empty() && d.teacher.empty())
    s.fail_here("teacher_mean", "is for a TorchScript teacher: give 'teacher' too");
  d.loss = s.one_of("loss", kDistillLosses).value_or(d.loss);
  if (d.loss == DistillLoss::dkd) d.alpha = 1;
  auto real = [&](const char* k, double& out, double lo, double hi) {
    if (auto v = s.number(k)) {
      if (*v < lo || *v > hi)
        s.fail_at(*s.raw().get(k), k, "must be in [" + format_number(lo) + ", " + format_number(hi) + "], got " + format_number(*v));
      out = *v;
    }
  };
  real("temperature", d.temperature, 0.05, 100);
  real("alpha", d.alpha, 0, d.loss == DistillLoss::kd ? 1 : 100);
  if (d.loss == DistillLoss::kd && (s.raw().get("beta") || s.raw().get("warmup_epochs")))
    s.fail_at(*(s.raw().get("beta") ? s.raw().get("beta") : s.raw().get("warmup_epochs")),
              s.raw().get("beta") ? "beta" : "warmup_epochs", "belongs to loss = \"dkd\", not \"kd\"");
  real("beta", d.beta, 0, 100);
  d.warmup_epochs = s.integer("warmup_epochs", 0, 100000).value_or(d.warmup_epochs);
  d.trials = s.one_of("trials", kDistillTrials).value_or(d.trials);
  d.targets = s.one_of("targets", kSoftTargets).value_or(d.targets);
  s.finish();
}

// [measure]: values only; nas-measure opens tokens, URLs and devices.
void parse_measure(Section& s, MeasureConfig& m) {
  if (auto v = s.str("backend")) {
    if (*v != "local" && *v != "mimaas" && *v != "http")
      s.fail_at(*s.raw().get("backend"), "backend", "unknown value '" + *v + "' (expected one of 'local', 'mimaas', 'http')");
    m.backend = *v;
  }
  m.board = s.str("board").value_or(m.board);
  m.quantize = s.boolean("quantize").value_or(m.quantize);
  if (auto v = s.str("build_mode")) {
    if (*v != "pristine" && *v != "fast")
      s.fail_at(*s.raw().get("build_mode"), "build_mode", "unknown value '" + *v + "' (expected 'pristine' or 'fast')");
    m.build_mode = *v;
  }
  m.url = s.str("url").value_or(m.url);
  m.token_file = s.str("token_file").value_or(m.token_file);
  m.inflight = s.integer("inflight", 1, 64).value_or(m.inflight);
  auto seconds = [&](const char* k, double& out, double lo, double hi) {
    if (auto v = s.number(k)) {
      if (!(*v >= lo && *v <= hi))
        s.fail_at(*s.raw().get(k), k, "must be in [" + format_number(lo) + ", " + format_number(hi) + "], got " + format_number(*v));
      out = *v;
    }
  };
  seconds("poll_s", m.poll_s, 0.01, 3600);
  seconds("timeout_s", m.timeout_s, 0.1, 3600);
  seconds("backoff_s", m.backoff_s, 0.001, 600);
  seconds("wait_s", m.wait_s, 0, 7 * 86400);
  seconds("min_energy_s", m.min_energy_s, 0, 3600);
  m.firmware_overhead_bytes = s.integer("firmware_overhead_bytes", 0, int64_t(1) << 32).value_or(m.firmware_overhead_bytes);
  if (auto v = s.str("device")) {
    if (*v != "cpu" && v->rfind("cuda:", 0) != 0)
      s.fail_at(*s.raw().get("device"), "device", "expected 'cpu' or 'cuda:N', got '" + *v + "'");
    m.device = *v;
  }
  m.batch = s.integer("batch", 1, 65536).value_or(m.batch);
  m.warmup = s.integer("warmup", 0, 100000).value_or(m.warmup);
  m.runs = s.integer("runs", 5, 1000000).value_or(m.runs);
  m.threads = s.integer("threads", 1, 1024).value_or(m.threads);
  m.attempts = s.integer("attempts", 1, 100).value_or(m.attempts);
  if (auto v = s.number("steady_ratio")) {
    if (!(*v >= 1 && *v <= 100)) s.fail_at(*s.raw().get("steady_ratio"), "steady_ratio", "must be between 1 and 100, got " + format_number(*v));
    m.steady_ratio = *v;
  }
  m.calibration_images = s.integer("calibration_images", 1, 100000).value_or(m.calibration_images);
  m.after_training = s.boolean("after_training").value_or(m.after_training);
  if (m.backend != "local" && m.board.empty() && m.after_training)
    s.fail_here("board", "the " + m.backend + " backend needs a board to measure on after training");
  s.finish();
}

// [budget]
void parse_budget(Section& s, BudgetConfig& b, const TrainConfig& t) {
  auto positive = [&](const char* k, double& out, double lo) {
    if (auto v = s.number(k)) {
      if (!(*v >= lo)) s.fail_at(*s.raw().get(k), k, "must be at least " + format_number(lo) + ", got " + format_number(*v));
      out = *v;
    }
  };
  positive("min_epochs", b.min_epochs, 0.01);
  positive("max_epochs", b.max_epochs, 0.01);
  positive("eta", b.eta, 1.5);
  if (const toml::node* n = s.get("keep")) {
    if (n->is_integer()) {
      if (*n->value<int64_t>() < 1) s.fail_at(*n, "keep", "a count must be at least 1");
      b.keep = double(*n->value<int64_t>());
      b.keep_is_count = true;
    } else if (n->is_floating_point()) {
      const double v = *n->value<double>();
      if (!(v > 0 && v <= 1)) s.fail_at(*n, "keep", "a fraction must be in (0, 1], got " + format_number(v));
      b.keep = v;
    } else {
      s.fail_at(*n, "keep", "expected a count (integer) or a fraction (float), got " + Section::type_name(*n));
    }
  }
  b.proxy_start = s.boolean("proxy_start").value_or(false);
  b.early_stop = s.boolean("early_stop").value_or(false);
  b.anneal = s.boolean("anneal").value_or(false);
  b.promotion = s.one_of("promotion", kPromotions).value_or(b.promotion);
  if (b.anneal && t.schedule != Schedule::cosine)
    s.fail_at(*s.raw().get("anneal"), "anneal", "anneals each rung's cosine: [train] schedule is '" + to_string(t.schedule) + "'");
  if (b.anneal && b.proxy_start && b.early_stop)
    s.fail_at(*s.raw().get("anneal"), "anneal",
              "cannot go with proxy_start and early_stop: a trial started at a later rung anneals over another span, "
              "so early stopping would compare different schedules at the same epoch");
  if (b.max_epochs == 0) b.max_epochs = double(t.epochs);
  if (b.max_epochs > double(t.epochs))
    s.fail_here("max_epochs", "max_epochs " + format_number(b.max_epochs) + " exceeds [train] epochs " +
                                  std::to_string(t.epochs) + ", the horizon of the learning-rate schedule");
  if (b.min_epochs > b.max_epochs)
    s.fail_here("min_epochs", "min_epochs " + format_number(b.min_epochs) + " exceeds max_epochs " + format_number(b.max_epochs));
  s.finish();
}

// Whether `m` names a metric a study can hold: a cost-model value, a training result, a proxy
// score, or a measurement (BACKEND:DEVICE:METRIC, or a measured metric's bare name). Empty when
// yes, else why not.
std::string unknown_metric(const std::string& m) {
  static const std::vector<std::string> cost = {"params", "macs", "peak_act_bytes", "weight_bytes"};
  static const std::vector<std::string> measured = {"latency_s", "ram_bytes", "rom_bytes"};
  if (m == "test_acc" || m == "test_loss") return "'" + m + "' is reported only, never used for a decision (use val_acc)";
  std::vector<std::string> known = cost;
  for (const auto& r : result_metric_names()) known.push_back(r);
  for (const auto& p : proxy_names()) known.push_back("proxy_" + p);
  for (const auto& x : measured) known.push_back(x);
  if (std::find(known.begin(), known.end(), m) != known.end()) return "";
  const size_t a = m.find(':'), b = a == std::string::npos ? a : m.find(':', a + 1);
  if (b != std::string::npos && a > 0 && b > a + 1 && b + 1 < m.size() && m.find(':', b + 1) == std::string::npos) return "";
  return "unknown metric '" + m + "'" + suggestion_suffix(m, known) + " (a cost-model value, a training result, proxy_NAME or BACKEND:DEVICE:METRIC)";
}

// objectives = ["val_acc:max", "params:min"]
void parse_objectives(Section& s, SearchConfig& c) {
  auto v = s.str_list("objectives");
  if (!v) return;
  const toml::node& at = *s.raw().get("objectives");
  if (v->empty()) s.fail_at(at, "objectives", "empty list: give at least one NAME:min|max");
  for (const auto& o : *v) {
    const size_t colon = o.rfind(':');
    const std::string dir = colon == std::string::npos ? "" : o.substr(colon + 1);
    if (dir != "min" && dir != "max") s.fail_at(at, "objectives", "'" + o + "' must read NAME:min or NAME:max");
    Objective obj{o.substr(0, colon), dir == "max"};
    if (auto why = unknown_metric(obj.metric); !why.empty()) s.fail_at(at, "objectives", why);
    for (const auto& seen : c.objectives)
      if (seen.metric == obj.metric) s.fail_at(at, "objectives", "metric '" + obj.metric + "' is listed twice");
    c.objectives.push_back(obj);
  }
}

// constraints = ["latency_s <= 0.005", "val_acc >= 0.5"]
void parse_search_constraints(Section& s, SearchConfig& c) {
  auto v = s.str_list("constraints");
  if (!v) return;
  const toml::node& at = *s.raw().get("constraints");
  for (const auto& text : *v) {
    const size_t op = text.find_first_of("<>");
    if (op == std::string::npos || op + 1 >= text.size() || text[op + 1] != '=')
      s.fail_at(at, "constraints", "'" + text + "' must read NAME <= NUMBER or NAME >= NUMBER");
    SearchConstraint k;
    k.metric = trim(text.substr(0, op));
    k.at_most = text[op] == '<';
    const std::string num = trim(text.substr(op + 2));
    size_t used = 0;
    try {
      k.bound = std::stod(num, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (num.empty() || used != num.size() || !std::isfinite(k.bound))
      s.fail_at(at, "constraints", "'" + text + "': '" + num + "' is not a finite number");
    if (auto why = unknown_metric(k.metric); !why.empty()) s.fail_at(at, "constraints", why);
    c.constraints.push_back(k);
  }
}

// epochs = 120, wall_time = "12:00:00" (a Slurm time): the search's budgets beside evaluations
void parse_search_budgets(Section& s, SearchConfig& c) {
  if (auto v = s.number("epochs")) {
    if (*v <= 0) s.fail_at(*s.raw().get("epochs"), "epochs", "must be more than 0, got " + format_number(*v));
    c.epochs = *v;
  }
  if (auto v = s.str("wall_time")) {
    try {
      c.wall_time_s = parse_slurm_time(*v);
    } catch (const std::invalid_argument& e) {
      s.fail_at(*s.raw().get("wall_time"), "wall_time", e.what());
    }
  }
}

// screen = 8, screen_proxies = ["synflow"]: proxy-guided moves. A worker screens inside its
// claim loop, where no data is loaded: only data-free proxies. Breeding workers need a budget.
void parse_screen(Section& s, SearchConfig& c) {
  if (const toml::node* n = s.get("screen")) {
    c.screen = s.integer("screen", 0, 10000).value_or(0);
    if (c.screen == 1) s.fail_at(*n, "screen", "1 would score one candidate and keep it: give 0 (off) or 2 or more");
    if (c.screen > 1 && c.evaluations == 0 && c.epochs == 0 && c.wall_time_s == 0)
      s.fail_at(*n, "screen", "screens what the workers breed, and they breed only within a budget: set evaluations, "
                              "epochs or wall_time");
  }
  if (auto v = s.str_list("screen_proxies")) {
    const toml::node& at = *s.raw().get("screen_proxies");
    if (v->empty()) s.fail_at(at, "screen_proxies", "empty list: give at least one proxy");
    const auto& free = data_free_proxy_names();
    for (const auto& p : *v) {
      if (std::find(free.begin(), free.end(), p) != free.end()) continue;
      const auto& known = proxy_names();
      if (std::find(known.begin(), known.end(), p) != known.end())
        s.fail_at(at, "screen_proxies", "'" + p + "' needs data, and a breeding worker screens without it (expected one of " +
                                            quoted_list(free) + ")");
      s.fail_at(at, "screen_proxies", "unknown proxy '" + p + "'" + suggestion_suffix(p, free) + " (expected one of " +
                                          quoted_list(free) + ")");
    }
    c.screen_proxies = *v;
  }
}

// [search]
void parse_search(Section& s, SearchConfig& c) {
  c.strategy = s.one_of("strategy", kStrategies).value_or(c.strategy);
  // Random sampling breeds nothing: a key of the island model would be silently ignored.
  if (c.strategy == StrategyKind::random)
    for (const char* k : {"population", "islands", "crossover", "mutation", "random", "migration", "migrants",
                          "pollination", "evaluations", "screen", "screen_proxies"})
      if (const toml::node* n = s.get(k))
        s.fail_at(*n, k, "applies to the evolutionary strategies, and strategy is 'random' (set strategy = 'evolution' or 'nsga2')");
  parse_objectives(s, c);
  parse_search_constraints(s, c);
  c.population = s.integer("population", 2, 100000).value_or(c.population);
  c.islands = s.integer("islands", 1, 1024).value_or(c.islands);
  auto probability = [&](const char* k, double& out) {
    if (auto v = s.number(k)) {
      if (!(*v >= 0 && *v <= 1)) s.fail_at(*s.raw().get(k), k, "a probability must be in [0, 1], got " + format_number(*v));
      out = *v;
    }
  };
  probability("crossover", c.crossover);
  probability("mutation", c.mutation);
  probability("random", c.random);
  probability("migration", c.migration);
  // A bred child is changed by at least one operator (breeding draws again while neither fires).
  if (c.crossover == 0 && c.mutation == 0) {   // both given (the defaults are not 0)
    s.fail_at(*s.get("mutation"), "mutation",
              "crossover and mutation cannot both be 0: a bred child would be a copy of its parent"
              " (for random search, set strategy = 'random')");
  }
  c.migrants = s.integer("migrants", 1, 100000).value_or(c.migrants);
  // A copy replaces one of the target's worst, never its best: fewer than population.
  if (c.migrants >= c.population)
    s.fail_at(*s.get("migrants"), "migrants",
              "must be less than population (" + std::to_string(c.population) + "), got " + std::to_string(c.migrants));
  c.pollination = s.boolean("pollination").value_or(c.pollination);
  c.evaluations = s.integer("evaluations", 0, 100000000).value_or(c.evaluations);
  parse_search_budgets(s, c);
  parse_screen(s, c);
  if (c.objectives.empty())
    c.objectives = c.strategy == StrategyKind::nsga2 ? std::vector<Objective>{{"val_acc", true}, {"params", false}}
                                                    : std::vector<Objective>{{"val_acc", true}};
  if (c.strategy == StrategyKind::evolution && c.objectives.size() != 1)
    s.fail_at(*s.raw().get("objectives"), "objectives", "strategy 'evolution' optimises one objective: use 'nsga2' for several");
  if (c.strategy == StrategyKind::nsga2 && c.objectives.size() < 2)
    s.fail_at(*s.raw().get("objectives"), "objectives", "strategy 'nsga2' needs at least two objectives");
  s.finish();
}

} // namespace

const std::vector<std::string>& result_metric_names() {
  static const std::vector<std::string> names = {"val_acc", "val_loss", "train_loss", "epochs",
                                                 "wall_s", "samples_per_s", "mfu", "energy_j"};
  return names;
}

const std::vector<std::string>& proxy_names() {
  static const std::vector<std::string> names = {"grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov",
                                                 "nwot", "zen", "zico", "params", "flops"};
  return names;
}

const std::vector<std::string>& data_free_proxy_names() {
  static const std::vector<std::string> names = {"synflow", "zen", "params", "flops"};
  return names;
}

int64_t parse_slurm_time(const std::string& s) {
  auto bad = [&]() -> std::invalid_argument {
    return std::invalid_argument("'" + s + "' is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)");
  };
  std::string rest = s;
  int64_t days = -1;
  if (auto dash = rest.find('-'); dash != std::string::npos) {
    std::string d = rest.substr(0, dash);
    if (d.empty() || d.size() > 6 || d.find_first_not_of("0123456789") != std::string::npos) throw bad();
    days = std::stoll(d);
    rest = rest.substr(dash + 1);
  }
  std::vector<int64_t> parts;
  size_t at = 0;
  while (true) {
    size_t colon = rest.find(':', at);
    std::string p = rest.substr(at, colon == std::string::npos ? std::string::npos : colon - at);
    if (p.empty() || p.size() > 6 || p.find_first_not_of("0123456789") != std::string::npos) throw bad();
    parts.push_back(std::stoll(p));
    if (colon == std::string::npos) break;
    at = colon + 1;
  }
  if (parts.size() > 3) throw bad();
  int64_t sec = 0;
  if (days >= 0) {  // D-HH[:MM[:SS]]
    sec = days * 86400 + parts[0] * 3600 + (parts.size() > 1 ? parts[1] * 60 : 0) + (parts.size() > 2 ? parts[2] : 0);
  } else if (parts.size() == 1) {
    sec = parts[0] * 60;
  } else if (parts.size() == 2) {
    sec = parts[0] * 60 + parts[1];
  } else {
    sec = parts[0] * 3600 + parts[1] * 60 + parts[2];
  }
  if (sec <= 0) throw bad();
  return sec;
}

int64_t parse_bytes(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  std::string num = s.substr(0, i), unit = s.substr(i);
  char* end = nullptr;
  const double v = std::strtod(num.c_str(), &end);
  if (num.empty() || end != num.c_str() + num.size())
    throw std::invalid_argument("'" + s + "' is not a size (e.g. 80GiB, 512MiB, 16G)");
  static const std::vector<std::pair<std::string, double>> units = {
      {"", 1}, {"B", 1}, {"K", 1024.0}, {"KiB", 1024.0}, {"M", 1048576.0}, {"MiB", 1048576.0},
      {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"T", 1099511627776.0}, {"TiB", 1099511627776.0}};
  for (const auto& [u, f] : units) {
    if (unit != u) continue;
    // Converting a double past int64 is undefined: such a size is refused, not wrapped.
    if (!(v * f < 9.0e18)) throw std::invalid_argument("'" + s + "' is too large");
    return int64_t(v * f);
  }
  throw std::invalid_argument("'" + s + "' has an unknown unit '" + unit + "' (use B, KiB, MiB, GiB or TiB)");
}

std::string Augmentations::names() const { return crop && flip ? "crop,flip" : crop ? "crop" : flip ? "flip" : ""; }

Augmentations parse_augmentations(const std::vector<std::string>& names) {
  Augmentations a;
  for (const auto& n : names) {
    if (n == "crop") a.crop = true;
    else if (n == "flip") a.flip = true;
    else
      throw std::invalid_argument("unknown augmentation '" + n + "'" + suggestion_suffix(n, {"crop", "flip"}) +
                                  " (expected crop or flip)");
  }
  return a;
}

int64_t parse_slurm_memory(const std::string& s) {
  const size_t digits = s.find_first_not_of("0123456789");
  const std::string num = s.substr(0, digits), unit = digits == std::string::npos ? "" : s.substr(digits);
  static const std::vector<std::pair<std::string, int64_t>> units = {
      {"", 1}, {"M", 1}, {"m", 1}, {"G", 1024}, {"g", 1024}, {"T", 1048576}, {"t", 1048576}};
  for (const auto& [u, f] : units) {
    if (unit != u || num.empty() || num.size() > 9) continue;
    return std::stoll(num) * f;
  }
  if (!num.empty() && num.size() <= 12 && (unit == "K" || unit == "k")) return (std::stoll(num) + 1023) / 1024;
  throw std::invalid_argument("'" + s + "' is not a Slurm memory size (digits with K, M, G or T, e.g. 16G; 0: all of a node's)");
}

std::vector<std::string> data_files(const DataConfig& d, const std::string& key) {
  const std::string& joined = d.files.at(key);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t colon; (colon = joined.find(':', start)) != std::string::npos; start = colon + 1)
    out.push_back(joined.substr(start, colon - start));
  out.push_back(joined.substr(start));
  return out;
}

ConfigError data_error(const DataConfig& d, const std::string& key, const std::string& msg, bool at_table) {
  auto it = at_table ? d.places.end() : d.places.find(key);
  if (it == d.places.end()) it = d.places.find("");
  Place p = it == d.places.end() ? Place{} : it->second;
  return ConfigError(p.file, p.line, p.col, "data." + key, msg);
}

// A split without samples is the fault of the file that has none, not of the fractions taken
// from it (validation, subset): refused at that file's key.
static void check_not_empty(const DataConfig& d, const SplitProbe& split, const std::string& name) {
  if (split.samples >= 1) return;
  const std::string key = d.format == "cifar10" ? name : d.format == "synthetic" ? "" : name + "_images";
  const std::string file = split.files.empty() ? "the " + name + " split" : "'" + split.files[0] + "'";
  throw data_error(d, key, file + " holds no images: the " + name + " split needs at least one sample");
}

void apply_data_probe(StudyConfig& cfg, const DataProbe& probe) {
  DataConfig& d = cfg.data;
  const SplitProbe& train = probe.train;
  const SplitProbe& test = probe.test;
  check_not_empty(d, train, "train");
  check_not_empty(d, test, "test");
  if (train.shape != test.shape)
    throw data_error(d, "test_images", "test samples have another shape than the training samples", true);
  if (train.shape.size() != 3) throw data_error(d, "", "the data's samples have no [channels, height, width] shape", true);
  d.shape = train.shape;
  d.classes = std::max(train.classes, test.classes);
  d.train_samples = train.samples;
  d.test_samples = test.samples;
  if (d.declared_shape && *d.declared_shape != d.shape)
    throw data_error(d, "shape", "the files hold samples of shape [" + std::to_string(d.shape[0]) + ", " +
                                     std::to_string(d.shape[1]) + ", " + std::to_string(d.shape[2]) + "]");
  if (d.declared_classes) {
    if (*d.declared_classes < d.classes)
      throw data_error(d, "classes", "the labels go up to " + std::to_string(d.classes - 1) + ", more than " +
                                         std::to_string(*d.declared_classes) + " classes");
    d.classes = *d.declared_classes;
  }
  if (d.classes < 2) throw data_error(d, "classes", "the data must have at least 2 classes", true);
  if (d.subset > d.train_samples)
    throw data_error(d, "subset", std::to_string(d.subset) + " samples asked, the training data has " +
                                      std::to_string(d.train_samples));
  int64_t used = d.subset ? d.subset : d.train_samples;
  if (int64_t(used * d.validation) < 1 || used - int64_t(used * d.validation) < 1)
    throw data_error(d, "validation", "the split leaves no sample for training or validation (" +
                                          std::to_string(used) + " samples)", true);
  d.probed = true;
}

int precision_bytes(WeightPrecision precision) {
  switch (precision) {
  case WeightPrecision::fp32: return 4;
  case WeightPrecision::fp16: return 2;
  case WeightPrecision::int8: return 1;
  }
  return 1;
}

std::string to_string(Precision p) { return spelling(kPrecisions, p); }
std::string to_string(WeightPrecision p) { return spelling(kWeightPrecisions, p); }
std::string to_string(Schedule s) { return spelling(kSchedules, s); }
std::string to_string(Optimizer o) { return spelling(kOptimizers, o); }
std::string to_string(Ensemble e) { return spelling(kEnsembles, e); }
std::string to_string(Promotion p) { return spelling(kPromotions, p); }
std::string to_string(GpuOption g) { return spelling(kGpuOptions, g); }
std::string to_string(StrategyKind s) { return spelling(kStrategies, s); }
std::string to_string(DistillLoss l) { return spelling(kDistillLosses, l); }
std::string to_string(DistillTrials t) { return spelling(kDistillTrials, t); }
std::string to_string(SoftTargets t) { return spelling(kSoftTargets, t); }
std::optional<Precision> parse_precision(const std::string& s) { return lookup(kPrecisions, s); }
std::optional<WeightPrecision> parse_weight_precision(const std::string& s) { return lookup(kWeightPrecisions, s); }
std::optional<Schedule> parse_schedule(const std::string& s) { return lookup(kSchedules, s); }
std::optional<Optimizer> parse_optimizer(const std::string& s) { return lookup(kOptimizers, s); }
std::optional<Ensemble> parse_ensemble(const std::string& s) { return lookup(kEnsembles, s); }
std::optional<Promotion> parse_promotion(const std::string& s) { return lookup(kPromotions, s); }
std::optional<GpuOption> parse_gpu_option(const std::string& s) { return lookup(kGpuOptions, s); }
std::optional<StrategyKind> parse_strategy(const std::string& s) { return lookup(kStrategies, s); }

StudyConfig parse_study_config(const std::string& text, const std::string& path) {
  StudyConfig cfg;
  cfg.path = fs::absolute(path).lexically_normal().string();
  cfg.text = text;
  const std::string& file = path;
  toml::table root;
  try {
    root = toml::parse(shield(text, file), path);
  } catch (const toml::parse_error& e) {
    throw ConfigError(file, int(e.source().begin.line), int(e.source().begin.column), "",
                      "syntax error: " + unshield(std::string(e.description())));
  }
  unshield_strings(root);
  std::string base_dir = fs::path(cfg.path).parent_path().string();
  Section top(root, "", file);
  for (const auto& r : kReserved) {
    if (const toml::node* n = top.get(r))
      top.fail_at(*n, r, "section [" + r + "] is reserved for a later version of minnow and not supported yet");
  }
  const toml::table* study = top.table("study");
  if (!study) throw ConfigError(file, 1, 1, "study", "missing section [study]");
  {
    Section s(*study, "study", file);
    cfg.name = s.str("name").value_or(fs::path(path).stem().string());
    if (cfg.name.empty()) s.fail_at(*study->get("name"), "name", "must not be empty");
    cfg.seed = uint64_t(s.integer("seed", 0, INT64_MAX).value_or(0));
    s.finish();
  }
  const toml::table* data = top.table("data");
  if (!data) throw ConfigError(file, 1, 1, "data", "missing section [data]");
  {
    Section s(*data, "data", file);
    parse_data(s, cfg, base_dir);
  }
  const toml::table* space = top.table("space");
  if (!space) throw ConfigError(file, 1, 1, "space", "missing section [space]");
  {
    Section s(*space, "space", file);
    parse_space(s, cfg.space);
  }
  if (const toml::table* cons = top.table("constraints")) {
    Section s(*cons, "constraints", file);
    parse_constraints(s, cfg.constraints);
  }
  if (const toml::table* train = top.table("train")) {
    Section s(*train, "train", file);
    parse_train(&s, cfg.train);
  } else {
    parse_train(nullptr, cfg.train);
  }
  if (const toml::table* proxy = top.table("proxy")) {
    Section s(*proxy, "proxy", file);
    parse_proxy(s, cfg.proxy);
  }
  {
    const toml::table* budget = top.table("budget");
    toml::table empty;
    Section s(budget ? *budget : empty, "budget", file);
    parse_budget(s, cfg.budget, cfg.train);
    cfg.budget.given = budget != nullptr;
  }
  if (const toml::table* slurm = top.table("slurm")) {
    Section s(*slurm, "slurm", file);
    parse_slurm(s, cfg.slurm);
  }
  {
    const toml::table* search = top.table("search");
    toml::table empty;
    Section s(search ? *search : empty, "search", file);
    parse_search(s, cfg.search);
    cfg.search.given = search != nullptr;
  }
  if (const toml::table* distill = top.table("distill")) {
    Section s(*distill, "distill", file);
    parse_distill(s, cfg.distill, base_dir);
    cfg.distill.given = true;
  }
  if (const toml::table* measure = top.table("measure")) {
    Section s(*measure, "measure", file);
    parse_measure(s, cfg.measure);
    cfg.measure.given = true;
  }
  top.finish();
  cfg.canonical_hash = sha256_hex(to_json(root).dump());
  return cfg;
}

StudyConfig load_study_config(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const FileError& e) {
    throw UsageError(e.what());   // the user named the file
  }
  return parse_study_config(text, path);
}

} // namespace nas::config
