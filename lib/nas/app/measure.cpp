// measure: nas-measure's flags and choice of trials over lib/nas/measure
#include "nas/app/measure.h"

#include "nas/app/pareto.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/measure/remote.h"
#include "nas/measure/run.h"
#include "nas/store/open.h"

#include <algorithm>

namespace nas::app {

void add_measure_options(CLI::App& app, MeasureFlags& f) {
  app.add_option("--backend", f.backend, "local, mimaas or http [[measure] backend, else local]")
      ->option_text("NAME")->check(CLI::IsMember({"local", "mimaas", "http"}));
  app.add_option("--board", f.board, "mimaas/http: the board type to measure on, e.g. nrf5340dk")->option_text("NAME");
  auto* q = app.add_flag_callback("--quantize", [&f] { f.quantize = true; }, "mimaas/http: upload the int8 model [the default]");
  app.add_flag_callback("--float", [&f] { f.quantize = false; }, "mimaas/http: upload the float32 model")->excludes(q);
  app.add_option("--build-mode", f.build_mode, "mimaas: pristine or fast [pristine]")
      ->option_text("MODE")->check(CLI::IsMember({"pristine", "fast"}));
  app.add_option("--url", f.url, "the platform's API [MIMAAS_API_URL, else the public MIMaaS API]")->option_text("URL");
  app.add_option("--token-file", f.token_file, "a 0600 file with the API token [MIMAAS_API_TOKEN, else ~/.mimaas/token]")
      ->option_text("FILE");
  app.add_option("--inflight", f.inflight, "remote requests in flight at once [4]")->option_text("N")->check(whole_number(1, 64));
  app.add_option("--wait", f.wait_s, "give up waiting for the platform after this many seconds [3600]")
      ->option_text("S")->check(number_at_least(0));
  app.add_option("--device", f.device, "local: cpu or cuda:N [cpu]")->option_text("DEV");
  app.add_option("--batch", f.batch, "local: the batch measured besides batch 1 [32]")->option_text("N")->check(whole_number(1, 65536));
  app.add_option("--runs", f.runs, "local: timed runs per batch size [200]")->option_text("N")->check(whole_number(5, 1000000));
  app.add_option("--warmup", f.warmup, "local: untimed runs first [20]")->option_text("N")->check(whole_number(0, 100000));
  app.add_option("--threads", f.threads, "local: CPU threads, pinned [1]")->option_text("N")->check(whole_number(1, 1024));
  add_selection_options(app, f);
}

void add_selection_options(CLI::App& app, MeasureFlags& f) {
  auto* t = app.add_option("--trials", f.trials, "these trials, e.g. 1,4,7-9 [finished trials not yet measured there]")
                ->option_text("LIST");
  app.add_option("--front", f.front, "the trials on the Pareto front of these objectives (NAME:min|max, repeat)")
      ->option_text("OBJ")->excludes(t);
}

std::vector<int64_t> parse_trial_list(const std::string& text) {
  std::vector<int64_t> ids;
  size_t pos = 0;
  auto bad = [&](const std::string& why) { throw UsageError("--trials: " + why + " in '" + text + "'"); };
  auto number = [&](const std::string& s) -> int64_t {
    if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), ::isdigit)) bad("'" + s + "' is not a trial id");
    return std::stoll(s);
  };
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string part = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t dash = part.find('-');
    if (dash == std::string::npos) {
      ids.push_back(number(part));
    } else {
      int64_t a = number(part.substr(0, dash)), b = number(part.substr(dash + 1));
      if (b < a || b - a > 1000000) bad("the range '" + part + "' is empty or too long");
      for (int64_t i = a; i <= b; ++i) ids.push_back(i);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

namespace {

void apply(const MeasureFlags& f, config::MeasureConfig& m) {
  if (f.backend) m.backend = *f.backend;
  if (f.board) m.board = *f.board;
  if (f.quantize) m.quantize = *f.quantize;
  if (f.build_mode) m.build_mode = *f.build_mode;
  if (f.url) m.url = *f.url;
  if (f.token_file) m.token_file = *f.token_file;
  if (f.device) m.device = *f.device;
  if (f.inflight) m.inflight = *f.inflight;
  if (f.batch) m.batch = *f.batch;
  if (f.runs) m.runs = *f.runs;
  if (f.warmup) m.warmup = *f.warmup;
  if (f.threads) m.threads = *f.threads;
  if (f.wait_s) m.wait_s = *f.wait_s;
}

measure::MeasureOptions options(const MeasureFlags& f, const CommonOptions& common) {
  measure::MeasureOptions o;
  o.db = require_db(common);
  o.format = common.parsed_format();
  o.apply_flags = [f](config::MeasureConfig& m) { apply(f, m); };
  if (!f.trials.empty()) {
    o.trials = parse_trial_list(f.trials);
    o.trials_given = true;
  } else if (!f.front.empty()) {
    store::OpenStudy opened = store::open_study(o.db, store::Access::read_only);
    ParetoOptions p;
    p.db = o.db;
    p.objectives = f.front;
    o.trials = front_trials(opened.db, p);
    o.trials_given = true;
  }
  return o;
}

// The [measure] settings for the subcommands that need no study (boards, login): the study's
// when --db is given, with the flags over them.
config::MeasureConfig settings_without_study(const MeasureFlags& f, const CommonOptions& common) {
  config::MeasureConfig m;
  if (!common.db.empty()) m = store::open_study(common.db, store::Access::read_only).cfg.measure;
  apply(f, m);
  if (m.backend == "local") m.backend = "mimaas";
  return m;
}

} // namespace

int run_measure_tool(MeasureAction action, const MeasureFlags& f, const CommonOptions& common, std::ostream& out) {
  switch (action) {
    case MeasureAction::measure: return measure::run_measure(options(f, common), out);
    case MeasureAction::export_files:
      return measure::run_export(options(f, common), f.kinds.empty() ? std::vector<std::string>{"tflite-int8"} : f.kinds, out);
    case MeasureAction::boards: return measure::run_boards(settings_without_study(f, common), common.parsed_format(), out);
    case MeasureAction::status: {
      const std::string db = require_db(common);
      config::MeasureConfig m = store::open_study(db, store::Access::read_only).cfg.measure;
      apply(f, m);
      return measure::run_status(db, m, common.parsed_format(), out);
    }
    case MeasureAction::login: return measure::run_login(settings_without_study(f, common), f.user, out);
  }
  return 2;
}

} // namespace nas::app
