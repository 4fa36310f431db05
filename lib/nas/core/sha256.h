// sha256: FIPS 180-4 SHA-256, for genome hashes and artifact checksums
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace nas {

// Incremental SHA-256. hex() finishes the digest; the object must not be updated afterwards.
class Sha256 {
public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();
private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Lower-case hex SHA-256 of a string.
std::string sha256_hex(std::string_view s);

// Lower-case hex SHA-256 of a file's contents; throws nas::Error naming the file if unreadable.
std::string sha256_file(const std::string& path);

} // namespace nas
