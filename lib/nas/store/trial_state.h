// trial_state: the states of a trial's life cycle, as the code names them and the study file
// spells them (trial.state, event.from_state/to_state)
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace nas::store {

// sampled -> queued -> running -> paused | done | failed (and back to queued on release,
// retry or promotion); sampled -> pruned when a proxy selection leaves a candidate out.
enum class TrialState { sampled, queued, running, paused, done, failed, pruned };

// The state's spelling in the study file ("sampled", "queued", ...).
std::string to_string(TrialState s);

// The state spelled `s`; nullopt for any other string.
std::optional<TrialState> parse_trial_state(const std::string& s);

// The state a study file's row holds; throws DbError for a spelling no state has (a file
// written by something other than minnow).
TrialState trial_state_of_row(const std::string& s);

// Every state's spelling, in life-cycle order (for messages and suggestions).
const std::vector<std::string>& trial_state_names();

} // namespace nas::store
