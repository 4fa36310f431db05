// metric: one measured quantity of a trial's model, as every meter reports it and as the
// `measurement` table stores it (value NULL when it could not be measured; the reason then in
// the row's raw JSON).
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace nas::measure {

struct Metric {
  std::string name;                 // latency_ms, rom_bytes, energy_uj, ...
  std::optional<double> value;      // nullopt: unknown (say why in the raw record)
  std::string unit;                 // ms, bytes, uJ, mW, ...
};

using Metrics = std::vector<Metric>;

} // namespace nas::measure
