// deadline: when a worker must be done -- from --until or Slurm's SLURM_JOB_END_TIME
#pragma once
#include <optional>
#include <string>

namespace nas {

// "2026-11-23T18:00:00Z" (UTC; also without Z, or with a space), "+2h", "90m", "45s", "3600"
// (seconds from now), or "@1764000000" (Unix seconds) -> Unix seconds. Throws UsageError
// naming `what` (the option) for anything else.
double parse_deadline(const std::string& text, const std::string& what, double now);

// The deadline of the current Slurm job (SLURM_JOB_END_TIME, Unix seconds); nullopt when unset.
// Throws UsageError for a value that is not a positive number of seconds.
std::optional<double> slurm_job_end();

} // namespace nas
