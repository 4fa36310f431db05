// cli: the options every tool shares (--db, --format, -v/-q, --version), declared once
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "nas/core/about.h"
#include "nas/core/table.h"

namespace nas {

struct CommonOptions {
  std::string db;                  // --db, or NAS_DB
  std::string format = "table";    // --format
  int verbose = 0;                 // -v count
  bool quiet = false;              // -q
  Format parsed_format() const { return parse_format(format); }
};

// Adds --db (unless with_db is false), --format (if with_format), -v, -q and --version to app.
void add_common_options(CLI::App& app, CommonOptions& opts, bool with_db = true,
                        bool with_format = true);

// Adds the common options to a subcommand as well (--db, --format if with_format, -v, -q,
// --version), so that `nas-db status -q` works like `nas-db -q status`.
void add_subcommand_options(CLI::App& sub, CommonOptions& opts, bool with_format = true);

// Validators that say what a value must be: a whole number from lo to hi ("expected a whole
// number from 1 to 1024, got '0'"; a number too large for 64 bits is refused, never clamped),
// and a number at least lo (above lo when strict).
CLI::Validator whole_number(int64_t lo, int64_t hi);
CLI::Validator number_at_least(double lo, bool strict = false);

// Runs a tool: parses argv with app, initialises logging, calls body(), and maps errors to the
// exit codes of the common contract (0 ok, 1 failure, 2 usage). Prints errors as
// "TOOL: error: MESSAGE". Never throws.
int run_tool(CLI::App& app, CommonOptions& opts, int argc, char** argv, const std::function<int()>& body);

// The --db value, falling back to NAS_DB; throws UsageError when neither is set.
std::string require_db(const CommonOptions& opts);

} // namespace nas
