// sha256: SHA-256 (OpenSSL's libcrypto), for genome hashes and artifact checksums
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

struct evp_md_ctx_st;   // OpenSSL's EVP_MD_CTX, kept out of every includer

namespace nas {

// Incremental SHA-256. hex() finishes the digest; the object must not be updated afterwards.
// Throws nas::Error if libcrypto cannot set up a digest (out of memory).
class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();
private:
  evp_md_ctx_st* ctx_;
};

// Lower-case hex SHA-256 of a string.
std::string sha256_hex(std::string_view s);

// Lower-case hex SHA-256 of a file's contents, read in chunks (a checkpoint is never held
// whole); stores the file's size in *bytes when bytes is not null. Throws nas::FileError naming
// the file if it cannot be read.
std::string sha256_file(const std::string& path, int64_t* bytes = nullptr);

} // namespace nas
