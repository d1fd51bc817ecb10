// The bounds of input_limits.h (the Python SDK's talkinghead.limits, rule for rule).
#include "input_limits.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <thread>

#include "errors.h"
#include "geometry.h"

namespace th {

void check_shot_count(long long count) {
  if (count < 1 || count > kMaxShots) {
    throw Error(Code::InvalidArgument, std::to_string(count) + " shots given; an avatar needs 1 to " + std::to_string(kMaxShots));
  }
}

void check_landmark_values(const float* values, std::size_t n, const char* what) {
  check_finite(values, n, what);
  for (std::size_t i = 0; i < n; ++i) {
    if (std::fabs(static_cast<double>(values[i])) > kMaxPixelCoord) {
      std::ostringstream m;
      m << what << " hold a coordinate beyond +-" << kMaxPixelCoord << " (frame " << i / kLandmarkFloats << ", point "
        << (i % kLandmarkFloats) / 2 << ": " << values[i]
        << "); landmarks are pixels of a frame or crop-normalised values near [-1, 1]";
      throw Error(Code::InvalidArgument, m.str());
    }
  }
}

void check_face_in_crop(const float* norm, int frames, int first_frame, const char* what) {
  for (int f = 0; f < frames; ++f) {
    const float* p = norm + static_cast<std::size_t>(f) * kLandmarkFloats;
    float reach = 0;
    for (int k = 0; k < kLandmarkFloats; ++k) reach = std::max(reach, std::fabs(p[k]));
    if (reach > kMaxNormalised) {
      std::ostringstream m;
      m << what << " of frame " << first_frame + f << " put the face " << reach
        << " crop half-widths from the crop's centre (at most " << kMaxNormalised
        << "): the face would be off the picture. "
           "Pixel landmarks passed as normalised coordinates, or a tracker glitch?";
      throw Error(Code::InvalidArgument, m.str());
    }
    if (face_size(p) < kMinFaceSize) {
      std::ostringstream m;
      m << what << " of frame " << first_frame + f << " are degenerate (the face spans " << face_size(p)
        << " of the crop: its points coincide)";
      throw Error(Code::InvalidArgument, m.str());
    }
  }
}

void check_crop_on_image(double cx, double cy, double size, int width, int height) {
  const double h = size / 2;
  if (size > kMaxCropToImage * std::max(width, height)) {
    std::ostringstream m;
    m << "the face's crop (" << size << " px) is more than " << kMaxCropToImage << "x this " << width << "x" << height
      << " image's larger side: are the landmarks this image's?";
    throw Error(Code::InvalidArgument, m.str());
  }
  if (cx + h <= -0.5 || cy + h <= -0.5 || cx - h >= width - 0.5 || cy - h >= height - 0.5) {
    std::ostringstream m;
    m << "the face's crop (" << cx << ", " << cy << ", " << size << ") lies outside this " << width << "x" << height
      << " image: are the landmarks this image's?";
    throw Error(Code::InvalidArgument, m.str());
  }
}

int clamp_threads(int requested, const char* what) {
  if (requested < 0) throw Error(Code::InvalidArgument, std::string(what) + " must be >= 0 (0: all cores)");
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (requested > cores) {
    log(LogLevel::Warning, std::string(what) + "=" + std::to_string(requested) + " is more than this machine's " +
                               std::to_string(cores) + " CPU core(s); using " + std::to_string(cores));
    return cores;
  }
  return requested;
}

}  // namespace th
