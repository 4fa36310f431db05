// runtime_test: the torch part of the library links and reports the LibTorch it was built with
// LibTorch's logging defines CHECK: torch tests use doctest's DOCTEST_-prefixed macros.
#include <torch/torch.h>

#include <doctest/doctest.h>

#include <string>

#include "nas/core/about.h"

namespace nas {
std::string runtime_summary();
} // namespace nas

TEST_CASE("runtime_summary names the linked LibTorch and registers itself for --version") {
  std::string s = nas::runtime_summary();
  DOCTEST_CHECK(s.rfind("LibTorch " + std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR), 0) == 0);
  DOCTEST_CHECK((s.find("CPU only") != std::string::npos || s.find("CUDA devices") != std::string::npos));
  DOCTEST_REQUIRE(static_cast<bool>(nas::version_detail));
  DOCTEST_CHECK(nas::version_detail() == s);
  // a tensor operation runs: the library is really linked, not only compiled against
  DOCTEST_CHECK(torch::ones({2, 3}).sum().item<double>() == doctest::Approx(6.0));
}
