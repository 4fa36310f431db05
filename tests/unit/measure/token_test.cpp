// token_test: where the API token comes from, the private token file, and the password prompt
// (echo off on a pseudo-terminal)
#include <doctest/doctest.h>

#include "../support.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/measure/token.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

using namespace nas;
using namespace nas::measure;

namespace {

const std::string kToken = "5f3a1c0e9b7d2a4f6e8c0b1d3f5a7c9e5f3a1c0e9b7d2a4f6e8c0b1d3f5a7c9e";

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

void write_with_mode(const std::string& path, const std::string& text, unsigned mode) {
  write_file_atomic(path, text, 0600);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::string drain(int fd) {
  std::string out;
  char buf[256];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 100) > 0) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

} // namespace

TEST_CASE("load_token: the environment first, then a private token file") {
  test::TempDir dir;
  const std::string file = dir.file("token");
  write_with_mode(file, kToken + "\n", 0600);
  {
    test::ScopedEnv env("MIMAAS_API_TOKEN", "fromenv123");
    CHECK(load_token(file) == "fromenv123");
  }
  test::ScopedEnv env("MIMAAS_API_TOKEN", std::nullopt);
  CHECK(load_token(file) == kToken);
  write_with_mode(file, "  " + kToken + "  \nsecond line\n", 0400);
  CHECK(load_token(file) == kToken);
  {
    test::ScopedEnv empty("MIMAAS_API_TOKEN", "");       // set but empty: the file
    CHECK(load_token(file) == kToken);
  }
  test::ScopedEnv home("HOME", dir.path);
  CHECK(default_token_path() == dir.path + "/.mimaas/token");
  save_token(default_token_path(), "t0k");
  CHECK(load_token() == "t0k");
}

TEST_CASE("load_token refuses a file others may read, naming the file and its mode") {
  test::TempDir dir;
  test::ScopedEnv env("MIMAAS_API_TOKEN", std::nullopt);
  const std::string file = dir.file("token");
  for (unsigned mode : {0644u, 0640u, 0604u, 0620u}) {
    write_with_mode(file, kToken, mode);
    char expected[256];
    std::snprintf(expected, sizeof expected, "token file '%s' has mode %04o: group or others may read it; run chmod 600 '%s'",
                  file.c_str(), mode, file.c_str());
    CHECK_THROWS_WITH_AS(load_token(file), expected, UsageError);
  }
  try {
    write_with_mode(file, kToken, 0644);
    load_token(file);
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).find(kToken) == std::string::npos);   // never the token itself
  }
}

TEST_CASE("load_token: no token anywhere, an empty file, a token a header cannot carry") {
  test::TempDir dir;
  test::ScopedEnv env("MIMAAS_API_TOKEN", std::nullopt);
  CHECK_THROWS_WITH_AS(load_token(dir.file("none")),
                       ("no API token: set MIMAAS_API_TOKEN or run 'nas-measure login' (no token file '" +
                        dir.file("none") + "')").c_str(),
                       UsageError);
  write_with_mode(dir.file("empty"), "\n", 0600);
  CHECK_THROWS_WITH_AS(load_token(dir.file("empty")), ("token file '" + dir.file("empty") + "' is empty").c_str(),
                       UsageError);
  write_with_mode(dir.file("spaced"), "abc def\n", 0600);
  CHECK_THROWS_AS(load_token(dir.file("spaced")), UsageError);
  CHECK_THROWS_WITH_AS(load_token(dir.path), ("token file '" + dir.path + "' is not a regular file").c_str(),
                       UsageError);
  test::ScopedEnv bad("MIMAAS_API_TOKEN", "abc\x01");
  CHECK_THROWS_WITH_AS(load_token(dir.file("none")),
                       "environment variable 'MIMAAS_API_TOKEN': the API token holds white space or control characters",
                       UsageError);
  test::ScopedEnv other("NAS_HTTP_TOKEN", "generic-token");   // another backend's variable
  CHECK(load_token(dir.file("none"), "NAS_HTTP_TOKEN") == "generic-token");
}

TEST_CASE("save_token writes 0600 in a 0700 folder it creates, replacing a loose file") {
  test::TempDir dir;
  const mode_t old = ::umask(022);
  const std::string file = dir.file("a/b/token");
  save_token(file, kToken);
  CHECK(read_file(file) == kToken + "\n");
  CHECK(mode_of(file) == 0600);
  CHECK(mode_of(dir.file("a/b")) == 0700);
  CHECK(mode_of(dir.file("a")) == 0700);
  CHECK(mode_of(dir.path) == 0700);            // mkdtemp's; an existing folder is left alone
  REQUIRE(::chmod(dir.path.c_str(), 0755) == 0);
  write_with_mode(dir.file("loose"), "old", 0644);
  save_token(dir.file("loose"), "new-token");
  CHECK(mode_of(dir.file("loose")) == 0600);
  CHECK(mode_of(dir.path) == 0755);
  CHECK(read_file(dir.file("loose")) == "new-token\n");
  CHECK_THROWS_AS(save_token(dir.file("x"), ""), UsageError);
  CHECK_THROWS_AS(save_token(dir.file("x"), "two words"), UsageError);
  ::umask(old);
}

TEST_CASE("read_password: echo off while typing, restored after, the line without its break") {
  int master = -1, slave = -1;
  REQUIRE(::openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
  struct termios before {};
  REQUIRE(::tcgetattr(slave, &before) == 0);
  REQUIRE((before.c_lflag & ECHO) != 0);
  std::thread typist([&] {
    struct termios t {};                      // wait until echo is off (TCSAFLUSH drops earlier input)
    for (int i = 0; i < 500; ++i) {
      if (::tcgetattr(master, &t) == 0 && !(t.c_lflag & ECHO)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const std::string typed = "hunter2 with spaces\n";
    CHECK(::write(master, typed.data(), typed.size()) == ssize_t(typed.size()));
  });
  const std::string pw = read_password(slave, "Password: ");
  typist.join();
  CHECK(pw == "hunter2 with spaces");
  const std::string shown = drain(master);
  CHECK(shown.find("Password: ") != std::string::npos);
  CHECK(shown.find("hunter2") == std::string::npos);             // not echoed
  struct termios after {};
  REQUIRE(::tcgetattr(slave, &after) == 0);
  CHECK((after.c_lflag & ECHO) != 0);                            // restored
  ::close(master);
  ::close(slave);

  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  CHECK_THROWS_WITH_AS(read_password(fds[0], "Password: "), "cannot read a password: not a terminal", UsageError);
  ::close(fds[0]);
  ::close(fds[1]);
}
