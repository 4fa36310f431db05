// journal: which SQLite journal mode a study file gets, from the file system it lives on.
#pragma once
#include <string>

namespace nas::store {

// The file system type of the folder holding `path` ("nfs", "lustre", "gpfs", "beegfs",
// "cifs", "ceph", "fuse", "local", ...), from statfs(2)'s f_type.
std::string filesystem_kind(const std::string& path);

// "wal" on local file systems, "delete" (rollback journal) on network and parallel file
// systems where WAL's shared-memory index does not work across nodes. NAS_DB_JOURNAL
// (wal|delete|truncate|persist) overrides; an invalid value throws UsageError.
std::string choose_journal_mode(const std::string& path);

} // namespace nas::store
