// sample: what nas-sample does -- create the study, sample or add candidates, print them
#pragma once
#include <ostream>
#include <string>
#include <optional>
#include <vector>

#include "nas/config/study_config.h"
#include "nas/core/table.h"

namespace nas::app {

// What nas-sample prints: the new trials' ids, one a line, or a table of them.
struct SampleFormat {
  bool ids = false;                  // ids, one a line (then `table` is unused)
  Format table = Format::table;
};

// --format's value: "ids" or a table format's name. Throws UsageError (exit 2) for any other.
SampleFormat parse_sample_format(const std::string& s);

// --strategy's value: random, evolution or nsga2. Throws UsageError (exit 2) for any other.
config::StrategyKind parse_strategy_option(const std::string& s);

struct SampleOptions {
  std::string db;                    // study file
  std::string config;                // study TOML ("" : use the stored one)
  bool replace_config = false;       // replace a different stored configuration
  int64_t count = 0;                 // -n: candidates to sample
  std::vector<std::string> archs;    // --arch: NB201 architecture strings
  std::string genome_file;           // --genome FILE or "-" (stdin): canonical JSON per line
  bool queue = false;                // --queue: new candidates go straight to the training queue
  int64_t budget = 0;                // --budget: epochs the queued candidates train (0: [train] epochs)
  std::optional<SampleFormat> format;  // none: ids when sampling, a table when adding
  std::optional<config::StrategyKind> strategy;  // --strategy: overrides [search] strategy for -n
};

// Runs nas-sample; writes data to out. Returns the exit code (0 also when every given
// candidate was a duplicate). Throws nas::Error subclasses for failures.
int run_sample(const SampleOptions& opts, std::ostream& out);

} // namespace nas::app
