// local_meter: the local meter (measure/local.h) run several times on the same network, for the
// stability bench (bench/local-meter/run)
//
//   local_meter --genome FILE --shape C,H,W [--classes N] [--repeats R] [--device D] [--batch B]
//               [--warmup W] [--runs N] [--threads T] [--min-energy-s S] [--attempts A]
//               [--steady-ratio R]
//
// Builds the genome's network once (initial weights, seed 1: latency does not depend on the
// values) and measures it R times in a row. Prints one JSON line per repeat:
//   {"genome_file":F,"repeat":i,"metrics":{"latency_ms":..,...},"units":{..},"raw":{...}}
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/measure/local.h"
#include "nas/model/network.h"
#include "nas/space/genome.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>

using namespace nas;

namespace {

std::vector<int64_t> parse_shape(const std::string& s) {
  std::vector<int64_t> out;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = std::min(s.find(',', at), s.size());
    try {
      out.push_back(std::stoll(s.substr(at, comma - at)));
    } catch (const std::exception&) {
      throw UsageError("--shape: expected C,H,W, got '" + s + "'");
    }
    at = comma + 1;
  }
  if (out.size() != 3) throw UsageError("--shape: expected C,H,W, got '" + s + "'");
  return out;
}

nlohmann::json repeat_line(const std::string& file, int i, const measure::LocalResult& r) {
  nlohmann::json values = nlohmann::json::object(), units = nlohmann::json::object();
  for (const auto& m : r.metrics) {
    values[m.name] = m.value ? nlohmann::json(*m.value) : nlohmann::json();
    units[m.name] = m.unit;
  }
  return {{"genome_file", file}, {"repeat", i}, {"metrics", values}, {"units", units}, {"raw", r.raw}};
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Measure one network with the local meter several times in a row"};
  std::string genome_file, shape = "1,28,28";
  int64_t classes = 10;
  int repeats = 5;
  measure::LocalOptions o;
  o.min_energy_s = 0;
  app.add_option("--genome", genome_file, "genome JSON file")->required();
  app.add_option("--shape", shape, "input C,H,W")->capture_default_str();
  app.add_option("--classes", classes, "classes")->capture_default_str();
  app.add_option("--repeats", repeats, "measurements in a row")->capture_default_str();
  app.add_option("--device", o.device, "cpu | cuda:N")->capture_default_str();
  app.add_option("--batch", o.batch, "the second batch size")->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed forwards")->capture_default_str();
  app.add_option("--runs", o.runs, "timed forwards")->capture_default_str();
  app.add_option("--threads", o.threads, "intra-op threads")->capture_default_str();
  app.add_option("--min-energy-s", o.min_energy_s, "energy window (0: none)")->capture_default_str();
  app.add_option("--attempts", o.attempts, "series of --runs until one is steady")->capture_default_str();
  app.add_option("--steady-ratio", o.steady_ratio, "a steady series' largest p90/median")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    space::CostContext ctx;
    ctx.input = parse_shape(shape);
    ctx.classes = classes;
    torch::manual_seed(1);
    model::Network net(space::genome_from_json(read_file(genome_file)), ctx);
    for (int i = 0; i < repeats; ++i)
      std::cout << repeat_line(genome_file, i, measure::measure_local(*net, ctx, o)).dump() << std::endl;
  } catch (const Error& e) {
    std::cerr << "local_meter: error: " << e.what() << "\n";
    return int(e.code());
  }
  return 0;
}
