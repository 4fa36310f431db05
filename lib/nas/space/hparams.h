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
};

// The hyperparameters of the trial whose genome has `genome_hash`: fixed values as the
// configuration gives them, searched ones drawn uniformly from their list or range
// (log-uniformly for log ranges). The same (config, seed, hash) always gives the same values.
HParams draw_hparams(const config::TrainConfig& t, uint64_t seed, const std::string& genome_hash);

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
