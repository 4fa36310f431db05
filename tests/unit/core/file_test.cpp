// file_test: whole-file reads, atomic writes and their errors
#include <doctest/doctest.h>

#include "../support.h"
#include "nas/core/error.h"
#include "nas/core/file.h"

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <sys/stat.h>
#include <unistd.h>

using namespace nas;

namespace {

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

} // namespace

TEST_CASE("read_file returns the bytes written by write_file_atomic") {
  test::TempDir dir;
  const std::string path = dir.file("a.bin");
  const std::string bytes("x\0y\nz", 5);
  write_file_atomic(path, bytes);
  CHECK(read_file(path) == bytes);
  write_file_atomic(path, "second");           // replaces
  CHECK(read_file(path) == "second");
  CHECK(names_in(dir.path) == std::set<std::string>{"a.bin"});   // no temporary left behind
  write_file_atomic(path, std::string(300000, 'q'));             // more than one chunk
  CHECK(read_file(path).size() == 300000);
}

TEST_CASE("read_file names the file and the reason") {
  test::TempDir dir;
  CHECK_THROWS_WITH_AS(read_file(dir.file("none")), ("cannot open '" + dir.file("none") + "': no such file").c_str(),
                       FileError);
  try {
    read_file(dir.path);
    FAIL("a folder read as a file");
  } catch (const FileError& e) {
    CHECK(e.path() == dir.path);
    CHECK(e.reason() == "is a directory");
    CHECK(e.code() == Exit::failure);
  }
}

TEST_CASE("write_file_atomic keeps the old file when it cannot write, and sets the mode") {
  test::TempDir dir;
  CHECK_THROWS_WITH_AS(write_file_atomic(dir.file("no/such/dir"), "x"),
                       ("cannot write '" + dir.file("no/such/dir") + "': no such file").c_str(), FileError);
  const std::string script = dir.file("run.sh");
  const mode_t old = ::umask(022);
  write_file_atomic(script, "#!/bin/sh\n", 0755);
  ::umask(old);
  struct stat st{};
  REQUIRE(::stat(script.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0755);
  // the rename fails (a folder is in the way): the temporary is removed, the folder stays
  std::filesystem::create_directories(dir.file("taken/inside"));
  CHECK_THROWS_AS(write_file_atomic(dir.file("taken"), "x"), FileError);
  CHECK(std::filesystem::is_directory(dir.file("taken")));
  CHECK(names_in(dir.path) == std::set<std::string>{"run.sh", "taken"});
}

TEST_CASE("temp_path_for is next to the target and unique per process and thread") {
  const std::string a = temp_path_for("/x/ckpt.pt");
  CHECK(a.rfind("/x/ckpt.pt.", 0) == 0);
  CHECK(a.find(std::to_string(::getpid())) != std::string::npos);
  CHECK(a.size() > 4);
  CHECK(a.substr(a.size() - 4) == ".tmp");
  CHECK(temp_path_for("/x/ckpt.pt") == a);
  std::string other;
  std::thread([&] { other = temp_path_for("/x/ckpt.pt"); }).join();
  CHECK(other != a);
}

TEST_CASE("commit_temp_file moves a finished file into place") {
  test::TempDir dir;
  const std::string target = dir.file("ckpt.pt"), tmp = temp_path_for(target);
  write_file_atomic(target, "old");
  write_file_atomic(tmp, "new");
  commit_temp_file(tmp, target);
  CHECK(read_file(target) == "new");
  CHECK(!std::filesystem::exists(tmp));
}

TEST_CASE("remove_stale_temps removes a dead writer's temporaries of one file, nothing else") {
  test::TempDir dir;
  const std::string target = dir.file("trial-1.pt");
  auto touch = [&](const std::string& name, int age_s) {
    const std::string p = dir.file(name);
    write_file_atomic(p, "x");
    std::filesystem::last_write_time(p, std::filesystem::file_time_type::clock::now() - std::chrono::seconds(age_s));
  };
  touch("trial-1.pt.123-4.tmp", 3600);     // stale: removed
  touch("trial-1.pt.123-5.tmp", 1);        // being written: kept
  touch("trial-12.pt.123-4.tmp", 3600);    // another trial's: kept
  touch("trial-1.pt", 3600);               // the checkpoint itself: kept
  CHECK(remove_stale_temps(target, 300) == 1);
  CHECK(names_in(dir.path) == std::set<std::string>{"trial-1.pt.123-5.tmp", "trial-12.pt.123-4.tmp", "trial-1.pt"});
  CHECK(remove_stale_temps(dir.file("none/trial-1.pt"), 300) == 0);   // no folder: nothing to do
}
