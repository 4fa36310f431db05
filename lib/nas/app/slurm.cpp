// slurm: nas-slurm's work -- the study's queued work into a plan, scripts and jobs
#include "nas/app/slurm.h"
#include "nas/app/db.h"
#include "nas/config/augment.h"
#include "nas/config/slurm_memory.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/log.h"
#include "nas/core/table.h"
#include "nas/core/text.h"
#include "nas/space/cost.h"
#include "nas/search/policy.h"
#include "nas/slurm/command.h"
#include "nas/slurm/pipeline.h"
#include "nas/slurm/plan.h"
#include "nas/space/genome.h"
#include "nas/space/hparams.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/open.h"
#include "nas/store/teacher.h"
#include "nas/store/inspect.h"
#include "nas/store/jobs.h"
#include "nas/store/results.h"
#include "nas/store/study.h"
#include "nas/store/trials.h"
#include "nas/train/pack.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <iostream>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;

namespace nas::app {
namespace {

// GPUs of this machine, from nvidia-smi (0 without it).
int local_gpu_count() {
  if (!slurm::on_path("nvidia-smi")) return 0;
  auto r = slurm::run_command({"nvidia-smi", "-L"});
  if (r.rc != 0) return 0;
  int n = 0;   // "GPU i: ..." lines; MIG instances are listed below their GPU
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("GPU ", 0) == 0) ++n;
  return n;
}

// An option's value, at least 1 (UsageError naming the option), or `fallback` when not given.
int at_least_1(const std::optional<int>& v, const char* option, int fallback) {
  if (v && *v < 1) throw UsageError(std::string(option) + ": must be at least 1, got " + std::to_string(*v));
  return v.value_or(fallback);
}

// A value given to `option`, checked by a parser of the study format (config::parse_slurm_time,
// config::parse_slurm_memory): its std::invalid_argument becomes a UsageError naming the option.
std::string checked(const std::string& value, const char* option, int64_t (*parse)(const std::string&)) {
  try {
    parse(value);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string(option) + ": " + e.what());
  }
  return value;
}

// The teacher job's --mem: [slurm] memory (a training task's) for each of a node's ranks, each
// of which holds the data and a copy of the network. "" and "0" (all of a node's) stay as they are.
std::string node_memory(const std::string& task_memory, int ranks) {
  if (task_memory.empty()) return task_memory;
  const int64_t mb = config::parse_slurm_memory(task_memory) * ranks;   // checked when [slurm] was read
  if (mb == 0) return "0";
  return mb % 1024 == 0 ? std::to_string(mb / 1024) + "G" : std::to_string(mb) + "M";
}

// The [slurm] section with the command line's overrides, checked as the section is.
config::SlurmConfig effective_slurm(const config::StudyConfig& cfg, const SlurmOptions& o) {
  config::SlurmConfig s = cfg.slurm;
  s.gpus = at_least_1(o.gpus, "--gpus", s.gpus);
  s.pack = at_least_1(o.pack, "--pack", s.pack);
  s.array_parallelism = at_least_1(o.array_parallelism, "--array-parallelism", s.array_parallelism);
  if (o.partition) s.partition = *o.partition;
  if (o.account) s.account = *o.account;
  if (o.qos) s.qos = *o.qos;
  if (o.time) s.time = checked(*o.time, "--time", config::parse_slurm_time);
  if (o.gpu_mem) {
    try {
      s.gpu_mem = config::parse_bytes(*o.gpu_mem);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--gpu-mem: ") + e.what());
    }
    if (s.gpu_mem < (int64_t(1) << 20)) throw UsageError("--gpu-mem: '" + *o.gpu_mem + "' is less than 1MiB");
  }
  return s;   // a relative [slurm] templates folder was checked to stay in the study's folder when parsed
}

// The teacher stage the options ask for (--teacher-*), checked: one network, its epochs, a
// study that distills, Slurm (not --local). nullopt without --teacher-* options.
std::optional<slurm::TeacherStage> teacher_stage(const SlurmOptions& o, const config::StudyConfig& cfg,
                                                 const config::SlurmConfig& s) {
  const bool any = o.teacher_genome || o.teacher_arch || o.teacher_epochs || o.teacher_nodes || o.teacher_ranks ||
                   o.teacher_time || o.teacher_mem || !o.teacher_augment.empty();
  if (!any) return std::nullopt;
  if (!o.teacher_genome == !o.teacher_arch)
    throw UsageError("--teacher-genome or --teacher-arch: give the teacher's network, one of the two");
  if (!o.teacher_epochs) throw UsageError("--teacher-epochs: give the epochs to train the teacher");
  if (!cfg.distill.given)
    throw UsageError("--teacher-*: study '" + cfg.name + "' has no [distill] section: nothing would use the teacher");
  if (o.local)
    throw UsageError("--teacher-* with --local: train the teacher here first (nas-distill teacher --db ... --ranks N), "
                     "then submit without --teacher-*");
  slurm::TeacherStage t;
  const std::string file = o.teacher_genome ? fs::absolute(*o.teacher_genome).lexically_normal().string() : "";
  // checked as nas-distill teacher will check it: a refusal here costs no queue wait
  space::read_named_genome({file, o.teacher_arch.value_or(""), "--teacher-genome", "--teacher-arch"}, cfg.space.family,
                           cfg.name);
  t.network = o.teacher_genome ? "--genome " + slurm::shell_quote({file}) : "--arch " + slurm::shell_quote({*o.teacher_arch});
  t.epochs = at_least_1(o.teacher_epochs, "--teacher-epochs", 1);
  t.nodes = at_least_1(o.teacher_nodes, "--teacher-nodes", 1);
  t.tasks_per_node = at_least_1(o.teacher_ranks, "--teacher-ranks", 1);
  t.time = o.teacher_time ? checked(*o.teacher_time, "--teacher-time", config::parse_slurm_time) : s.time;
  t.memory = o.teacher_mem ? checked(*o.teacher_mem, "--teacher-mem", config::parse_slurm_memory)
                           : node_memory(s.memory, t.tasks_per_node);
  try {
    t.augment = config::parse_augmentations(o.teacher_augment).names();
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--teacher-augment: ") + e.what());
  }
  return t;
}

struct Prepared {
  int64_t sampled = 0, from_proxy = 0;   // with a proxy stage: sampled candidates, and the keep of them planned for
  config::StudyConfig cfg;
  slurm::PlanInput input;
  slurm::Plan plan;
  int local_gpus = 0;
  std::optional<slurm::TeacherStage> teacher;
};

// The stages when none are given: the proxies first while candidates wait to be scored; the
// hardware measurements after training when [measure] asks for them.
std::vector<std::string> default_stages(store::Db& db, const config::StudyConfig& cfg) {
  std::vector<std::string> stages;
  if (store::count_trials(db, {store::TrialState::sampled}) > 0) stages.push_back("proxy");
  stages.push_back("train");
  if (cfg.measure.given && cfg.measure.after_training) stages.push_back("measure");
  stages.push_back("pareto");
  return stages;
}

// A trial as the planner sees it: MACs, batch and the bytes one training of it holds.
slurm::PlanTrial plan_trial(const Prepared& p, const space::CostContext& ctx, int64_t id, const std::string& genome,
                            const std::optional<std::string>& hparams, int64_t macs) {
  const auto g = space::genome_from_json(genome);
  const auto h = space::trial_hparams(p.cfg, g, hparams);
  slurm::PlanTrial t;
  t.id = id;
  t.macs = macs;
  t.bytes = train::training_bytes(space::estimate_cost(g, ctx), h.batch_size, h.optimizer);
  t.batch = h.batch_size;
  return t;
}

// The queued trials, each with the epochs left of its budget.
void add_queued(Prepared& p, store::Db& db, const space::CostContext& ctx) {
  for (const auto& w : store::trials_in_state(db, store::TrialState::queued)) {
    slurm::PlanTrial t = plan_trial(p, ctx, w.id, w.genome, w.hparams, w.macs);
    const double budget = w.budget.value_or(double(p.cfg.train.epochs));
    t.epochs = std::max(0.0, budget - double(w.epochs_done));
    p.input.trials.push_back(t);
  }
}

// With a proxy stage first, the sampled candidates it will queue count too: its `keep` of them
// (the first by id stand in for the best, which are not known yet) at its first budget.
void add_from_proxy(Prepared& p, store::Db& db, const space::CostContext& ctx) {
  std::vector<slurm::PlanTrial> sampled;
  for (const auto& w : store::trials_in_state(db, store::TrialState::sampled)) {
    slurm::PlanTrial t = plan_trial(p, ctx, w.id, w.genome, w.hparams, w.macs);
    t.epochs = search::first_budget(p.cfg);
    sampled.push_back(t);
  }
  const size_t keep = search::keep_count(p.cfg.budget, sampled.size());
  p.sampled = int64_t(sampled.size());
  p.from_proxy = int64_t(keep);
  p.input.trials.insert(p.input.trials.end(), sampled.begin(), sampled.begin() + long(keep));
}

// Calibration: the study's measured epochs against the cost model's prediction of them.
void add_measured(Prepared& p, store::Db& db) {
  p.input.measured_s = p.input.predicted_s = 0;
  p.input.measured_epochs = 0;
  for (const auto& m : store::measured_trials(db)) {
    slurm::PlanTrial t;
    t.macs = m.macs;
    t.batch = space::trial_hparams(p.cfg, space::genome_from_json(m.genome), m.hparams).batch_size;
    p.input.measured_epochs += m.epochs;
    p.input.measured_s += m.wall_s;
    p.input.predicted_s += double(m.epochs) * slurm::predicted_epoch_s(t, p.input.train_samples, p.input.slurm, p.input.gpu);
  }
}

Prepared prepare(SlurmOptions& o) {
  Prepared p;
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_only);
  store::Db& db = opened.db;
  if (o.stages.empty()) o.stages = default_stages(db, opened.cfg);
  p.cfg = std::move(opened.cfg);
  p.input.slurm = effective_slurm(p.cfg, o);
  p.teacher = teacher_stage(o, p.cfg, p.input.slurm);
  if (p.teacher && std::find(o.stages.begin(), o.stages.end(), "teacher") == o.stages.end())
    o.stages.insert(o.stages.begin(), "teacher");
  slurm::check_stages(o.stages, p.teacher.has_value());   // here, before a submission folder exists
  // A second teacher would become the current one under students distilled from the first.
  if (p.teacher)
    if (const auto t = store::current_teacher(db))
      throw UsageError("study '" + p.cfg.name + "' already has teacher " + std::to_string(t->id) + " (" +
                       (t->arch.empty() ? t->kind : t->arch) + "): its students distill from it; submit without --teacher-*");
  if (o.local) {
    p.local_gpus = local_gpu_count();
    p.input.gpu = p.local_gpus > 0;
    p.input.slurm.gpus = std::max(1, p.local_gpus);
    p.input.cores = int(std::max(1u, std::thread::hardware_concurrency()));
  } else {
    p.input.gpu = p.input.slurm.gpu_option != config::GpuOption::none;
    p.input.cores = p.input.slurm.cpus_per_task;
  }
  const auto& d = p.cfg.data;
  const int64_t used = d.subset ? std::min(d.subset, d.train_samples) : d.train_samples;
  p.input.train_samples = used - int64_t(double(used) * d.validation);
  const auto ctx = space::cost_context(p.cfg);
  db.read([&] {   // one snapshot of the queue
    p.input.trials.clear();
    p.from_proxy = 0;
    add_queued(p, db, ctx);
    if (std::find(o.stages.begin(), o.stages.end(), "proxy") != o.stages.end()) add_from_proxy(p, db, ctx);
    add_measured(p, db);
  });
  p.plan = slurm::make_plan(p.input);
  return p;
}

std::string epochs_text(double e) {
  char buf[32];
  std::snprintf(buf, sizeof buf, e == std::floor(e) ? "%.0f" : "%.1f", e);
  return buf;
}

std::string hours(double h) {
  char buf[32];
  std::snprintf(buf, sizeof buf, h < 10 ? "%.2f" : "%.1f", h);
  return buf;
}

std::string duration(double s) {
  char buf[32];
  if (s < 120) std::snprintf(buf, sizeof buf, "%.1f s", s);
  else if (s < 7200) std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  else std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  return buf;
}

slurm::Pipeline render(const Prepared& p, const SlurmOptions& o, const std::string& out_dir) {
  config::StudyConfig cfg = p.cfg;
  cfg.slurm = p.input.slurm;
  slurm::PipelineOptions po;
  po.db = fs::absolute(o.db).lexically_normal().string();
  po.bin_dir = o.bin_dir;
  std::string tdir = o.templates;
  if (tdir.empty() && !cfg.slurm.templates.empty())
    tdir = fs::path(cfg.slurm.templates).is_absolute() ? cfg.slurm.templates
                                                        : store::artifact_dir(po.db) + "/" + cfg.slurm.templates;
  po.templates_dir = slurm::find_templates(tdir, o.bin_dir);
  po.out_dir = out_dir;
  po.stages = o.stages;
  po.objectives = o.objectives;
  po.local_gpus = o.local ? p.local_gpus : 0;
  po.teacher = p.teacher;
  if (std::find(o.stages.begin(), o.stages.end(), "proxy") != o.stages.end() &&
      !fs::exists(fs::path(o.bin_dir) / "nas-proxy"))
    throw UsageError("--stages: stage 'proxy' needs nas-proxy, which is not in '" + o.bin_dir + "'");
  return slurm::write_pipeline(cfg, p.plan, po);
}

nlohmann::json plan_json(const Prepared& p) {
  const auto& pl = p.plan;
  return {{"trials", pl.trials}, {"epochs", pl.epochs}, {"gpus", pl.gpus}, {"pack", pl.pack},
          {"pack_per_process", pl.pack_per_process}, {"processes", pl.processes}, {"pack_why", pl.pack_why},
          {"largest_training_bytes", pl.largest_bytes}, {"gpu_mem", p.input.slurm.gpu_mem},
          {"train_samples", p.input.train_samples}, {"calibration", pl.calibration}, {"rate_source", pl.rate_source},
          {"work_s", pl.work_s}, {"time", p.input.slurm.time}, {"time_s", pl.time_s}, {"usable_s", pl.usable_s},
          {"tasks", pl.tasks}, {"parallel", pl.parallel}, {"array", pl.array()}, {"gpu_hours", pl.gpu_hours},
          {"wall_hours", pl.wall_hours}, {"notes", pl.notes}};
}

void print_plan(const Prepared& p, const SlurmOptions& o, std::ostream& out) {
  const auto& pl = p.plan;
  std::vector<double> per_epoch;
  for (const auto& t : p.input.trials)
    per_epoch.push_back(pl.calibration * slurm::predicted_epoch_s(t, p.input.train_samples, p.input.slurm, p.input.gpu));
  std::nth_element(per_epoch.begin(), per_epoch.begin() + long(per_epoch.size() / 2), per_epoch.end());
  const char* unit = p.input.gpu ? "GPU" : "CPU task";
  out << "study       " << p.cfg.name << " (" << o.db << ")\n";
  out << "queued      " << pl.trials << " trials, " << epochs_text(pl.epochs) << " epochs left, "
      << p.input.train_samples << " samples an epoch\n";
  if (p.sampled > 0)
    out << "proxy stage " << p.from_proxy << " of " << p.sampled << " sampled candidates to be queued ([budget] keep), counted above\n";
  out << "packing     " << pl.pack << " training" << (pl.pack > 1 ? "s" : "") << " per " << unit << " (" << pl.processes << " process"
      << (pl.processes > 1 ? "es" : "") << " of --pack " << pl.pack_per_process << "): " << pl.pack_why << "\n";
  out << "epoch time  " << duration(per_epoch[per_epoch.size() / 2]) << " for the median trial (" << pl.rate_source << ")\n";
  out << "work        " << hours(pl.work_s / 3600) << " training-hours, one training at a time\n";
  out << "array       " << pl.array() << ": " << pl.tasks << " task" << (pl.tasks > 1 ? "s" : "") << " of "
      << p.input.slurm.time << " (" << duration(double(pl.usable_s)) << " of training each), " << pl.parallel
      << " at a time\n";
  out << (p.input.gpu ? "GPU hours   " : "task hours  ") << hours(pl.gpu_hours) << ", about " << hours(pl.wall_hours)
      << " h of wall time\n";
  for (const auto& n : pl.notes) out << "note        " << n << "\n";
}

} // namespace

int run_slurm_plan(const SlurmOptions& options, std::ostream& out) {
  const Format f = options.format;
  SlurmOptions o = options;
  Prepared p = prepare(o);
  const std::string dir = o.dry_run ? store::artifact_dir(fs::absolute(o.db).string()) + "/slurm/plan"
                                    : (fs::temp_directory_path() / ("minnow-plan-" + std::to_string(::getpid()))).string();
  slurm::Pipeline pipe = render(p, o, dir);
  std::vector<std::pair<std::string, std::string>> scripts;
  std::vector<std::string> commands;
  std::string previous;
  for (const auto& st : pipe.stages) {
    scripts.push_back({st.path, read_file(st.path)});
    commands.push_back(slurm::shell_quote(slurm::sbatch_command(st, previous.empty() ? "" : "<" + previous + ">")));
    previous = st.stage + " job id";
  }
  if (o.local) commands = {"bash " + pipe.local_runner};
  if (!o.dry_run) fs::remove_all(dir);
  if (f == Format::json) {
    nlohmann::json j = plan_json(p);
    j["study"] = p.cfg.name;
    j["commands"] = commands;
    nlohmann::json sj = nlohmann::json::object();
    for (size_t i = 0; i < pipe.stages.size(); ++i) sj[pipe.stages[i].stage] = scripts[i].second;
    j["scripts"] = sj;
    if (o.dry_run) j["dir"] = dir;
    out << j.dump(2) << "\n";
    return 0;
  }
  if (f != Format::table) {  // tsv/csv: key and value, one line each, for scripts
    Table t({"key", "value"});
    const nlohmann::json j = plan_json(p);
    for (const auto& [k, v] : j.items())
      if (!v.is_array()) t.add({k, v});
    t.write(out, f);
    return 0;
  }
  print_plan(p, o, out);
  out << (o.dry_run ? "scripts     written to " + dir + "\n" : "");
  for (const auto& c : commands) out << "submit      " << c << "\n";
  if (!o.dry_run) {
    for (const auto& [path, text] : scripts) out << "\n==> " << fs::path(path).filename().string() << " <==\n" << text;
  }
  return 0;
}

int run_slurm_submit(const SlurmOptions& options, std::ostream& out) {
  const Format f = options.format;
  SlurmOptions o = options;
  Prepared p = prepare(o);
  if (!o.local && !slurm::on_path("sbatch"))
    throw UsageError("'sbatch' is not on PATH: is this a Slurm login node? (use --local to run the plan here)");
  store::Db db = store::open_study_file(o.db, store::Access::read_write);
  // A distillation study's workers refuse to start without a teacher: say so before submitting
  // (unless the chain trains one first).
  if (p.cfg.distill.given && !p.teacher && !store::current_teacher(db))
    throw UsageError("study '" + p.cfg.name + "' distills ([distill]) but has no teacher yet: run 'nas-distill teacher --db " +
                     o.db + "' first, or submit with --teacher-genome/--teacher-arch and --teacher-epochs");
  // The submission's number and folder: creating the folder reserves the number, so two
  // submissions started at once never share one.
  int64_t submission = store::next_submission(db);
  const std::string base = store::artifact_dir(fs::absolute(o.db).string()) + "/slurm";
  fs::create_directories(base);
  while (!fs::create_directory(base + "/" + std::to_string(submission))) ++submission;
  const std::string dir = base + "/" + std::to_string(submission);
  slurm::Pipeline pipe = render(p, o, dir);
  std::vector<store::JobRecord> jobs;
  if (o.local) jobs = {slurm::submit_local(pipe, submission)};
  else jobs = slurm::submit_slurm(pipe, submission);
  store::record_jobs(db, jobs);
  Table t({"submission", "stage", "backend", "job_id", "array", "depends", "script"});
  for (const auto& j : jobs) t.add({j.submission, j.stage, j.backend, j.job_id, j.array, j.depends, j.script});
  if (f == Format::table) print_plan(p, o, std::cerr);
  t.write(out, f);
  if (!o.wait) return 0;
  log::info("waiting for the jobs of submission " + std::to_string(submission) + " to end");
  while (std::any_of(jobs.begin(), jobs.end(), [](const store::JobRecord& j) { return slurm::job_active(j); }))
    std::this_thread::sleep_for(std::chrono::seconds(2));
  int rc = 0;
  for (const auto& j : jobs) {
    std::string state = slurm::job_state(j);
    log::info(j.stage + " " + j.job_id + ": " + state);
    if (j.backend == "local" && state != "finished (exit 0)") rc = 1;
  }
  return rc;
}

int run_slurm_status(const SlurmOptions& o, std::ostream& out) {
  const Format f = o.format;
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_only);
  store::Db& db = opened.db;
  const store::StudyRecord* study = &opened.study;
  Table states = store::state_counts(db);
  auto jobs = store::load_jobs(db, o.all);
  Table jt({"submission", "stage", "backend", "job_id", "array", "state", "submitted"});
  for (const auto& j : jobs)
    jt.add({j.submission, j.stage, j.backend, j.job_id, j.array, slurm::job_state(j), iso_time(j.submitted_at)});
  if (f == Format::json) {
    nlohmann::json j = {{"study", study->name}};
    j["states"] = states.to_json();
    j["jobs"] = jt.to_json();
    out << j.dump(2) << "\n";
    return 0;
  }
  if (f != Format::table) {
    jt.write(out, f);
    return 0;
  }
  out << "study " << study->name << " (" << o.db << ")\n\n";
  states.write(out, f);
  out << "\njobs" << (jobs.empty() ? ": none submitted (nas-slurm submit)\n" : "\n");
  if (!jobs.empty()) jt.write(out, f);
  return 0;
}

int run_slurm_cancel(const SlurmOptions& o, std::ostream& out) {
  store::Db db = store::open_study_file(o.db, store::Access::read_only);   // cancelling needs no configuration
  auto jobs = store::load_jobs(db, o.all);
  if (jobs.empty()) throw UsageError("'" + o.db + "' has no submitted jobs");
  for (const auto& line : slurm::cancel_jobs(jobs)) out << line << "\n";
  return 0;
}

} // namespace nas::app
