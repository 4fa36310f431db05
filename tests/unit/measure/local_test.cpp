// local_test: the local meter on this CPU -- metrics and units, order of the quantiles, a bigger
// network slower, the analytic bytes of the cost model, peak RSS growth of a large batch, pinning
// and thread count restored, energy from a fake RAPL tree and unknown without one, bad options
#include <torch/torch.h>

// LibTorch's logging defines CHECK: torch tests use doctest's DOCTEST_-prefixed macros.
#include <doctest/doctest.h>

#include "../support.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/measure/local.h"
#include "nas/model/network.h"
#include "nas/space/cost.h"
#include "nas/space/genome.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

using namespace nas;

namespace {

const char* const small_cnn = NAS_SOURCE_DIR "/bench/fmnist-small-cnn.json";
// The same family, about 20x the MACs of the small one.
const char* const big_cnn =
    R"({"family":"cnn","stem":{"width":32,"kernel":3,"stride":1,"act":"relu"},"stages":[)"
    R"({"block":"conv","depth":2,"width":64,"kernel":3,"stride":1,"act":"relu"},)"
    R"({"block":"conv","depth":2,"width":128,"kernel":3,"stride":2,"act":"relu"},)"
    R"({"block":"conv","depth":2,"width":256,"kernel":3,"stride":2,"act":"relu"}],"head":{"width":0}})";

space::CostContext fmnist() {
  space::CostContext ctx;
  ctx.input = {1, 28, 28};
  ctx.classes = 10;
  return ctx;
}

model::Network build(const std::string& genome_json, const space::CostContext& ctx) {
  torch::manual_seed(3);
  return model::Network(space::genome_from_json(genome_json), ctx);
}

measure::LocalOptions quick(const std::string& rapl_root) {
  measure::LocalOptions o;
  o.batch = 8;
  o.warmup = 3;
  o.runs = 15;
  o.threads = 1;
  o.min_energy_s = 0.2;
  o.rapl_root = rapl_root;
  return o;
}

std::map<std::string, measure::Metric> by_name(const measure::Metrics& ms) {
  std::map<std::string, measure::Metric> out;
  for (const auto& m : ms) out.emplace(m.name, m);
  return out;
}

std::vector<int> affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  ::sched_getaffinity(0, sizeof set, &set);
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

// The CPU lists of every thread of this process (pool threads included), as the kernel has them.
std::set<std::string> thread_cpu_lists() {
  std::set<std::string> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("Cpus_allowed_list:", 0) == 0) out.insert(line.substr(line.find(':') + 1));
  }
  return out;
}

// Replaces a file's contents as a whole (the meter never reads a half-written counter).
void put(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text << "\n";
  std::filesystem::rename(tmp, path);
}

// A meter whose counter the test drives.
struct ScriptedMeter : worker::EnergyMeter {
  double step;                       // joules added per reading
  bool fail_second = false;
  int reads = 0;
  double value = 10;
  explicit ScriptedMeter(double s) : step(s) {}
  std::optional<double> joules() override {
    if (++reads == 2 && fail_second) return std::nullopt;
    value += step;
    return value;
  }
  std::string name() const override { return "scripted"; }
};

} // namespace

TEST_CASE("local meter on the CPU: every metric with its unit, quantiles in order, analytic bytes") {
  const space::CostContext ctx = fmnist();
  model::Network net = build(read_file(small_cnn), ctx);
  const std::vector<int> cpus_before = affinity();
  const int threads_before = at::get_num_threads();
  test::TempDir dir;
  const measure::LocalResult r = measure::measure_local(*net, ctx, quick(dir.file("no-powercap")));

  const std::vector<std::pair<std::string, std::string>> expected = {
      {"latency_ms", "ms"},        {"latency_p10_ms", "ms"},    {"latency_p90_ms", "ms"},
      {"latency_batch_ms", "ms"},  {"throughput_ips", "images/s"}, {"peak_mem_bytes", "bytes"},
      {"rss_growth_bytes", "bytes"}, {"energy_uj", "uJ"}};
  DOCTEST_REQUIRE(r.metrics.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    DOCTEST_CHECK(r.metrics[i].name == expected[i].first);
    DOCTEST_CHECK(r.metrics[i].unit == expected[i].second);
  }
  auto m = by_name(r.metrics);
  const double p10 = *m["latency_p10_ms"].value, med = *m["latency_ms"].value, p90 = *m["latency_p90_ms"].value;
  DOCTEST_CHECK(p10 > 0);
  DOCTEST_CHECK(p10 <= med);
  DOCTEST_CHECK(med <= p90);
  DOCTEST_CHECK(r.raw["batch1"]["min_ms"].get<double>() <= p10);
  DOCTEST_CHECK(r.raw["batch1"]["runs"] == 15);
  DOCTEST_CHECK(r.raw["batch"]["size"] == 8);
  // the series taken until a steady one: the kept one's ratio is the lowest, steady says so
  for (const char* phase : {"batch1", "batch"}) {
    const auto ratios = r.raw[phase]["attempts"].get<std::vector<double>>();
    DOCTEST_REQUIRE(!ratios.empty());
    DOCTEST_CHECK(ratios.size() <= 3);
    const size_t kept = r.raw[phase]["kept_attempt"].get<size_t>();
    DOCTEST_REQUIRE(kept < ratios.size());
    DOCTEST_CHECK(ratios[kept] == *std::min_element(ratios.begin(), ratios.end()));
    DOCTEST_CHECK(r.raw[phase]["steady"].get<bool>() == (ratios[kept] <= 1.2));
  }
  DOCTEST_CHECK(r.raw["batch1"]["p90_ms"].get<double>() / r.raw["batch1"]["median_ms"].get<double>() ==
                doctest::Approx(r.raw["batch1"]["attempts"][r.raw["batch1"]["kept_attempt"].get<size_t>()].get<double>()));
  // the options reach the meter: a limit no real series meets takes every attempt
  measure::LocalOptions strict = quick(dir.file("no-powercap"));
  strict.attempts = 2;
  strict.steady_ratio = 1.0;
  strict.min_energy_s = 0;
  const measure::LocalResult s = measure::measure_local(*net, ctx, strict);
  DOCTEST_CHECK(s.raw["batch1"]["attempts"].size() == 2);
  DOCTEST_CHECK(s.raw["batch1"]["steady_ratio"] == 1.0);
  DOCTEST_CHECK(s.raw["attempts"] == 2);
  DOCTEST_CHECK(*m["throughput_ips"].value == doctest::Approx(8 * 1e3 / *m["latency_batch_ms"].value));

  space::CostContext fp32 = ctx;
  fp32.bytes_per_element = 4;
  const space::Cost cost = space::estimate_cost(net->genome(), fp32);
  DOCTEST_CHECK(*m["peak_mem_bytes"].value == double(cost.weight_bytes + cost.peak_activation_bytes));
  DOCTEST_CHECK(cost.weight_bytes == 4 * net->parameter_count());
  DOCTEST_REQUIRE(m["rss_growth_bytes"].value.has_value());
  DOCTEST_CHECK(*m["rss_growth_bytes"].value >= 0);

  DOCTEST_CHECK(!m["energy_uj"].value.has_value());
  DOCTEST_CHECK(r.raw["energy"]["why_not"].get<std::string>().find("does not exist") != std::string::npos);

  DOCTEST_CHECK(r.raw["threads"]["cpus"] == std::vector<int>{cpus_before.front()});
  DOCTEST_CHECK(r.raw["threads"]["torch_intra_op"] == 1);
  DOCTEST_CHECK(r.raw["threads"]["pinned_threads"] == 1);
  DOCTEST_CHECK(r.raw["device"] == "cpu");
  DOCTEST_CHECK(!r.raw["cpu_model"].get<std::string>().empty());
  DOCTEST_CHECK(r.raw["genome"] == space::canonical(net->genome()));
  // restored afterwards: affinity, thread count, training mode
  DOCTEST_CHECK(affinity() == cpus_before);
  DOCTEST_CHECK(at::get_num_threads() == threads_before);
  DOCTEST_CHECK(net->is_training());
}

TEST_CASE("local meter: two intra-op threads are both pinned to the two chosen CPUs") {
  const std::vector<int> cpus = affinity();
  if (cpus.size() < 2) {
    DOCTEST_MESSAGE("one CPU only: skipped");
    return;
  }
  const space::CostContext ctx = fmnist();
  model::Network net = build(read_file(small_cnn), ctx);
  measure::LocalOptions o = quick("/nonexistent");
  o.threads = 2;
  o.runs = 3;
  // with three CPUs or more, a set that is not all of them: restoring the pool then shows
  o.cpus = cpus.size() >= 3 ? std::vector<int>{cpus[2], cpus[1]} : std::vector<int>{cpus[1], cpus[0]};
  o.min_energy_s = 0;
  const std::set<std::string> lists_before = thread_cpu_lists();
  const auto r = measure::measure_local(*net, ctx, o);
  DOCTEST_CHECK(r.raw["threads"]["cpus"] == o.cpus);
  DOCTEST_CHECK(r.raw["threads"]["torch_intra_op"] == 2);
  DOCTEST_CHECK(r.raw["threads"]["pinned_threads"] == 2);
  DOCTEST_CHECK(affinity() == cpus);
  DOCTEST_CHECK(thread_cpu_lists() == lists_before);   // the pool thread given back its CPUs too
}

TEST_CASE("local meter: a bigger network of the same family is slower at the median") {
  const space::CostContext ctx = fmnist();
  model::Network small = build(read_file(small_cnn), ctx), big = build(big_cnn, ctx);
  measure::LocalOptions o = quick("/nonexistent");
  o.min_energy_s = 0;
  const double t_small = *by_name(measure::measure_local(*small, ctx, o).metrics)["latency_ms"].value;
  const auto rb = measure::measure_local(*big, ctx, o);
  const double t_big = *by_name(rb.metrics)["latency_ms"].value;
  DOCTEST_INFO("small ", t_small, " ms, big ", t_big, " ms");
  DOCTEST_CHECK(t_big > 2 * t_small);
  DOCTEST_CHECK(rb.raw["energy"]["why_not"].get<std::string>().find("min_energy_s") != std::string::npos);
}

TEST_CASE("local meter: the peak RSS growth sees the activations of a large batch") {
  const space::CostContext ctx = fmnist();
  model::Network net = build(read_file(small_cnn), ctx);
  measure::LocalOptions o = quick("/nonexistent");
  o.batch = 512;          // the 24-channel 28x28 map of the first stage: 38.5 MB, beyond malloc's mmap threshold
  o.warmup = 0;
  o.runs = 1;
  o.min_energy_s = 0;
  const auto r = measure::measure_local(*net, ctx, o);
  const auto& mem = r.raw["batch"]["memory"];
  DOCTEST_REQUIRE(mem["rss_peak_bytes"].is_number());
  const int64_t growth = mem["rss_peak_bytes"].get<int64_t>() - mem["rss_before_bytes"].get<int64_t>();
  DOCTEST_INFO("growth ", growth, " bytes, peak reset: ", mem["peak_reset"].dump());
  DOCTEST_CHECK(growth >= int64_t(512) * 24 * 28 * 28 * 4);
}

TEST_CASE("local meter: energy from a RAPL counter (a fake powercap tree counting while it runs)") {
  test::TempDir dir;
  const std::string pkg = dir.path + "/intel-rapl:0";
  std::filesystem::create_directories(pkg);
  put(pkg + "/name", "package-0");
  put(pkg + "/max_energy_range_uj", "262143328850");
  put(pkg + "/energy_uj", "1000000");
  std::atomic<bool> stop{false};
  std::thread counter([&] {
    for (long uj = 1000000; !stop; uj += 500) {     // 500 uJ a millisecond: 0.5 W
      put(pkg + "/energy_uj", std::to_string(uj));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const space::CostContext ctx = fmnist();
  model::Network net = build(read_file(small_cnn), ctx);
  measure::LocalResult r;
  try {
    r = measure::measure_local(*net, ctx, quick(dir.path));
  } catch (...) {
    stop = true;
    counter.join();
    throw;
  }
  stop = true;
  counter.join();
  const auto& e = r.raw["energy"];
  DOCTEST_INFO(e.dump());
  DOCTEST_CHECK(e["meter"] == "rapl:package-0");
  auto uj = by_name(r.metrics)["energy_uj"].value;
  DOCTEST_REQUIRE(uj.has_value());
  DOCTEST_CHECK(*uj > 0);
  DOCTEST_CHECK(e["seconds"].get<double>() >= 0.2);
  DOCTEST_CHECK(*uj * e["inferences"].get<double>() == doctest::Approx(e["joules"].get<double>() * 1e6));
  // at most 0.5 W counted (the writer sleeps at least 1 ms per 500 uJ), with the counter reads
  // around the window and two steps of slack
  DOCTEST_CHECK(e["joules"].get<double>() <= 0.5 * (e["seconds"].get<double>() + 0.01) + 0.001);
}

TEST_CASE("energy_per_inference: joules over inferences, unknown when the counter stands or fails") {
  int calls = 0;
  ScriptedMeter rising(2.0);
  auto w = measure::energy_per_inference(rising, [&] { ++calls; }, 0.01);
  DOCTEST_CHECK(w.inferences == calls);
  DOCTEST_CHECK(w.seconds >= 0.01);
  DOCTEST_CHECK(w.joules == doctest::Approx(2.0));
  DOCTEST_REQUIRE(w.uj_per_inference.has_value());
  DOCTEST_CHECK(*w.uj_per_inference == doctest::Approx(2e6 / double(calls)));

  ScriptedMeter still(0.0);
  w = measure::energy_per_inference(still, [] {}, 0.0);
  DOCTEST_CHECK(w.inferences == 1);      // at least one inference, even with no minimum
  DOCTEST_CHECK(!w.uj_per_inference.has_value());
  DOCTEST_CHECK(w.why_not.find("did not advance") != std::string::npos);

  ScriptedMeter broken(1.0);
  broken.fail_second = true;
  w = measure::energy_per_inference(broken, [] {}, 0.0);
  DOCTEST_CHECK(!w.uj_per_inference.has_value());
  DOCTEST_CHECK(w.why_not.find("could not be read") != std::string::npos);
}

TEST_CASE("quantile: linear interpolation between order statistics") {
  std::vector<double> v;
  for (int i = 11; i >= 1; --i) v.push_back(i);       // unsorted on purpose
  DOCTEST_CHECK(measure::quantile(v, 0.5) == doctest::Approx(6));
  DOCTEST_CHECK(measure::quantile(v, 0.1) == doctest::Approx(2));
  DOCTEST_CHECK(measure::quantile(v, 0.9) == doctest::Approx(10));
  DOCTEST_CHECK(measure::quantile({1, 2}, 0.5) == doctest::Approx(1.5));
  DOCTEST_CHECK(measure::quantile({4}, 0.9) == doctest::Approx(4));
  DOCTEST_CHECK_THROWS_AS(measure::quantile({}, 0.5), std::invalid_argument);
}

TEST_CASE("until_steady: the first series with p90/median at most the limit, else the steadiest") {
  // series of 10 timings: `slow` of them at 2 ms, the rest at 1 ms
  auto series_of = [](int slow) {
    std::vector<double> ms(10, 1.0);
    for (int i = 0; i < slow; ++i) ms[size_t(i)] = 2.0;
    return ms;
  };
  std::vector<int> plan;
  size_t calls = 0;
  auto next = [&] { return series_of(plan.at(calls++)); };

  plan = {3, 0, 0};   // p90/median 2.0, then 1.0: the second is kept, the third never taken
  auto s = measure::until_steady(next, 3, 1.2);
  DOCTEST_CHECK(calls == 2);
  DOCTEST_CHECK(s.ratios == std::vector<double>{2.0, 1.0});
  DOCTEST_CHECK(s.kept == 1);
  DOCTEST_CHECK(s.steady);
  DOCTEST_CHECK(s.ms == series_of(0));

  plan = {3, 5, 1, 0};   // none steady within 3: ratios 2, 2/1.5, 1.1 (p90 interpolated): the third kept
  calls = 0;
  s = measure::until_steady(next, 3, 1.05);
  DOCTEST_CHECK(calls == 3);
  DOCTEST_REQUIRE(s.ratios.size() == 3);
  DOCTEST_CHECK(s.ratios[0] == doctest::Approx(2.0));
  DOCTEST_CHECK(s.ratios[1] == doctest::Approx(2.0 / 1.5));
  DOCTEST_CHECK(s.ratios[2] == doctest::Approx(1.1));
  DOCTEST_CHECK(s.kept == 2);
  DOCTEST_CHECK_FALSE(s.steady);
  DOCTEST_CHECK(s.ms == series_of(1));

  plan = {3};         // one attempt: kept as it is, unsteady
  calls = 0;
  s = measure::until_steady(next, 1, 1.2);
  DOCTEST_CHECK(calls == 1);
  DOCTEST_CHECK(s.kept == 0);
  DOCTEST_CHECK_FALSE(s.steady);
}

TEST_CASE("local meter: bad options are usage errors naming the option") {
  const space::CostContext ctx = fmnist();
  model::Network net = build(read_file(small_cnn), ctx);
  auto message = [&](const measure::LocalOptions& o) {
    try {
      measure::measure_local(*net, ctx, o);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  measure::LocalOptions o = quick("/nonexistent");
  o.batch = 0;
  DOCTEST_CHECK(message(o).find("'batch'") != std::string::npos);
  o = quick("/nonexistent");
  o.runs = 0;
  DOCTEST_CHECK(message(o).find("'runs'") != std::string::npos);
  o = quick("/nonexistent");
  o.threads = int(affinity().size()) + 1;
  DOCTEST_CHECK(message(o).find("'threads'") != std::string::npos);
  o = quick("/nonexistent");
  o.cpus = {CPU_SETSIZE - 1};
  DOCTEST_CHECK(message(o).find("'cpus'") != std::string::npos);
  o.cpus = {affinity().front(), affinity().front()};
  DOCTEST_CHECK(message(o).find("twice") != std::string::npos);
  o = quick("/nonexistent");
  o.min_energy_s = -1;
  DOCTEST_CHECK(message(o).find("'min_energy_s'") != std::string::npos);
  o = quick("/nonexistent");
  o.attempts = 0;
  DOCTEST_CHECK(message(o).find("'attempts'") != std::string::npos);
  o = quick("/nonexistent");
  o.steady_ratio = 0.9;
  DOCTEST_CHECK(message(o).find("'steady_ratio'") != std::string::npos);
  o = quick("/nonexistent");
  o.device = "tpu";
  DOCTEST_CHECK(message(o).find("unknown device 'tpu'") != std::string::npos);
  DOCTEST_CHECK(net->is_training());      // refused before the network was touched
}

TEST_CASE("local meter on CUDA: the allocator's peak at batch 1, the network moved back") {
  if (!torch::cuda::is_available()) {
    DOCTEST_MESSAGE("no CUDA device: skipped (run on a GPU machine)");
    return;
  }
  const space::CostContext ctx = fmnist();
  model::Network net = build(read_file(small_cnn), ctx);
  measure::LocalOptions o = quick("/nonexistent");
  o.device = "cuda:0";
  const auto r = measure::measure_local(*net, ctx, o);
  auto m = by_name(r.metrics);
  DOCTEST_CHECK(m.count("rss_growth_bytes") == 0);
  DOCTEST_REQUIRE(m["peak_mem_bytes"].value.has_value());
  // the weights are allocated on the device, so the peak is at least their size
  DOCTEST_CHECK(*m["peak_mem_bytes"].value >= double(4 * net->parameter_count()));
  DOCTEST_CHECK(*m["latency_p10_ms"].value <= *m["latency_ms"].value);
  DOCTEST_CHECK(r.raw["device_name"].get<std::string>() != r.raw["cpu_model"].get<std::string>());
  DOCTEST_CHECK(net->parameters().front().device().is_cpu());   // moved back
}
