// screen: the proxy screen of proxy-guided moves -- scores a breeding event's candidates with
// the study's data-free [search] screen_proxies (a search::Screen the tools inject)
#pragma once
#include <memory>
#include <mutex>

#include "nas/config/study_config.h"
#include "nas/search/screen.h"

namespace nas::proxy {

// The study's screen, or null when [search] screen is 0: search::MakeScreen for nas-train and
// nas-distill. It scores on the CPU whatever device trains, and seeds each candidate's network
// from its genome hash alone, so that a score is a property of the genome: the same on every
// machine, in every study and on a replay. Networks are built under `rng_lock` (LibTorch's
// global generator, the trainers' lock). Scores are remembered per genome for the process's
// life (a candidate screened out may be proposed again). Several proxies rank by the sum of
// their normalised log-ranks among the event's candidates (ensemble_sum, weights 1).
std::shared_ptr<const search::Screen> make_screen(const config::StudyConfig& cfg, std::mutex& rng_lock);

} // namespace nas::proxy
