// space_test: genomes, NB201 strings, the cost model, sampling, mutation and crossover
#include <doctest/doctest.h>

#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/sha256.h"
#include "nas/space/cost.h"
#include "nas/space/genome.h"
#include "nas/space/hparams.h"
#include "nas/space/sampler.h"

#include <limits>
#include <set>

using namespace nas;

static config::StudyConfig nb201_config() {
  return config::parse_study_config(
      "[study]\nseed=5\n[data]\nformat='synthetic'\nshape=[3,32,32]\nclasses=10\n[space]\nfamily='nb201'\n", "/tmp/nb.toml");
}

static config::StudyConfig example_config() {
  return config::load_study_config(std::string(NAS_SOURCE_DIR) + "/tests/fixtures/cnn-synthetic.toml");
}

static space::Genome nb201(const std::string& arch) {
  space::Genome g;
  g.family = "nb201";
  g.nb201 = space::parse_nb201_arch(arch);
  return g;
}

TEST_CASE("nb201 architecture strings round-trip and bad ones are refused") {
  std::string s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
  auto g = space::parse_nb201_arch(s);
  CHECK(g.ops[1] == "nor_conv_3x3");
  CHECK(g.ops[5] == "skip_connect");
  CHECK(space::nb201_arch_string(g) == s);
  CHECK_THROWS_AS(space::parse_nb201_arch("|nor_conv_3x3~0|+|none~0|"), UsageError);
  CHECK_THROWS_AS(space::parse_nb201_arch("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"), UsageError);
  CHECK_THROWS_AS(space::parse_nb201_arch("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|"), UsageError);
}

TEST_CASE("nb201 analytic costs give the published parameter counts") {
  auto cfg = nb201_config();
  auto ctx = space::cost_context(cfg);
  auto conv = space::estimate_cost(nb201("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"), ctx);
  CHECK(conv.params == 1531546);   // NAS-Bench-201: 1.53 MB
  auto none = space::estimate_cost(nb201("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), ctx);
  CHECK(none.params == 73306);     // 0.07 MB
  // MACs of the all-conv cell: 9 C^2 H W per edge, 6 edges, 5 cells, three stages
  int64_t cell_macs = 0;
  for (int64_t c = 16, hw = 32; c <= 64; c *= 2, hw /= 2) cell_macs += 5 * 6 * 9 * c * c * hw * hw;
  CHECK(conv.macs - none.macs == cell_macs);
}

TEST_CASE("nb201 params over all 15,625 cells follow the closed form") {
  auto ctx = space::cost_context(nb201_config());
  const auto& ops = space::nb201_ops();
  int count = 0;
  std::set<std::string> hashes;
  for (int code = 0; code < 15625; ++code) {
    space::Genome g;
    g.family = "nb201";
    int x = code, n3 = 0, n1 = 0;
    for (int e = 0; e < 6; ++e) {
      g.nb201.ops[size_t(e)] = ops[size_t(x % 5)];
      n3 += x % 5 == 3;
      n1 += x % 5 == 2;
      x /= 5;
    }
    int64_t expect = 73306;
    for (int64_t c : {16, 32, 64}) expect += 5 * n3 * (9 * c * c + 2 * c) + 5 * n1 * (c * c + 2 * c);
    if (space::estimate_cost(g, ctx).params == expect) ++count;
    hashes.insert(space::genome_hash(g));
  }
  CHECK(count == 15625);
  CHECK(hashes.size() == 15625);
}

TEST_CASE("cnn costs of a hand-countable genome") {
  auto cfg = example_config();
  auto ctx = space::cost_context(cfg);
  space::Genome g = space::genome_from_json(
      R"({"family":"cnn","stem":{"width":8,"kernel":3,"stride":1,"act":"relu"},
          "stages":[{"block":"conv","depth":1,"width":16,"kernel":3,"stride":2,"act":"relu"}],"head":{"width":0}})");
  auto c = space::estimate_cost(g, ctx);
  // stem: 1*8*9 + 16 (BN); stage: 8*16*9 + 32; classifier: 16*10 + 10
  CHECK(c.params == 72 + 16 + 1152 + 32 + 170);
  // stem 8x28x28 outputs x 9 MACs; stage 16x14x14 outputs x 72; classifier 160
  CHECK(c.macs == 8 * 784 * 9 + 16 * 196 * 72 + 160);
  // peak: the stage conv holds its input 8x28x28 and output 16x14x14 (more than the stem's
  // 1x28x28 + 8x28x28), 1 byte each (int8)
  CHECK(c.peak_activation_bytes == 6272 + 3136);
  CHECK(c.weight_bytes == c.params);
}

TEST_CASE("canonical genomes ignore key order and hash stably") {
  auto a = space::genome_from_json(R"({"family":"nb201","ops":["none","none","none","none","none","nor_conv_1x1"]})");
  auto b = space::genome_from_json(R"({"ops":["none","none","none","none","none","nor_conv_1x1"],"family":"nb201"})");
  CHECK(space::canonical(a) == space::canonical(b));
  CHECK(space::genome_hash(a) == space::genome_hash(b));
  CHECK(space::canonical(a) == R"({"family":"nb201","ops":["none","none","none","none","none","nor_conv_1x1"]})");
  CHECK_THROWS_AS(space::genome_from_json("{\"family\":\"cnn\"}"), UsageError);
  CHECK_THROWS_AS(space::genome_from_json("not json"), UsageError);
}

TEST_CASE("sampling is reproducible, inside the space and under the constraints") {
  auto cfg = example_config();
  space::Sampler s(cfg);
  Rng r1(cfg.seed, 0), r2(cfg.seed, 0), r3(cfg.seed, 1);
  std::vector<std::string> a, b, c;
  for (int i = 0; i < 500; ++i) {
    auto g = s.draw_feasible(r1);
    CHECK(space::outside_space(g, cfg.space) == "");
    CHECK(s.cost(g).params <= *cfg.constraints.max_params);
    a.push_back(space::canonical(g));
    b.push_back(space::canonical(s.draw_feasible(r2)));
    c.push_back(space::canonical(s.draw_feasible(r3)));
  }
  CHECK(a == b);
  CHECK(a != c);
  // the round trip through JSON is exact
  for (const auto& t : a) CHECK(space::canonical(space::genome_from_json(t)) == t);
}

TEST_CASE("impossible constraints give a clear error") {
  auto cfg = example_config();
  cfg.constraints.max_params = 10;
  space::Sampler s(cfg);
  Rng r(1);
  try {
    s.draw_feasible(r, 500);
    FAIL("expected an error");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).find("max_params rejected 500") != std::string::npos);
  }
}

static int nb201_distance(const space::Genome& a, const space::Genome& b) {
  int d = 0;
  for (size_t e = 0; e < 6; ++e) d += a.nb201.ops[e] != b.nb201.ops[e];
  return d;
}

TEST_CASE("mutation changes exactly one decision and stays in the space") {
  auto cfg = nb201_config();
  space::Sampler s(cfg);
  Rng r(3);
  for (int i = 0; i < 200; ++i) {
    auto g = s.draw(r);
    auto m = s.mutate(g, r);
    CHECK(nb201_distance(g, m) == 1);
  }
  auto cc = example_config();
  space::Sampler sc(cc);
  for (int i = 0; i < 300; ++i) {
    auto g = sc.draw_feasible(r);
    auto m = sc.mutate(g, r);
    CHECK_FALSE(m == g);
    CHECK(space::outside_space(m, cc.space) == "");
    CHECK(sc.feasible(m));
    // one decision: either the stage count changed by one, or the JSON differs in one place
    auto ja = space::to_json(g), jb = space::to_json(m);
    auto diff = nlohmann::json::diff(ja, jb);
    int64_t dn = int64_t(jb["stages"].size()) - int64_t(ja["stages"].size());
    if (dn == 0) CHECK(diff.size() <= 2);  // a block change may add/remove 'expansion' too
    else CHECK(std::abs(dn) == 1);
  }
}

TEST_CASE("crossover takes every decision from a parent") {
  auto cfg = nb201_config();
  space::Sampler s(cfg);
  Rng r(9);
  for (int i = 0; i < 200; ++i) {
    auto a = s.draw(r), b = s.draw(r);
    auto c = s.crossover(a, b, r);
    for (size_t e = 0; e < 6; ++e) CHECK((c.nb201.ops[e] == a.nb201.ops[e] || c.nb201.ops[e] == b.nb201.ops[e]));
  }
  auto cc = example_config();
  space::Sampler sc(cc);
  for (int i = 0; i < 200; ++i) {
    auto a = sc.draw_feasible(r), b = sc.draw_feasible(r);
    auto c = sc.crossover(a, b, r);
    CHECK(sc.feasible(c));
    CHECK((c.cnn.stem_width == a.cnn.stem_width || c.cnn.stem_width == b.cnn.stem_width));
    for (size_t k = 0; k < c.cnn.stages.size(); ++k) {
      bool from_a = k < a.cnn.stages.size() && c.cnn.stages[k] == a.cnn.stages[k];
      bool from_b = k < b.cnn.stages.size() && c.cnn.stages[k] == b.cnn.stages[k];
      CHECK((from_a || from_b));
    }
  }
}

TEST_CASE("hyperparameters: fixed values as given, searched ones drawn per genome, reproducibly") {
  auto cfg = config::parse_study_config(
      "[study]\nseed=5\n[data]\nformat='synthetic'\nshape=[3,32,32]\nclasses=10\n[space]\nfamily='nb201'\n"
      "[train]\nlr={min=1e-3,max=1e-1,log=true}\nbatch_size=[64,128,256]\nmomentum=0.8\noptimizer=['sgd','adamw']\n",
      "/tmp/hp.toml");
  std::set<int64_t> batches;
  std::set<std::string> optimizers;
  double lo = 1, hi = 0;
  for (int i = 0; i < 300; ++i) {
    const std::string hash = sha256_hex("genome " + std::to_string(i));
    auto h = space::draw_hparams(cfg.train, cfg.seed, hash);
    CHECK(h.momentum == 0.8);
    CHECK(h.lr >= 1e-3);
    CHECK(h.lr <= 1e-1);
    lo = std::min(lo, h.lr);
    hi = std::max(hi, h.lr);
    batches.insert(h.batch_size);
    optimizers.insert(config::to_string(h.optimizer));
    // the same genome always gets the same values, and they survive the study file's JSON
    auto again = space::draw_hparams(cfg.train, cfg.seed, hash);
    CHECK(space::hparams_json(again) == space::hparams_json(h));
    CHECK(space::hparams_json(space::parse_hparams(space::hparams_json(h), {})) == space::hparams_json(h));
  }
  CHECK(batches == std::set<int64_t>{64, 128, 256});
  CHECK(optimizers.size() == 2);
  CHECK(lo < 3e-3);          // log-uniform: both ends of the two decades are reached
  CHECK(hi > 3e-2);
  CHECK_THROWS_AS(space::parse_hparams("[1]", {}), UsageError);
  CHECK_THROWS_AS(space::parse_hparams("{\"optimizer\":\"adam\"}", {}), UsageError);
  CHECK(space::parse_hparams("{\"lr\":0.5}", {}).lr == 0.5);   // missing keys keep the defaults
}

TEST_CASE("the study file keeps the optimizer and schedule by name; unknown names are refused") {
  space::HParams h;
  h.optimizer = config::Optimizer::adamw;
  h.schedule = config::Schedule::constant;
  const std::string json = space::hparams_json(h);
  CHECK(json.find("\"optimizer\":\"adamw\"") != std::string::npos);
  CHECK(json.find("\"schedule\":\"constant\"") != std::string::npos);
  const auto back = space::parse_hparams(json, {});
  CHECK(back.optimizer == config::Optimizer::adamw);
  CHECK(back.schedule == config::Schedule::constant);
  CHECK(space::parse_hparams("{\"optimizer\":\"sgd\"}", h).optimizer == config::Optimizer::sgd);
  CHECK_THROWS_AS(space::parse_hparams("{\"schedule\":\"linear\"}", {}), UsageError);
}

// Found by tests/fuzz/fuzz_genome (bench/results/fuzz.md): a stem, stage or head that is not a
// JSON object leaked nlohmann's invalid_iterator instead of a UsageError.
TEST_CASE("a genome's parts that are not objects are refused as bad genomes") {
  const std::string stages = R"("stages":[{"block":"conv","depth":1,"width":8,"kernel":3,"stride":1,"act":"relu"}])";
  const std::string stem = R"("stem":{"width":8,"kernel":3,"stride":1,"act":"relu"})";
  for (const std::string& text : {R"({"family":"cnn","stem":[1],)" + stages + R"(,"head":{"width":0}})",
                                  R"({"family":"cnn",)" + stem + R"(,"stages":[7],"head":{"width":0}})",
                                  R"({"family":"cnn",)" + stem + "," + stages + R"(,"head":"wide"})"}) {
    CAPTURE(text);
    CHECK_THROWS_WITH_AS(space::genome_from_json(text), doctest::Contains("expected a JSON object"), UsageError);
  }
}

// Found by tests/fuzz/fuzz_genome: on the largest inputs and widths a configuration allows, the
// MACs passed 2^63 (a signed overflow); they saturate, so such a network breaks any constraint.
TEST_CASE("costs past int64 saturate instead of overflowing") {
  const space::CostContext huge{{1, 65536, 65536}, 1000000, 4096, 5, 4};
  const auto c = space::estimate_cost(nb201("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|"
                                            "nor_conv_3x3~1|nor_conv_3x3~2|"), huge);
  CHECK(c.macs == std::numeric_limits<int64_t>::max());
  CHECK(c.params > 0);
  config::Constraints limit;
  limit.max_macs = int64_t(1000000000000000);
  CHECK(space::violations(c, limit).size() == 1);
}
