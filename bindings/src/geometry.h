// The crop rule, pixel <-> crop-normalised coordinates, the crop warp and motion transfer.
// A line-by-line port of sdk/talkinghead/crop.py (docs/architecture.md): the same float64 crop
// arithmetic, the same float32 sampling arithmetic in the same order, so crops equal Python's
// within +-1 (in practice bit for bit) and normalised landmarks to ~1e-7.
#pragma once

#include <cstdint>
#include <vector>

namespace th {

constexpr int kNumLandmarks = 68;
constexpr int kLandmarkFloats = kNumLandmarks * 2;

struct CropRule {
  double scale = 1.7;
  double offset_y = -0.1;
};

// A square crop in source pixels: centre (cx, cy), side `size`.
struct Crop {
  double cx = 0, cy = 0, size = 0;
};

// An RGB8 image the caller owns (row stride in bytes; `size` readable bytes from `data`).
struct ImageView {
  const std::uint8_t* data = nullptr;
  int width = 0, height = 0, stride = 0;
  std::size_t size = 0;
};

// The crop rule's own check (talkinghead.crop.CropConfig.validate): scale finite and > 0, offset_y
// finite in (-1, 1). Throws InvalidArgument naming the field.
void check_crop_rule(const CropRule& rule);
// Throws InvalidArgument unless all `n` floats are finite (`what` names them in the message).
void check_finite(const float* values, std::size_t n, const char* what);
void check_crop(const Crop& c, const char* what);
void check_image(const ImageView& img, const char* what);

// crop.crop_from_landmarks: 68 pixel points -> crop (float64 arithmetic).
Crop crop_from_landmarks(const float* landmarks_px, const CropRule& rule);
// crop.to_normalised / crop.to_pixels for `count` points.
void to_normalised(const float* points_px, int count, const Crop& crop, float* out);
void to_pixels(const float* points_norm, int count, const Crop& crop, float* out);

// Scratch buffers of the bilinear sampler, reused across calls.
struct SampleScratch {
  std::vector<double> xs, ys;
  std::vector<int> x0, x1;
  std::vector<float> wx, reduced, samples;
};
using WarpScratch = SampleScratch;

// crop.warp_to_crop: bilinear on the pixel-centre grid, edge padding, k x k box prefilter when the
// crop is more than 2x larger than the output. Writes resolution^2 RGB8 pixels, packed.
void warp_to_crop(const ImageView& img, const Crop& crop, int resolution, std::uint8_t* out,
                  WarpScratch& scratch);

// pasteback.feather_mask: resolution^2 float32 weights, 1 inside and falling smoothly (smoothstep)
// to 0 over `feather` of the side at the border; written into `mask`, returned.
const float* feather_mask(int resolution, double feather, std::vector<float>& mask);
// The paste-back feather's range (pasteback.check_feather): finite, in [0, 0.5].
void check_feather(double feather);

struct PasteScratch {
  SampleScratch sample;
  std::vector<float> mask, rgba, patch;
};

// pasteback.paste_back: `out` (the frame's layout, at least frame.size bytes; may be frame.data
// itself) gets the frame with `crop_rgb` (resolution^2 packed RGB8, the model's output for `crop`)
// blended in under the feathered mask; the pixels whose centres lie in the crop square change.
void paste_back(const ImageView& frame, const std::uint8_t* crop_rgb, int resolution, const Crop& crop,
                double feather, std::uint8_t* out, std::size_t out_size, PasteScratch& scratch);

// motion.face_size: the larger side of 68 landmarks' bounding box (float32, as numpy).
float face_size(const float* landmarks);

}  // namespace th
