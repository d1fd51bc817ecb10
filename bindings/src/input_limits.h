// The bounds every input is checked against before any large allocation (issue 18): the C++ twin
// of sdk/talkinghead/limits.py (the pybind module exposes these, and tests/bindings/test_native.py
// checks that both languages hold the same numbers).
#pragma once

#include <cstddef>
#include <cstdint>

namespace th {

constexpr int kMaxShots = 32;            // shots per avatar; references a warp avatar or manifest cap keeps
constexpr double kMaxPixelCoord = 1.0e6;  // |x|, |y| of landmarks: float32 keeps 1/16 px there
constexpr double kMaxNormalised = 4.0;    // |u|, |v| of the crop-normalised face the generator gets
constexpr double kMinFaceSize = 1.0e-3;   // a smaller face (crop-normalised extent) is degenerate
constexpr double kMaxCropToImage = 8.0;  // a crop overlaps its image and is at most 8x its larger side
constexpr int kMaxRenderFrames = 4096;    // frames per th_render call
constexpr int kRenderChunk = 8;           // frames per generator run (bounds the work buffers)
constexpr std::int64_t kMaxImagePixels = 8192LL * 8192LL;  // pixels of one shot

// Throws InvalidArgument unless 1 <= count <= kMaxShots (the shots rule, once).
void check_shot_count(long long count);
// Throws InvalidArgument unless all `n` floats (landmarks, `what` in the message) are finite and
// within +-kMaxPixelCoord.
void check_landmark_values(const float* values, std::size_t n, const char* what);
// Throws InvalidArgument unless every point of `frames` crop-normalised faces [frames][68][2] is
// within +-kMaxNormalised and each face is larger than kMinFaceSize (else it renders face-less).
void check_face_in_crop(const float* norm, int frames, int first_frame, const char* what);
// Throws InvalidArgument unless the crop overlaps the width x height image and is at most
// kMaxCropToImage times its larger side (else the landmarks are not this image's).
void check_crop_on_image(double cx, double cy, double size, int width, int height);
// intra/inter-op thread counts above the machine's cores are lowered to them (a warning is logged).
int clamp_threads(int requested, const char* what);

}  // namespace th
