// journal: which SQLite journal mode a study file gets, from the file system it lives on.
#pragma once
#include <cstdint>
#include <string>

namespace nas::store {

// The kind filesystem_kind() reports for a statfs(2) f_type: a network or parallel file system
// by name ("nfs", "lustre", ...), else "local".
std::string filesystem_kind_from_magic(uint64_t f_type);

// True for the kinds that get the rollback journal: network, parallel and FUSE file systems.
bool is_shared_filesystem(const std::string& kind);

// The file system type of the folder holding `path` ("nfs", "lustre", "gpfs", "beegfs",
// "cifs", "ceph", "fuse", "local", ...), from statfs(2)'s f_type; "unknown" when the folder
// cannot be examined (it does not exist, say). Never throws.
std::string filesystem_kind(const std::string& path);

// "wal" on local file systems, "delete" (rollback journal) on network and parallel file
// systems where WAL's shared-memory index does not work across nodes. NAS_DB_JOURNAL
// (wal|delete|truncate|persist) overrides; an invalid value throws UsageError.
std::string choose_journal_mode(const std::string& path);

} // namespace nas::store
