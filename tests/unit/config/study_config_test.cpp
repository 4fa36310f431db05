// study_config_test: parsing (no I/O), defaults, ranges and error places; the data probe is
// tested with it in tests/unit/data/probe_test.cpp
#include <doctest/doctest.h>

#include "nas/config/slurm_memory.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

using namespace nas;
using nas::config::parse_study_config;

static const char* kBase = R"(
[study]
name = "t"
seed = 3
[data]
format = "synthetic"
shape = [1, 28, 28]
classes = 10
)";

static config::StudyConfig parse(const std::string& extra) {
  return parse_study_config(std::string(kBase) + extra, "/tmp/t.toml");
}

static std::string error_of(const std::string& text) {
  try {
    parse_study_config(text, "study.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST_CASE("cnn space: lists, ranges, per-stage overrides and defaults") {
  auto c = parse("[space]\nfamily='cnn'\nstages={min=2,max=4}\nwidth=[8,16]\n[[space.stage]]\nwidth=[4]\n");
  CHECK(c.name == "t");
  CHECK(c.seed == 3);
  CHECK(c.space.cnn.stages.values == std::vector<int64_t>{2, 3, 4});
  CHECK(c.space.cnn.defaults.width.values == std::vector<int64_t>{8, 16});
  CHECK(c.space.cnn.choices_for(0).width.values == std::vector<int64_t>{4});
  CHECK(c.space.cnn.choices_for(1).width.values == std::vector<int64_t>{8, 16});
  CHECK(c.space.cnn.choices_for(0).kernel.values == c.space.cnn.defaults.kernel.values);
  CHECK(c.data.shape == std::vector<int64_t>{1, 28, 28});
  CHECK(config::to_string(c.constraints.precision) == "int8");
}

TEST_CASE("the canonical hash ignores comments and layout but not values") {
  auto a = parse("[space]\nfamily='nb201'\n");
  auto b = parse("# comment\n[space]\n  family = \"nb201\"   # same\n");
  auto d = parse("[space]\nfamily='nb201'\nchannels=8\n");
  CHECK(a.canonical_hash == b.canonical_hash);
  CHECK(a.canonical_hash != d.canonical_hash);
}

TEST_CASE("errors name file, line, column and key") {
  std::string base = kBase;
  CHECK(error_of(base + "[space]\nfamily='cnn'\nwidht=[8]\n") ==
        "study.toml:11:1: key 'space.widht': unknown key, did you mean 'width'?");
  CHECK(error_of(base + "[space]\nfamily='cnn'\nwidth='wide'\n").find("study.toml:11:7: key 'space.width': expected") == 0);
  CHECK(error_of(base + "[space]\nfamily='cnn'\ndepth={min=3,max=1}\n").find("empty range") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='cnn'\nwidth=[]\n").find("empty list") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='cnn'\nkernel=[4]\n").find("odd") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='nb201'\nops=['nor_conv_5x5']\n").find("unknown value 'nor_conv_5x5'") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='cnm'\n").find("did you mean 'cnn'") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='nb201'\n[pareto]\nplot='x'\n").find("reserved") != std::string::npos);
  CHECK(error_of(base + "[space]\nfamily='nb201'\n[train]\nlr={min=0.1,max=0.01}\n") ==
        "study.toml:12:4: key 'train.lr': empty range: min 0.1 > max 0.01");
  CHECK(error_of(base + "[space]\nfamily='nb201'\n[train]\nmomentum=[0.9, 1.5]\n").find("value 1.5 is outside 0..1") != std::string::npos);
  CHECK(error_of("[study\n").find("study.toml:1:") == 0);
  // issue 13: subset = 0 was silently "every sample"; leaving the key out is how to say that
  CHECK(error_of(base + "subset = 0\n[space]\nfamily='nb201'\n") ==
        "study.toml:9:10: key 'data.subset': must be at least 1, got 0; leave the key out to use every training sample");
  CHECK(error_of(base + "subset = -5\n[space]\nfamily='nb201'\n").find("got -5; leave the key out") != std::string::npos);
  CHECK(parse("[space]\nfamily='nb201'\n").data.subset == 0);   // absent: every sample
  CHECK(parse("subset = 20\n[space]\nfamily='nb201'\n").data.subset == 20);
}

TEST_CASE("[train]: defaults, fixed and searched values") {
  auto d = parse("[space]\nfamily='nb201'\n");
  CHECK(d.train.epochs == 5);
  CHECK(d.train.batch_size.values == std::vector<int64_t>{128});
  CHECK(d.train.optimizer.values == std::vector<config::Optimizer>{config::Optimizer::sgd});
  CHECK(d.train.lr.values == std::vector<double>{0.05});
  CHECK(!d.train.lr.searched());
  CHECK(config::to_string(d.train.precision) == "auto");
  auto t = parse("[space]\nfamily='nb201'\n[train]\nepochs=3\nbatch_size=[64,256]\noptimizer=['sgd','adamw']\n"
                 "lr={min=1e-3,max=1e-1,log=true}\nweight_decay=[0.0,5e-4]\nnesterov=false\ngrad_clip=5.0\n"
                 "schedule='constant'\nprecision='bf16'\nlease_s=60\nmax_attempts=2\n");
  CHECK(t.train.epochs == 3);
  CHECK(t.train.batch_size.values == std::vector<int64_t>{64, 256});
  CHECK(t.train.lr.range);
  CHECK(t.train.lr.log);
  CHECK(t.train.lr.min == 1e-3);
  CHECK(t.train.lr.searched());
  CHECK(t.train.weight_decay.values == std::vector<double>{0.0, 5e-4});
  CHECK(!t.train.nesterov);
  CHECK(t.train.grad_clip == 5.0);
  CHECK(config::to_string(t.train.schedule) == "constant");
  CHECK(config::to_string(t.train.precision) == "bf16");
  CHECK(t.train.lease_s == 60);
  CHECK(t.train.max_attempts == 2);
}

TEST_CASE("enumerated values parse from their TOML spelling and spell back the same") {
  using namespace nas::config;
  for (const char* s : {"fp32", "bf16", "fp16", "auto"}) CHECK(to_string(*parse_precision(s)) == s);
  for (const char* s : {"int8", "fp16", "fp32"}) CHECK(to_string(*parse_weight_precision(s)) == s);
  for (const char* s : {"cosine", "constant"}) CHECK(to_string(*parse_schedule(s)) == s);
  for (const char* s : {"sgd", "adamw"}) CHECK(to_string(*parse_optimizer(s)) == s);
  for (const char* s : {"sum", "vote", "none"}) CHECK(to_string(*parse_ensemble(s)) == s);
  for (const char* s : {"asynchronous", "synchronous"}) CHECK(to_string(*parse_promotion(s)) == s);
  for (const char* s : {"gres", "gpus-per-task", "none"}) CHECK(to_string(*parse_gpu_option(s)) == s);
  CHECK(parse_precision("auto") == Precision::automatic);
  CHECK(parse_gpu_option("gpus-per-task") == GpuOption::gpus_per_task);
  CHECK(!parse_precision("fp8"));
  CHECK(!parse_optimizer("adam"));
  CHECK(!parse_gpu_option("gpus_per_task"));
  CHECK(precision_bytes(WeightPrecision::fp16) == 2);
}

TEST_CASE("[search]: Propulate's defaults, and the values a file gives") {
  auto d = parse("[space]\nfamily='nb201'\n");
  CHECK(d.search.strategy == config::StrategyKind::random);
  CHECK_FALSE(d.search.given);
  CHECK(d.search.crossover == 0.7);
  CHECK(d.search.mutation == 0.4);
  CHECK(d.search.random == 0.1);
  CHECK(d.search.migration == 0.9);
  CHECK(d.search.pollination);
  CHECK(d.search.islands == 1);
  CHECK(d.search.evaluations == 0);
  REQUIRE(d.search.objectives.size() == 1);
  CHECK(d.search.objectives[0] == config::Objective{"val_acc", true});

  auto n = parse("[space]\nfamily='nb201'\n[search]\nstrategy='nsga2'\npopulation=8\nislands=4\ncrossover=0.5\n"
                 "mutation=1.0\nrandom=0\nmigration=0.2\nmigrants=2\npollination=false\nevaluations=300\n"
                 "objectives=['val_acc:max', 'weight_bytes:min', 'local:cpu:latency_s:min']\n"
                 "constraints=['latency_s <= 0.005', 'val_acc >= 0.5']\n");
  CHECK(n.search.given);
  CHECK(n.search.strategy == config::StrategyKind::nsga2);
  CHECK(n.search.population == 8);
  CHECK(n.search.islands == 4);
  CHECK(n.search.crossover == 0.5);
  CHECK(n.search.mutation == 1.0);
  CHECK(n.search.random == 0);
  CHECK(n.search.migration == 0.2);
  CHECK(n.search.migrants == 2);
  CHECK_FALSE(n.search.pollination);
  CHECK(n.search.evaluations == 300);
  REQUIRE(n.search.objectives.size() == 3);
  CHECK(n.search.objectives[1] == config::Objective{"weight_bytes", false});
  CHECK(n.search.objectives[2] == config::Objective{"local:cpu:latency_s", false});
  REQUIRE(n.search.constraints.size() == 2);
  CHECK(n.search.constraints[0].metric == "latency_s");
  CHECK(n.search.constraints[0].at_most);
  CHECK(n.search.constraints[0].bound == 0.005);
  CHECK_FALSE(n.search.constraints[1].at_most);
  // nsga2 without objectives: accuracy against parameters
  auto m = parse("[space]\nfamily='nb201'\n[search]\nstrategy='nsga2'\n");
  REQUIRE(m.search.objectives.size() == 2);
  CHECK(m.search.objectives[1] == config::Objective{"params", false});
}

TEST_CASE("[search]: every refusal names its file, line, column and key") {
  const std::string base = std::string(kBase) + "[space]\nfamily='nb201'\n[search]\n";
  CHECK(error_of(base + "strategy='evolve'\n").find("study.toml:12:10: key 'search.strategy': unknown value 'evolve'") !=
        std::string::npos);
  const std::string evo = base + "strategy='evolution'\n";
  CHECK(error_of(evo + "crossover=1.5\n").find("key 'search.crossover': a probability must be in [0, 1], got 1.5") !=
        std::string::npos);
  CHECK(error_of(evo + "population=1\n").find("key 'search.population': must be at least 2") != std::string::npos);
  CHECK(error_of(evo + "islands=0\n").find("key 'search.islands'") != std::string::npos);
  CHECK(error_of(base + "strategy='nsga2'\nobjectives=['val_acc:max']\n").find("needs at least two objectives") !=
        std::string::npos);
  CHECK(error_of(base + "strategy='evolution'\nobjectives=['val_acc:max','params:min']\n").find("use 'nsga2'") !=
        std::string::npos);
  CHECK(error_of(base + "objectives=['val_ac:max']\n").find("unknown metric 'val_ac', did you mean 'val_acc'?") !=
        std::string::npos);
  CHECK(error_of(base + "objectives=['test_acc:max']\n").find("reported only") != std::string::npos);
  CHECK(error_of(base + "objectives=['val_acc:up']\n").find("must read NAME:min or NAME:max") != std::string::npos);
  CHECK(error_of(base + "objectives=['val_acc:max','val_acc:min']\n").find("listed twice") != std::string::npos);
  CHECK(error_of(base + "constraints=['latency_s < 3']\n").find("NAME <= NUMBER") != std::string::npos);
  CHECK(error_of(base + "constraints=['latency_s <= fast']\n").find("'fast' is not a finite number") != std::string::npos);
  CHECK(error_of(evo + "islands=2\nmigrate=1\n").find("key 'search.migrate': unknown key") != std::string::npos);
}

TEST_CASE("[search]: keys of the island model are refused with strategy random; migrants below population") {
  const std::string base = std::string(kBase) + "[space]\nfamily='nb201'\n[search]\n";
  // strategy random (the default, or named): every island-model key refused at its key
  for (const std::string kv : {"population=8", "islands=2", "crossover=0.5", "mutation=0.5", "random=0.2",
                               "migration=0.5", "migrants=2", "pollination=false", "evaluations=300",
                               "screen=4", "screen_proxies=['zen']"}) {
    CAPTURE(kv);
    const std::string key = kv.substr(0, kv.find('='));
    CHECK(error_of(base + kv + "\n").find("study.toml:12:" + std::to_string(key.size() + 2) + ": key 'search." + key +
                                          "': applies to the evolutionary strategies, and strategy is 'random'") !=
          std::string::npos);
    CHECK(error_of(base + "strategy='random'\n" + kv + "\n").find("study.toml:13:" + std::to_string(key.size() + 2) + ": key 'search." + key + "'") !=
          std::string::npos);
  }
  // objectives and constraints also rank successive halving's rungs: allowed
  CHECK(parse("[space]\nfamily='nb201'\n[search]\nobjectives=['val_acc:max','params:min']\n").search.objectives.size() == 2);
  const std::string evo = base + "strategy='evolution'\n";
  CHECK(error_of(evo + "population=4\nmigrants=4\n").find("study.toml:14:10: key 'search.migrants': must be less than population (4), got 4") !=
        std::string::npos);
  CHECK(error_of(evo + "migrants=20\n").find("must be less than population (20), got 20") != std::string::npos);
  CHECK(parse("[space]\nfamily='nb201'\n[search]\nstrategy='evolution'\npopulation=4\nmigrants=3\n").search.migrants == 3);
  CHECK(error_of(evo + "crossover=0\nmutation=0\n").find("key 'search.mutation': crossover and mutation cannot both be 0") !=
        std::string::npos);
}

// Found by tests/fuzz/fuzz_config (bench/results/fuzz.md): TOML's nan and inf passed the checks
// of number keys; sizes and times past int64 leaked std::out_of_range or overflowed.
TEST_CASE("nan, inf and sizes or times past int64 are refused at their key") {
  const std::string base = std::string(kBase) + "[space]\nfamily='nb201'\n";
  for (const std::string extra : {"[train]\nlease_s = nan\n", "[train]\ngrad_clip = inf\n", "[slurm]\nthroughput = inf\n",
                                  "[budget]\neta = inf\n", "[proxy]\nproxies = ['synflow']\nweights = { synflow = inf }\n"}) {
    CAPTURE(extra);
    CHECK(error_of(base + extra).find("finite number") != std::string::npos);
  }
  auto slurm = [&](const std::string& kv) { return error_of(base + "[slurm]\n" + kv + "\n"); };
  CHECK(slurm("gpu_mem = '" + std::string(400, '9') + "'").find("key 'slurm.gpu_mem': '999") != std::string::npos);
  CHECK(slurm("gpu_mem = '99999999999999999999TiB'").find("is too large") != std::string::npos);
  CHECK(slurm("gpu_mem = '1.2.3GiB'").find("is not a size") != std::string::npos);
  CHECK(slurm("time = '99999999999999999999-00'").find("is not a Slurm time") != std::string::npos);
  CHECK(slurm("time = '999999999999999-00'").find("is not a Slurm time") != std::string::npos);
}

TEST_CASE("[slurm] memory is Slurm's --mem form, checked at its key") {
  const std::string base = std::string(kBase) + "[space]\nfamily='nb201'\n[slurm]\n";
  CHECK(config::parse_slurm_memory("16G") == 16384);
  CHECK(config::parse_slurm_memory("1500") == 1500);
  CHECK(config::parse_slurm_memory("2t") == 2097152);
  CHECK(config::parse_slurm_memory("2048K") == 2);
  CHECK(config::parse_slurm_memory("0") == 0);
  for (const std::string bad : {"16GB", "16 G", "G", "1.5G", "-1G", "9999999999G"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(config::parse_slurm_memory(bad), std::invalid_argument);
  }
  CHECK(error_of(base + "memory = '16GiB'\n").find("key 'slurm.memory': '16GiB' is not a Slurm memory size") != std::string::npos);
  CHECK(parse("[space]\nfamily='nb201'\n[slurm]\nmemory = '64g'\n").slurm.memory == "64g");
  CHECK(parse("[space]\nfamily='nb201'\n[slurm]\nmemory = ''\n").slurm.memory.empty());
}

// Found by tests/fuzz/fuzz_config: toml++ 3.3 reaches __builtin_unreachable when it tests
// U+00A1..U+0499, U+2C5E..U+3057 or U+FB26..U+FEFE for whitespace (marzer/tomlplusplus#190,
// #295), e.g. after a value; minnow hands them to it moved to a private-use plane and back.
TEST_CASE("characters toml++ 3.3 cannot test for whitespace: refused where TOML refuses them, kept in strings") {
  const std::string outside = error_of(std::string(kBase) + "seed = 1\xc9\x85\n");
  CHECK_MESSAGE(outside.rfind("study.toml:9:9: syntax error: ", 0) == 0, outside);
  CHECK_MESSAGE(outside.find("'\xc9\x85'") != std::string::npos, outside);   // the character as written
  const std::string key = error_of(std::string(kBase) + "[space]\nfamily = 'nb201'\n\"\xc3\xa9\" = 1\n");
  CHECK_MESSAGE(key.find("key 'space.\xc3\xa9': unknown key") != std::string::npos, key);
  // in strings and comments they are the user's: after a line-ending backslash, with escapes, in ''' strings
  const auto c = parse_study_config("[study]\nname = \"\"\"\xc3\xa9t\\\n  \xc2\xa7\"\"\" # \xc2\xa7\n[data]\n"
                                    "format = 'synthetic'\nshape = [1, 28, 28]\nclasses = 10\n[space]\nfamily = 'nb201'\n"
                                    "[slurm]\nsetup = ['''\xd0\x96''', \"\\u00e9\\\"\xe3\x80\x81\xef\xbb\xbb\"]\n",
                                    "study.toml");
  CHECK(c.name == "\xc3\xa9t\xc2\xa7");
  CHECK(c.slurm.setup == std::vector<std::string>{"\xd0\x96", "\xc3\xa9\"\xe3\x80\x81\xef\xbb\xbb"});
}

TEST_CASE("[distill]: defaults per loss, the teacher resolved against the file, every refusal at its key") {
  const std::string base = std::string(kBase) + "[space]\nfamily='nb201'\n";
  auto cfg = config::parse_study_config(base + "[distill]\nteacher = 'nets/t.pt'\n", "/s/study.toml");
  CHECK(cfg.distill.given);
  CHECK(cfg.distill.teacher == "/s/nets/t.pt");
  CHECK(cfg.distill.loss == config::DistillLoss::kd);
  CHECK(cfg.distill.temperature == 4);
  CHECK(cfg.distill.alpha == 0.9);
  CHECK(cfg.distill.trials == config::DistillTrials::all);
  CHECK(cfg.distill.targets == config::SoftTargets::automatic);
  CHECK_FALSE(config::parse_study_config(base, "/s/study.toml").distill.given);
  auto dkd = config::parse_study_config(base + "[distill]\nloss = 'dkd'\nbeta = 2\ntrials = 'searched'\n", "/s/study.toml");
  CHECK(dkd.distill.teacher.empty());   // the study's own teacher
  CHECK(dkd.distill.alpha == 1);
  CHECK(dkd.distill.beta == 2);
  CHECK(dkd.distill.warmup_epochs == 20);
  CHECK(dkd.distill.trials == config::DistillTrials::searched);
  CHECK(error_of(base + "[distill]\nloss = 'kl'\n") ==
        "study.toml:12:8: key 'distill.loss': unknown value 'kl', did you mean 'kd'? (expected one of 'kd', 'dkd')");
  CHECK(error_of(base + "[distill]\nbeta = 2\n").find("key 'distill.beta': belongs to loss = \"dkd\"") != std::string::npos);
  CHECK(error_of(base + "[distill]\nalpha = 1.5\n").find("key 'distill.alpha': must be in [0, 1], got 1.5") != std::string::npos);
  CHECK(error_of(base + "[distill]\ntemperature = 0\n").find("key 'distill.temperature'") != std::string::npos);
  CHECK(error_of(base + "[distill]\nteacher = 't.pt'\nteacher_mean = [0.5]\n").find("go together") != std::string::npos);
  CHECK(error_of(base + "[distill]\nteacher_mean = [0.5]\nteacher_std = [0.2]\n").find("give 'teacher' too") !=
        std::string::npos);
  CHECK(error_of(base + "[distill]\nteacher = 't.pt'\nteacher_mean = [0.5]\nteacher_std = [0]\n").find("positive") !=
        std::string::npos);
  CHECK(error_of(base + "[distill]\ntargets = 'precomputed'\n").find("key 'distill.targets'") != std::string::npos);
  CHECK(error_of(base + "[distill]\ntemprature = 2\n").find("did you mean 'temperature'") != std::string::npos);
}

TEST_CASE("[search]: the budgets epochs and wall_time, and proxy-guided moves (screen, screen_proxies)") {
  auto d = parse("[space]\nfamily='nb201'\n");
  CHECK(d.search.epochs == 0);
  CHECK(d.search.wall_time_s == 0);
  CHECK(d.search.screen == 0);
  CHECK(d.search.screen_proxies == std::vector<std::string>{"synflow"});
  // epochs and wall_time bound every strategy, random included
  auto r = parse("[space]\nfamily='nb201'\n[search]\nepochs=120.5\nwall_time='1-12:00:00'\n");
  CHECK(r.search.epochs == 120.5);
  CHECK(r.search.wall_time_s == 36 * 3600);
  auto e = parse("[space]\nfamily='nb201'\n[search]\nstrategy='evolution'\nepochs=300\nscreen=8\n"
                 "screen_proxies=['synflow','zen','params']\n");
  CHECK(e.search.screen == 8);
  CHECK(e.search.screen_proxies == std::vector<std::string>{"synflow", "zen", "params"});
  CHECK(parse("[space]\nfamily='nb201'\n[search]\nstrategy='evolution'\nwall_time='90'\nscreen=2\n").search.screen == 2);
  CHECK(parse("[space]\nfamily='nb201'\n[search]\nstrategy='evolution'\nevaluations=9\nscreen=0\n").search.screen == 0);
  for (const auto& p : config::data_free_proxy_names()) {
    const auto& all = config::proxy_names();
    CHECK(std::find(all.begin(), all.end(), p) != all.end());
  }
}

TEST_CASE("[search]: refusals of the budgets and the screen name their key") {
  const std::string base = std::string(kBase) + "[space]\nfamily='nb201'\n[search]\n";
  const std::string evo = base + "strategy='evolution'\nevaluations=50\n";
  CHECK(error_of(base + "epochs=0\n").find("study.toml:12:8: key 'search.epochs': must be more than 0, got 0") !=
        std::string::npos);
  CHECK(error_of(base + "epochs='ten'\n").find("key 'search.epochs': expected a number") != std::string::npos);
  CHECK(error_of(base + "wall_time='soon'\n").find("key 'search.wall_time': 'soon' is not a Slurm time") !=
        std::string::npos);
  CHECK(error_of(base + "wall_time=3600\n").find("key 'search.wall_time': expected a string") != std::string::npos);
  CHECK(error_of(evo + "screen=1\n").find("study.toml:14:8: key 'search.screen': 1 would score one candidate") !=
        std::string::npos);
  CHECK(error_of(evo + "screen=-2\n").find("key 'search.screen': must be at least 0") != std::string::npos);
  CHECK(error_of(base + "strategy='evolution'\nscreen=4\n").find(
            "key 'search.screen': screens what the workers breed, and they breed only within a budget") != std::string::npos);
  CHECK(error_of(evo + "screen=4\nscreen_proxies=['nwot']\n").find(
            "key 'search.screen_proxies': 'nwot' needs data, and a breeding worker screens without it") != std::string::npos);
  CHECK(error_of(evo + "screen=4\nscreen_proxies=['synflw']\n").find(
            "unknown proxy 'synflw', did you mean 'synflow'?") != std::string::npos);
  CHECK(error_of(evo + "screen=4\nscreen_proxies=[]\n").find("key 'search.screen_proxies': empty list") !=
        std::string::npos);
}
