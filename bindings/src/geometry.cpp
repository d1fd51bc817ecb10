#include "geometry.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

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

// crop._sample_separable: float32 samples out[i][j][c] of a `channels`-channel image at ys x xs
// (ny rows, nx columns), rows blended first, in numpy's float32 order.
template <typename Src>
void sample_separable(const Src* src, int w, int h, std::size_t row_stride, int channels, const double* xs,
                      int nx, const double* ys, int ny, SampleScratch& s, float* out) {
  s.x0.resize(nx);
  s.x1.resize(nx);
  s.wx.resize(nx);
  axis_taps(xs, nx, w, s.x0.data(), s.x1.data(), s.wx.data());
  int y0, y1;
  float wy;
  for (int i = 0; i < ny; ++i) {
    axis_taps(ys + i, 1, h, &y0, &y1, &wy);
    const Src* top = src + static_cast<std::size_t>(y0) * row_stride;
    const Src* bot = src + static_cast<std::size_t>(y1) * row_stride;
    float* o = out + static_cast<std::size_t>(i) * nx * channels;
    for (int j = 0; j < nx; ++j) {
      const std::size_t a = static_cast<std::size_t>(channels) * s.x0[j];
      const std::size_t b = static_cast<std::size_t>(channels) * s.x1[j];
      for (int c = 0; c < channels; ++c) {
        float t0 = static_cast<float>(top[a + c]);
        float b0 = static_cast<float>(bot[a + c]);
        float t1 = static_cast<float>(top[b + c]);
        float b1 = static_cast<float>(bot[b + c]);
        float left = t0 + (b0 - t0) * wy;
        float right = t1 + (b1 - t1) * wy;
        o[channels * j + c] = left + (right - left) * s.wx[j];
      }
    }
  }
}

// crop._box_reduce: mean of k x k blocks for block columns [bx0, bx1) and rows [by0, by1), edge
// padding past the border; float32 [by1-by0][bx1-bx0][channels]. Integer sums (exact) for uint8
// pixels and k <= 15, as numpy's uint16 accumulator, else float32 sums in numpy's order (rows
// first, then columns).
template <typename Src>
void box_reduce(const Src* data, int width, int height, std::size_t row_stride, int channels, int k, int bx0,
                int bx1, int by0, int by1, std::vector<float>& out) {
  const int nbx = bx1 - bx0, nby = by1 - by0;
  out.assign(static_cast<std::size_t>(nbx) * nby * channels, 0.0f);
  const float inv = static_cast<float>(1.0 / (static_cast<double>(k) * k));
  auto clampx = [&](long long x) { return static_cast<int>(std::min<long long>(x, width - 1)); };
  auto clampy = [&](long long y) { return static_cast<int>(std::min<long long>(y, height - 1)); };
  auto at = [&](long long y, long long x) {
    return data + static_cast<std::size_t>(clampy(y)) * row_stride + static_cast<std::size_t>(channels) * clampx(x);
  };
  constexpr bool kBytes = std::is_same<Src, std::uint8_t>::value;
  std::vector<float> rowsum(static_cast<std::size_t>(k) * channels);
  std::vector<unsigned> acc(static_cast<std::size_t>(channels));
  for (int by = 0; by < nby; ++by) {
    for (int bx = 0; bx < nbx; ++bx) {
      float* o = &out[(static_cast<std::size_t>(by) * nbx + bx) * channels];
      const long long x_base = static_cast<long long>(bx0 + bx) * k;
      const long long y_base = static_cast<long long>(by0 + by) * k;
      if (kBytes && k <= 15) {
        std::fill(acc.begin(), acc.end(), 0u);
        for (int i = 0; i < k; ++i) {
          for (int jj = 0; jj < k; ++jj) {
            const Src* px = at(y_base + i, x_base + jj);
            for (int c = 0; c < channels; ++c) acc[c] += static_cast<unsigned>(px[c]);
          }
        }
        for (int c = 0; c < channels; ++c) o[c] = static_cast<float>(acc[c]) * inv;
      } else {
        // rows[x] = sum over i of region[y_base + i][x] (float32, i in order)
        for (int jj = 0; jj < k; ++jj) {
          for (int c = 0; c < channels; ++c) {
            float sum = 0.0f;
            for (int i = 0; i < k; ++i) {
              const float v = static_cast<float>(at(y_base + i, x_base + jj)[c]);
              sum = (i == 0) ? v : sum + v;
            }
            rowsum[static_cast<std::size_t>(channels) * jj + c] = sum;
          }
        }
        for (int c = 0; c < channels; ++c) {
          float sum = rowsum[c];
          for (int jj = 1; jj < k; ++jj) sum += rowsum[static_cast<std::size_t>(channels) * jj + c];
          o[c] = sum * inv;
        }
      }
    }
  }
}

// crop._sample_grid: bilinear samples at ys x xs (xs, ys in source pixels, changed here), with a
// k x k box prefilter (k = floor(step)) when `step` (source pixels per output pixel) exceeds 2.
template <typename Src>
void sample_grid(const Src* data, int width, int height, std::size_t row_stride, int channels,
                 std::vector<double>& xs, std::vector<double>& ys, double step, SampleScratch& s, float* out) {
  const int nx = static_cast<int>(xs.size()), ny = static_cast<int>(ys.size());
  if (step <= 2.0) {
    sample_separable(data, width, height, row_stride, channels, xs.data(), nx, ys.data(), ny, s, out);
    return;
  }
  const double kd = std::floor(step);
  if (kd > 1e6) throw Error(Code::InvalidArgument, "crop is too large for the image");
  const int k = static_cast<int>(kd);
  const double shift = (k - 1) / 2.0;
  for (double& x : xs) x = (x - shift) / k;
  for (double& y : ys) y = (y - shift) / k;
  const int nbx = (width + k - 1) / k, nby = (height + k - 1) / k;
  auto range = [](const std::vector<double>& v, int nb, int& b0, int& b1) {
    auto mm = std::minmax_element(v.begin(), v.end());
    double lo = std::floor(*mm.first), hi = std::floor(*mm.second);
    lo = std::min(std::max(lo, 0.0), static_cast<double>(nb - 1));  // max(0, min(.., nb - 1))
    b0 = static_cast<int>(lo);
    double top = std::min(hi + 2, static_cast<double>(nb));
    b1 = static_cast<int>(std::max(static_cast<double>(b0 + 1), top));
  };
  int bx0, bx1, by0, by1;
  range(xs, nbx, bx0, bx1);
  range(ys, nby, by0, by1);
  box_reduce(data, width, height, row_stride, channels, k, bx0, bx1, by0, by1, s.reduced);
  for (double& x : xs) x -= bx0;
  for (double& y : ys) y -= by0;
  sample_separable(s.reduced.data(), bx1 - bx0, by1 - by0, static_cast<std::size_t>(bx1 - bx0) * channels, channels,
                   xs.data(), nx, ys.data(), ny, s, out);
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
  s.samples.resize(static_cast<std::size_t>(r) * r * 3);
  sample_grid(img.data, img.width, img.height, static_cast<std::size_t>(img.stride), 3, s.xs, s.ys, step, s,
              s.samples.data());
  for (std::size_t k = 0; k < s.samples.size(); ++k) out[k] = to_u8(s.samples[k]);
}

const float* feather_mask(int r, double feather, std::vector<float>& mask) {
  // pasteback.feather_mask: float32 throughout, as numpy computes it
  const float fe = static_cast<float>(std::max(feather, 1e-6));
  std::vector<float> ramp(static_cast<std::size_t>(r));
  for (int j = 0; j < r; ++j) {
    const float t = (static_cast<float>(j) + 0.5f) / static_cast<float>(r);
    float v = std::min(t, 1.0f - t) / fe;
    v = std::min(std::max(v, 0.0f), 1.0f);
    ramp[j] = v * v * (3.0f - 2.0f * v);
  }
  mask.resize(static_cast<std::size_t>(r) * r);
  for (int i = 0; i < r; ++i) {
    for (int j = 0; j < r; ++j) mask[static_cast<std::size_t>(i) * r + j] = ramp[i] * ramp[j];
  }
  return mask.data();
}

void check_feather(double feather) {
  if (!(std::isfinite(feather) && feather >= 0 && feather <= 0.5)) {
    throw Error(Code::InvalidArgument, "feather must be a finite number in [0, 0.5], got " + std::to_string(feather));
  }
}

void paste_back(const ImageView& frame, const std::uint8_t* crop_rgb, int r, const Crop& crop, double feather,
                std::uint8_t* out, std::size_t out_size, PasteScratch& s) {
  check_image(frame, "paste_back frame");
  check_crop(crop, "crop");
  check_feather(feather);
  if (!crop_rgb || !out) throw Error(Code::InvalidArgument, "paste_back: crop image and output must not be NULL");
  if (r <= 0 || r > 4096) throw Error(Code::InvalidArgument, "resolution must be in 1..4096");
  if (out_size < frame.size) {
    throw Error(Code::SizeMismatch, "paste_back: the output holds " + std::to_string(out_size) +
                                        " bytes, less than the frame's " + std::to_string(frame.size));
  }
  if (out != frame.data) std::copy(frame.data, frame.data + frame.size, out);
  // crop.paste_box: frame pixels whose centres lie inside the crop square, clipped to the frame
  const double half = crop.size / 2;
  auto edge = [](double v, int n) { return static_cast<int>(std::min(std::max(std::ceil(v), 0.0), static_cast<double>(n))); };
  const int x0 = edge(crop.cx - half, frame.width), y0 = edge(crop.cy - half, frame.height);
  const int x1 = std::max(edge(crop.cx + half, frame.width), x0), y1 = std::max(edge(crop.cy + half, frame.height), y0);
  if (x1 <= x0 || y1 <= y0) return;
  // RGBA float32: the crop and the feather mask x 255
  const float* mask = feather_mask(r, feather, s.mask);
  s.rgba.resize(static_cast<std::size_t>(r) * r * 4);
  for (std::size_t p = 0; p < static_cast<std::size_t>(r) * r; ++p) {
    for (int c = 0; c < 3; ++c) s.rgba[4 * p + c] = static_cast<float>(crop_rgb[3 * p + c]);
    s.rgba[4 * p + 3] = mask[p] * 255.0f;
  }
  // crop.sample_from_crop, a band of rows at a time (the box prefilter's blocks are aligned to the
  // crop image's origin, so banding gives the same values and bounds the scratch memory)
  const double per_px = r / crop.size;
  constexpr int kBand = 64;
  for (int yb = y0; yb < y1; yb += kBand) {
    const int ye = std::min(yb + kBand, y1);
    s.sample.xs.resize(x1 - x0);
    s.sample.ys.resize(ye - yb);
    for (int x = x0; x < x1; ++x) s.sample.xs[x - x0] = (static_cast<double>(x) - crop.cx) * per_px + r / 2.0 - 0.5;
    for (int y = yb; y < ye; ++y) s.sample.ys[y - yb] = (static_cast<double>(y) - crop.cy) * per_px + r / 2.0 - 0.5;
    s.patch.resize(static_cast<std::size_t>(x1 - x0) * (ye - yb) * 4);
    sample_grid(s.rgba.data(), r, r, static_cast<std::size_t>(r) * 4, 4, s.sample.xs, s.sample.ys, per_px, s.sample,
                s.patch.data());
    for (int y = yb; y < ye; ++y) {
      std::uint8_t* row = out + static_cast<std::size_t>(y) * frame.stride;
      const float* p = &s.patch[static_cast<std::size_t>(y - yb) * (x1 - x0) * 4];
      for (int x = x0; x < x1; ++x, p += 4) {
        const float alpha = p[3] / 255.0f;
        for (int c = 0; c < 3; ++c) {
          const float region = static_cast<float>(row[3 * x + c]);
          float v = region + (p[c] - region) * alpha + 0.5f;
          v = std::min(std::max(v, 0.0f), 255.0f);
          row[3 * x + c] = static_cast<std::uint8_t>(v);  // truncation, as numpy's astype(uint8)
        }
      }
    }
  }
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
