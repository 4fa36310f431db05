// error: formatting of errors that carry a place
#include "nas/core/error.h"

namespace nas {

static std::string place_message(const std::string& file, int line, int col,
                                 const std::string& key, const std::string& msg) {
  std::string s = file;
  if (line > 0) {
    s += ":" + std::to_string(line);
    if (col > 0) s += ":" + std::to_string(col);
  }
  s += ": ";
  if (!key.empty()) s += "key '" + key + "': ";
  return s + msg;
}

ConfigError::ConfigError(const std::string& file, int line, int col, const std::string& key,
                         const std::string& msg)
    : UsageError(place_message(file, line, col, key, msg)), file_(file), line_(line), key_(key) {}

} // namespace nas
