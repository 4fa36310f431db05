// measure: nas-measure's options -- flags over the study's [measure] section, the choice of
// trials (--trials, --front) -- and the dispatch to lib/nas/measure
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "nas/app/cli.h"

namespace nas::app {

// What the command line said; unset optionals leave the study's [measure] value.
struct MeasureFlags {
  std::optional<std::string> backend, board, build_mode, url, token_file, device;
  std::optional<bool> quantize;
  std::optional<int64_t> inflight, batch, runs, warmup, threads;
  std::optional<double> wait_s;
  std::string trials;                    // "1,4,7-9"
  std::vector<std::string> front;        // NAME:DIR objectives: the trials on their front
  std::vector<std::string> kinds;        // export --as
  std::string user;                      // login --user
};

void add_measure_options(CLI::App& app, MeasureFlags& f);
// --trials and --front (on the tool and on `export`).
void add_selection_options(CLI::App& app, MeasureFlags& f);

enum class MeasureAction { measure, export_files, boards, status, login };

int run_measure_tool(MeasureAction action, const MeasureFlags& f, const CommonOptions& common, std::ostream& out);

// "1,4,7-9" -> {1, 4, 7, 8, 9}; throws UsageError naming --trials.
std::vector<int64_t> parse_trial_list(const std::string& text);

} // namespace nas::app
