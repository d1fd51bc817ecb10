// A live stream of one avatar: the motion reference, One Euro smoothing and the expression / pose
// controls kept between frames. The C++ port of talkinghead.stream.Stream for pushed landmarks
// (talkinghead.controls, talkinghead.stream.LandmarkSmoother, talkinghead.motion.MotionTransfer):
// the same rules in the same order, so both streams give the same frames (tests/bindings).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "geometry.h"
#include "model.h"
#include "motion.h"

namespace th {

// talkinghead.controls.Controls; every field a no-op at its default.
struct Controls {
  double eye_open = 1.0;
  double mouth_open = 0.0;
  double smile = 0.0;
  double yaw = 0.0;    // degrees; > 0 turns the nose towards the image's right
  double pitch = 0.0;  // degrees; > 0 lifts it
  double roll = 0.0;   // degrees; > 0 turns the face clockwise on screen
  bool expression_only = false;
};

// InvalidArgument naming the first control out of range (talkinghead.controls.LIMITS).
void check_controls(const Controls& c);
// Controls.apply on one face: `points` [68][2] crop-normalised, edited in place; `source` is the
// avatar's own landmarks (what expression_only keeps still).
void apply_controls(const Controls& c, const float* source, float* points);

// talkinghead.landmarks.one_euro.OneEuroFilter over kLandmarkFloats values, float64.
class OneEuro {
 public:
  void reset() { started_ = false; }
  void filter(const double* x, double t, double* out);

 private:
  double min_cutoff_ = 1.5, beta_ = 5.0, d_cutoff_ = 1.0;  // OneEuroConfig's defaults
  bool started_ = false;
  double t_ = 0.0;
  std::array<double, kLandmarkFloats> x_{}, dx_{};
};

struct StreamOptions {
  bool relative = true;   // motion transfer: relative (the avatar keeps its face shape) or absolute
  bool smoothing = true;  // One Euro on the pushed landmarks, in face sizes (LandmarkSmoother)
};

struct StreamStats {
  std::int64_t pushed = 0, rendered = 0, failed = 0;
};

// Not thread-safe: one stream is used by one thread at a time (the model may be shared).
class Stream {
 public:
  // `model` and `avatar` must outlive the stream (it keeps pointers, copies nothing large).
  Stream(const Model& model, const Avatar* avatar, const StreamOptions& options);

  void set_controls(const Controls& c);
  const Controls& controls() const { return controls_; }
  // Forget the motion reference and the smoother: the next push becomes the reference.
  void reset();
  // One frame: driver landmarks [68][2] in pixels of the driving frame (or crop-normalised),
  // at `timestamp` seconds (finite, increasing) -> one RGB8 crop into `out`.
  void push(const float* landmarks, bool pixels, double timestamp, std::uint8_t* out, std::size_t out_size);
  const StreamStats& stats() const { return stats_; }

 private:
  const Model& model_;
  const Avatar* avatar_;
  StreamOptions options_;
  Controls controls_;
  OneEuro filter_;
  bool have_time_ = false;
  double last_time_ = 0.0;
  float smooth_ref_ = 1.0f;  // face size of the first sample
  MotionTransfer motion_;  // its reference is the first push after creation or reset
  StreamStats stats_;
};

}  // namespace th
