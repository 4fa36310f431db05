// token: reading and writing the API token file with POSIX calls (modes checked on the open file)
#include "nas/measure/token.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace nas::measure {
namespace {

std::string octal(unsigned mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

// Tokens go into a header: printable ASCII without spaces. `where` names the source.
void check_token(const std::string& token, const std::string& where) {
  if (token.empty()) throw UsageError(where + " holds an empty API token");
  if (!std::all_of(token.begin(), token.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; }))
    throw UsageError(where + ": the API token holds white space or control characters");
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string read_small(int fd, const std::string& path) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw FileError("read", path, errno_text(errno));
    if (n == 0) return out;
    out.append(buf, size_t(n));
    if (out.size() > 65536) throw UsageError("token file '" + path + "' is larger than 64 KiB: not a token");
  }
}

void make_private_dirs(const std::filesystem::path& dir) {
  if (dir.empty() || std::filesystem::exists(dir)) return;
  make_private_dirs(dir.parent_path());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw FileError("create folder", dir.string(), errno_text(errno));
}

} // namespace

std::string default_token_path() {
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.mimaas/token";
}

std::string load_token(const std::string& path, const std::string& env) {
  if (const char* v = std::getenv(env.c_str()); v && *v) {
    const std::string token = trim(v);
    check_token(token, "environment variable '" + env + "'");
    return token;
  }
  const std::string file = path.empty() ? default_token_path() : path;
  Fd f{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0 && errno == ENOENT)
    throw UsageError("no API token: set " + env + " or run 'nas-measure login' (no token file '" + file + "')");
  if (f.fd < 0) throw FileError("open", file, errno_text(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) throw FileError("read", file, errno_text(errno));
  if (!S_ISREG(st.st_mode)) throw UsageError("token file '" + file + "' is not a regular file");
  if (st.st_mode & 077)
    throw UsageError("token file '" + file + "' has mode " + octal(st.st_mode) +
                     ": group or others may read it; run chmod 600 '" + file + "'");
  if (st.st_uid != ::geteuid())
    throw UsageError("token file '" + file + "' belongs to another user (uid " + std::to_string(st.st_uid) + ")");
  const std::string token = trim(first_line(read_small(f.fd, file)));
  if (token.empty()) throw UsageError("token file '" + file + "' is empty");
  check_token(token, "token file '" + file + "'");
  return token;
}

void save_token(const std::string& path, const std::string& token) {
  check_token(token, "save_token");
  make_private_dirs(std::filesystem::path(path).parent_path());
  write_file_atomic(path, token + "\n", 0600);
}

std::string read_password(int tty_fd, const std::string& prompt) {
  struct termios old {};
  if (!::isatty(tty_fd) || ::tcgetattr(tty_fd, &old) != 0)
    throw UsageError("cannot read a password: not a terminal");
  struct termios quiet = old;
  quiet.c_lflag &= ~tcflag_t(ECHO);
  quiet.c_lflag |= ECHONL;                  // the line break still shows: the next output starts a line
  if (::tcsetattr(tty_fd, TCSAFLUSH, &quiet) != 0) throw nas::Error("cannot turn the terminal's echo off");
  struct Restore {
    int fd;
    const struct termios& t;
    ~Restore() { ::tcsetattr(fd, TCSAFLUSH, &t); }
  } restore{tty_fd, old};
  if (!prompt.empty() && ::write(tty_fd, prompt.data(), prompt.size()) < 0)
    throw nas::Error("cannot write to the terminal: " + errno_text(errno));
  std::string line;
  for (;;) {
    char c;
    const ssize_t n = ::read(tty_fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw nas::Error("cannot read from the terminal: " + errno_text(errno));
    if (n == 0) {
      if (line.empty()) throw nas::Error("no password entered (end of input)");
      break;
    }
    if (c == '\n') break;
    line += c;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::string read_password_from_terminal(const std::string& prompt) {
  Fd tty{::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)};
  if (tty.fd < 0) throw UsageError("cannot read a password: no terminal (/dev/tty: " + errno_text(errno) + ")");
  return read_password(tty.fd, prompt);
}

} // namespace nas::measure
