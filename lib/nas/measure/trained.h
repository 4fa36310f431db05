// trained: a study's trained trials as files and networks to measure -- each trial's network
// from its genome and final checkpoint, exported to TFLite (float32 or int8, calibrated on
// training images) or ONNX once per trial (an artifact whose file still has its recorded sha256
// is reused), and measured by the local meter. LibTorch stays in trained.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "nas/config/study_config.h"
#include "nas/measure/local.h"

namespace nas::store {
class Db;
}

namespace nas::measure {

// An exported model file of a trial.
struct ExportedFile {
  std::string kind;          // tflite | tflite-int8 | onnx
  std::string path;          // relative to the study's artifact folder
  std::string abs_path;
  std::string sha256;
  int64_t bytes = 0;
  bool reused = false;       // already exported by an earlier run
};

// The kinds export_model writes; throws UsageError naming `kind` for any other.
void check_export_kind(const std::string& kind);

class TrainedTrials {
public:
  // The study's data is read on first need (normalisation and calibration images).
  TrainedTrials(store::Db& db, std::string db_path, const config::StudyConfig& cfg);
  ~TrainedTrials();
  TrainedTrials(const TrainedTrials&) = delete;
  TrainedTrials& operator=(const TrainedTrials&) = delete;

  // The file of `kind` for `trial` (a finished trial with a checkpoint), written and recorded as
  // an artifact unless it exists with its recorded sha256. Throws UsageError for a trial without
  // a checkpoint, train::CheckpointUnreadable for a broken one.
  ExportedFile export_model(int64_t trial, const std::string& kind);

  // The local meter on the trial's trained network.
  LocalResult measure_local(int64_t trial, const LocalOptions& o);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace nas::measure
