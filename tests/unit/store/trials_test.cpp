// trials_test: trial states spelled and parsed, and the reads of trials by state (counts, the
// rows planning and packing need, measured epoch times)
#include <doctest/doctest.h>

#include "../support.h"
#include "nas/core/error.h"
#include "nas/store/db.h"
#include "nas/store/trial_state.h"
#include "nas/store/trials.h"
#include "queue_support.h"

using namespace nas::store;
using nas::test::TempDir;
using namespace nas::test;

namespace {

void set_trial(Db& db, int64_t id, int64_t macs, const char* hparams, std::optional<double> budget, int rung) {
  db.write([&] {
    Statement s = db.prepare("UPDATE trial SET macs = ?2, hparams = ?3, budget = ?4, rung = ?5 WHERE id = ?1");
    s.bind(1, id).bind(2, macs);
    if (hparams) s.bind(3, std::string(hparams)); else s.bind_null(3);
    s.bind(4, budget).bind(5, rung).run();
  });
}

void add_epoch(Db& db, int64_t id, int rung, int epoch, const std::string& metric, double value) {
  db.write([&] {
    Statement s = db.prepare("INSERT INTO epoch_metric (trial_id, rung, epoch, metric, value, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)");
    s.bind(1, id).bind(2, rung).bind(3, epoch).bind(4, metric).bind(5, value).run();
  });
}

} // namespace

TEST_CASE("every trial state is spelled as the study file spells it, and parses back") {
  for (const auto& name : trial_state_names()) {
    const auto s = parse_trial_state(name);
    REQUIRE(s);
    CHECK(to_string(*s) == name);
  }
  CHECK(trial_state_names().size() == 7);
  CHECK(to_string(TrialState::paused) == "paused");
  CHECK(!parse_trial_state("Done"));
  CHECK(!parse_trial_state(""));
  CHECK(trial_state_of_row("pruned") == TrialState::pruned);
  CHECK_THROWS_AS(trial_state_of_row("finished"), nas::DbError);
}

TEST_CASE("trials are counted, listed and measured by state") {
  TempDir dir;
  Db db = Db::open(dir.file("t.db"), OpenMode::create);
  CHECK(count_trials(db, {}) == 0);
  CHECK(!largest_queued_trial(db));
  const int64_t s1 = add_trial(db, "sampled");
  const int64_t q1 = add_trial(db, "queued");
  const int64_t q2 = add_trial(db, "queued");
  const int64_t d1 = add_trial(db, "done");
  set_trial(db, q1, 500, "{\"batch_size\":64}", 3.0, 1);
  set_trial(db, q2, 900, nullptr, std::nullopt, 0);
  set_trial(db, s1, 2000, nullptr, std::nullopt, 0);
  set_trial(db, d1, 100, nullptr, std::nullopt, 0);

  CHECK(count_trials(db, {}) == 4);
  CHECK(count_trials(db, {TrialState::queued}) == 2);
  CHECK(count_trials(db, {TrialState::queued, TrialState::done}) == 3);
  CHECK(count_trials(db, {TrialState::failed}) == 0);

  add_epoch(db, q1, 0, 1, "wall_s", 2.0);   // rung 0: not the trial's current rung
  add_epoch(db, q1, 1, 2, "wall_s", 3.0);
  add_epoch(db, q1, 1, 3, "val_acc", 0.5);
  const auto queued = trials_in_state(db, TrialState::queued);
  REQUIRE(queued.size() == 2);
  CHECK(queued[0].id == q1);
  CHECK(queued[0].macs == 500);
  CHECK(queued[0].hparams == std::optional<std::string>("{\"batch_size\":64}"));
  CHECK(queued[0].budget == std::optional<double>(3.0));
  CHECK(queued[0].epochs_done == 3);         // the last epoch at rung 1, any metric
  CHECK(queued[1].id == q2);
  CHECK(!queued[1].hparams);
  CHECK(!queued[1].budget);
  CHECK(queued[1].epochs_done == 0);
  CHECK(queued[1].genome.rfind("{\"n\":", 0) == 0);

  const auto largest = largest_queued_trial(db);   // the sampled one is larger, but not queued
  REQUIRE(largest);
  CHECK(largest->id == q2);

  const auto measured = measured_trials(db);
  REQUIRE(measured.size() == 1);
  CHECK(measured[0].id == q1);
  CHECK(measured[0].epochs == 2);
  CHECK(measured[0].wall_s == 5.0);
  CHECK(measured[0].macs == 500);
}
