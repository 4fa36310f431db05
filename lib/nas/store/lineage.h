// lineage: the evolutionary search's records -- how each bred child was made, which trials each
// island holds, the migrations between islands -- and what breeding reads of an island
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nas/store/study.h"
#include "nas/store/trial_state.h"

namespace nas::store {

class Db;

// How one child was bred (table `breeding`).
struct Breeding {
  int64_t trial_id = 0;                 // set by insert_bred_in_tx; read back by breedings()
  std::string strategy;                 // evolution | nsga2
  int64_t island = 0;
  std::string operators;                // random | crossover | mutation | crossover+mutation (repairs apart)
  int repairs = 0;                      // further mutations that made a duplicate child new
  std::vector<int64_t> parents;         // empty for a random child
  uint64_t seed = 0;                    // the breeding event's seed
  std::optional<int64_t> worker_id;     // the worker that bred it (none: nas-sample)
  // What a proxy screen did ([search] screen): canonical JSON {"m", "by", "chosen", "candidates":
  // [{"hash", "operators", "parents", "repairs", "score", "proxies": {NAME: value}}]}, kept in
  // the child's 'screen' event; "" when the child was not screened.
  std::string screen;
};

// Inserts the child, its breeding row and its membership of b.island in one write transaction
// (or the caller's); logs a 'breed' event, and a 'screen' event (detail: b.screen) when the
// child was screened. Returns the new trial's id, or nullopt when the study already has its
// hash (then nothing is written).
std::optional<int64_t> insert_bred_in_tx(Db& db, const NewTrial& child, const Breeding& b);

// Every breeding row (with its screen record), ascending by trial id. Reads only.
std::vector<Breeding> breedings(Db& db);

// Breeding events so far (children bred): numbers each event's seed. Reads only.
int64_t count_breedings(Db& db);

// Records that a breeding event on `island` found no new candidate: a 'breed_exhausted' event
// (detail: island, seed). Call inside a write transaction.
void record_breed_exhausted_in_tx(Db& db, int64_t island, uint64_t seed, std::optional<int64_t> worker_id);

// Whether a breeding event has found the space exhausted (record_breed_exhausted_in_tx). Reads
// in the caller's transaction or its own.
bool breed_exhausted(Db& db);

// Whether a trial with this genome hash is in the study. Reads only.
bool hash_taken(Db& db, const std::string& hash);

// A trial an island holds, with the values of the metrics breeding asked for.
struct IslandMember {
  int64_t trial_id = 0;
  std::string genome;                   // canonical JSON
  TrialState state = TrialState::sampled;
  std::vector<std::optional<double>> values;  // per metric asked; none when the trial has no value yet
};

// The trials island `island` holds, ascending by id, each with the value of every metric in
// `metrics` as nas-pareto names them: a cost-model value, a training result (at the highest
// rung the trial has it), proxy_NAME, or a measurement (BACKEND:DEVICE:METRIC, or the bare
// metric: its latest row). Reads in one read transaction (or the caller's).
std::vector<IslandMember> island_members(Db& db, int64_t island, const std::vector<std::string>& metrics);

// Adds trial to island (no effect when it is there already).
void add_member_in_tx(Db& db, int64_t island, int64_t trial_id, double now);
// Removes trial from island (no effect when it is not there).
void remove_member_in_tx(Db& db, int64_t island, int64_t trial_id);

// One migration between islands (table `migration`).
struct Migration {
  int64_t trial_id = 0;
  int64_t from_island = 0, to_island = 0;
  std::string kind;                     // copy | move
  std::optional<int64_t> replaced;      // copy: the target's worst trial, which left the target
  std::optional<int64_t> worker_id;
};
void record_migration_in_tx(Db& db, const Migration& m, double now);

// Every migration, in the order they happened. Reads only.
std::vector<Migration> migrations_of(Db& db);

// The epochs the study's trials have committed to training, every rung counted: a queued or
// running trial its budget (cumulative epochs at its rung; `default_budget` when it has none), a
// paused, done or failed one the epochs it recorded at its highest rung (its budget when it
// recorded none). Sampled and pruned trials commit nothing. Reads in the caller's transaction
// or its own.
double epochs_committed(Db& db, double default_budget);

// When the study's first trial was claimed (its first 'claim' event): the start of the search's
// clock. None before any claim. Reads in the caller's transaction or its own.
std::optional<double> first_claim_at(Db& db);

// Workers that are alive (not stopped, heartbeat within `lease_s`) and whose id % islands is
// `island`: the island's workers, among which the migration probability is divided.
int64_t island_workers(Db& db, int64_t island, int64_t islands, double lease_s, double now);

} // namespace nas::store
