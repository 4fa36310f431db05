// sample: what nas-sample does -- create the study, sample or add candidates, print them
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace nas::app {

struct SampleOptions {
  std::string db;                    // study file
  std::string config;                // study TOML ("" : use the stored one)
  bool replace_config = false;       // replace a different stored configuration
  int64_t count = 0;                 // -n: candidates to sample
  std::vector<std::string> archs;    // --arch: NB201 architecture strings
  std::string genome_file;           // --genome FILE or "-" (stdin): canonical JSON per line
  bool queue = false;                // --queue: new candidates go straight to the training queue
  int64_t budget = 0;                // --budget: epochs the queued candidates train (0: [train] epochs)
  std::string format;                // "" (ids when sampling, table when adding), ids, table, tsv, csv, json
};

// Runs nas-sample; writes data to out. Returns the exit code (0 also when every given
// candidate was a duplicate). Throws nas::Error subclasses for failures.
int run_sample(const SampleOptions& opts, std::ostream& out);

} // namespace nas::app
