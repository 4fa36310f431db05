// sample: nas-sample's work. Sampling draws from the stream (study seed, batch number), where
// the batch number is reserved in the study file, so that serial runs are reproducible and
// concurrent runs draw different candidates; duplicates are refused by the unique index.
#include "nas/app/sample.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/table.h"
#include "nas/core/text.h"
#include "nas/core/version.h"
#include "nas/data/probe.h"
#include "nas/space/hparams.h"
#include "nas/search/breed.h"
#include "nas/search/policy.h"
#include "nas/search/strategy.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/open.h"
#include "nas/store/study.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>

namespace nas::app {
namespace {

store::NewTrial make_trial(const space::Genome& g, const space::Sampler& sampler, const config::StudyConfig& cfg,
                           const std::string& origin, bool queue, int64_t budget) {
  space::Cost c = sampler.cost(g);
  store::NewTrial t;
  t.genome = space::canonical(g);
  t.hash = space::genome_hash(g);
  t.arch = space::summary(g);
  t.origin = origin;
  t.params = c.params;
  t.macs = c.macs;
  t.peak_act_bytes = c.peak_activation_bytes;
  t.weight_bytes = c.weight_bytes;
  t.hparams = space::hparams_json(space::draw_hparams(cfg, t.hash));
  auto v = space::violations(c, cfg.constraints);
  if (!v.empty()) {
    t.state = store::TrialState::pruned;
    t.reason = "constraint: " + join(v, ", ");
  } else if (queue) {
    t.state = store::TrialState::queued;   // rung 0; without a budget workers train to [train] epochs
    if (budget > 0) t.budget = double(budget);
  }
  return t;
}

// The given configuration, creating the study with it (and what probing its data found) or
// checking that it matches the study in the file.
config::StudyConfig create_or_check(store::Db& db, const SampleOptions& o, const config::StudyConfig& given,
                                    const config::DataProbe& probe) {
  auto existing = store::load_study(db);
  const config::StudyConfig& cfg = given;
  store::StudyRecord rec{cfg.name, cfg.text, cfg.path, cfg.canonical_hash, cfg.seed, cfg.space.family, 0, NAS_VERSION};
  if (!existing) {
    store::StudyRecord now;
    db.write([&] {   // the study and its data probe together
      now = store::create_study(db, rec);
      if (now.config_hash == cfg.canonical_hash && !store::load_data_probe(db)) store::save_data_probe(db, probe);
    });
    if (now.config_hash == cfg.canonical_hash) {
      log::verbose("study '" + cfg.name + "' in '" + o.db + "'");
      return cfg;
    }
    existing = now;   // another process created it with another configuration
  }
  if (existing->config_hash != cfg.canonical_hash) {
    if (!o.replace_config)
      throw UsageError("'" + o.db + "' holds study '" + existing->name + "' created from another configuration ('" +
                       existing->config_path + "'): use --replace-config to replace it, or another --db");
    if (existing->family != cfg.space.family)
      throw UsageError("cannot replace the configuration of '" + o.db + "': its family '" + existing->family +
                       "' differs from '" + cfg.space.family + "'");
    db.write([&] {
      store::replace_config(db, rec);
      store::save_data_probe(db, probe);
    });
    log::warning("replaced the configuration of study '" + existing->name + "'");
    return cfg;
  }
  // The same configuration: new trials are costed for the data the study was created with.
  if (auto recorded = store::load_data_probe(db)) data::check_same_data(cfg, probe, *recorded);
  else store::save_data_probe(db, probe);
  return cfg;
}

std::vector<space::Genome> read_given(const SampleOptions& o) {
  std::vector<space::Genome> out;
  for (const auto& a : o.archs) {
    space::Genome g;
    g.family = "nb201";
    try {
      g.nb201 = space::parse_nb201_arch(a);
    } catch (const UsageError& e) {
      throw UsageError(std::string("--arch: ") + e.what());
    }
    out.push_back(g);
  }
  if (!o.genome_file.empty()) {
    std::ifstream file;
    std::istream* in = &std::cin;
    std::string name = o.genome_file == "-" ? "<stdin>" : o.genome_file;
    if (o.genome_file != "-") {
      if (std::filesystem::is_directory(o.genome_file))
        throw UsageError("--genome: '" + o.genome_file + "' is a directory: give a file of JSON genomes, one per line");
      file.open(o.genome_file);
      if (!file) throw UsageError("cannot open '" + o.genome_file + "': no such file or unreadable");
      in = &file;
    }
    std::string line;
    int lineno = 0;
    while (std::getline(*in, line)) {
      ++lineno;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        out.push_back(space::genome_from_json(line));
      } catch (const UsageError& e) {
        throw UsageError(name + ":" + std::to_string(lineno) + ": " + e.what());
      }
    }
    if (out.size() == o.archs.size()) throw UsageError("--genome: '" + name + "' holds no genome (JSON, one per line)");
  }
  return out;
}

void print(std::ostream& out, const SampleFormat& format, const std::vector<store::NewTrial>& trials,
           const std::vector<store::Inserted>& ins, bool show_status) {
  if (format.ids) {
    for (size_t i = 0; i < ins.size(); ++i)
      if (!ins[i].duplicate) out << ins[i].id << "\n";
    return;
  }
  std::vector<std::string> cols = {"id", "arch", "params", "macs", "peak_act_bytes", "weight_bytes"};
  if (show_status) cols.push_back("status");
  Table t(cols);
  for (size_t i = 0; i < ins.size(); ++i) {
    const auto& tr = trials[i];
    std::vector<nlohmann::json> row = {ins[i].id, tr.arch, tr.params, tr.macs, tr.peak_act_bytes, tr.weight_bytes};
    if (show_status) row.push_back(ins[i].duplicate ? "duplicate" : tr.state == store::TrialState::pruned ? "pruned" : "added");
    t.add(row);
  }
  t.write(out, format.table);
}

void check_budget(const SampleOptions& o, const config::StudyConfig& cfg) {
  if (o.budget > cfg.train.epochs)
    throw UsageError("--budget: " + std::to_string(o.budget) + " epochs is more than the study's train.epochs (" +
                     std::to_string(cfg.train.epochs) + ")");
}

// --arch/--genome: adds the given genomes (pruned when they break a constraint) and prints them.
void add_given(store::Db& db, const SampleOptions& o, const config::StudyConfig& cfg, const space::Sampler& sampler,
               const std::vector<space::Genome>& given_genomes, const SampleFormat& format, std::ostream& out) {
  std::vector<store::NewTrial> trials;
  for (const auto& g : given_genomes) {
    if (g.family != cfg.space.family)
      throw UsageError("'" + space::summary(g) + "' is a " + g.family + " genome; study '" + cfg.name + "' searches the " +
                       cfg.space.family + " family");
    std::string outside = space::outside_space(g, cfg.space);
    if (!outside.empty()) log::warning("'" + space::summary(g) + "' is outside the search space: " + outside);
    trials.push_back(make_trial(g, sampler, cfg, "given", o.queue, o.budget));
    if (trials.back().state == store::TrialState::pruned) log::warning("'" + trials.back().arch + "' added as pruned: " + trials.back().reason);
  }
  auto ins = store::insert_trials(db, trials, "add");
  for (size_t i = 0; i < ins.size(); ++i)
    if (ins[i].duplicate) log::info("'" + trials[i].arch + "' is already trial " + std::to_string(ins[i].id));
  print(out, format, trials, ins, true);
}

// -n: samples o.count new unique candidates and prints them. Throws Error when the space runs
// out of unique candidates first (those found are added and printed).
void sample_new(store::Db& db, const SampleOptions& o, const config::StudyConfig& cfg, const space::Sampler& sampler,
                const SampleFormat& format, std::ostream& out) {
  int64_t batch = store::next_sample_batch(db);
  Rng rng(cfg.seed, uint64_t(batch));
  log::verbose("sampling " + std::to_string(o.count) + " candidates (seed " + std::to_string(cfg.seed) + ", batch " +
               std::to_string(batch) + ")");
  // Random whatever the file's strategy (nas-sample --strategy random on an evolutionary study):
  // the stream is then a random study's with the same seed.
  config::SearchConfig random_search = cfg.search;
  random_search.strategy = config::StrategyKind::random;
  const auto strategy = search::make_strategy(random_search, sampler);
  std::vector<store::NewTrial> added;
  std::vector<store::Inserted> added_ids;
  int64_t fruitless = 0;                       // draws in a row that gave no new candidate
  const int64_t fruitless_limit = 20000 + 20 * o.count;
  while (int64_t(added.size()) < o.count) {
    std::vector<store::NewTrial> chunk;
    std::set<std::string> hashes;
    int64_t want = std::min<int64_t>(o.count - int64_t(added.size()), 512);
    while (int64_t(chunk.size()) < want && fruitless < fruitless_limit) {
      space::Genome g = strategy->propose({}, rng, [](const space::Genome&) { return false; }).genome;
      store::NewTrial t = make_trial(g, sampler, cfg, "sample", o.queue, o.budget);
      if (!hashes.insert(t.hash).second) { ++fruitless; continue; }
      chunk.push_back(std::move(t));
    }
    if (chunk.empty()) break;
    auto ins = store::insert_trials(db, chunk, "sample");
    for (size_t i = 0; i < ins.size(); ++i) {
      if (ins[i].duplicate) { ++fruitless; continue; }
      fruitless = 0;
      added.push_back(chunk[i]);
      added_ids.push_back(ins[i]);
    }
    if (fruitless >= fruitless_limit) break;
  }
  print(out, format, added, added_ids, false);
  if (int64_t(added.size()) < o.count)
    throw Error("the space has no more unique candidates under the constraints: added " + std::to_string(added.size()) +
                " of " + std::to_string(o.count) + " after " + std::to_string(fruitless) + " draws in a row gave only duplicates");
  log::info("added " + std::to_string(added.size()) + " candidates to '" + o.db + "'" +
            (o.queue ? ", queued for training (" + std::to_string(o.budget ? o.budget : cfg.train.epochs) + " epochs)" : ""));
}

// -n with an evolutionary strategy: o.count breeding events, one transaction each, on the
// islands in turn. Throws Error when the space runs out of new candidates first.
void breed_new(store::Db& db, const SampleOptions& o, const config::StudyConfig& cfg, config::StrategyKind kind,
               const SampleFormat& format, std::ostream& out) {
  const search::Breeder breeder(cfg, kind);
  std::vector<store::NewTrial> added;
  std::vector<store::Inserted> ids;
  for (int64_t i = 0; i < o.count; ++i) {
    search::BreedRequest r;
    r.island = store::count_breedings(db) % breeder.cfg().search.islands;
    r.state = o.queue ? store::TrialState::queued : store::TrialState::sampled;
    if (o.budget > 0) r.budget = double(o.budget);
    const auto bred = search::breed(db, breeder, r);
    if (!bred) throw Error("the space has no more unique candidates near the islands: bred " + std::to_string(i) +
                           " of " + std::to_string(o.count));
    added.push_back(bred->trial);
    ids.push_back({bred->trial_id, false});
  }
  print(out, format, added, ids, false);
  log::info("bred " + std::to_string(o.count) + " candidates (" + config::to_string(kind) + ") into '" + o.db + "'");
  // nas-sample loads no LibTorch: the proxies of proxy-guided moves are scored by the workers
  if (cfg.search.screen > 1) log::info("[search] screen applies to the workers' breeding (nas-train): these were not screened");
}

} // namespace

SampleFormat parse_sample_format(const std::string& s) {
  if (s == "ids") return {true, Format::table};
  return {false, parse_format(s)};
}

config::StrategyKind parse_strategy_option(const std::string& s) {
  if (auto k = config::parse_strategy(s)) return *k;
  throw UsageError("--strategy: unknown strategy '" + s + "'" + suggestion_suffix(s, {"random", "evolution", "nsga2"}) +
                   " (expected random, evolution or nsga2)");
}

int run_sample(const SampleOptions& o, std::ostream& out) {
  bool given = !o.archs.empty() || !o.genome_file.empty();
  if (given && o.count > 0) throw UsageError("-n samples new candidates; --arch and --genome add given ones: use one or the other");
  if (!given && o.count <= 0) throw UsageError("nothing to do: give -n N, --arch STRING or --genome FILE");
  if (o.budget != 0 && !o.queue) throw UsageError("--budget: give --queue too (the budget is the queued trials' epochs)");
  if (o.strategy && given) throw UsageError("--strategy applies to -n, not to --arch or --genome");
  if (o.budget < 0) throw UsageError("--budget: " + std::to_string(o.budget) + " epochs: expected at least 1");
  const SampleFormat format = o.format.value_or(SampleFormat{!given, Format::table});

  // Everything that can be checked without the file is checked before it is created.
  std::vector<space::Genome> given_genomes = read_given(o);
  config::StudyConfig pre;
  config::DataProbe probe;
  if (!o.config.empty()) {
    pre = config::load_study_config(o.config);
    probe = data::probe_study_data(pre);   // the one probe of the data files, kept in the study file
    if (!given) {  // constraints no candidate can satisfy are a configuration error, found before writing
      Rng probe(pre.seed, ~uint64_t(0));
      space::Sampler(pre).draw_feasible(probe);
    }
  }

  if (!o.config.empty()) check_budget(o, pre);
  if (o.config.empty() && !std::filesystem::exists(o.db))
    throw UsageError("cannot open '" + o.db + "': no such file (give --config FILE to create the study)");
  std::optional<store::OpenStudy> stored;
  if (o.config.empty()) stored.emplace(store::open_study(o.db, store::Access::read_write));
  store::Db db = stored ? std::move(stored->db) : store::Db::open(o.db, store::OpenMode::create);
  config::StudyConfig cfg = stored ? std::move(stored->cfg) : create_or_check(db, o, pre, probe);
  check_budget(o, cfg);   // the stored configuration (a given one was checked before writing)
  space::Sampler sampler(cfg);

  const config::StrategyKind kind = o.strategy.value_or(cfg.search.strategy);
  if (given) add_given(db, o, cfg, sampler, given_genomes, format, out);
  else if (kind != config::StrategyKind::random) breed_new(db, o, cfg, kind, format, out);
  else sample_new(db, o, cfg, sampler, format, out);
  return 0;
}

} // namespace nas::app
