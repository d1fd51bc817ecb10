// Motion transfer (talkinghead.motion.MotionTransfer): the driver's landmarks in its reference's
// crop; relative motion adds the driver's displacement from its reference, scaled by the ratio of
// face sizes, to the avatar's own face. One implementation for th_render and th_stream.
#pragma once

#include <array>

#include "geometry.h"

namespace th {

class MotionTransfer {
 public:
  // The driver's reference frame [68][2]: pixels (framed by `crop` when given, else by `rule`) or
  // crop-normalised (used as it is). `source` [68][2] is the avatar's face (relative motion), or
  // null (absolute motion only).
  void set_reference(const float* reference, bool pixels, const CropRule& rule, const Crop* crop, const float* source);
  bool has_reference() const { return have_reference_; }
  void reset() { have_reference_ = false; }
  // One driver frame, in the reference's coordinates -> `out` [68][2], crop-normalised: in the
  // reference's crop (absolute), or source + (driver - reference) * scale (relative: needs a source).
  void apply(const float* driver, bool relative, float* out) const;

 private:
  Crop crop_{0.0, 0.0, 2.0};  // the identity map for normalised input
  std::array<float, kLandmarkFloats> reference_{}, source_{};
  float scale_ = 1.0f;
  bool have_reference_ = false, have_source_ = false;
};

}  // namespace th
