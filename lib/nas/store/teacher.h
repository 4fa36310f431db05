// teacher: the study's distillation teachers (table `teacher`, schema v7)
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nas::store {

class Db;

struct TeacherRecord {
  int64_t id = 0;                       // set by record_teacher
  std::string kind;                     // torchscript | minnow
  std::string path;                     // torchscript: absolute; minnow: relative to the artifact folder
  std::string sha256;
  std::string arch, genome;             // minnow
  std::optional<int64_t> epochs;        // minnow
  std::string augment;                  // minnow: the augmentations it trained with, "crop,flip"; "": none
  int64_t classes = 0;
  double val_acc = 0, test_acc = 0;
  std::string soft_targets, soft_targets_sha256;   // "" : none cached
  double created_at = 0;
};

// Inserts a teacher (one write transaction, event 'teacher'); it becomes the current one.
// Returns its id.
int64_t record_teacher(Db& db, const TeacherRecord& t);

// The newest teacher, or nullopt when the study has none. Reads only.
std::optional<TeacherRecord> current_teacher(Db& db);

// A trial's validation accuracy at one of its rungs, with whether it was distilled there.
struct RungAccuracy {
  int64_t trial_id = 0;
  std::string hash, arch;
  double epochs = 0;
  double val_acc = 0;
  std::optional<bool> distilled;        // none: trained by nas-train (no 'distilled' result)
};

// Every (trial, rung) of the study with both a val_acc and an epochs result, by trial and rung.
// Reads only.
std::vector<RungAccuracy> rung_accuracies(Db& db);

} // namespace nas::store
