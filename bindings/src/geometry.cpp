#include "geometry.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "errors.h"
#include "input_limits.h"

namespace th {

void check_finite(const float* values, std::size_t n, const char* what) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) {
      throw Error(Code::InvalidArgument, std::string(what) + " contain NaN or infinite values (value " +
                                             std::to_string(i) + ")");
    }
  }
}

void check_crop_rule(const CropRule& rule) {
  if (!(std::isfinite(rule.scale) && rule.scale > 0)) {
    throw Error(Code::InvalidArgument, "crop scale must be a finite number > 0, got " + std::to_string(rule.scale));
  }
  if (!(std::isfinite(rule.offset_y) && std::fabs(rule.offset_y) < 1)) {
    throw Error(Code::InvalidArgument, "crop offset_y must be a finite number in (-1, 1), got " + std::to_string(rule.offset_y));
  }
}

void check_crop(const Crop& c, const char* what) {
  if (!(std::isfinite(c.cx) && std::isfinite(c.cy) && std::isfinite(c.size) && c.size > 0)) {
    throw Error(Code::InvalidArgument, std::string(what) + " must be finite with size > 0");
  }
}

void check_image(const ImageView& img, const char* what) {
  if (!img.data) throw Error(Code::InvalidArgument, std::string(what) + ": image data is NULL");
  if (img.width <= 0 || img.height <= 0) {
    throw Error(Code::InvalidArgument, std::string(what) + ": image size must be > 0, got " +
                                           std::to_string(img.width) + "x" + std::to_string(img.height));
  }
  if (img.width > (1 << 16) || img.height > (1 << 16)) {
    throw Error(Code::InvalidArgument, std::string(what) + ": image larger than 65536 pixels a side");
  }
  if (img.stride < 3 * img.width) {
    throw Error(Code::SizeMismatch, std::string(what) + ": stride " + std::to_string(img.stride) +
                                        " is less than 3 * width = " + std::to_string(3 * img.width));
  }
  if (static_cast<std::int64_t>(img.width) * img.height > kMaxImagePixels) {
    throw Error(Code::InvalidArgument, std::string(what) + ": " + std::to_string(img.width) + "x" +
                                           std::to_string(img.height) + " is more than 64 MP");
  }
  // The last row needs 3 * width bytes, every other one `stride`.
  const std::size_t needed = static_cast<std::size_t>(img.stride) * (img.height - 1) + 3 * static_cast<std::size_t>(img.width);
  if (img.size < needed) {
    throw Error(Code::SizeMismatch, std::string(what) + ": the buffer holds " + std::to_string(img.size) +
                                        " bytes; " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                                        " at stride " + std::to_string(img.stride) + " needs " + std::to_string(needed));
  }
}

Crop crop_from_landmarks(const float* p, const CropRule& rule) {
  check_finite(p, kLandmarkFloats, "landmarks");
  double lo[2] = {p[0], p[1]}, hi[2] = {p[0], p[1]};
  for (int i = 1; i < kNumLandmarks; ++i) {
    for (int d = 0; d < 2; ++d) {
      double v = p[2 * i + d];
      lo[d] = std::min(lo[d], v);
      hi[d] = std::max(hi[d], v);
    }
  }
  double size = rule.scale * std::max(hi[0] - lo[0], hi[1] - lo[1]);
  if (!(size > 0)) {
    throw Error(Code::InvalidArgument,
                "landmarks are degenerate (all points coincide): cannot derive a crop");
  }
  Crop c;
  c.cx = (lo[0] + hi[0]) / 2;
  c.cy = (lo[1] + hi[1]) / 2 + rule.offset_y * size;
  c.size = size;
  return c;
}

void to_normalised(const float* p, int count, const Crop& c, float* out) {
  const double half = c.size / 2;
  for (int i = 0; i < count; ++i) {
    out[2 * i] = static_cast<float>((static_cast<double>(p[2 * i]) - c.cx) / half);
    out[2 * i + 1] = static_cast<float>((static_cast<double>(p[2 * i + 1]) - c.cy) / half);
  }
}

void to_pixels(const float* p, int count, const Crop& c, float* out) {
  const double half = c.size / 2;
  for (int i = 0; i < count; ++i) {
    out[2 * i] = static_cast<float>(static_cast<double>(p[2 * i]) * half + c.cx);
    out[2 * i + 1] = static_cast<float>(static_cast<double>(p[2 * i + 1]) * half + c.cy);
  }
}

namespace {

// Bilinear taps along one axis with edge padding (crop._axis_taps).
struct Taps {
  std::vector<int> i0, i1;
  std::vector<float> w;
};

void axis_taps(const double* coords, int m, int n, int* i0, int* i1, float* w) {
  for (int j = 0; j < m; ++j) {
    double f = std::floor(coords[j]);
    w[j] = static_cast<float>(coords[j] - f);
    long long a = static_cast<long long>(f);
    long long b = a + 1;
    i0[j] = static_cast<int>(std::min<long long>(std::max<long long>(a, 0), n - 1));
    i1[j] = static_cast<int>(std::min<long long>(std::max<long long>(b, 0), n - 1));
  }
}

inline std::uint8_t to_u8(float v) {
  float r = std::nearbyint(v);  // round half to even, as np.rint
  r = std::min(std::max(r, 0.0f), 255.0f);
  return static_cast<std::uint8_t>(r);
}

// crop._sample_separable for one source type: out[i][j] over ys x xs, RGB.
template <typename Src>
void sample_separable(const Src* src, int w, int h, std::size_t row_stride, const double* xs,
                      const double* ys, int r, std::uint8_t* out) {
  constexpr int kMaxTaps = 4096;
  int x0[kMaxTaps], x1[kMaxTaps], y0, y1;
  float wx[kMaxTaps], wy;
  axis_taps(xs, r, w, x0, x1, wx);
  for (int i = 0; i < r; ++i) {
    axis_taps(ys + i, 1, h, &y0, &y1, &wy);
    const Src* top = src + static_cast<std::size_t>(y0) * row_stride;
    const Src* bot = src + static_cast<std::size_t>(y1) * row_stride;
    std::uint8_t* o = out + static_cast<std::size_t>(i) * r * 3;
    for (int j = 0; j < r; ++j) {
      for (int c = 0; c < 3; ++c) {
        float t0 = static_cast<float>(top[3 * x0[j] + c]);
        float b0 = static_cast<float>(bot[3 * x0[j] + c]);
        float t1 = static_cast<float>(top[3 * x1[j] + c]);
        float b1 = static_cast<float>(bot[3 * x1[j] + c]);
        float left = t0 + (b0 - t0) * wy;
        float right = t1 + (b1 - t1) * wy;
        o[3 * j + c] = to_u8(left + (right - left) * wx[j]);
      }
    }
  }
}

// crop._box_reduce: mean of k x k blocks for block columns [bx0, bx1) and rows [by0, by1), edge
// padding past the border; float32 [by1-by0][bx1-bx0][3]. Integer sums (exact) for k <= 15, as
// numpy's uint16 accumulator, else float32 sums in numpy's order (rows first, then columns).
void box_reduce(const ImageView& img, int k, int bx0, int bx1, int by0, int by1,
                std::vector<float>& out) {
  const int nbx = bx1 - bx0, nby = by1 - by0;
  out.assign(static_cast<std::size_t>(nbx) * nby * 3, 0.0f);
  const float inv = static_cast<float>(1.0 / (static_cast<double>(k) * k));
  auto clampx = [&](long long x) { return static_cast<int>(std::min<long long>(x, img.width - 1)); };
  auto clampy = [&](long long y) { return static_cast<int>(std::min<long long>(y, img.height - 1)); };
  std::vector<float> rowsum(static_cast<std::size_t>(k) * 3);
  for (int by = 0; by < nby; ++by) {
    for (int bx = 0; bx < nbx; ++bx) {
      float* o = &out[(static_cast<std::size_t>(by) * nbx + bx) * 3];
      long long x_base = static_cast<long long>(bx0 + bx) * k;
      long long y_base = static_cast<long long>(by0 + by) * k;
      if (k <= 15) {
        unsigned acc[3] = {0, 0, 0};
        for (int i = 0; i < k; ++i) {
          const std::uint8_t* row = img.data + static_cast<std::size_t>(clampy(y_base + i)) * img.stride;
          for (int jj = 0; jj < k; ++jj) {
            const std::uint8_t* px = row + 3 * clampx(x_base + jj);
            acc[0] += px[0];
            acc[1] += px[1];
            acc[2] += px[2];
          }
        }
        for (int c = 0; c < 3; ++c) o[c] = static_cast<float>(acc[c]) * inv;
      } else {
        // rows[x] = sum over i of region[y_base + i][x] (float32, i in order)
        for (int jj = 0; jj < k; ++jj) {
          const int x = clampx(x_base + jj);
          float s[3] = {0.0f, 0.0f, 0.0f};
          for (int i = 0; i < k; ++i) {
            const std::uint8_t* px =
                img.data + static_cast<std::size_t>(clampy(y_base + i)) * img.stride + 3 * x;
            for (int c = 0; c < 3; ++c) s[c] = (i == 0) ? static_cast<float>(px[c]) : s[c] + px[c];
          }
          for (int c = 0; c < 3; ++c) rowsum[3 * jj + c] = s[c];
        }
        for (int c = 0; c < 3; ++c) {
          float s = rowsum[c];
          for (int jj = 1; jj < k; ++jj) s += rowsum[3 * jj + c];
          o[c] = s * inv;
        }
      }
    }
  }
}

}  // namespace

void warp_to_crop(const ImageView& img, const Crop& crop, int r, std::uint8_t* out,
                  WarpScratch& s) {
  check_image(img, "warp_to_crop");
  check_crop(crop, "crop");
  check_crop_on_image(crop.cx, crop.cy, crop.size, img.width, img.height);
  if (r <= 0 || r > 4096) throw Error(Code::InvalidArgument, "resolution must be in 1..4096");
  s.xs.resize(r);
  s.ys.resize(r);
  const double step = crop.size / r;
  for (int j = 0; j < r; ++j) {
    double g = (static_cast<double>(j) + 0.5) * step - crop.size / 2;
    s.xs[j] = crop.cx + g;
    s.ys[j] = crop.cy + g;
  }
  if (step <= 2.0) {
    sample_separable(img.data, img.width, img.height, static_cast<std::size_t>(img.stride),
                     s.xs.data(), s.ys.data(), r, out);
    return;
  }
  const double kd = std::floor(step);
  if (kd > 1e6) throw Error(Code::InvalidArgument, "crop is too large for the image");
  const int k = static_cast<int>(kd);
  const double shift = (k - 1) / 2.0;
  for (int j = 0; j < r; ++j) {
    s.xs[j] = (s.xs[j] - shift) / k;
    s.ys[j] = (s.ys[j] - shift) / k;
  }
  const int nbx = (img.width + k - 1) / k, nby = (img.height + k - 1) / k;
  auto range = [](const std::vector<double>& v, int nb, int& b0, int& b1) {
    auto mm = std::minmax_element(v.begin(), v.end());
    double lo = std::floor(*mm.first), hi = std::floor(*mm.second);
    lo = std::min(std::max(lo, 0.0), static_cast<double>(nb - 1));  // max(0, min(.., nb - 1))
    b0 = static_cast<int>(lo);
    double top = std::min(hi + 2, static_cast<double>(nb));
    b1 = static_cast<int>(std::max(static_cast<double>(b0 + 1), top));
  };
  int bx0, bx1, by0, by1;
  range(s.xs, nbx, bx0, bx1);
  range(s.ys, nby, by0, by1);
  box_reduce(img, k, bx0, bx1, by0, by1, s.reduced);
  for (int j = 0; j < r; ++j) {
    s.xs[j] -= bx0;
    s.ys[j] -= by0;
  }
  sample_separable(s.reduced.data(), bx1 - bx0, by1 - by0, static_cast<std::size_t>(bx1 - bx0) * 3,
                   s.xs.data(), s.ys.data(), r, out);
}

float face_size(const float* p) {
  float lo[2] = {p[0], p[1]}, hi[2] = {p[0], p[1]};
  for (int i = 1; i < kNumLandmarks; ++i) {
    for (int d = 0; d < 2; ++d) {
      lo[d] = std::min(lo[d], p[2 * i + d]);
      hi[d] = std::max(hi[d], p[2 * i + d]);
    }
  }
  return std::max(hi[0] - lo[0], hi[1] - lo[1]);
}

}  // namespace th
