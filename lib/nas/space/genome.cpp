// genome: canonical JSON, hashing, parsing and summaries of genomes of both families
#include "nas/space/genome.h"
#include "nas/core/error.h"
#include "nas/core/sha256.h"
#include "nas/core/text.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace nas::space {

bool CnnStage::operator==(const CnnStage& o) const {
  return block == o.block && depth == o.depth && width == o.width && kernel == o.kernel && stride == o.stride &&
         (block != "mbconv" || expansion == o.expansion) && activation == o.activation;
}
bool CnnGenome::operator==(const CnnGenome& o) const {
  return stem_width == o.stem_width && stem_kernel == o.stem_kernel && stem_stride == o.stem_stride &&
         stem_activation == o.stem_activation && stages == o.stages && head_width == o.head_width;
}
bool Genome::operator==(const Genome& o) const {
  if (family != o.family) return false;
  return family == "cnn" ? cnn == o.cnn : nb201 == o.nb201;
}

nlohmann::json to_json(const Genome& g) {
  nlohmann::json j;
  j["family"] = g.family;
  if (g.family == "nb201") {
    j["ops"] = g.nb201.ops;
    return j;
  }
  const CnnGenome& c = g.cnn;
  j["stem"] = {{"width", c.stem_width}, {"kernel", c.stem_kernel}, {"stride", c.stem_stride}, {"act", c.stem_activation}};
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : c.stages) {
    nlohmann::json o = {{"block", s.block}, {"depth", s.depth}, {"width", s.width},
                        {"kernel", s.kernel}, {"stride", s.stride}, {"act", s.activation}};
    if (s.block == "mbconv") o["expansion"] = s.expansion;
    stages.push_back(o);
  }
  j["stages"] = stages;
  j["head"] = {{"width", c.head_width}};
  return j;
}

std::string canonical(const Genome& g) { return to_json(g).dump(); }

std::string genome_hash(const Genome& g) { return sha256_hex(canonical(g)); }

namespace {

const std::vector<std::string> kBlocks = {"conv", "dwsep", "mbconv", "residual"};
const std::vector<std::string> kActs = {"relu", "relu6", "hswish", "silu"};

[[noreturn]] void bad(const std::string& why) { throw UsageError("bad genome: " + why); }

int64_t get_int(const nlohmann::json& o, const std::string& k, const std::string& where, int64_t lo, int64_t hi) {
  if (!o.is_object() || !o.contains(k)) bad(where + ": missing '" + k + "'");
  const auto& v = o.at(k);
  if (!v.is_number_integer()) bad(where + "." + k + ": expected an integer");
  int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) bad(where + "." + k + ": " + std::to_string(x) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
  return x;
}

std::string get_name(const nlohmann::json& o, const std::string& k, const std::string& where,
                     const std::vector<std::string>& known) {
  if (!o.is_object() || !o.contains(k)) bad(where + ": missing '" + k + "'");
  const auto& v = o.at(k);
  if (!v.is_string()) bad(where + "." + k + ": expected a string");
  std::string s = v.get<std::string>();
  if (std::find(known.begin(), known.end(), s) == known.end())
    bad(where + "." + k + ": unknown value '" + s + "'" + suggestion_suffix(s, known));
  return s;
}

// Also the check that `o` is an object: the key of an array's or a number's element throws
// nlohmann's invalid_iterator, which is no UsageError.
void only_keys(const nlohmann::json& o, const std::vector<std::string>& keys, const std::string& where) {
  if (!o.is_object()) bad(where + ": expected a JSON object");
  for (auto it = o.begin(); it != o.end(); ++it)
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end())
      bad(where + ": unknown key '" + it.key() + "'" + suggestion_suffix(it.key(), keys));
}

} // namespace

Genome genome_from_value(const nlohmann::json& j) {
  if (!j.is_object()) bad("expected a JSON object");
  Genome g;
  g.family = get_name(j, "family", "genome", {"cnn", "nb201"});
  if (g.family == "nb201") {
    only_keys(j, {"family", "ops"}, "genome");
    if (!j.contains("ops") || !j["ops"].is_array() || j["ops"].size() != 6) bad("nb201 'ops' must be an array of 6 operations");
    for (size_t i = 0; i < 6; ++i) {
      const auto& v = j["ops"][i];
      if (!v.is_string()) bad("ops[" + std::to_string(i) + "]: expected a string");
      std::string op = v.get<std::string>();
      const auto& ops = nb201_ops();
      if (std::find(ops.begin(), ops.end(), op) == ops.end())
        bad("ops[" + std::to_string(i) + "]: unknown operation '" + op + "'" + suggestion_suffix(op, ops));
      g.nb201.ops[i] = op;
    }
    return g;
  }
  only_keys(j, {"family", "stem", "stages", "head"}, "genome");
  CnnGenome& c = g.cnn;
  if (!j.contains("stem")) bad("genome: missing 'stem'");
  const auto& stem = j["stem"];
  only_keys(stem, {"width", "kernel", "stride", "act"}, "stem");
  c.stem_width = get_int(stem, "width", "stem", 1, 4096);
  c.stem_kernel = get_int(stem, "kernel", "stem", 1, 15);
  if (c.stem_kernel % 2 == 0) bad("stem.kernel: must be odd");
  c.stem_stride = get_int(stem, "stride", "stem", 1, 4);
  c.stem_activation = get_name(stem, "act", "stem", kActs);
  if (!j.contains("stages") || !j["stages"].is_array() || j["stages"].empty()) bad("'stages' must be a non-empty array");
  for (size_t i = 0; i < j["stages"].size(); ++i) {
    const auto& s = j["stages"][i];
    std::string where = "stages[" + std::to_string(i) + "]";
    only_keys(s, {"block", "depth", "width", "kernel", "stride", "act", "expansion"}, where);
    CnnStage st;
    st.block = get_name(s, "block", where, kBlocks);
    st.depth = get_int(s, "depth", where, 1, 16);
    st.width = get_int(s, "width", where, 1, 4096);
    st.kernel = get_int(s, "kernel", where, 1, 15);
    if (st.kernel % 2 == 0) bad(where + ".kernel: must be odd");
    st.stride = get_int(s, "stride", where, 1, 4);
    st.activation = get_name(s, "act", where, kActs);
    if (st.block == "mbconv") st.expansion = get_int(s, "expansion", where, 1, 16);
    else if (s.contains("expansion")) bad(where + ": 'expansion' applies only to block 'mbconv'");
    c.stages.push_back(st);
  }
  if (!j.contains("head")) bad("genome: missing 'head'");
  only_keys(j["head"], {"width"}, "head");
  c.head_width = get_int(j["head"], "width", "head", 0, 4096);
  return g;
}

Genome genome_from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {   // parse_error, and out_of_range for a number past double
    std::string what = e.what();
    bad("not valid JSON (" + what.substr(what.find(']') + 2) + ")");
  }
  return genome_from_value(j);
}

std::string summary(const Genome& g) {
  if (g.family == "nb201") return nb201_arch_string(g.nb201);
  const CnnGenome& c = g.cnn;
  auto act = [](const std::string& a) { return a == "relu" ? std::string() : "/" + a; };
  std::string s = "stem" + std::to_string(c.stem_width) + "k" + std::to_string(c.stem_kernel) + "s" +
                  std::to_string(c.stem_stride) + act(c.stem_activation);
  for (const auto& st : c.stages) {
    s += " " + st.block + (st.block == "mbconv" ? std::to_string(st.expansion) : "") + ":" + std::to_string(st.width) +
         "x" + std::to_string(st.depth) + "k" + std::to_string(st.kernel) + "s" + std::to_string(st.stride) + act(st.activation);
  }
  s += " head" + std::to_string(c.head_width);
  return s;
}

Genome read_named_genome(const NamedGenome& n, const std::string& family, const std::string& study) {
  Genome g;
  if (!n.arch.empty()) {
    g.family = "nb201";
    try {
      g.nb201 = parse_nb201_arch(n.arch);
    } catch (const UsageError& e) {
      throw UsageError(n.arch_option + ": " + e.what());
    }
  } else {
    std::ifstream in(n.file);
    if (!in || std::filesystem::is_directory(n.file)) throw UsageError(n.file_option + ": cannot read '" + n.file + "'");
    std::string line;
    int at = 0;
    while (std::getline(in, line) && (++at, line.find_first_not_of(" \t\r") == std::string::npos)) {}
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      throw UsageError(n.file_option + ": '" + n.file + "' holds no genome");
    try {
      g = genome_from_json(line);
    } catch (const UsageError& e) {
      throw UsageError(n.file_option + ": " + n.file + " line " + std::to_string(at) + ": " + e.what());
    }
  }
  if (g.family != family)
    throw UsageError("'" + summary(g) + "' is a " + g.family + " network; study '" + study + "' searches the " + family +
                     " family");
  return g;
}

} // namespace nas::space
