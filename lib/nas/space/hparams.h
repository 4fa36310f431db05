// hparams: a trial's training hyperparameters, drawn from the study's [train] section. Searched
// values (lists, ranges) make hyperparameters part of the search space: each trial draws its own,
// reproducibly from (study seed, genome hash), and the study file keeps them beside the genome.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "nas/config/study_config.h"
#include "nas/space/genome.h"

namespace nas::space {

struct HParams {
  config::Optimizer optimizer = config::Optimizer::sgd;
  double lr = 0.05;                // peak learning rate
  double momentum = 0.9;           // SGD momentum; AdamW beta1
  bool nesterov = true;
  double weight_decay = 5e-4;
  double label_smoothing = 0;
  double warmup_epochs = 0;
  double grad_clip = 0;            // 0: off
  config::Schedule schedule = config::Schedule::cosine;
  int64_t batch_size = 128;
  // [distill] trials = "searched": whether this trial distills (a gene the search breeds);
  // unset in every other study, and then absent from the JSON.
  std::optional<bool> distill;
};

// The hyperparameters of the trial whose genome has `genome_hash`: fixed values as the
// configuration gives them, searched ones drawn uniformly from their list or range
// (log-uniformly for log ranges). The same (config, seed, hash) always gives the same values.
HParams draw_hparams(const config::TrainConfig& t, uint64_t seed, const std::string& genome_hash);

// The hyperparameters a fresh candidate of the study gets: draw_hparams of its [train], plus the
// distillation gene drawn by draw_distill_gene when [distill] trials = "searched".
HParams draw_hparams(const config::StudyConfig& cfg, const std::string& genome_hash);

// The distillation gene a fresh candidate draws: on or off with probability 1/2 each,
// reproducibly from (study seed, genome hash).
bool draw_distill_gene(uint64_t seed, const std::string& genome_hash);

// Whether the trial with this genome hash and stored trial.hparams text ("" when none) distills:
// [distill] trials = all or none; searched: its stored gene, else (trials stored before the gene
// was) the draw.
bool trial_distills(const config::StudyConfig& cfg, const std::string& genome_hash, const std::string& hparams);

// A stored trial's hyperparameters: its trial.hparams text when it has one, else (files from
// before hyperparameters were stored) the ones draw_hparams gives its genome. Throws
// UsageError as parse_hparams does.
HParams trial_hparams(const config::StudyConfig& cfg, const Genome& g, const std::optional<std::string>& stored);

// Canonical JSON (sorted keys) of the hyperparameters, as stored in trial.hparams.
std::string hparams_json(const HParams& h);

// Reads trial.hparams text. Keys it lacks keep the values of `defaults`. Throws UsageError
// for text that is not a JSON object, has values of the wrong type, or names an unknown
// optimizer or schedule.
HParams parse_hparams(const std::string& json, const HParams& defaults);

} // namespace nas::space
