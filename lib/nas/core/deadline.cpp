// deadline: parsing deadlines given as durations, ISO times or Unix seconds
#include "nas/core/deadline.h"
#include "nas/core/error.h"

#include <cmath>

#include <cstdlib>
#include <ctime>
#include <regex>

namespace nas {

double parse_deadline(const std::string& text, const std::string& what, double now) {
  std::smatch m;
  static const std::regex duration(R"(\+?(\d+(?:\.\d+)?)([smhd]?))");
  static const std::regex unix_time(R"(@(\d+(?:\.\d+)?))");
  static const std::regex iso(R"((\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?Z?)");
  if (std::regex_match(text, m, duration)) {
    double v = std::stod(m[1]);
    const std::string unit = m[2];
    if (unit == "m") v *= 60;
    else if (unit == "h") v *= 3600;
    else if (unit == "d") v *= 86400;
    return now + v;
  }
  if (std::regex_match(text, m, unix_time)) return std::stod(m[1]);
  if (std::regex_match(text, m, iso)) {
    std::tm tm{};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    tm.tm_hour = std::stoi(m[4]);
    tm.tm_min = std::stoi(m[5]);
    tm.tm_sec = m[6].matched ? std::stoi(m[6]) : 0;
    if (tm.tm_mon < 12 && tm.tm_mday >= 1 && tm.tm_mday <= 31 && tm.tm_hour < 24 && tm.tm_min < 60 && tm.tm_sec < 61)
      return double(::timegm(&tm));
  }
  throw UsageError(what + ": invalid deadline '" + text +
                   "' (expected a duration like 90m or +2h, an ISO UTC time like 2026-11-23T18:00:00Z, or @UNIX_SECONDS)");
}

std::optional<double> slurm_job_end() {
  const char* v = std::getenv("SLURM_JOB_END_TIME");
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  double t = std::strtod(v, &end);
  if (end == v || *end || !(t > 0) || !std::isfinite(t))
    throw UsageError("SLURM_JOB_END_TIME: expected Unix seconds, got '" + std::string(v) + "'");
  return t;
}

} // namespace nas
