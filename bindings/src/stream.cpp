// See stream.h. Each function names the Python it ports; the arithmetic follows numpy's types there.
#include "stream.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "errors.h"

namespace th {
namespace {

constexpr double kPi = 3.14159265358979323846;

// talkinghead.controls groups.
constexpr int kUpperLid[4] = {37, 38, 43, 44};
constexpr int kLowerLid[4] = {41, 40, 47, 46};
constexpr int kLowerLip[8] = {55, 56, 57, 58, 59, 65, 66, 67};
constexpr int kMouthCorners[4] = {48, 54, 60, 64};
constexpr int kStable[11] = {27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45};

struct Limit {
  const char* name;
  double Controls::*field;
  double lo, hi;
};
constexpr Limit kLimits[] = {{"eye_open", &Controls::eye_open, 0.0, 2.0},   {"mouth_open", &Controls::mouth_open, -0.1, 0.4},
                             {"smile", &Controls::smile, -1.0, 1.0},        {"yaw", &Controls::yaw, -45.0, 45.0},
                             {"pitch", &Controls::pitch, -30.0, 30.0},      {"roll", &Controls::roll, -45.0, 45.0}};

// talkinghead.controls.point_depth (float32 values).
std::array<float, kNumLandmarks> point_depth() {
  std::array<float, kNumLandmarks> z{};
  for (int i = 0; i < 17; ++i) {
    const double jaw = std::fabs(-1.0 + 2.0 * i / 16.0);
    z[i] = static_cast<float>(0.12 * (1.0 - jaw));
  }
  for (int i = 17; i < 27; ++i) z[i] = 0.12f;
  for (int i = 0; i < 4; ++i) z[27 + i] = static_cast<float>(0.18 + (0.32 - 0.18) * i / 3.0);
  const double nose[5] = {0.2, 0.25, 0.3, 0.25, 0.2};
  for (int i = 0; i < 5; ++i) z[31 + i] = static_cast<float>(nose[i]);
  for (int i = 36; i < 48; ++i) z[i] = 0.1f;
  for (int i = 48; i < 68; ++i) z[i] = 0.18f;
  return z;
}

// talkinghead.controls.similarity_onto (closed-form 2-D least-squares similarity, float64).
void similarity_onto(float* p, const float* target) {
  constexpr int n = sizeof(kStable) / sizeof(kStable[0]);
  double ma[2] = {0, 0}, mb[2] = {0, 0};
  for (int i : kStable) {
    for (int d = 0; d < 2; ++d) {
      ma[d] += p[2 * i + d];
      mb[d] += target[2 * i + d];
    }
  }
  for (int d = 0; d < 2; ++d) {
    ma[d] /= n;
    mb[d] /= n;
  }
  double norm = 0, dot = 0, cross = 0;
  for (int i : kStable) {
    const double ax = p[2 * i] - ma[0], ay = p[2 * i + 1] - ma[1];
    const double bx = target[2 * i] - mb[0], by = target[2 * i + 1] - mb[1];
    norm += ax * ax + ay * ay;
    dot += ax * bx + ay * by;
    cross += ax * by - ay * bx;
  }
  if (norm <= 0) return;
  const double c = dot / norm, s = cross / norm;
  for (int i = 0; i < kNumLandmarks; ++i) {
    const double x = p[2 * i] - ma[0], y = p[2 * i + 1] - ma[1];
    p[2 * i] = static_cast<float>(c * x - s * y + mb[0]);
    p[2 * i + 1] = static_cast<float>(s * x + c * y + mb[1]);
  }
}

double alpha(double cutoff, double dt) {
  const double tau = 1.0 / (2.0 * kPi * cutoff);
  return 1.0 / (1.0 + tau / dt);
}

}  // namespace

void check_controls(const Controls& c) {
  for (const Limit& l : kLimits) {
    const double v = c.*(l.field);
    if (!std::isfinite(v) || v < l.lo || v > l.hi) {
      throw Error(Code::InvalidArgument, std::string("controls.") + l.name + " must be a number in [" +
                                             std::to_string(l.lo) + ", " + std::to_string(l.hi) + "], got " +
                                             std::to_string(v));
    }
  }
}

void apply_controls(const Controls& c, const float* source, float* p) {
  const Controls none;
  if (c.eye_open == none.eye_open && c.mouth_open == 0 && c.smile == 0 && c.yaw == 0 && c.pitch == 0 &&
      c.roll == 0 && !c.expression_only) {
    return;
  }
  const double size = face_size(source);
  if (c.expression_only) similarity_onto(p, source);
  if (c.eye_open != 1.0) {
    const float e = static_cast<float>(c.eye_open);
    for (int k = 0; k < 4; ++k) {
      float& up = p[2 * kUpperLid[k] + 1];
      float& low = p[2 * kLowerLid[k] + 1];
      const float mid = 0.5f * (up + low);
      up = mid + e * (up - mid);
      low = mid + e * (low - mid);
    }
  }
  if (c.mouth_open != 0) {
    const float drop = static_cast<float>(c.mouth_open * size);
    const float chin = static_cast<float>(0.6 * (c.mouth_open * size));
    for (int i : kLowerLip) p[2 * i + 1] += drop;
    for (int i = 5; i < 12; ++i) p[2 * i + 1] += chin;
  }
  if (c.smile != 0) {
    float centre = 0;
    for (int i : kMouthCorners) centre += p[2 * i];
    centre /= 4.0f;
    const float out = static_cast<float>(0.06 * size * c.smile), up = static_cast<float>(0.05 * size * c.smile);
    for (int i : kMouthCorners) {
      const float side = p[2 * i] > centre ? 1.0f : (p[2 * i] < centre ? -1.0f : 0.0f);
      p[2 * i] += out * side;
      p[2 * i + 1] -= up;
    }
  }
  if (c.yaw != 0 || c.pitch != 0 || c.roll != 0) {  // controls.rotate_head
    static const std::array<float, kNumLandmarks> depth = point_depth();
    double centre[2] = {0, 0};
    for (int i = 0; i < kNumLandmarks; ++i) {
      centre[0] += p[2 * i];
      centre[1] += p[2 * i + 1];
    }
    centre[0] = static_cast<float>(centre[0] / kNumLandmarks);
    centre[1] = static_cast<float>(centre[1] / kNumLandmarks);
    const double yaw = c.yaw * kPi / 180.0, pitch = c.pitch * kPi / 180.0, roll = c.roll * kPi / 180.0;
    const double cr = std::cos(roll), sr = std::sin(roll);
    for (int i = 0; i < kNumLandmarks; ++i) {
      const double d = depth[i] * static_cast<float>(size);
      double x = p[2 * i] - centre[0], y = p[2 * i + 1] - centre[1];
      x = x * std::cos(yaw) + d * std::sin(yaw);
      y = y * std::cos(pitch) - d * std::sin(pitch);
      p[2 * i] = static_cast<float>(centre[0] + cr * x - sr * y);
      p[2 * i + 1] = static_cast<float>(centre[1] + sr * x + cr * y);
    }
  }
}

void OneEuro::filter(const double* x, double t, double* out) {
  if (!started_) {
    std::copy(x, x + kLandmarkFloats, x_.begin());
    dx_.fill(0.0);
    t_ = t;
    started_ = true;
    std::copy(x, x + kLandmarkFloats, out);
    return;
  }
  const double dt = t - t_;
  if (!(dt > 0)) throw Error(Code::InvalidArgument, "sample times must increase");
  const double a_d = alpha(d_cutoff_, dt);
  for (int k = 0; k < kLandmarkFloats; ++k) {
    const double dx = a_d * (x[k] - x_[k]) / dt + (1 - a_d) * dx_[k];
    const double a = alpha(min_cutoff_ + beta_ * std::fabs(dx), dt);
    x_[k] = a * x[k] + (1 - a) * x_[k];
    dx_[k] = dx;
    out[k] = x_[k];
  }
  t_ = t;
}

Stream::Stream(const Model& model, const Avatar* avatar, const StreamOptions& options)
    : model_(model), avatar_(avatar), options_(options) {
  if (!model.personalised() && !avatar) {
    throw Error(Code::InvalidArgument, "avatar must not be NULL (model '" + model.manifest().name + "' is not personalised)");
  }
  if (options.relative && (!avatar || !avatar->has_source)) {
    throw Error(Code::InvalidArgument, "relative motion needs an avatar with source landmarks (made from shots, or "
                                       "given source landmarks)");
  }
}

void Stream::set_controls(const Controls& c) {
  check_controls(c);
  const Controls none;
  const bool edits = c.eye_open != none.eye_open || c.mouth_open != 0 || c.smile != 0 || c.yaw != 0 || c.pitch != 0 ||
                     c.roll != 0 || c.expression_only;
  if (edits && (!avatar_ || !avatar_->has_source)) {
    throw Error(Code::InvalidArgument, "controls are measured on the avatar's own face: they need an avatar with "
                                       "source landmarks");
  }
  controls_ = c;
}

void Stream::reset() {
  motion_.reset();
  have_time_ = false;
  filter_.reset();
}

void Stream::push(const float* landmarks, bool pixels, double timestamp, std::uint8_t* out, std::size_t out_size) {
  ++stats_.pushed;
  try {
    if (!landmarks || !out) throw Error(Code::InvalidArgument, "landmarks and out must not be NULL");
    check_landmark_values(landmarks, kLandmarkFloats, "landmarks");
    if (!std::isfinite(timestamp)) throw Error(Code::InvalidArgument, "timestamp must be finite");
    if (have_time_ && !(timestamp > last_time_)) {
      throw Error(Code::InvalidArgument, "timestamps must increase: " + std::to_string(timestamp) + " after " +
                                             std::to_string(last_time_));
    }
    const std::size_t r = static_cast<std::size_t>(model_.resolution());
    if (out_size < r * r * 3) throw Error(Code::SizeMismatch, "out holds " + std::to_string(out_size) + " bytes; one frame needs " + std::to_string(r * r * 3));
    // LandmarkSmoother: One Euro in face sizes of the first sample.
    std::array<float, kLandmarkFloats> driver;
    if (options_.smoothing) {
      if (!motion_.has_reference()) {
        filter_.reset();
        smooth_ref_ = std::max(face_size(landmarks), 1e-6f);
      }
      std::array<double, kLandmarkFloats> x, y;
      for (int k = 0; k < kLandmarkFloats; ++k) x[k] = static_cast<double>(landmarks[k]) / smooth_ref_;
      filter_.filter(x.data(), timestamp, y.data());
      for (int k = 0; k < kLandmarkFloats; ++k) driver[k] = static_cast<float>(y[k] * smooth_ref_);
    } else {
      std::copy(landmarks, landmarks + kLandmarkFloats, driver.begin());
    }
    // MotionTransfer: the driver in its reference's crop (the identity crop for normalised input).
    if (!motion_.has_reference()) {
      motion_.set_reference(driver.data(), pixels, model_.crop_rule(), nullptr,
                            avatar_ && avatar_->has_source ? avatar_->source.data() : nullptr);
    }
    std::array<float, kLandmarkFloats> norm;
    motion_.apply(driver.data(), options_.relative, norm.data());
    if (avatar_ && avatar_->has_source) apply_controls(controls_, avatar_->source.data(), norm.data());
    RenderOptions ro;  // crop-normalised, absolute: the transfer is done
    model_.render(avatar_, norm.data(), 1, ro, out, out_size);
    last_time_ = timestamp;
    have_time_ = true;
    ++stats_.rendered;
  } catch (...) {
    ++stats_.failed;
    throw;
  }
}

}  // namespace th
