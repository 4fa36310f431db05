// trial_state: spelling and parsing the states of a trial
#include "nas/store/trial_state.h"
#include "nas/core/error.h"

#include <utility>

namespace nas::store {
namespace {

const std::pair<TrialState, const char*> kStates[] = {
    {TrialState::sampled, "sampled"}, {TrialState::queued, "queued"}, {TrialState::running, "running"},
    {TrialState::paused, "paused"},   {TrialState::done, "done"},     {TrialState::failed, "failed"},
    {TrialState::pruned, "pruned"}};

} // namespace

std::string to_string(TrialState s) {
  for (const auto& [v, name] : kStates)
    if (v == s) return name;
  return "?";
}

std::optional<TrialState> parse_trial_state(const std::string& s) {
  for (const auto& [v, name] : kStates)
    if (name == s) return v;
  return std::nullopt;
}

TrialState trial_state_of_row(const std::string& s) {
  if (auto v = parse_trial_state(s)) return *v;
  throw DbError("unknown trial state '" + s + "' in the study file");
}

const std::vector<std::string>& trial_state_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [v, name] : kStates) out.push_back(name);
    return out;
  }();
  return names;
}

} // namespace nas::store
