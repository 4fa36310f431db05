// study_config: the study TOML, validated into plain structs before anything is written
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nas/core/error.h"

namespace nas::config {

// The enumerated values of a study's configuration: parsed once, when the TOML is read. Each
// to_string gives the spelling of the TOML and the study file back; each parse_* returns the
// value a spelling names, or nullopt for any other string.
enum class Precision { fp32, bf16, fp16, automatic };   // [train] precision; automatic is "auto"
enum class WeightPrecision { int8, fp16, fp32 };        // [constraints] precision: bytes of a stored weight
enum class Schedule { cosine, constant };               // [train] schedule after the warm-up
enum class Optimizer { sgd, adamw };                    // [train] optimizer
enum class Ensemble { sum, vote, none };                // [proxy] ensemble
enum class Promotion { asynchronous, synchronous };     // [budget] promotion
enum class GpuOption { gres, gpus_per_task, none };     // [slurm] gpu_option: "gres", "gpus-per-task", "none"
enum class StrategyKind { random, evolution, nsga2 };  // [search] strategy
enum class DistillLoss { kd, dkd };                     // [distill] loss
enum class DistillTrials { all, none, searched };      // [distill] trials: which trials distill
enum class SoftTargets { automatic, cached, online };   // [distill] targets; automatic is "auto"

std::string to_string(Precision p);
std::string to_string(WeightPrecision p);
std::string to_string(Schedule s);
std::string to_string(Optimizer o);
std::string to_string(Ensemble e);
std::string to_string(Promotion p);
std::string to_string(GpuOption g);
std::string to_string(StrategyKind s);
std::string to_string(DistillLoss l);
std::string to_string(DistillTrials t);
std::string to_string(SoftTargets t);
std::optional<Precision> parse_precision(const std::string& s);
std::optional<WeightPrecision> parse_weight_precision(const std::string& s);
std::optional<Schedule> parse_schedule(const std::string& s);
std::optional<Optimizer> parse_optimizer(const std::string& s);
std::optional<Ensemble> parse_ensemble(const std::string& s);
std::optional<Promotion> parse_promotion(const std::string& s);
std::optional<GpuOption> parse_gpu_option(const std::string& s);
std::optional<StrategyKind> parse_strategy(const std::string& s);

// Where a value came from, for messages.
struct Place {
  std::string file;
  int line = 0;
  int col = 0;
};

// A choice of integers: a list, a {min, max, step} range (expanded), or one value.
struct IntChoice {
  std::vector<int64_t> values;    // never empty after validation; sorted as given
  std::string key;                // dotted key, e.g. "space.width"
  Place place;
};

// A choice of names: a list or one name.
struct NameChoice {
  std::vector<std::string> values;
  std::string key;
  Place place;
};

// A choice of optimizers: a list or one name.
struct OptimizerChoice {
  std::vector<Optimizer> values;  // never empty after validation
  std::string key;
  Place place;
};

// What probing one split's data files found. The probe (data/probe.h) runs once, when the
// study is created; the study file keeps what it found (store/study.h).
struct SplitProbe {
  std::vector<std::string> files;             // the files probed (absolute paths)
  std::vector<int64_t> shape;                 // C, H, W of one sample
  int64_t classes = 0;                        // max label + 1 (CIFAR-10: 10)
  int64_t samples = 0;
  bool operator==(const SplitProbe& o) const {
    return files == o.files && shape == o.shape && classes == o.classes && samples == o.samples;
  }
};

struct DataProbe {
  SplitProbe train, test;
};

struct DataConfig {
  std::string format;                         // idx | cifar10 | npy | synthetic
  std::map<std::string, std::string> files;   // role (train_images, ...) -> absolute path (cifar10: joined with ':')
  // Filled from the probe (apply_data_probe): at parse time for synthetic data, else when the
  // study is created (data::probe_study_data) or opened (from the stored probe).
  std::vector<int64_t> shape;                 // C, H, W of one sample
  int64_t classes = 0;
  int64_t train_samples = 0;                  // from the files (synthetic: `samples`)
  int64_t test_samples = 0;
  bool probed = false;                        // shape, classes and counts are filled
  std::optional<std::vector<int64_t>> declared_shape; // `shape` as the file gives it
  std::optional<int64_t> declared_classes;    // `classes` as the file gives it
  std::map<std::string, Place> places;        // key -> where the file writes it ("": the [data] table)
  std::string layout = "auto";                // npy image layout: auto | nchw | nhwc
  double validation = 0.1;                    // fraction of the training files held out for validation
  int64_t subset = 0;                         // use this many training samples, drawn from the seed (0: the key is absent, all)
  bool crop = false;                          // augmentation: random crop after zero padding
  bool flip = false;                          // augmentation: random horizontal flip
  int64_t crop_padding = 4;
};

// One stage's choices in the `cnn` family; per-stage tables override the defaults.
struct CnnStageChoices {
  IntChoice depth, width, kernel, stride, expansion;
  NameChoice block, activation;
};

struct CnnSpace {
  IntChoice stages, stem_width, stem_kernel, stem_stride, head_width;
  NameChoice stem_activation;
  CnnStageChoices defaults;
  std::vector<CnnStageChoices> stage;         // [[space.stage]] i overrides stage i's choices
  const CnnStageChoices& choices_for(size_t i) const { return i < stage.size() ? stage[i] : defaults; }
};

struct Nb201Space {
  int64_t channels = 16;                      // C of the first stage (doubles per stage)
  int64_t cells = 5;                          // N cells per stage
  std::vector<std::string> ops;               // allowed operations (default: all five)
};

struct SpaceConfig {
  std::string family;                         // cnn | nb201
  CnnSpace cnn;
  Nb201Space nb201;
};

struct Constraints {
  std::optional<int64_t> max_params;
  std::optional<int64_t> max_macs;
  std::optional<int64_t> max_peak_activation_bytes;
  std::optional<int64_t> max_weight_bytes;
  WeightPrecision precision = WeightPrecision::int8;  // element size for bytes
};

// A real-valued hyperparameter: one value, a list to choose from, or a {min, max, log} range.
struct RealChoice {
  std::vector<double> values;     // fixed or listed values (one value: fixed)
  bool range = false;             // when true: uniform in [min, max] (log-uniform with log)
  double min = 0, max = 0;
  bool log = false;
  std::string key;
  Place place;
  bool searched() const { return range || values.size() > 1; }
};

// [train]: how candidates are trained. Values that are lists or ranges are searched: each
// trial draws its own (space/hparams.h) and keeps them in the study file.
struct TrainConfig {
  int64_t epochs = 5;                         // budget (cumulative epochs) of a trial's training
  IntChoice batch_size;                       // default 128
  int64_t eval_batch_size = 0;                // validation and test batches (no gradients); 0: train::eval_batch decides
  OptimizerChoice optimizer;                  // default sgd
  RealChoice lr;                              // peak learning rate (default 0.05)
  RealChoice momentum;                        // SGD momentum, AdamW beta1 (default 0.9)
  bool nesterov = true;                       // SGD only
  RealChoice weight_decay;                    // default 5e-4
  RealChoice label_smoothing;                 // default 0
  RealChoice warmup_epochs;                   // linear warm-up, in epochs (may be fractional; default 0)
  double grad_clip = 0;                       // max global gradient norm; 0: off
  Schedule schedule = Schedule::cosine;       // after the warm-up
  Precision precision = Precision::automatic;
  int max_attempts = 3;                       // claims per trial before it fails
  double lease_s = 300;                       // lease length; workers renew every lease_s/4
};

// [proxy]: how nas-proxy scores candidates before training.
struct ProxyConfig {
  std::vector<std::string> proxies = {"synflow", "jacob_cov", "nwot", "zico", "params"};
  std::map<std::string, double> weights;      // a proxy's weight in the ensemble (default 1)
  Ensemble ensemble = Ensemble::sum;          // sum (normalised log-ranks) | vote (pairwise majority) | none
  std::string rank_by;                        // the score that ranks candidates: "ensemble" or a proxy ("" : ensemble, or the one proxy)
  int64_t batch_size = 64;                    // the shared batch of the data-dependent proxies (nwot and zico: 128)
  int threads = 0;                            // candidates scored at once (0: the cores)
};

// [budget]: which candidates enter training and for how long (successive halving).
struct BudgetConfig {
  double min_epochs = 1;                      // rung 0's budget
  double max_epochs = 0;                      // the last rung's budget (0: [train] epochs)
  double eta = 3;                             // each rung keeps 1/eta of its trials with eta times the budget
  double keep = 1.0;                          // candidates that enter training: a count (>= 1) or a fraction (< 1)
  bool keep_is_count = false;
  bool proxy_start = false;                   // the proxies' top keep/eta^k start at rung k
  bool early_stop = false;                    // stop a trial whose val_acc falls out of the top 1/eta at an epoch
  bool anneal = false;                        // each rung's learning rate anneals to zero at its budget
  Promotion promotion = Promotion::asynchronous;  // ASHA | synchronous (a rung promotes once it is complete)
  bool given = false;                         // the file has a [budget] section
};

// [slurm]: how nas-slurm plans, renders and submits the study's batch jobs. Site policy (what a
// job script does) lives in the templates; these are the values they are filled with.
struct SlurmConfig {
  std::string partition, account, qos;        // "" : the site's default (no #SBATCH line)
  int gpus = 1;                               // GPUs the training array holds at a time
  int gpus_per_task = 1;                      // GPUs one array task asks for
  GpuOption gpu_option = GpuOption::gres;     // gres (--gres=gpu:N) | gpus-per-task | none
  int cpus_per_task = 4;
  std::string memory = "16G";                 // --mem of a task; "" : the site's default
  std::string time = "04:00:00";              // --time of an array task (Slurm's formats)
  int array_parallelism = 0;                  // the array's '%': 0 means `gpus`
  int64_t gpu_mem = int64_t(80) << 30;        // memory of one GPU, bytes (the packing planner's bound)
  int pack = 0;                               // trainings per GPU; 0: from the packing planner
  int processes = 1;                          // nas-train processes per GPU (several: with mps)
  bool mps = false;                           // start an MPS daemon inside each task
  int signal_s = 120;                         // early warning (--signal=B:USR1@s) before the time limit
  // The epoch-time model before the study has measured epochs (then it is calibrated on them):
  double throughput = 2e12;                   // FLOP/s of one training on a GPU
  double cpu_throughput = 3e10;               // FLOP/s of one training on CPU cores
  double step_s = 0.01;                       // seconds of a training step beyond its FLOPs
  std::string device = "auto";                // nas-train --device in the array tasks
  std::vector<std::string> setup;             // shell lines run before the tools (module load ...)
  std::vector<std::string> sbatch;            // extra #SBATCH options, e.g. "--constraint=a100"
  std::string templates;                      // folder of *.sbatch.in ("" : the installed templates)
};

// An objective of the search: a metric as nas-pareto names it, and its direction.
struct Objective {
  std::string metric;                         // params | val_acc | proxy_synflow | local:cpu:latency_s | ...
  bool maximize = true;
  bool operator==(const Objective& o) const { return metric == o.metric && maximize == o.maximize; }
};

// A bound on a metric a trial must meet to be feasible ("latency_s <= 0.005").
struct SearchConstraint {
  std::string metric;
  bool at_most = true;                        // <= (else >=)
  double bound = 0;
};

// [search]: which strategy proposes candidates, and the island model of the evolutionary ones
// (Propulate's defaults). The probabilities are those of each breeding event: `random` the
// share of children drawn fresh from the space; of the others, `crossover` the share that cross
// two parents and `mutation` the share that get a point mutation (independently).
struct SearchConfig {
  StrategyKind strategy = StrategyKind::random;
  std::vector<Objective> objectives;          // evolution: one (default val_acc:max); nsga2: two or more
  std::vector<SearchConstraint> constraints;  // feasible trials rank before infeasible ones
  int64_t population = 20;                    // parents come from the best `population` evaluated trials of the island
  int64_t islands = 1;
  double crossover = 0.7, mutation = 0.4, random = 0.1;
  double migration = 0.9;                     // per breeding event, divided by the island's workers
  int64_t migrants = 1;                       // the best trials an island sends to each other island
  bool pollination = true;                    // copies replacing the target's worst (else the migrants move)
  int64_t evaluations = 0;                    // trials the study may hold; idle workers breed below it (0: no bound)
  // The search's other budgets (every strategy): past either, no promotion and no child starts.
  double epochs = 0;                          // training epochs all trials may commit, every rung counted (0: no bound)
  int64_t wall_time_s = 0;                    // seconds from the study's first claim; then nothing new is claimed (0: no bound)
  // Proxy-guided moves: a breeding worker proposes `screen` candidates, scores them with the
  // data-free `screen_proxies` outside the write lock, and queues the best (0: off).
  int64_t screen = 0;
  std::vector<std::string> screen_proxies = {"synflow"};  // several: the sum of their normalised log-ranks
  bool given = false;                         // the file has a [search] section
};

// Seconds of a Slurm time string: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. Throws
// std::invalid_argument naming the string when it is none of these or zero.
int64_t parse_slurm_time(const std::string& s);

// "80GiB", "512MiB", "16G", "1000000" (bytes) -> bytes. Throws std::invalid_argument.
int64_t parse_bytes(const std::string& s);

// [distill]: knowledge distillation by nas-distill from a teacher network. Without the section a
// study does not distill.
struct DistillConfig {
  bool given = false;                         // the file has a [distill] section
  // A TorchScript file of a teacher trained elsewhere (resolved against the config's folder);
  // "": the teacher nas-distill trained and recorded in the study file.
  std::string teacher;
  Place teacher_place;
  // The TorchScript teacher's input normalisation, per channel, on pixels scaled to [0, 1];
  // empty: the study's own (the mean and std of its training split).
  std::vector<double> teacher_mean, teacher_std;
  DistillLoss loss = DistillLoss::kd;
  double temperature = 4;
  double alpha = 0.9;                         // kd: the KL's weight (CE has 1 - alpha); dkd: TCKD's (default 1)
  double beta = 8;                            // dkd: NCKD's weight
  int64_t warmup_epochs = 20;                 // dkd: the KD terms' linear warm-up
  DistillTrials trials = DistillTrials::all;  // searched: each trial draws distill on or off
  // cached: the teacher's logits of the training set computed once (needs no random augmentation);
  // online: the teacher runs on each augmented batch; auto: cached when the data is not augmented.
  SoftTargets targets = SoftTargets::automatic;
};

// [measure]: where and how nas-measure measures trained trials (its flags override each key).
struct MeasureConfig {
  bool given = false;                         // the file has a [measure] section
  std::string backend = "local";              // local | mimaas | http
  std::string board;                          // mimaas: the board type (nrf5340dk); http: the target
  bool quantize = true;                       // mimaas/http: upload the int8 TFLite model
  std::string build_mode = "pristine";        // mimaas: pristine | fast
  std::string url;                            // "": MIMAAS_API_URL, else the public MIMaaS API
  std::string token_file;                     // "": MIMAAS_API_TOKEN, else ~/.mimaas/token
  int64_t inflight = 4;                       // remote requests in flight at once
  double poll_s = 5;                          // first delay between polls of a request
  double timeout_s = 120;                     // every HTTP call
  double backoff_s = 1;                       // the first retry's longest wait (doubling, capped at 60 s)
  double wait_s = 3600;                       // give up waiting for open requests after this long
  int64_t firmware_overhead_bytes = 284262;   // flash the firmware needs beside the model (MIMaaS precheck)
  std::string device = "cpu";                 // local: cpu | cuda:N
  int64_t batch = 32;                         // local: the batch measured besides batch 1
  int64_t warmup = 20, runs = 200, threads = 1;
  int64_t attempts = 3;                       // local: series of `runs` until one is steady
  double steady_ratio = 1.2;                  // local: a steady series' largest p90/median
  double min_energy_s = 2;
  int64_t calibration_images = 300;           // int8 calibration: training images
  bool after_training = false;                // nas-slurm submit: a measure stage after training
};

struct StudyConfig {
  std::string path;                           // absolute path of the TOML file
  std::string text;                           // the TOML as given
  std::string canonical_hash;                 // sha256 of the parsed configuration (comments and layout ignored)
  std::string name;
  uint64_t seed = 0;
  DataConfig data;
  SpaceConfig space;
  Constraints constraints;
  TrainConfig train;                          // defaults when the file has no [train]
  SlurmConfig slurm;                          // defaults when the file has no [slurm]
  ProxyConfig proxy;                          // defaults when the file has no [proxy]
  BudgetConfig budget;                        // defaults when the file has no [budget]
  SearchConfig search;                        // defaults (random) when the file has no [search]
  DistillConfig distill;                      // given = false when the file has no [distill]
  MeasureConfig measure;                      // given = false when the file has no [measure]
};

// Reads and validates a study TOML file. Relative paths inside resolve against the file's
// folder. Throws ConfigError (exit 2) naming FILE:LINE:COL and the key for: syntax errors,
// unknown keys (with a suggestion), wrong types, empty or invalid ranges, sections reserved for
// later versions. Reads no other file: the data files are probed when the study is created
// (data::probe_study_data), and until then cfg.data.probed is false (synthetic data: true).
StudyConfig load_study_config(const std::string& path);

// The same from text, without any I/O; `path` names the file in messages and anchors relative paths.
StudyConfig parse_study_config(const std::string& text, const std::string& path);

// Fills cfg.data's shape, classes and sample counts from what the probe found and checks them
// against what the file declares (shape, classes, subset, validation). Does no I/O. Throws
// ConfigError at the key concerned (FILE:LINE:COL as parsing does) when they disagree.
void apply_data_probe(StudyConfig& cfg, const DataProbe& probe);

// The files of a [data] key: one path, or the list of a CIFAR-10 split (DataConfig::files joins
// them with ':'). Throws std::out_of_range when the configuration has no such key.
std::vector<std::string> data_files(const DataConfig& d, const std::string& key);

// A ConfigError at the [data] key `key` of the file (at the [data] table when `at_table` or
// when the file does not write the key): how probe errors name their place.
ConfigError data_error(const DataConfig& d, const std::string& key, const std::string& msg, bool at_table = false);

// The training results a search objective or constraint may name (test_acc is left out: it is
// reported, never used for a decision).
const std::vector<std::string>& result_metric_names();

// The proxies nas-proxy knows, in the order of its man page.
const std::vector<std::string>& proxy_names();

// Those that need no data (synflow, zen, params, flops): what [search] screen_proxies may name.
const std::vector<std::string>& data_free_proxy_names();

// Bytes per element of a weight precision (int8 1, fp16 2, fp32 4).
int precision_bytes(WeightPrecision precision);

} // namespace nas::config
