// Which shots a 'warp' avatar keeps when it is given more than the package's reference cap.
// A port of sdk/talkinghead/references.py (rule "farthest-landmarks"), in the same float64
// arithmetic and summation order as numpy, so both sides keep the same shots.
#pragma once

#include <vector>

namespace th {

// Indices (ascending) of at most `cap` of the `count` shots, from their crop-normalised
// landmarks [count][68][2]: start from the shot nearest the mean face, then repeatedly add the
// shot farthest from all kept so far (ties: the earlier shot).
std::vector<int> select_references(const float* landmarks_norm, int count, int cap);

}  // namespace th
