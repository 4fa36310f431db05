// fuzz_config: the study TOML parser (config::parse_study_config) on arbitrary text. A
// ConfigError (any nas::Error) is the expected refusal; a crash, a sanitizer report, any other
// exception or a parsed configuration that breaks what the parser promises is a finding.
#include "fuzz_check.h"

#include "nas/config/study_config.h"
#include "nas/core/error.h"

#include <cmath>
#include <cstdint>
#include <string>

namespace {

using nas::config::IntChoice;
using nas::config::RealChoice;

bool finite_choice(const RealChoice& c) {
  for (double v : c.values)
    if (!std::isfinite(v)) return false;
  return std::isfinite(c.min) && std::isfinite(c.max) && (!c.range || c.min <= c.max);
}

bool nonempty(const IntChoice& c) { return !c.values.empty(); }

// What a parsed configuration promises its users (the sampler, the trainer, nas-slurm): every
// number finite, every choice offers at least one value, the data's shape known for synthetic data.
void check_parsed(const nas::config::StudyConfig& c) {
  const auto& t = c.train;
  FUZZ_CHECK(!c.name.empty() && !c.canonical_hash.empty());
  for (const RealChoice* r : {&t.lr, &t.momentum, &t.weight_decay, &t.label_smoothing, &t.warmup_epochs})
    FUZZ_CHECK(finite_choice(*r));
  FUZZ_CHECK(nonempty(t.batch_size) && !t.optimizer.values.empty());
  FUZZ_CHECK(std::isfinite(t.grad_clip) && std::isfinite(t.lease_s) && t.lease_s >= 5);
  const auto& b = c.budget;
  FUZZ_CHECK(std::isfinite(b.min_epochs) && std::isfinite(b.max_epochs) && std::isfinite(b.eta) && std::isfinite(b.keep));
  FUZZ_CHECK(b.min_epochs <= b.max_epochs && b.max_epochs <= double(t.epochs));
  const auto& s = c.slurm;
  FUZZ_CHECK(std::isfinite(s.throughput) && s.throughput > 0 && std::isfinite(s.cpu_throughput) && s.cpu_throughput > 0);
  FUZZ_CHECK(std::isfinite(s.step_s) && s.step_s >= 0 && s.gpu_mem > 0);
  for (const auto& [name, w] : c.proxy.weights) FUZZ_CHECK(std::isfinite(w));
  FUZZ_CHECK(c.data.validation > 0 && c.data.validation < 1);
  if (c.data.format == "synthetic") FUZZ_CHECK(c.data.probed && c.data.shape.size() == 3 && c.data.classes >= 2);
  if (c.space.family == "cnn") {
    const auto& k = c.space.cnn;
    for (const IntChoice* i : {&k.stages, &k.stem_width, &k.stem_kernel, &k.stem_stride, &k.head_width})
      FUZZ_CHECK(nonempty(*i));
    for (size_t i = 0; i < k.stage.size() + 1; ++i) {
      const auto& st = i < k.stage.size() ? k.stage[i] : k.defaults;
      for (const IntChoice* v : {&st.depth, &st.width, &st.kernel, &st.stride, &st.expansion}) FUZZ_CHECK(nonempty(*v));
      FUZZ_CHECK(!st.block.values.empty() && !st.activation.values.empty());
    }
  } else {
    FUZZ_CHECK(c.space.family == "nb201" && !c.space.nb201.ops.empty());
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto cfg = nas::config::parse_study_config(text, "/fuzz/study.toml");
    check_parsed(cfg);
    // The hash is of the parsed values: the same text parses to the same hash.
    FUZZ_CHECK(nas::config::parse_study_config(text, "/fuzz/study.toml").canonical_hash == cfg.canonical_hash);
  } catch (const nas::Error&) {
    // a refusal with its place: expected
  }
  return 0;
}
