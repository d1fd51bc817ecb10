// The invisible watermark on rendered frames: the C++ port of sdk/talkinghead/watermark.py's
// embedding (SplitMix64 patterns, modified Gram-Schmidt, the tile of a model's payload, the plane
// sampled on a grid in units of the frame's height, rounded half-to-even and added to R, G, B).
// Detection stays in Python (`talkinghead verify`), which finds what this adds (tests/bindings).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace th {

// watermark.model_id: the 8-bit id of a package (sha256 of name "\0" version, top bits).
int watermark_model_id(const std::string& name, const std::string& version);

class Marker {
 public:
  explicit Marker(int ident, double strength = 2.5);
  // Mark one packed RGB8 frame in place. Thread-safe.
  void mark(std::uint8_t* rgb, int height, int width) const;

 private:
  const std::vector<std::int16_t>& plane(int height, int width) const;
  std::vector<double> tile_;  // TILE x TILE, unit-scaled
  double strength_;
  mutable std::mutex mutex_;
  mutable std::map<std::pair<int, int>, std::vector<std::int16_t>> planes_;
};

}  // namespace th
