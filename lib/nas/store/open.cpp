// open: opening a study file the same way in every tool
#include "nas/store/open.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/data/probe.h"

#include <filesystem>

namespace nas::store {

UsageError no_study_error(const std::string& path) {
  return UsageError("'" + path + "' holds no study: create it with nas-sample --config FILE");
}

Db open_study_file(const std::string& path, Access access) {
  if (!std::filesystem::exists(path)) throw UsageError("cannot open '" + path + "': no such file");
  return Db::open(path, access == Access::read_write ? OpenMode::existing : OpenMode::read_only);
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
      if (access == Access::read_write) save_data_probe(db, found);
    }
  }
  return OpenStudy{std::move(db), std::move(*study), std::move(cfg)};
}

} // namespace nas::store
