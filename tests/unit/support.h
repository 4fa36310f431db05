// support: small fixtures shared by the unit tests (temporary folders, scoped environment)
#pragma once
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace nas::test {

// A fresh folder under the system's temporary folder, removed with everything in it.
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& prefix = "minnow-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  // Not std::filesystem::remove_all: the libtorch.so of PyTorch's pip wheels exports a copy of
  // it that interposes libstdc++'s in programs linked to it, and that copy jumps to address 0
  // (seen with torch 2.11 + CUDA 13 on an H200; bench/results/gpu-check-h200.md).
  ~TempDir() {
    ::nftw(path.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
           FTW_DEPTH | FTW_PHYS);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// Sets (or unsets, with nullopt) an environment variable for the scope.
struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  ScopedEnv(std::string n, std::optional<std::string> value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) old = v;
    if (value) ::setenv(name.c_str(), value->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
  ~ScopedEnv() {
    if (old) ::setenv(name.c_str(), old->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
};

} // namespace nas::test
