// export_sample: random genomes of either family as exported files plus what LibTorch computes
// for the same inputs, for the runtime checks of the exporters (tests/cli/export_*.sh).
//   export_sample --format tflite|tflite-int8|onnx --family cnn|nb201 --count K --seed S --out DIR
//                 [--opset N] [--static-batch]   (ONNX: opset, batch dimension fixed at 1)
// For each k < K: DIR/k/model.(tflite|onnx), genome.json, input.npy (N x C x H x W float32, the
// normalised input), expected.npy (N x classes float32 logits of the network in eval mode).
// Batch-norm statistics are randomised, so folding them is tested; int8 files are calibrated on
// `--calibration` further random inputs.
// With --study DB --trial ID: that trained trial instead, exported by nas-measure's own code (its
// int8 file calibrated on training images), with `--inputs` of the study's test images.
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "nas/config/study_config.h"
#include "nas/core/file.h"
#include "nas/core/random.h"
#include "nas/model/lower.h"
#include "nas/model/onnx.h"
#include "nas/model/tflite.h"
#include "nas/data/dataset.h"
#include "nas/measure/trained.h"
#include "nas/measure/trained_network.h"
#include "nas/store/open.h"
#include "nas/space/cost.h"
#include "nas/space/sampler.h"

#include "../unit/networks.h"

namespace fs = std::filesystem;
using namespace nas;

namespace {

config::StudyConfig space_of(const std::string& family) {
  if (family == "nb201") return test::nb201_space(8, 1, "[3,32,32]", "<export_sample>");
  test::CnnSpace spec;
  spec.classes = 10;
  spec.stem_kernel = "[3,5]";
  spec.path = "<export_sample>";
  return test::wide_cnn(spec);
}

// NPY version 1.0, little-endian float32, C order.
void write_npy(const fs::path& path, const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kFloat32).contiguous();
  std::string shape;
  for (int64_t d : c.sizes()) shape += std::to_string(d) + ", ";
  if (c.dim() > 1) shape.resize(shape.size() - 1);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(c.data_ptr<float>()), size_t(c.numel()) * sizeof(float));
  write_file_atomic(path.string(), out);
}

// The trained trial `trial` of the study `db` as DIR/0: nas-measure's export and LibTorch's logits.
void export_trained(const std::string& db, int64_t trial, const std::string& format, int inputs, const fs::path& dir) {
  store::OpenStudy opened = store::open_study(db, store::Access::read_write);
  measure::TrainedTrials models(opened.db, db, opened.cfg);
  const measure::ExportedFile f = models.export_model(trial, format);
  model::Network net = measure::trained_network(opened.db, db, opened.cfg, trial);
  data::StudyData d = data::load_study_data(opened.cfg.data, opened.cfg.seed, torch::kCPU);
  const int64_t n = std::min<int64_t>(inputs, d.test.size());
  torch::Tensor x = data::gather_batch(d, d.test, torch::arange(n), false, at::make_generator<at::CPUGeneratorImpl>(0));
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = net->forward(x);
  }
  fs::create_directories(dir);
  fs::copy_file(f.abs_path, dir / (format == "onnx" ? "model.onnx" : "model.tflite"), fs::copy_options::overwrite_existing);
  write_npy(dir / "input.npy", x);
  write_npy(dir / "expected.npy", y);
  std::cout << "0\ttrial " << trial << "\t" << f.path << "\n";
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"random genomes as exported files and LibTorch's outputs"};
  std::string format, family = "cnn", out;
  int count = 5, inputs = 16, calibration = 256;
  uint64_t seed = 1;
  model::OnnxOptions onnx;
  app.add_option("--format", format)->required()->check(CLI::IsMember({"tflite", "tflite-int8", "onnx"}));
  app.add_option("--family", family)->check(CLI::IsMember({"cnn", "nb201"}));
  app.add_option("--count", count);
  app.add_option("--seed", seed);
  app.add_option("--inputs", inputs);
  app.add_option("--calibration", calibration);
  app.add_option("--opset", onnx.opset, "ONNX opset [13]");
  app.add_flag("!--static-batch", onnx.dynamic_batch, "ONNX batch dimension fixed at 1");
  app.add_option("--out", out)->required();
  std::string study;
  int64_t trial = 0;
  app.add_option("--study", study, "a study file: export its trained --trial instead of random networks");
  app.add_option("--trial", trial);
  CLI11_PARSE(app, argc, argv);
  try {
    if (!study.empty()) {
      export_trained(study, trial, format, inputs, fs::path(out) / "0");
      return 0;
    }
    auto cfg = space_of(family);
    auto ctx = space::cost_context(cfg);
    space::Sampler sampler(cfg);
    Rng rng(seed, 0);
    for (int k = 0; k < count; ++k) {
      space::Genome g = sampler.draw(rng);
      torch::manual_seed(seed * 1000 + uint64_t(k));
      model::Network net(g, ctx);
      test::randomise_batch_norms(net);
      net->eval();
      torch::Tensor x = torch::randn({inputs, ctx.input[0], ctx.input[1], ctx.input[2]});
      torch::Tensor y;
      {
        torch::NoGradGuard no_grad;
        y = net->forward(x);
      }
      model::Graph graph = model::lower(net, std::vector<float>(size_t(ctx.input[0]), 0.f),
                                        std::vector<float>(size_t(ctx.input[0]), 1.f));
      fs::path dir = fs::path(out) / std::to_string(k);
      fs::create_directories(dir);
      std::string bytes;
      if (format == "onnx") {
        bytes = model::write_onnx(graph, onnx);
      } else {
        model::TfliteOptions opt;
        std::vector<model::TensorRange> ranges;
        if (format == "tflite-int8") {
          ranges = model::calibrate(graph, torch::randn({calibration, ctx.input[0], ctx.input[1], ctx.input[2]}));
          opt.int8 = true;
          opt.ranges = &ranges;
        }
        bytes = model::write_tflite(graph, opt);
      }
      write_file_atomic((dir / (format == "onnx" ? "model.onnx" : "model.tflite")).string(), bytes);
      write_file_atomic((dir / "genome.json").string(), space::canonical(g) + "\n");
      write_npy(dir / "input.npy", x);
      write_npy(dir / "expected.npy", y);
      std::cout << k << "\t" << space::summary(g) << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "export_sample: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
