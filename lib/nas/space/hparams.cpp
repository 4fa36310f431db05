// hparams: drawing, writing and reading a trial's training hyperparameters
#include "nas/space/hparams.h"
#include "nas/core/error.h"
#include "nas/core/random.h"
#include "nas/core/sha256.h"

#include <nlohmann/json.hpp>

#include <cmath>

namespace nas::space {
namespace {

double draw(const config::RealChoice& c, Rng& rng) {
  if (!c.range) return c.values.size() == 1 ? c.values[0] : rng.pick(c.values);
  const double u = rng.uniform();
  if (c.log) return std::exp(std::log(c.min) + u * (std::log(c.max) - std::log(c.min)));
  return c.min + u * (c.max - c.min);
}

uint64_t stream_of(const std::string& hash) {
  // The first 16 hex digits of the genome hash: a stream per genome, stable across machines.
  return std::stoull(hash.substr(0, 16), nullptr, 16);
}

} // namespace

HParams draw_hparams(const config::TrainConfig& t, uint64_t seed, const std::string& genome_hash) {
  Rng rng(seed ^ 0x68706172616d73ULL, genome_hash.size() >= 16 ? stream_of(genome_hash) : 0);
  HParams h;
  // Always draw in the same order, so adding a searched value later changes only itself.
  h.optimizer = rng.pick(t.optimizer.values);
  h.lr = draw(t.lr, rng);
  h.momentum = draw(t.momentum, rng);
  h.weight_decay = draw(t.weight_decay, rng);
  h.label_smoothing = draw(t.label_smoothing, rng);
  h.warmup_epochs = draw(t.warmup_epochs, rng);
  h.batch_size = rng.pick(t.batch_size.values);
  h.nesterov = t.nesterov;
  h.grad_clip = t.grad_clip;
  h.schedule = t.schedule;
  return h;
}

HParams draw_hparams(const config::StudyConfig& cfg, const std::string& genome_hash) {
  HParams h = draw_hparams(cfg.train, cfg.seed, genome_hash);
  if (cfg.distill.given && cfg.distill.trials == config::DistillTrials::searched)
    h.distill = draw_distill_gene(cfg.seed, genome_hash);
  return h;
}

bool draw_distill_gene(uint64_t seed, const std::string& genome_hash) {
  const uint64_t h = std::stoull(genome_hash.substr(0, 15), nullptr, 16);
  return (mix_seed(seed ^ 0x64697374696c6cULL, h) >> 11) & 1;   // "distill"
}

bool trial_distills(const config::StudyConfig& cfg, const std::string& genome_hash, const std::string& hparams) {
  switch (cfg.distill.trials) {
    case config::DistillTrials::all: return true;
    case config::DistillTrials::none: return false;
    case config::DistillTrials::searched: break;
  }
  if (!hparams.empty())
    if (const auto gene = parse_hparams(hparams, HParams{}).distill) return *gene;
  return draw_distill_gene(cfg.seed, genome_hash);
}

HParams trial_hparams(const config::StudyConfig& cfg, const Genome& g, const std::optional<std::string>& stored) {
  return stored ? parse_hparams(*stored, HParams{}) : draw_hparams(cfg, genome_hash(g));
}

std::string hparams_json(const HParams& h) {
  nlohmann::json j{{"optimizer", config::to_string(h.optimizer)}, {"lr", h.lr}, {"momentum", h.momentum},
                   {"nesterov", h.nesterov}, {"weight_decay", h.weight_decay},
                   {"label_smoothing", h.label_smoothing}, {"warmup_epochs", h.warmup_epochs},
                   {"grad_clip", h.grad_clip}, {"schedule", config::to_string(h.schedule)}, {"batch_size", h.batch_size}};
  if (h.distill) j["distill"] = *h.distill;
  return j.dump();   // nlohmann's object keeps keys sorted
}

HParams parse_hparams(const std::string& text, const HParams& defaults) {
  HParams h = defaults;
  std::string optimizer = config::to_string(h.optimizer), schedule = config::to_string(h.schedule);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
    if (!j.is_object()) throw UsageError("trial hyperparameters are not a JSON object: '" + text + "'");
    auto get = [&](const char* k, auto& out) {
      if (j.contains(k)) out = j.at(k).get<std::decay_t<decltype(out)>>();
    };
    get("optimizer", optimizer);
    get("lr", h.lr);
    get("momentum", h.momentum);
    get("nesterov", h.nesterov);
    get("weight_decay", h.weight_decay);
    get("label_smoothing", h.label_smoothing);
    get("warmup_epochs", h.warmup_epochs);
    get("grad_clip", h.grad_clip);
    get("schedule", schedule);
    get("batch_size", h.batch_size);
    if (j.contains("distill")) h.distill = j.at("distill").get<bool>();
  } catch (const nlohmann::json::exception& e) {
    throw UsageError("trial hyperparameters '" + text + "': " + e.what());
  }
  if (auto o = config::parse_optimizer(optimizer)) h.optimizer = *o;
  else throw UsageError("trial hyperparameters: unknown optimizer '" + optimizer + "'");
  if (auto s = config::parse_schedule(schedule)) h.schedule = *s;
  else throw UsageError("trial hyperparameters: unknown schedule '" + schedule + "'");
  if (h.batch_size < 1) throw UsageError("trial hyperparameters: batch_size must be at least 1");
  return h;
}

} // namespace nas::space
