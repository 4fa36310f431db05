// open: opening a study file the same way in every tool
#include "nas/store/open.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/data/probe.h"
#include "nas/space/cost.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"

#include <filesystem>

namespace nas::store {

UsageError no_study_error(const std::string& path) {
  return UsageError("'" + path + "' holds no study: create it with nas-sample --config FILE");
}

Db open_study_file(const std::string& path, Access access) {
  if (!std::filesystem::exists(path)) throw UsageError("cannot open '" + path + "': no such file");
  // SQLite takes an empty file for an empty database, and opening it for writing would give it
  // the schema: a tool that needs a study leaves the file as it was.
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) == 0)
    throw no_study_error(path);
  return Db::open(path, access == Access::read_write ? OpenMode::existing : OpenMode::read_only);
}

// A study without a recorded probe: its trials were costed for the data they had when it was
// created. The first costed trial's parameter count, recomputed for the data the files hold
// now, tells whether those files were replaced by others of another shape or classes.
static void check_costs_unchanged(Db& db, const config::StudyConfig& cfg) {
  std::optional<std::pair<std::string, int64_t>> first;
  db.read([&] {
    Statement q = db.prepare("SELECT genome, params FROM trial WHERE params IS NOT NULL ORDER BY id LIMIT 1");
    first.reset();
    if (q.step()) first = std::make_pair(q.text(0), q.int64(1));
  });
  if (!first) return;
  const int64_t now = space::estimate_cost(space::genome_from_json(first->first), space::cost_context(cfg)).params;
  if (now != first->second)
    throw UsageError("the data files of study '" + cfg.name + "' no longer match its trials: they change the networks' " +
                     "parameter counts (" + std::to_string(first->second) + " -> " + std::to_string(now) +
                     "); restore the files or create a new study");
}

OpenStudy open_study(const std::string& path, Access access) {
  Db db = open_study_file(path, access);
  auto study = load_study(db);
  if (!study) throw no_study_error(path);
  config::StudyConfig cfg = config::parse_study_config(study->config_toml, study->config_path);
  if (!cfg.data.probed) {
    if (auto probe = load_data_probe(db)) {
      config::apply_data_probe(cfg, *probe);
    } else {
      // A study created before the probe was recorded: probe its files this once.
      log::verbose("'" + path + "': no recorded data probe; probing the data files");
      config::DataProbe found = data::probe_study_data(cfg);
      check_costs_unchanged(db, cfg);
      if (access == Access::read_write) save_data_probe(db, found);
    }
  }
  return OpenStudy{std::move(db), std::move(*study), std::move(cfg)};
}

} // namespace nas::store
