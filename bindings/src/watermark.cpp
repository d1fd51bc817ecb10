// See watermark.h; each step names the Python function it mirrors.
#include "watermark.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "sha256.h"

namespace th {
namespace {

constexpr int kTile = 64, kCanonical = 256, kGrid = 16;
constexpr int kTag = 0xA7, kTagBits = 8, kIdBits = 8, kBits = kTagBits + kIdBits;
constexpr double kSyncShare = 0.5;
constexpr std::uint64_t kSeed = 20191125;

struct SplitMix64 {  // watermark.SplitMix64
  std::uint64_t state;
  std::uint64_t next() {
    state += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

long floor_int(double x) { return static_cast<long>(std::floor(x)); }
int wrap(long i, int n) { return static_cast<int>(((i % n) + n) % n); }

// watermark._smooth_pattern: GRID x GRID random +-1, bilinear periodic upsampling to TILE x TILE.
std::vector<double> smooth_pattern(SplitMix64& rng) {
  std::vector<double> g(kGrid * kGrid);
  for (double& v : g) v = (rng.next() >> 63) ? 1.0 : -1.0;
  const int f = kTile / kGrid;
  std::array<int, kTile> i0{};
  std::array<double, kTile> w{};
  for (int t = 0; t < kTile; ++t) {
    const double x = (t + 0.5) / f - 0.5;
    i0[t] = static_cast<int>(floor_int(x));
    w[t] = x - i0[t];
  }
  std::vector<double> out(kTile * kTile);
  for (int y = 0; y < kTile; ++y) {
    const int r0 = wrap(i0[y], kGrid), r1 = wrap(i0[y] + 1, kGrid);
    for (int x = 0; x < kTile; ++x) {
      const int c0 = wrap(i0[x], kGrid), c1 = wrap(i0[x] + 1, kGrid);
      const double row0 = g[r0 * kGrid + c0] * (1 - w[y]) + g[r1 * kGrid + c0] * w[y];
      const double row1 = g[r0 * kGrid + c1] * (1 - w[y]) + g[r1 * kGrid + c1] * w[y];
      out[y * kTile + x] = row0 * (1 - w[x]) + row1 * w[x];
    }
  }
  return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// watermark._patterns (sync first, then the data patterns) and watermark.tile_for.
std::vector<double> tile_for(int ident) {
  SplitMix64 rng{kSeed};
  std::vector<std::vector<double>> pats;
  for (int k = 0; k <= kBits; ++k) {
    std::vector<double> v = smooth_pattern(rng);
    double mean = 0;
    for (double x : v) mean += x;
    mean /= static_cast<double>(v.size());
    for (double& x : v) x -= mean;
    for (const auto& u : pats) {
      const double c = dot(u, v);
      for (std::size_t i = 0; i < v.size(); ++i) v[i] -= c * u[i];
    }
    const double n = std::sqrt(dot(v, v));
    for (double& x : v) x /= n;
    pats.push_back(std::move(v));
  }
  const int value = (kTag << kIdBits) | (ident & ((1 << kIdBits) - 1));
  std::vector<double> tile(kTile * kTile);
  for (int i = 0; i < kTile * kTile; ++i) {
    double data = 0;
    for (int k = 0; k < kBits; ++k) {
      const double bit = ((value >> (kBits - 1 - k)) & 1) ? 1.0 : -1.0;
      data += bit * pats[1 + k][i] * kTile;
    }
    tile[i] = std::sqrt(kSyncShare) * (pats[0][i] * kTile) + std::sqrt(1 - kSyncShare) * (data / std::sqrt(double(kBits)));
  }
  return tile;
}

}  // namespace

int watermark_model_id(const std::string& name, const std::string& version) {
  std::string key = name;
  key.push_back('\0');
  key += version;
  const std::string hex = sha256_hex(key.data(), key.size());
  const unsigned long top = std::stoul(hex.substr(0, 8), nullptr, 16);
  return static_cast<int>(top >> (32 - kIdBits));
}

Marker::Marker(int ident, double strength) : tile_(tile_for(ident)), strength_(strength) {}

// Marker.plane: the tile sampled bilinearly (periodic) on the frame's grid, rounded half to even.
const std::vector<std::int16_t>& Marker::plane(int height, int width) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto key = std::make_pair(height, width);
  auto it = planes_.find(key);
  if (it != planes_.end()) return it->second;
  if (planes_.size() > 8) planes_.clear();
  const double period = static_cast<double>(kTile) * height / kCanonical;
  auto coords = [&](int n, std::vector<int>& i0, std::vector<double>& w) {
    i0.resize(n);
    w.resize(n);
    for (int i = 0; i < n; ++i) {
      const double u = std::fmod((i + 0.5) / period * kTile, static_cast<double>(kTile));
      i0[i] = static_cast<int>(floor_int(u - 0.5));
      w[i] = u - 0.5 - i0[i];
    }
  };
  std::vector<int> v0, u0;
  std::vector<double> wv, wu;
  coords(height, v0, wv);
  coords(width, u0, wu);
  std::vector<std::int16_t> out(static_cast<std::size_t>(height) * width);
  for (int y = 0; y < height; ++y) {
    const int r0 = wrap(v0[y], kTile), r1 = wrap(v0[y] + 1, kTile);
    for (int x = 0; x < width; ++x) {
      const int c0 = wrap(u0[x], kTile), c1 = wrap(u0[x] + 1, kTile);
      const double row0 = tile_[r0 * kTile + c0] * (1 - wv[y]) + tile_[r1 * kTile + c0] * wv[y];
      const double row1 = tile_[r0 * kTile + c1] * (1 - wv[y]) + tile_[r1 * kTile + c1] * wv[y];
      const double value = strength_ * (row0 * (1 - wu[x]) + row1 * wu[x]);
      out[static_cast<std::size_t>(y) * width + x] = static_cast<std::int16_t>(std::nearbyint(value));
    }
  }
  return planes_.emplace(key, std::move(out)).first->second;
}

void Marker::mark(std::uint8_t* rgb, int height, int width) const {
  const std::vector<std::int16_t>& p = plane(height, width);
  const std::size_t n = static_cast<std::size_t>(height) * width;
  for (std::size_t i = 0; i < n; ++i) {
    for (int c = 0; c < 3; ++c) {
      const int v = rgb[3 * i + c] + p[i];
      rgb[3 * i + c] = static_cast<std::uint8_t>(std::clamp(v, 0, 255));
    }
  }
}

}  // namespace th
