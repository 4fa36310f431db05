// sha256: SHA-256 through OpenSSL's EVP interface; checked against the FIPS 180-4 vectors in tests
#include "nas/core/sha256.h"
#include "nas/core/error.h"
#include "nas/core/file.h"

#include <cerrno>
#include <cstdio>
#include <memory>
#include <openssl/evp.h>

namespace nas {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx_);
    throw Error("cannot set up a sha256 digest");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }

std::string Sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, digest, &len);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 0xf];
  }
  return out;
}

std::string sha256_hex(std::string_view s) {
  Sha256 h;
  h.update(s);
  return h.hex();
}

std::string sha256_file(const std::string& path, int64_t* bytes) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw FileError("open", path, errno_text(errno));
  Sha256 h;
  int64_t total = 0;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    h.update(buf, n);
    total += int64_t(n);
  }
  if (std::ferror(f.get())) throw FileError("read", path, errno_text(errno));
  if (bytes) *bytes = total;
  return h.hex();
}

} // namespace nas
