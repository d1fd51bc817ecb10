#include "motion.h"

#include <algorithm>

#include "errors.h"

namespace th {

void MotionTransfer::set_reference(const float* reference, bool pixels, const CropRule& rule, const Crop* crop,
                                   const float* source) {
  crop_ = !pixels ? Crop{0.0, 0.0, 2.0} : crop ? *crop : crop_from_landmarks(reference, rule);
  check_crop(crop_, pixels && crop ? "reference_crop" : "reference crop");
  to_normalised(reference, kNumLandmarks, crop_, reference_.data());
  have_source_ = source != nullptr;
  if (have_source_) {
    std::copy(source, source + kLandmarkFloats, source_.begin());
    scale_ = static_cast<float>(static_cast<double>(face_size(source)) /
                                std::max(static_cast<double>(face_size(reference_.data())), 1e-6));
  }
  have_reference_ = true;
}

void MotionTransfer::apply(const float* driver, bool relative, float* out) const {
  if (!have_reference_ || (relative && !have_source_)) {
    throw Error(Code::Internal, "motion transfer used before its reference (and source) were set");
  }
  to_normalised(driver, kNumLandmarks, crop_, out);
  if (!relative) return;
  for (int k = 0; k < kLandmarkFloats; ++k) out[k] = source_[k] + (out[k] - reference_[k]) * scale_;
}

}  // namespace th
