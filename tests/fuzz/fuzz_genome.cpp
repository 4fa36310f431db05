// fuzz_genome: the genome readers (space/genome.h: genome_from_json, parse_nb201_arch) on
// arbitrary text, and what is done next with a genome a user gives (nas-sample --genome/--arch):
// its canonical form, summary, membership of a study's space (outside_space) and its analytic cost
// (estimate_cost). A UsageError (any nas::Error) is the expected refusal; a crash, a sanitizer
// report (a cost that overflows int64 included), any other exception (nlohmann::json's among
// them) or a canonical form that does not read back as the same genome is a finding.
#include "fuzz_check.h"

#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/space/cost.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"

#include <cstdint>
#include <string>
#include <vector>

namespace {

using namespace nas;

// The spaces of tests/fixtures/cnn-synthetic.toml and nb201-small.toml (ops narrowed).
const char* const kCnnStudy = R"([study]
[data]
format = "synthetic"
shape = [1, 28, 28]
classes = 10
[space]
family = "cnn"
stages = [2, 3]
width = [8, 16, 32]
depth = { min = 1, max = 2 }
kernel = [3, 5]
block = ["conv", "dwsep", "mbconv", "residual"]
expansion = [2, 4]
)";
const char* const kNb201Study = R"([study]
[data]
format = "synthetic"
shape = [3, 32, 32]
classes = 10
[space]
family = "nb201"
ops = ["none", "skip_connect", "nor_conv_3x3"]
)";

const std::vector<config::StudyConfig>& studies() {
  static const std::vector<config::StudyConfig> s = {config::parse_study_config(kCnnStudy, "/fuzz/cnn.toml"),
                                                     config::parse_study_config(kNb201Study, "/fuzz/nb201.toml")};
  return s;
}

// Cost contexts: the two studies' and the largest a configuration accepts ([data] shape up to
// 65536 x 65536, classes and NB201 channels at their maxima, fp32 weights; 5 cells, as the
// maximum of 64 only repeats the same layers and slows every run).
const std::vector<space::CostContext>& contexts() {
  static const std::vector<space::CostContext> c = [] {
    std::vector<space::CostContext> out;
    for (const auto& s : studies()) out.push_back(space::cost_context(s));
    out.push_back({{1, 65536, 65536}, 1000000, 4096, 5, 4});
    return out;
  }();
  return c;
}

void check_costs(const space::Genome& g) {
  for (const auto& ctx : contexts()) {
    try {
      const space::Cost c = space::estimate_cost(g, ctx);
      FUZZ_CHECK(c.params > 0 && c.macs > 0 && c.peak_activation_bytes > 0 && c.weight_bytes >= c.params);
    } catch (const Error&) {
      // e.g. NB201 on an input too small for it
    }
  }
}

void check_genome(const space::Genome& g) {
  const std::string text = space::canonical(g);
  const space::Genome back = space::genome_from_json(text);
  FUZZ_CHECK(back == g && space::canonical(back) == text);
  FUZZ_CHECK(space::genome_hash(g).size() == 64 && !space::summary(g).empty());
  if (g.family == "nb201") FUZZ_CHECK(space::parse_nb201_arch(space::nb201_arch_string(g.nb201)) == g.nb201);
  for (const auto& s : studies()) (void)space::outside_space(g, s.space);
  check_costs(g);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    check_genome(space::genome_from_json(text));
  } catch (const Error&) {
    // a refusal naming the problem: expected
  }
  try {
    // nas-sample --arch: an accepted string is the canonical architecture string
    const space::Nb201Genome g = space::parse_nb201_arch(text);
    FUZZ_CHECK(space::nb201_arch_string(g) == text);
  } catch (const Error&) {
  }
  return 0;
}
