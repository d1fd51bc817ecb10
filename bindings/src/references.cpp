#include "references.h"

#include <algorithm>
#include <cmath>

#include "errors.h"
#include "geometry.h"

namespace th {
namespace {

// numpy's float64 sum of 68 contiguous values (pairwise_sum: eight accumulators, then the rest).
double numpy_sum68(const double* a) {
  static_assert(kNumLandmarks == 68, "the unrolled order below is numpy's for n < 128");
  double r[8];
  for (int j = 0; j < 8; ++j) r[j] = a[j];
  int i = 8;
  for (; i + 8 <= kNumLandmarks; i += 8) {
    for (int j = 0; j < 8; ++j) r[j] += a[i + j];
  }
  double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < kNumLandmarks; ++i) res += a[i];
  return res;
}

// references.landmark_distances for one pair: mean per-point Euclidean distance.
double distance(const double* a, const double* b) {
  double per_point[kNumLandmarks];
  for (int p = 0; p < kNumLandmarks; ++p) {
    const double dx = a[2 * p] - b[2 * p], dy = a[2 * p + 1] - b[2 * p + 1];
    per_point[p] = std::sqrt(dx * dx + dy * dy);
  }
  return numpy_sum68(per_point) / kNumLandmarks;
}

}  // namespace

std::vector<int> select_references(const float* landmarks_norm, int count, int cap) {
  if (cap < 1) throw Error(Code::InvalidArgument, "cap must be >= 1, got " + std::to_string(cap));
  std::vector<int> chosen;
  if (count <= cap) {
    for (int i = 0; i < count; ++i) chosen.push_back(i);
    return chosen;
  }
  std::vector<double> lm(landmarks_norm, landmarks_norm + static_cast<std::size_t>(count) * kLandmarkFloats);
  std::vector<double> mean(lm.begin(), lm.begin() + kLandmarkFloats);  // numpy: row by row, then / n
  for (int i = 1; i < count; ++i) {
    for (int k = 0; k < kLandmarkFloats; ++k) mean[k] += lm[static_cast<std::size_t>(i) * kLandmarkFloats + k];
  }
  for (double& v : mean) v /= count;
  auto row = [&](int i) { return lm.data() + static_cast<std::size_t>(i) * kLandmarkFloats; };
  int first = 0;
  double best = distance(row(0), mean.data());
  for (int i = 1; i < count; ++i) {
    const double d = distance(row(i), mean.data());
    if (d < best) best = d, first = i;
  }
  chosen.push_back(first);
  std::vector<double> nearest(count);
  for (int i = 0; i < count; ++i) nearest[i] = distance(row(i), row(first));
  while (static_cast<int>(chosen.size()) < cap) {
    const int next = static_cast<int>(std::max_element(nearest.begin(), nearest.end()) - nearest.begin());
    chosen.push_back(next);
    for (int i = 0; i < count; ++i) nearest[i] = std::min(nearest[i], distance(row(i), row(next)));
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace th
