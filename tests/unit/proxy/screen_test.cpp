// screen_test: the proxy screen breeding workers use -- data-free proxies on candidate genomes,
// seeded by the genome alone, degenerate scores NaN, several proxies by their log-rank sum
#include <doctest/doctest.h>

#include "nas/config/study_config.h"
#include "nas/proxy/rank.h"
#include "nas/proxy/screen.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"

#include <cmath>
#include <mutex>

using namespace nas;

namespace {

config::StudyConfig study(const std::string& search) {
  return config::parse_study_config("[study]\nname='scr'\nseed=1\n[data]\nformat='synthetic'\nshape=[3,32,32]\n"
                                    "classes=10\nsamples=64\n[space]\nfamily='nb201'\n[search]\nstrategy='evolution'\n"
                                    "evaluations=10\n" + search,
                                    "/tmp/scr.toml");
}

space::Genome cell(const std::string& arch) {
  space::Genome g;
  g.family = "nb201";
  g.nb201 = space::parse_nb201_arch(arch);
  return g;
}

const std::string kConvs = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
const std::string kSmall = "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|";
// no path from the input to the output: synflow is zero
const std::string kEmpty = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";

} // namespace

TEST_CASE("no screen unless [search] screen asks for one") {
  std::mutex lock;
  CHECK(proxy::make_screen(study(""), lock) == nullptr);
  CHECK(proxy::make_screen(study("screen=2\n"), lock) != nullptr);
}

TEST_CASE("synflow screens by the genome alone: the same score in every screen, bigger cells above, empty ones NaN") {
  std::mutex lock;
  const auto cfg = study("screen=3\n");
  const auto a = proxy::make_screen(cfg, lock);
  REQUIRE(a);
  CHECK(a->name() == "synflow");
  const std::vector<space::Genome> cands = {cell(kSmall), cell(kConvs), cell(kEmpty)};
  const auto s = a->score(cands);
  REQUIRE(s.value.size() == 3);
  CHECK(std::isfinite(s.value[0]));
  CHECK(std::isfinite(s.value[1]));
  CHECK(s.value[1] > s.value[0]);            // nine 3x3 convs hold more paths than the small cell
  CHECK(std::isnan(s.value[2]));             // degenerate: ranks last
  CHECK(s.proxies.at("synflow").size() == 3);
  // another screen in another "study" (another seed): the same values
  auto other_cfg = cfg;
  other_cfg.seed = 77;
  const auto b = proxy::make_screen(other_cfg, lock);
  const auto t = b->score({cell(kConvs)});
  CHECK(t.value[0] == s.value[1]);
}

TEST_CASE("params, flops and zen; several proxies rank by their normalised log-rank sum") {
  std::mutex lock;
  const auto cfg = study("screen=3\nscreen_proxies=['params','zen']\n");
  const auto scr = proxy::make_screen(cfg, lock);
  REQUIRE(scr);
  CHECK(scr->name() == "ensemble(params,zen)");
  const std::vector<space::Genome> cands = {cell(kSmall), cell(kConvs), cell(kEmpty)};
  const auto s = scr->score(cands);
  const space::Sampler sampler(cfg);
  CHECK(s.proxies.at("params")[1] == double(sampler.cost(cands[1]).params));
  CHECK(s.proxies.at("params")[0] == double(sampler.cost(cands[0]).params));
  CHECK(std::isfinite(s.proxies.at("zen")[1]));
  CHECK(s.value == proxy::ensemble_sum(s.proxies, {}));
  CHECK(s.value[1] == 0.0);                  // the best by both: log(3 / 3)
  const auto f = proxy::make_screen(study("screen=2\nscreen_proxies=['flops']\n"), lock)->score({cands[1]});
  CHECK(f.value[0] == 2.0 * double(sampler.cost(cands[1]).macs));
}
