// run: nas-distill's entry points -- the distillation worker (nas-train's worker with the
// distillation job) and the teacher command (train or register a teacher, measure it, cache its
// soft targets, record it)
#pragma once
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "nas/core/table.h"
#include "nas/train/run.h"

namespace nas::distill {

// nas-distill --worker / --trial: as nas-train (same options, exit codes, signals), each trial
// that distills learning from the study's current teacher. Throws UsageError (exit 2) when the
// study has no [distill] section or no teacher yet, or when the teacher's file or its cached soft
// targets no longer match what the study recorded.
int run_distill(const train::TrainOptions& o, std::ostream& out);

struct TeacherOptions {
  std::string db;
  std::string genome_file;              // a JSON genome to train (one line), or ""
  std::string arch;                     // an nb201 arch string to train, or ""
  std::optional<int64_t> epochs;        // training a teacher: required
  std::string device = "auto";
  std::optional<int> threads;
  int ranks = 1;                        // data-parallel local rank processes (distill/ddp.h)
  std::vector<std::string> augment;     // the teacher's own augmentations (crop, flip), whatever the study's
  Format format = Format::table;
};

// nas-distill teacher: with --genome/--arch, trains that network on the study's data (resuming
// from its checkpoint when killed) and records it; without, loads the TorchScript teacher named
// by [distill] teacher. Either way the teacher is checked against the task (exit 2 for a
// mismatch), its validation and test accuracy measured, its soft targets cached when the data
// is not augmented, and it becomes the study's teacher. Prints one row.
int run_teacher(const TeacherOptions& o, std::ostream& out);

} // namespace nas::distill
