// pipeline: rendering, submission and state of the study's jobs
#include "nas/slurm/pipeline.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/text.h"
#include "nas/core/version.h"
#include "nas/slurm/command.h"
#include "nas/slurm/render.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace nas::slurm {

namespace {

std::string read_template(const std::string& path) {
  try {
    return read_file(path);
  } catch (const FileError& e) {
    throw UsageError("cannot read template '" + path + "': " + e.reason());
  }
}

// Written atomically, executable.
void write_script(const std::string& path, const std::string& text) { write_file_atomic(path, text, 0755); }

// Study names become job names: letters, digits, '-', '_' and '.'.
std::string job_name(const std::string& study) {
  std::string n;
  for (char c : study) n += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return n.empty() ? "minnow" : n;
}

// A double-quoted shell word.
std::string dq(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '$' || c == '`') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string sbatch_lines(const std::vector<std::string>& options) {
  std::string out;
  for (const auto& o : options) out += "#SBATCH " + o + "\n";
  if (!out.empty()) out.pop_back();
  return out;
}

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool pid_alive(const std::string& pid) {
  try {
    const pid_t p = pid_t(std::stol(pid));
    int status = 0;
    if (::waitpid(p, &status, WNOHANG) == p) return false;   // our own child, ended (and reaped now)
    return ::kill(p, 0) == 0 || errno == EPERM;
  } catch (const std::exception&) {
    return false;
  }
}

// "RUNNING 2, PENDING 3" from one state a line (squeue -o %T, sacct -o State).
std::string count_states(const std::string& lines) {
  std::map<std::string, int> n;
  std::istringstream in(lines);
  for (std::string line; std::getline(in, line);)
    if (!trim(line).empty()) ++n[trim(line)];
  std::string out;
  for (const auto& [state, count] : n) out += (out.empty() ? "" : ", ") + state + " " + std::to_string(count);
  return out;
}

} // namespace

std::string find_templates(const std::string& explicit_dir, const std::string& bin_dir) {
  std::vector<std::string> candidates;
  if (!explicit_dir.empty()) {
    candidates = {explicit_dir};
  } else {
    if (const char* e = std::getenv("NAS_TEMPLATES"); e && *e) candidates.push_back(e);
    candidates.push_back((fs::path(bin_dir) / ".." / "share" / "minnow" / "templates").lexically_normal().string());
#ifdef NAS_SOURCE_TEMPLATES
    candidates.push_back(NAS_SOURCE_TEMPLATES);
#endif
  }
  for (const auto& c : candidates)
    if (fs::exists(fs::path(c) / "train.sbatch.in")) return fs::absolute(c).lexically_normal().string();
  throw UsageError("no templates: '" + candidates.front() + "' has no train.sbatch.in (give --templates DIR)");
}

// Seconds as a Slurm --time value, H:MM:SS (hours may exceed 24).
static std::string slurm_duration(double seconds) {
  const int64_t s = int64_t(seconds);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
  return buf;
}

void check_stages(const std::vector<std::string>& stages, bool teacher) {
  for (const auto& st : stages)
    if (st != "teacher" && st != "proxy" && st != "train" && st != "measure" && st != "pareto")
      throw UsageError("--stages: unknown stage '" + st + "' (expected teacher, proxy, train, measure or pareto)");
  const auto teacher_at = std::find(stages.begin(), stages.end(), "teacher");
  if (teacher_at != stages.end() && !teacher)
    throw UsageError("--stages: stage 'teacher' needs the teacher's network (--teacher-genome or --teacher-arch)");
  if (teacher_at != stages.end() && teacher_at != stages.begin()) throw UsageError("--stages: stage 'teacher' must come first");
}

Pipeline write_pipeline(const config::StudyConfig& cfg, const Plan& plan, const PipelineOptions& o) {
  const auto& s = cfg.slurm;
  check_stages(o.stages, o.teacher.has_value());
  fs::create_directories(o.out_dir);
  const std::string study_dir = fs::path(o.db).string() + ".d";
  const std::string log_dir = study_dir + "/logs";
  fs::create_directories(log_dir);

  std::vector<std::string> site;
  if (!s.partition.empty()) site.push_back("--partition=" + s.partition);
  if (!s.account.empty()) site.push_back("--account=" + s.account);
  if (!s.qos.empty()) site.push_back("--qos=" + s.qos);
  std::vector<std::string> cpu_stage = site, train_stage = site;
  if (!s.memory.empty()) train_stage.push_back("--mem=" + s.memory);
  if (s.gpu_option == config::GpuOption::gres) train_stage.push_back("--gres=gpu:" + std::to_string(s.gpus_per_task));
  else if (s.gpu_option == config::GpuOption::gpus_per_task) train_stage.push_back("--gpus-per-task=" + std::to_string(s.gpus_per_task));
  for (const auto& extra : s.sbatch) {
    cpu_stage.push_back(extra);
    train_stage.push_back(extra);
  }
  // the teacher: a GPU for each of its tasks on a node
  std::vector<std::string> teacher_stage = site;
  if (o.teacher && !o.teacher->memory.empty()) teacher_stage.push_back("--mem=" + o.teacher->memory);
  const int teacher_tasks = o.teacher ? o.teacher->tasks_per_node : 1;
  if (s.gpu_option == config::GpuOption::gres) teacher_stage.push_back("--gres=gpu:" + std::to_string(teacher_tasks));
  else if (s.gpu_option == config::GpuOption::gpus_per_task) teacher_stage.push_back("--gpus-per-task=1");
  for (const auto& extra : s.sbatch) teacher_stage.push_back(extra);
  std::string setup;
  for (const auto& line : s.setup) setup += line + "\n";
  if (!setup.empty()) setup.pop_back();
  std::string objectives;
  for (const auto& obj : o.objectives) objectives += (objectives.empty() ? "" : " ") + std::string("-o ") + dq(obj);

  std::map<std::string, std::string> vars = {
      {"JOB_NAME", job_name(cfg.name)},
      {"DB", dq(o.db)},
      {"BIN", dq(o.bin_dir)},
      {"STUDY_DIR", dq(study_dir)},
      {"LOG_DIR", log_dir},
      {"LOG_DIR_Q", dq(log_dir)},
      {"SETUP", setup},
      {"SBATCH_TRAIN", sbatch_lines(train_stage)},
      {"SBATCH_CPU", sbatch_lines(cpu_stage)},
      {"ARRAY", plan.array()},
      {"TIME", s.time},
      {"CPUS_PER_TASK", std::to_string(s.cpus_per_task)},
      {"SIGNAL_S", std::to_string(s.signal_s)},
      {"PACK", std::to_string(plan.pack_per_process)},
      {"PROCESSES", std::to_string(plan.processes)},
      {"MPS", s.mps ? "1" : "0"},
      {"DEVICE", s.device},
      // a study with [distill] trains its trials by distillation: the same worker, another tool
      {"TRAINER", cfg.distill.given ? "nas-distill" : "nas-train"},
      {"OBJECTIVES", objectives},
      {"TASKS", std::to_string(plan.tasks)},
      {"PARALLEL", std::to_string(o.local_gpus > 0 ? std::min(o.local_gpus, plan.tasks) : 1)},
      {"LOCAL_GPUS", std::to_string(o.local_gpus)},
      {"MINNOW_VERSION", NAS_VERSION},
      {"MEASURE_TIME", slurm_duration(cfg.measure.wait_s + 1800)},
  };
  if (o.teacher) {
    vars["TEACHER"] = o.teacher->network + (o.teacher->augment.empty() ? "" : " --augment " + o.teacher->augment);
    vars["EPOCHS"] = std::to_string(o.teacher->epochs);
    vars["NODES"] = std::to_string(o.teacher->nodes);
    vars["TASKS_PER_NODE"] = std::to_string(o.teacher->tasks_per_node);
    vars["TEACHER_TIME"] = o.teacher->time;
    vars["SBATCH_TEACHER"] = sbatch_lines(teacher_stage);
  }
  Pipeline p;
  p.dir = fs::absolute(o.out_dir).string();
  std::string previous;
  for (const auto& st : o.stages) {
    StageScript sc;
    sc.stage = st;
    sc.path = p.dir + "/" + st + ".sbatch";
    if (st == "train") sc.array = plan.array();
    if (!previous.empty()) sc.dependency = st == "pareto" || st == "measure" ? "afterany" : "afterok";
    const std::string tmpl = o.templates_dir + "/" + st + ".sbatch.in";
    write_script(sc.path, render(read_template(tmpl), vars, tmpl));
    vars[upper(st) + "_SCRIPT"] = dq(sc.path);
    p.stages.push_back(sc);
    previous = st;
  }
  for (const char* k : {"TEACHER_SCRIPT", "PROXY_SCRIPT", "TRAIN_SCRIPT", "MEASURE_SCRIPT", "PARETO_SCRIPT"}) vars.emplace(k, "\"\"");
  vars["RC_FILE"] = dq(p.dir + "/local.rc");
  const std::string tmpl = o.templates_dir + "/local.sh.in";
  p.local_runner = p.dir + "/local.sh";
  write_script(p.local_runner, render(read_template(tmpl), vars, tmpl));
  return p;
}

std::vector<std::string> sbatch_command(const StageScript& s, const std::string& previous_job) {
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  if (!s.dependency.empty() && !previous_job.empty()) argv.push_back("--dependency=" + s.dependency + ":" + previous_job);
  argv.push_back(s.path);
  return argv;
}

std::vector<store::JobRecord> submit_slurm(const Pipeline& p, int64_t submission) {
  std::vector<store::JobRecord> jobs;
  std::string previous;
  for (const auto& st : p.stages) {
    const auto argv = sbatch_command(st, previous);
    CommandResult r;
    try {
      r = run_command(argv);
    } catch (const Error&) {
      cancel_jobs(jobs);
      throw;
    }
    std::string id = trim(r.out.substr(0, r.out.find(';')));
    if (r.rc != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
      cancel_jobs(jobs);
      throw Error("'" + shell_quote(argv) + "' failed (exit " + std::to_string(r.rc) + "): " + trim(r.err + r.out) +
                  (jobs.empty() ? "" : "; the stages submitted before it were cancelled"));
    }
    store::JobRecord j;
    j.submission = submission;
    j.stage = st.stage;
    j.backend = "slurm";
    j.job_id = id;
    j.array = st.array;
    if (!st.dependency.empty() && !previous.empty()) j.depends = st.dependency + ":" + previous;
    j.script = st.path;
    j.submitted_at = now_unix();
    jobs.push_back(j);
    previous = id;
  }
  return jobs;
}

store::JobRecord submit_local(const Pipeline& p, int64_t submission) {
  const std::string log = p.dir + "/local.log";
  fs::remove(p.dir + "/local.rc");
  pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot start the local runner: ") + std::strerror(errno));
  if (pid == 0) {
    ::setsid();
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (in >= 0) ::dup2(in, 0);
    ::execl("/bin/bash", "bash", p.local_runner.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  store::JobRecord j;
  j.submission = submission;
  j.stage = "local";
  j.backend = "local";
  j.job_id = std::to_string(pid);
  j.script = p.local_runner;
  j.submitted_at = now_unix();
  return j;
}

std::string job_state(const store::JobRecord& j) {
  if (j.backend == "local") {
    const std::string rc_file = fs::path(j.script).parent_path().string() + "/local.rc";
    if (fs::exists(rc_file)) {
      std::ifstream in(rc_file);
      std::string rc;
      in >> rc;
      return "finished (exit " + (rc.empty() ? std::string("?") : rc) + ")";
    }
    return pid_alive(j.job_id) ? "running" : "gone";
  }
  CommandResult q = run_command({"squeue", "-h", "-r", "-j", j.job_id, "-o", "%T"});
  if (q.rc == 0 && !trim(q.out).empty()) return count_states(q.out);
  if (on_path("sacct")) {
    CommandResult a = run_command({"sacct", "-n", "-X", "-P", "-j", j.job_id, "-o", "State"});
    if (a.rc == 0 && !trim(a.out).empty()) return "finished: " + count_states(a.out);
  }
  return "finished";
}

bool job_active(const store::JobRecord& j) {
  if (j.backend == "local") return job_state(j) == "running";
  CommandResult q = run_command({"squeue", "-h", "-r", "-j", j.job_id, "-o", "%i"});
  return q.rc == 0 && !trim(q.out).empty();
}

std::vector<std::string> cancel_jobs(const std::vector<store::JobRecord>& jobs) {
  std::vector<std::string> lines;
  for (const auto& j : jobs) {
    if (j.backend == "local") {
      if (job_state(j) != "running") {
        lines.push_back(j.stage + " " + j.job_id + ": not running");
        continue;
      }
      ::kill(-pid_t(std::stol(j.job_id)), SIGTERM);
      lines.push_back(j.stage + " " + j.job_id + ": sent SIGTERM to the local runner (trials in training go back to the queue)");
      continue;
    }
    CommandResult r = run_command({"scancel", j.job_id});
    lines.push_back(j.stage + " " + j.job_id + (r.rc == 0 ? ": cancelled" : ": scancel failed: " + trim(r.err)));
  }
  return lines;
}

} // namespace nas::slurm
