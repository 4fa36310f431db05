// file: whole-file reads and crash-safe writes with POSIX calls, so errno names the reason
#include "nas/core/file.h"
#include "nas/core/error.h"
#include "nas/core/text.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <fcntl.h>
#include <unistd.h>

namespace nas {
namespace {

// Best effort: a file system without fsync on directories still gets the rename.
void fsync_path(const std::string& p, int flags) {
  int fd = ::open(p.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

} // namespace

std::string errno_text(int err) {
  if (err == ENOENT) return "no such file";
  return lower(std::strerror(err));
}

std::string read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw FileError("open", path, errno_text(errno));
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) out.append(buf, n);
  if (std::ferror(f.get())) throw FileError("read", path, errno_text(errno));
  return out;
}

std::string temp_path_for(const std::string& target) {
  const size_t thread = std::hash<std::thread::id>{}(std::this_thread::get_id()) % 1000000007;
  return target + "." + std::to_string(::getpid()) + "-" + std::to_string(thread) + ".tmp";
}

void commit_temp_file(const std::string& tmp, const std::string& target) {
  fsync_path(tmp, O_RDONLY);
  std::error_code ec;
  std::filesystem::rename(tmp, target, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw FileError("write", target, lower(ec.message()));
  }
  std::string dir = std::filesystem::path(target).parent_path().string();
  fsync_path(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
}

void write_file_atomic(const std::string& path, std::string_view bytes, unsigned mode) {
  const std::string tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw FileError("write", path, errno_text(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw FileError("write", path, errno_text(err));
    }
    done += size_t(n);
  }
  // On NFS a failed write may show only here: never rename a short file into place.
  const int synced = ::fsync(fd) == 0 ? 0 : errno;
  const int closed = ::close(fd) == 0 ? 0 : errno;
  if (synced || closed) {
    ::unlink(tmp.c_str());
    throw FileError("write", path, errno_text(synced ? synced : closed));
  }
  commit_temp_file(tmp, path);
}

int remove_stale_temps(const std::string& target, double older_than_s) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(target).parent_path();
  const std::string prefix = fs::path(target).filename().string() + ".";
  const auto cutoff = fs::file_time_type::clock::now() -
                      std::chrono::duration_cast<fs::file_time_type::duration>(std::chrono::duration<double>(older_than_s));
  std::error_code ec;
  int removed = 0;
  for (fs::directory_iterator it(dir.empty() ? "." : dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() + 4 || name.rfind(prefix, 0) != 0 || name.substr(name.size() - 4) != ".tmp") continue;
    std::error_code stat_ec;
    if (fs::last_write_time(it->path(), stat_ec) > cutoff || stat_ec) continue;
    if (!fs::remove(it->path(), stat_ec) && stat_ec) throw FileError("remove", it->path().string(), lower(stat_ec.message()));
    ++removed;
  }
  return removed;
}

} // namespace nas
