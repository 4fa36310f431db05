// run: nas-distill's worker and teacher command (see run.h)
#include "nas/distill/run.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/heap.h"
#include "nas/core/log.h"
#include "nas/core/random.h"
#include "nas/core/sha256.h"
#include "nas/core/signals.h"
#include "nas/core/text.h"
#include "nas/data/dataset.h"
#include "nas/data/probe.h"
#include "nas/distill/ddp.h"
#include "nas/distill/job.h"
#include "nas/distill/launch.h"
#include "nas/distill/soft_targets.h"
#include "nas/space/genome.h"
#include "nas/space/hparams.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/open.h"
#include "nas/store/results.h"
#include "nas/store/study.h"
#include "nas/train/device.h"
#include "nas/train/fit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace nas::distill {
namespace {

std::string settings_of(const config::DistillConfig& d) {
  std::string s = config::to_string(d.loss) + " T=" + format_number(d.temperature) + " alpha=" + format_number(d.alpha);
  if (d.loss == config::DistillLoss::dkd)
    s += " beta=" + format_number(d.beta) + " warm-up " + std::to_string(d.warmup_epochs) + " epochs";
  return s;
}

// Cached soft targets need the same view of every image in every epoch.
bool use_cached_targets(const config::DistillConfig& d, const data::StudyData& data) {
  const bool augmented = data.flip || data.crop;
  if (d.targets == config::SoftTargets::cached && augmented)
    throw UsageError("[distill] targets = \"cached\" needs data without random augmentation (the study flips or crops): "
                     "use \"online\" or \"auto\"");
  return d.targets == config::SoftTargets::cached || (d.targets == config::SoftTargets::automatic && !augmented);
}

config::StudyConfig distill_config(const std::string& db) {
  store::OpenStudy st = store::open_study(db, store::Access::read_only);
  if (!st.cfg.distill.given)
    throw UsageError("study '" + st.cfg.name + "' has no [distill] section: nothing to distill (see nas-study(5))");
  return std::move(st.cfg);
}

model::Network build_network(const config::StudyConfig& cfg, const space::Genome& g, uint64_t seed) {
  torch::manual_seed(seed);
  return model::Network(g, space::cost_context(cfg));
}

void save_weights(model::Network& net, const std::string& path) {
  torch::serialize::OutputArchive ar;
  net->save(ar);
  std::ostringstream bytes;
  ar.save_to(bytes);
  write_file_atomic(path, bytes.str());
}

// The file the study recorded, unchanged since: a teacher is never swapped silently.
void check_recorded_file(const std::string& path, const std::string& sha256) {
  std::string now;
  try {
    now = sha256_file(path);
  } catch (const FileError& e) {
    throw UsageError(std::string(e.what()) + " (the study's teacher)");
  }
  if (now != sha256)
    throw UsageError("teacher '" + path + "' changed since the study recorded it (sha256 differs): run "
                     "'nas-distill teacher' to measure and record it again");
}

std::unique_ptr<Teacher> open_recorded(const train::TrainContext& ctx, const store::TeacherRecord& r) {
  const config::DistillConfig& d = ctx.cfg.distill;
  if (r.kind == "torchscript") {
    if (!d.teacher.empty() && d.teacher != r.path)
      throw UsageError("[distill] teacher is '" + d.teacher + "' but the study's teacher is '" + r.path +
                       "': run 'nas-distill teacher' to record the new one");
    check_recorded_file(r.path, r.sha256);
    return load_torchscript_teacher(r.path, d.teacher_mean, d.teacher_std, ctx.data);
  }
  const std::string path = store::artifact_dir(ctx.db) + "/" + r.path;
  check_recorded_file(path, r.sha256);
  model::Network net = build_network(ctx.cfg, space::genome_from_json(r.genome), 0);
  torch::serialize::InputArchive ar;
  ar.load_from(path, ctx.data.train.images.device());
  net->load(ar);
  net->to(ctx.data.train.images.device());
  return minnow_teacher(std::move(net), r.arch);
}

Distillation open_distillation(const train::TrainContext& ctx) {
  store::Db db = store::Db::open(ctx.db, store::OpenMode::existing);
  auto rec = store::current_teacher(db);
  if (!rec) throw UsageError("study '" + ctx.cfg.name + "' has no teacher yet: run 'nas-distill teacher --db " + ctx.db + "' first");
  Distillation d;
  d.record = *rec;
  d.settings = settings_of(ctx.cfg.distill);
  if (use_cached_targets(ctx.cfg.distill, ctx.data)) {
    if (rec->soft_targets.empty())
      throw UsageError("teacher " + std::to_string(rec->id) + " was recorded without cached soft targets: run 'nas-distill teacher' again");
    d.soft_targets = read_soft_targets(store::artifact_dir(ctx.db) + "/" + rec->soft_targets, rec->soft_targets_sha256,
                                       ctx.data.train.size(), ctx.data.classes, ctx.data.train.images.device());
  } else {
    d.teacher = open_recorded(ctx, *rec);
    check_teacher(*d.teacher, ctx.data, "teacher " + std::to_string(rec->id));
  }
  log::info("distilling from teacher " + std::to_string(rec->id) + " (" + rec->kind + " " +
            (rec->arch.empty() ? rec->path : rec->arch) + "): " + d.settings +
            (d.soft_targets.defined() ? ", cached soft targets" : ", teacher run online"));
  return d;
}


// The genome of --genome (its first JSON line) or --arch, of the study's family.
space::Genome teacher_genome(const TeacherOptions& o, const config::StudyConfig& cfg) {
  return space::read_named_genome({o.genome_file, o.arch, "--genome", "--arch"}, cfg.space.family, cfg.name);
}

// Trains the teacher network like a trial (the study's hyperparameters, drawn for its genome),
// with a checkpoint each epoch from which a killed run resumes. SIGTERM/SIGINT stop it there.
model::Network train_teacher(const config::StudyConfig& cfg, const space::Genome& g, int64_t epochs,
                             const data::StudyData& data, const train::DeviceInfo& dev, const std::string& ckpt,
                             DataParallel* dp) {
  const std::string hash = space::genome_hash(g);
  const uint64_t seed = Rng(cfg.seed, std::stoull(hash.substr(0, 15), nullptr, 16)).next() >> 1;
  model::Network net = build_network(cfg, g, seed);
  net->to(dev.device);
  net->to_channels_last();
  net->set_fused_batch_norm(true);
  train::FitPlan plan;
  plan.hp = space::draw_hparams(cfg.train, cfg.seed, hash);
  plan.schedule_epochs = plan.budget_epochs = epochs;
  plan.precision = train::resolve_precision(cfg.train.precision, dev);
  plan.channels_last = true;
  plan.seed = seed;
  plan.eval_batch_size = train::eval_batch(cfg.train.eval_batch_size, dev.device);
  plan.checkpoint = ckpt;
  train::FitHooks hooks;
  hooks.should_stop = [] { return stop_requested() != 0; };
  hooks.on_epoch = [&](const train::EpochStats& e) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "teacher epoch %d/%lld: train loss %.4f, val acc %.2f%%, %.1f s", e.epoch,
                  (long long)epochs, e.train_loss, 100 * e.val_acc, e.wall_s);
    log::info(buf);
  };
  if (dp) make_data_parallel(*dp, net, plan, hooks);   // after should_stop: a stop on any rank stops all
  install_stop_handlers();
  if (train::fit(net, data, plan, hooks).stopped)
    throw Error("stopped by a signal: the teacher's training resumes from its checkpoint when run again");
  return net;
}

} // namespace

int run_distill(const train::TrainOptions& o, std::ostream& out) {
  distill_config(o.db);   // no [distill]: exit 2 before any data is loaded
  Distillation d;
  return train::run_training(o, out, [&d](train::TrainContext& ctx) {
    d = open_distillation(ctx);
    return std::make_unique<DistillJob>(ctx, d);
  });
}


namespace {

// The teacher of --genome/--arch, trained (or its finished weights reused), as a record.
std::unique_ptr<Teacher> trained_teacher(const TeacherOptions& o, const config::StudyConfig& cfg,
                                         const data::StudyData& data, const train::DeviceInfo& dev,
                                         store::TeacherRecord& rec, DataParallel* dp) {
  const space::Genome g = teacher_genome(o, cfg);
  const config::Augmentations augment = config::parse_augmentations(o.augment);   // checked before
  const data::StudyData train_data = teacher_training_data(data, augment);
  rec.augment = config::Augmentations{train_data.crop, train_data.flip}.names();
  // --augment names its own checkpoint: a run with other augmentations never resumes this one
  std::string stem = "teacher/" + space::genome_hash(g).substr(0, 12) + "-e" + std::to_string(*o.epochs);
  if (augment.crop) stem += "-crop";
  if (augment.flip) stem += "-flip";
  const std::string dir = store::artifact_dir(o.db);
  std::error_code ec;
  fs::create_directories(dir + "/teacher", ec);
  if (ec) throw FileError("create the folder", dir + "/teacher", lower(ec.message()));
  model::Network net = train_teacher(cfg, g, *o.epochs, train_data, dev, dir + "/" + stem + ".ckpt", dp);
  if (dp && dp->rank() != 0) return nullptr;   // rank 0 saves and records
  save_weights(net, dir + "/" + stem + ".pt");
  rec.kind = "minnow";
  rec.path = stem + ".pt";
  rec.sha256 = sha256_file(dir + "/" + rec.path);
  rec.arch = space::summary(g);
  rec.genome = space::canonical(g);
  rec.epochs = *o.epochs;
  return minnow_teacher(std::move(net), rec.arch);
}

void check_teacher_options(const TeacherOptions& o, const config::StudyConfig& cfg) {
  const bool train = !o.genome_file.empty() || !o.arch.empty();
  if (!o.genome_file.empty() && !o.arch.empty()) throw UsageError("--genome and --arch exclude each other");
  if (train && !o.epochs) throw UsageError("--epochs N: how many epochs to train the teacher");
  if (!train && o.epochs) throw UsageError("--epochs is for a teacher to train: give --genome FILE or --arch STRING");
  if (!train && !o.augment.empty()) throw UsageError("--augment is for a teacher to train: give --genome FILE or --arch STRING");
  try {
    config::parse_augmentations(o.augment);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--augment: ") + e.what());
  }
  if (!train && cfg.distill.teacher.empty())
    throw UsageError("no teacher to record: give --genome FILE or --arch STRING to train one, or name a TorchScript "
                     "file in [distill] teacher");
}

void print_teacher(std::ostream& out, const store::TeacherRecord& r, Format f) {
  Table t({"teacher", "kind", "network", "classes", "val_acc", "test_acc", "soft_targets", "augment"});
  auto text_or_null = [](const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); };
  t.add({r.id, r.kind, r.arch.empty() ? r.path : r.arch, r.classes, r.val_acc, r.test_acc, text_or_null(r.soft_targets),
         text_or_null(r.augment)});
  t.write(out, f);
}

} // namespace

int run_teacher(const TeacherOptions& o, std::ostream& out) {
  config::StudyConfig cfg = distill_config(o.db);
  check_teacher_options(o, cfg);
  std::string device = o.device;
  std::unique_ptr<DataParallel> dp;
  if (o.ranks > 1 || rendezvous_from_environment()) {
    if (o.genome_file.empty() && o.arch.empty()) throw UsageError("--ranks is for a teacher to train: give --genome FILE or --arch STRING");
    if (auto rc = start_ranks(o.ranks, store::artifact_dir(o.db) + "/teacher", device, dp)) return *rc;
  }
  store::Db db = store::Db::open(o.db, store::OpenMode::existing);
  if (auto recorded = store::load_data_probe(db)) data::check_data_unchanged(cfg, *recorded);
  const train::DeviceInfo dev = train::resolve_device(device);
  keep_freed_memory();
  at::set_num_threads(o.threads.value_or(int(std::max(1u, std::thread::hardware_concurrency() / unsigned(o.ranks)))));
  const data::StudyData data = data::load_study_data(cfg.data, cfg.seed, dev.device);
  const bool cached = use_cached_targets(cfg.distill, data);   // refused before hours of training
  store::TeacherRecord rec;
  std::unique_ptr<Teacher> teacher;
  if (!o.genome_file.empty() || !o.arch.empty()) {
    teacher = trained_teacher(o, cfg, data, dev, rec, dp.get());
    if (!teacher) {
      log::info("trained; rank 0 records the teacher");
      return 0;
    }
  } else {
    teacher = load_torchscript_teacher(cfg.distill.teacher, cfg.distill.teacher_mean, cfg.distill.teacher_std, data);
    rec.kind = "torchscript";
    rec.path = cfg.distill.teacher;
    rec.sha256 = sha256_file(rec.path);
  }
  check_teacher(*teacher, data, teacher->describe());
  rec.classes = data.classes;
  const int64_t eb = train::eval_batch(cfg.train.eval_batch_size, dev.device);
  rec.val_acc = teacher_accuracy(*teacher, data, data.validation, eb);
  rec.test_acc = teacher_accuracy(*teacher, data, data.test, eb);
  if (cached) {
    const std::string dir = store::artifact_dir(o.db) + "/teacher";
    fs::create_directories(dir);
    const SoftTargetsFile f = write_soft_targets(dir, compute_soft_targets(*teacher, data, eb));
    rec.soft_targets = "teacher/" + f.name;
    rec.soft_targets_sha256 = f.sha256;
  }
  rec.id = store::record_teacher(db, rec);
  log::info("teacher " + std::to_string(rec.id) + ": " + teacher->describe() + ", val acc " +
            format_number(std::round(rec.val_acc * 10000) / 100) + "%, test acc " +
            format_number(std::round(rec.test_acc * 10000) / 100) + "%");
  print_teacher(out, rec, o.format);
  return 0;
}

} // namespace nas::distill
