// cli: shared options and the error-to-exit-code mapping of every tool's main
#include "nas/app/cli.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/text.h"
#include "nas/core/version.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iostream>

namespace nas {


void add_common_options(CLI::App& app, CommonOptions& opts, bool with_db, bool with_format) {
  if (with_db)
    app.add_option("--db", opts.db, "study file (SQLite) [$NAS_DB]")->option_text("PATH");
  if (with_format)
    app.add_option("--format", opts.format, "output format: table, tsv, csv or json [table]")
        ->option_text("FMT");
  app.add_flag("-v,--verbose", opts.verbose, "more messages on stderr (repeat for debug)");
  app.add_flag("-q,--quiet", opts.quiet, "only errors on stderr");
  app.set_version_flag("--version",
                       [] { return std::string("minnow " NAS_VERSION) + (version_detail ? " (" + version_detail() + ")" : ""); },
                       "print the version and exit");
}

void add_subcommand_options(CLI::App& sub, CommonOptions& opts, bool with_format) {
  sub.add_option("--db", opts.db, "study file (SQLite) [$NAS_DB]")->option_text("PATH");
  if (with_format) sub.add_option("--format", opts.format, "output format: table, tsv, csv or json")->option_text("FMT");
  sub.add_flag("-v,--verbose", opts.verbose, "more messages on stderr (repeat for debug)");
  sub.add_flag("-q,--quiet", opts.quiet, "only errors on stderr");
  sub.set_version_flag("--version",
                       [] { return std::string("minnow " NAS_VERSION) + (version_detail ? " (" + version_detail() + ")" : ""); },
                       "print the version and exit");
}

CLI::Validator whole_number(int64_t lo, int64_t hi) {
  const std::string want = "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, want](std::string& s) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || end == s.c_str() || *end || errno == ERANGE || v < lo || v > hi) return want + ", got '" + s + "'";
        return "";
      },
      "INT");
}

CLI::Validator number_at_least(double lo, bool strict) {
  const std::string want = std::string("expected a number ") + (strict ? "above " : "of at least ") + format_number(lo);
  return CLI::Validator(
      [lo, strict, want](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end == s.c_str() || *end || !std::isfinite(v) || v < lo || (strict && v == lo))
          return want + ", got '" + s + "'";
        return "";
      },
      "NUMBER");
}

std::string require_db(const CommonOptions& opts) {
  if (!opts.db.empty()) return opts.db;
  if (const char* env = std::getenv("NAS_DB"); env && *env) return env;
  throw UsageError("no study file: give --db PATH or set NAS_DB");
}

namespace {

// "unknown subcommand 'X' (expected a, b or c)" when the first word after the options is not
// one of the tool's subcommands; "" otherwise (or for a tool without subcommands).
std::string unknown_subcommand(CLI::App& app, int argc, char** argv) {
  const auto subs = app.get_subcommands([](CLI::App*) { return true; });
  if (subs.empty()) return "";
  std::vector<std::string> names;
  for (const auto* s : subs) names.push_back(s->get_name());
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.empty() || a[0] == '-') {
      if (a == "--db" || a == "--format") ++i;   // an option's value is no subcommand
      continue;
    }
    if (std::find(names.begin(), names.end(), a) != names.end()) return "";
    return "unknown subcommand '" + a + "'" + suggestion_suffix(a, names) + " (expected " + quoted_list(names) + ")";
  }
  return "";
}

} // namespace

int run_tool(CLI::App& app, CommonOptions& opts, int argc, char** argv, const std::function<int()>& body) {
  std::string name = app.get_name();
  log::init(name, log::Level::normal);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp& e) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    if (const std::string sub = unknown_subcommand(app, argc, argv); !sub.empty()) msg = sub;
    if (!msg.empty()) msg[0] = char(std::tolower(static_cast<unsigned char>(msg[0])));
    while (!msg.empty() && (msg.back() == '.' || msg.back() == '\n')) msg.pop_back();
    log::error(msg + " (see '" + name + " --help')");
    return int(Exit::usage);
  }
  log::Level level = opts.quiet ? log::Level::quiet
                     : opts.verbose >= 2 ? log::Level::debug
                     : opts.verbose == 1 ? log::Level::verbose
                                         : log::Level::normal;
  log::init(name, level);
  try {
    return body();
  } catch (const Error& e) {
    log::error(e.what());
    return int(e.code());
  } catch (const std::exception& e) {
    log::error(first_line(e.what()));
    return int(Exit::failure);
  }
}

} // namespace nas
