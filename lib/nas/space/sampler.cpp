// sampler: random genomes under constraints, mutation, crossover
#include "nas/space/sampler.h"
#include "nas/core/error.h"
#include "nas/core/text.h"

#include <algorithm>

namespace nas::space {

space::CostContext cost_context(const config::StudyConfig& cfg) {
  // Parsing leaves the shape of file data unknown: it comes from the probe (store::open_study).
  if (cfg.data.shape.size() != 3)
    throw Error("the data of study '" + cfg.name + "' has not been probed: its sample shape is unknown");
  space::CostContext ctx;
  ctx.input = cfg.data.shape;
  ctx.classes = cfg.data.classes;
  ctx.nb201_channels = cfg.space.nb201.channels;
  ctx.nb201_cells = cfg.space.nb201.cells;
  ctx.bytes_per_element = config::precision_bytes(cfg.constraints.precision);
  return ctx;
}

std::vector<std::string> violations(const space::Cost& cost, const config::Constraints& c) {
  std::vector<std::string> out;
  auto check = [&](const char* name, int64_t v, const std::optional<int64_t>& max) {
    if (max && v > *max) out.push_back(std::string(name) + " (" + std::to_string(v) + " > " + std::to_string(*max) + ")");
  };
  check("max_params", cost.params, c.max_params);
  check("max_macs", cost.macs, c.max_macs);
  check("max_peak_activation_bytes", cost.peak_activation_bytes, c.max_peak_activation_bytes);
  check("max_weight_bytes", cost.weight_bytes, c.max_weight_bytes);
  return out;
}

namespace {
template <class T> bool in(const std::vector<T>& v, const T& x) { return std::find(v.begin(), v.end(), x) != v.end(); }
} // namespace

std::string outside_space(const Genome& g, const config::SpaceConfig& sp) {
  if (g.family != sp.family) return "family '" + g.family + "' is not the study's family '" + sp.family + "'";
  if (g.family == "nb201") {
    for (size_t e = 0; e < 6; ++e)
      if (!in(sp.nb201.ops, g.nb201.ops[e])) return "ops[" + std::to_string(e) + "]: '" + g.nb201.ops[e] + "' is not in space.ops";
    return "";
  }
  const auto& c = sp.cnn;
  const auto& x = g.cnn;
  auto chk = [](const config::IntChoice& ch, int64_t v, const std::string& what) -> std::string {
    return in(ch.values, v) ? "" : what + ": " + std::to_string(v) + " is not in " + ch.key;
  };
  auto chn = [](const config::NameChoice& ch, const std::string& v, const std::string& what) -> std::string {
    return in(ch.values, v) ? "" : what + ": '" + v + "' is not in " + ch.key;
  };
  for (std::string r : {chk(c.stages, int64_t(x.stages.size()), "stages"), chk(c.stem_width, x.stem_width, "stem.width"),
                        chk(c.stem_kernel, x.stem_kernel, "stem.kernel"), chk(c.stem_stride, x.stem_stride, "stem.stride"),
                        chn(c.stem_activation, x.stem_activation, "stem.act"), chk(c.head_width, x.head_width, "head.width")})
    if (!r.empty()) return r;
  for (size_t i = 0; i < x.stages.size(); ++i) {
    const auto& ch = c.choices_for(i);
    const auto& s = x.stages[i];
    std::string w = "stages[" + std::to_string(i) + "]";
    for (std::string r : {chn(ch.block, s.block, w + ".block"), chk(ch.depth, s.depth, w + ".depth"),
                          chk(ch.width, s.width, w + ".width"), chk(ch.kernel, s.kernel, w + ".kernel"),
                          chk(ch.stride, s.stride, w + ".stride"), chn(ch.activation, s.activation, w + ".act"),
                          s.block == "mbconv" ? chk(ch.expansion, s.expansion, w + ".expansion") : std::string()})
      if (!r.empty()) return r;
  }
  return "";
}

Sampler::Sampler(const config::StudyConfig& cfg) : cfg_(cfg), ctx_(cost_context(cfg)) {}

CnnStage Sampler::draw_stage(size_t index, Rng& rng) const {
  const auto& ch = cfg_.space.cnn.choices_for(index);
  CnnStage s;
  s.block = rng.pick(ch.block.values);
  s.depth = rng.pick(ch.depth.values);
  s.width = rng.pick(ch.width.values);
  s.kernel = rng.pick(ch.kernel.values);
  s.stride = rng.pick(ch.stride.values);
  // Drawn for every block so that the stream does not depend on the block type.
  int64_t e = rng.pick(ch.expansion.values);
  s.expansion = s.block == "mbconv" ? e : 1;
  s.activation = rng.pick(ch.activation.values);
  return s;
}

Genome Sampler::draw(Rng& rng) const {
  Genome g;
  g.family = cfg_.space.family;
  if (g.family == "nb201") {
    for (auto& op : g.nb201.ops) op = rng.pick(cfg_.space.nb201.ops);
    return g;
  }
  const auto& c = cfg_.space.cnn;
  CnnGenome& x = g.cnn;
  x.stem_width = rng.pick(c.stem_width.values);
  x.stem_kernel = rng.pick(c.stem_kernel.values);
  x.stem_stride = rng.pick(c.stem_stride.values);
  x.stem_activation = rng.pick(c.stem_activation.values);
  int64_t n = rng.pick(c.stages.values);
  for (int64_t i = 0; i < n; ++i) x.stages.push_back(draw_stage(size_t(i), rng));
  x.head_width = rng.pick(c.head_width.values);
  return g;
}

Genome Sampler::draw_feasible(Rng& rng, int max_rejections) const {
  std::map<std::string, int> why;
  for (int i = 0; i < max_rejections; ++i) {
    Genome g = draw(rng);
    auto v = violations(cost(g), cfg_.constraints);
    if (v.empty()) return g;
    for (const auto& s : v) why[s.substr(0, s.find(' '))]++;
  }
  std::vector<std::string> parts;
  for (const auto& [k, n] : why) parts.push_back(k + " rejected " + std::to_string(n));
  throw UsageError("the space cannot satisfy the constraints: " + std::to_string(max_rejections) +
                   " draws in a row were rejected (" + join(parts, ", ") + "); relax [constraints] or shrink [space]");
}

Genome Sampler::mutate(const Genome& g, Rng& rng, int max_rejections) const {
  for (int attempt = 0; attempt < max_rejections; ++attempt) {
    Genome m = g;
    if (g.family == "nb201") {
      const auto& ops = cfg_.space.nb201.ops;
      if (ops.size() < 2) throw UsageError("cannot mutate: space.ops offers a single operation");
      size_t e = rng.below(6);
      std::string op;
      do { op = rng.pick(ops); } while (op == g.nb201.ops[e]);
      m.nb201.ops[e] = op;
    } else {
      const auto& c = cfg_.space.cnn;
      CnnGenome& x = m.cnn;
      // Decisions with more than one value to move to.
      std::vector<std::function<void()>> moves;
      auto int_move = [&](const config::IntChoice& ch, int64_t& field) {
        if (ch.values.size() < 2) return;
        moves.push_back([ch = &ch, field = &field, &rng] {
          int64_t v;
          do { v = rng.pick(ch->values); } while (v == *field);
          *field = v;
        });
      };
      auto name_move = [&](const config::NameChoice& ch, std::string& field, std::function<void()> after = {}) {
        if (ch.values.size() < 2) return;
        moves.push_back([ch = &ch, field = &field, &rng, after] {
          std::string v;
          do { v = rng.pick(ch->values); } while (v == *field);
          *field = v;
          if (after) after();
        });
      };
      int_move(c.stem_width, x.stem_width);
      int_move(c.stem_kernel, x.stem_kernel);
      int_move(c.stem_stride, x.stem_stride);
      name_move(c.stem_activation, x.stem_activation);
      int_move(c.head_width, x.head_width);
      int64_t n = int64_t(x.stages.size());
      if (in(c.stages.values, n + 1)) moves.push_back([&] { x.stages.push_back(draw_stage(x.stages.size(), rng)); });
      if (in(c.stages.values, n - 1)) moves.push_back([&] { x.stages.pop_back(); });
      for (size_t i = 0; i < x.stages.size(); ++i) {
        const auto& ch = c.choices_for(i);
        CnnStage& s = x.stages[i];
        name_move(ch.block, s.block, [st = &s, exp = &ch.expansion, &rng] {
          st->expansion = st->block == "mbconv" ? rng.pick(exp->values) : 1;
        });
        int_move(ch.depth, s.depth);
        int_move(ch.width, s.width);
        int_move(ch.kernel, s.kernel);
        int_move(ch.stride, s.stride);
        name_move(ch.activation, s.activation);
        if (s.block == "mbconv") int_move(ch.expansion, s.expansion);
      }
      if (moves.empty()) throw UsageError("cannot mutate: every decision of the space has a single value");
      moves[rng.below(moves.size())]();
    }
    if (feasible(m)) return m;
  }
  throw UsageError("cannot mutate '" + summary(g) + "': no neighbour satisfies the constraints after " +
                   std::to_string(max_rejections) + " tries");
}

Genome Sampler::crossover(const Genome& a, const Genome& b, Rng& rng, int max_rejections) const {
  return try_crossover(a, b, rng, max_rejections).value_or(a);
}

std::optional<Genome> Sampler::try_crossover(const Genome& a, const Genome& b, Rng& rng, int max_rejections) const {
  if (a.family != b.family) throw UsageError("cannot cross genomes of families '" + a.family + "' and '" + b.family + "'");
  for (int attempt = 0; attempt < max_rejections; ++attempt) {
    Genome c = a;
    if (a.family == "nb201") {
      for (size_t e = 0; e < 6; ++e) c.nb201.ops[e] = rng.chance(0.5) ? a.nb201.ops[e] : b.nb201.ops[e];
    } else {
      const CnnGenome &x = a.cnn, &y = b.cnn;
      CnnGenome& z = c.cnn;
      z.stem_width = rng.chance(0.5) ? x.stem_width : y.stem_width;
      z.stem_kernel = rng.chance(0.5) ? x.stem_kernel : y.stem_kernel;
      z.stem_stride = rng.chance(0.5) ? x.stem_stride : y.stem_stride;
      z.stem_activation = rng.chance(0.5) ? x.stem_activation : y.stem_activation;
      z.head_width = rng.chance(0.5) ? x.head_width : y.head_width;
      size_t n = rng.chance(0.5) ? x.stages.size() : y.stages.size();
      z.stages.clear();
      for (size_t i = 0; i < n; ++i) {
        bool hx = i < x.stages.size(), hy = i < y.stages.size();
        z.stages.push_back(hx && hy ? (rng.chance(0.5) ? x.stages[i] : y.stages[i]) : hx ? x.stages[i] : y.stages[i]);
      }
    }
    if (feasible(c)) return c;
  }
  return std::nullopt;
}

} // namespace nas::space
