// make_teacher: writes a TorchScript module for the distillation tests, as a teacher trained
// elsewhere would come -- a fixed linear classifier over the flattened input.
// Usage: make_teacher OUT CLASSES FEATURES [SEED]   (FEATURES: C x H x W of the study's input)
#include <torch/script.h>
#include <torch/torch.h>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: make_teacher OUT CLASSES FEATURES [SEED]\n";
    return 2;
  }
  const int64_t classes = std::stoll(argv[2]), features = std::stoll(argv[3]);
  torch::manual_seed(argc > 4 ? std::stoull(argv[4]) : 1);
  torch::jit::Module m("Teacher");
  m.register_parameter("w", torch::randn({classes, features}) * 0.1, false);
  m.define(R"(
def forward(self, x):
    return torch.matmul(x.flatten(1), self.w.t())
)");
  m.save(argv[1]);
  return 0;
}
