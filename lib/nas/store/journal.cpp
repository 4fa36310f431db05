// journal: which SQLite journal mode a study file gets, from the file system it lives on.
//
// WAL lets readers and one writer work at once and makes a commit cost one append, which is
// what many workers on one node want. But WAL keeps its index in shared memory (the -shm file,
// mmap'ed by every connection), which only works when all connections run on one host: on NFS,
// Lustre, GPFS, BeeGFS and the like, processes on different nodes would each see their own
// copy of that memory and corrupt the file. There SQLite's rollback journal ("delete") is the
// safe mode: it relies on POSIX byte-range locks alone, which these file systems forward to a
// lock manager. FUSE file systems are treated as shared too (sshfs, s3fs, gcsfuse...), since
// whether their mmap and locks are coherent across hosts cannot be told from here.
//
// The choice is made by examining the folder of the file (the file itself may not exist yet)
// with statfs(2). NAS_DB_JOURNAL overrides it, for file systems this list gets wrong.
#include "nas/store/journal.h"
#include "nas/core/error.h"
#include "nas/core/text.h"

#include <sys/vfs.h>

#include <cstdlib>

namespace nas::store {

namespace {

struct Magic {
  uint64_t f_type;
  const char* kind;
};

// statfs(2) f_type values of the file systems that get the rollback journal.
constexpr Magic kShared[] = {
    {0x6969, "nfs"},          {0x0BD00BD0, "lustre"}, {0x47504653, "gpfs"},
    {0x19830326, "beegfs"},   {0xFF534D42, "cifs"},   {0xFE534D42, "smb2"},
    {0x517B, "smb"},          {0x00C36400, "ceph"},   {0x65735546, "fuse"},
    {0x5346414F, "afs"},      {0x7461636F, "ocfs2"},  {0x01161970, "gfs2"},
};

std::string folder_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

} // namespace

std::string filesystem_kind_from_magic(uint64_t f_type) {
  // f_type is a signed word; 32-bit magics with the high bit set may arrive sign-extended.
  uint64_t magic = f_type & 0xFFFFFFFFu;
  for (const auto& m : kShared)
    if (m.f_type == magic) return m.kind;
  return "local";
}

bool is_shared_filesystem(const std::string& kind) {
  for (const auto& m : kShared)
    if (kind == m.kind) return true;
  return false;
}

std::string filesystem_kind(const std::string& path) {
  struct statfs st{};
  if (::statfs(folder_of(path).c_str(), &st) != 0) return "unknown";
  return filesystem_kind_from_magic(uint64_t(st.f_type));
}

std::string choose_journal_mode(const std::string& path) {
  if (const char* env = std::getenv("NAS_DB_JOURNAL"); env && *env) {
    std::string mode = lower(env);
    if (mode == "wal" || mode == "delete" || mode == "truncate" || mode == "persist") return mode;
    throw UsageError("NAS_DB_JOURNAL: unknown journal mode '" + std::string(env) +
                     "' (expected wal, delete, truncate or persist)");
  }
  // An unknown file system means the folder cannot be examined; opening the file will fail
  // with a better message than any guess here.
  return is_shared_filesystem(filesystem_kind(path)) ? "delete" : "wal";
}

} // namespace nas::store
