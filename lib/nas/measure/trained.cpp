// trained: loading a trial's trained network, exporting it once, measuring it locally
#include "nas/measure/trained.h"
#include "nas/measure/trained_network.h"

#include <filesystem>

#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/log.h"
#include "nas/core/sha256.h"
#include "nas/data/dataset.h"
#include "nas/model/lower.h"
#include "nas/model/network.h"
#include "nas/model/onnx.h"
#include "nas/model/tflite.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/measurements.h"
#include "nas/train/fit.h"

namespace fs = std::filesystem;

namespace nas::measure {

void check_export_kind(const std::string& kind) {
  if (kind != "tflite" && kind != "tflite-int8" && kind != "onnx")
    throw UsageError("unknown export format '" + kind + "' (expected 'tflite', 'tflite-int8' or 'onnx')");
}

model::Network trained_network(store::Db& db, const std::string& db_path, const config::StudyConfig& cfg, int64_t trial) {
  const auto rec = store::load_trial(db, trial);
  const auto ckpt = store::find_artifact(db, trial, "checkpoint");
  if (!ckpt) throw UsageError("trial " + std::to_string(trial) + " has no trained weights (no checkpoint): train it first");
  const fs::path path = fs::path(ckpt->path).is_absolute() ? fs::path(ckpt->path)
                                                           : fs::path(store::artifact_dir(db_path)) / ckpt->path;
  model::Network net(space::genome_from_json(rec.genome), space::cost_context(cfg));
  train::load_weights(path.string(), net);
  net->eval();
  return net;
}

struct TrainedTrials::Impl {
  store::Db& db;
  std::string db_path;
  const config::StudyConfig& cfg;
  space::CostContext ctx;
  std::optional<data::StudyData> data;   // on the CPU, read on first need

  const data::StudyData& study_data() {
    if (!data) data = data::load_study_data(cfg.data, cfg.seed, torch::kCPU);
    return *data;
  }

  std::vector<float> channel_values(const torch::Tensor& t) {
    torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous().flatten();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }

  model::Network network(int64_t trial) { return trained_network(db, db_path, cfg, trial); }

  std::string write(int64_t trial, const std::string& kind) {
    model::Network net = network(trial);
    const data::StudyData& d = study_data();
    model::Graph g = model::lower(net, channel_values(d.mean), channel_values(d.std));
    if (kind == "onnx") return model::write_onnx(g, model::OnnxOptions{});
    model::TfliteOptions opt;
    opt.description = "minnow trial " + std::to_string(trial);
    std::vector<model::TensorRange> ranges;
    if (kind == "tflite-int8") {
      const int64_t n = std::min<int64_t>(cfg.measure.calibration_images, d.train.size());
      torch::Tensor images = data::gather_batch(d, d.train, torch::arange(n), false, at::make_generator<at::CPUGeneratorImpl>(0));
      ranges = model::calibrate(g, images);
      opt.int8 = true;
      opt.ranges = &ranges;
    }
    return model::write_tflite(g, opt);
  }
};

TrainedTrials::TrainedTrials(store::Db& db, std::string db_path, const config::StudyConfig& cfg)
    : impl_(new Impl{db, std::move(db_path), cfg, space::cost_context(cfg), std::nullopt}) {}

TrainedTrials::~TrainedTrials() = default;

static std::string export_name(int64_t trial, const std::string& kind) {
  const std::string base = "exports/trial-" + std::to_string(trial);
  if (kind == "tflite-int8") return base + "-int8.tflite";
  return base + (kind == "onnx" ? ".onnx" : ".tflite");
}

ExportedFile TrainedTrials::export_model(int64_t trial, const std::string& kind) {
  check_export_kind(kind);
  ExportedFile f;
  f.kind = kind;
  f.path = export_name(trial, kind);
  f.abs_path = (fs::path(store::artifact_dir(impl_->db_path)) / f.path).string();
  if (const auto a = store::find_artifact(impl_->db, trial, kind); a && a->path == f.path && fs::exists(f.abs_path)) {
    int64_t bytes = 0;
    if (sha256_file(f.abs_path, &bytes) == a->sha256) {
      f.sha256 = a->sha256;
      f.bytes = bytes;
      f.reused = true;
      return f;
    }
    log::warning("trial " + std::to_string(trial) + ": '" + f.abs_path + "' no longer has its recorded sha256: exporting again");
  }
  const std::string bytes = impl_->write(trial, kind);
  fs::create_directories(fs::path(f.abs_path).parent_path());
  write_file_atomic(f.abs_path, bytes);
  f.sha256 = sha256_hex(bytes);
  f.bytes = int64_t(bytes.size());
  store::record_artifact(impl_->db, trial, kind, f.path, f.sha256, f.bytes);
  return f;
}

LocalResult TrainedTrials::measure_local(int64_t trial, const LocalOptions& o) {
  model::Network net = impl_->network(trial);
  return measure::measure_local(*net, impl_->ctx, o);
}

} // namespace nas::measure
