// SHA-256 (FIPS 180-4), small and dependency-free: verifies model files against the manifest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace th {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  // Lower-case hex digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const std::uint8_t* p);
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256_hex(const void* data, std::size_t size);
// Hash of a whole file; throws th::Error (NotFound / Runtime) when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace th
