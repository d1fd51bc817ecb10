// The bounds every input is checked against before any large allocation (issue 18): the C++ twin
// of sdk/talkinghead/limits.py (the pybind module exposes these, and tests/bindings/test_native.py
// checks that both languages hold the same numbers).
#pragma once

#include <cstddef>
#include <cstdint>

namespace th {

constexpr double kMaxPixelCoord = 1.0e6;  // |x|, |y| of landmarks: float32 keeps 1/16 px there
constexpr double kMaxNormalised = 4.0;    // |u|, |v| of the crop-normalised face the generator gets
constexpr double kMinFaceSize = 1.0e-3;   // a smaller face (crop-normalised extent) is degenerate
constexpr int kMaxRenderFrames = 4096;    // frames per th_render call
constexpr int kRenderChunk = 8;           // frames per generator run (bounds the work buffers)
constexpr std::int64_t kMaxImagePixels = 8192LL * 8192LL;  // pixels of one shot

// Throws InvalidArgument unless all `n` floats (landmarks, `what` in the message) are finite and
// within +-kMaxPixelCoord.
void check_landmark_values(const float* values, std::size_t n, const char* what);
// Throws InvalidArgument unless every point of `frames` crop-normalised faces [frames][68][2] is
// within +-kMaxNormalised and each face is larger than kMinFaceSize (else it renders face-less).
void check_face_in_crop(const float* norm, int frames, int first_frame, const char* what);
// intra/inter-op thread counts above the machine's cores are lowered to them (a warning is logged).
int clamp_threads(int requested, const char* what);

}  // namespace th
