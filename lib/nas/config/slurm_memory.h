// slurm_memory: Slurm's --mem values, as [slurm] memory and nas-slurm --teacher-mem take them
#pragma once
#include <cstdint>
#include <string>

namespace nas::config {

// Megabytes of a Slurm --mem value: digits with an optional unit K, M (the default), G or T,
// either case; "0" (all of a node's memory) is 0. Throws std::invalid_argument naming the string.
int64_t parse_slurm_memory(const std::string& s);

} // namespace nas::config
