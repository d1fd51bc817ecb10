"""Which shots a ``warp`` avatar keeps when it is given more than the package's reference cap.

Rule ``farthest-landmarks``: greedy farthest-point selection over the shots' crop-normalised
landmarks (136-vectors, mean Euclidean distance per point). It starts from the shot nearest the
mean face of the shots (a typical pose) and then repeatedly adds the shot farthest from every one
kept so far, so the kept shots cover the most varied poses and mouth states; near-duplicates are
dropped first. Deterministic: ties go to the earlier shot. bench/reference_selection.py measures it
against keeping the first shots.
"""
from __future__ import annotations

import numpy as np


def landmark_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean per-point Euclidean distance between landmark sets: [N,68,2] x [M,68,2] -> [N, M]."""
    d = a[:, None] - b[None]
    return np.sqrt((d * d).sum(-1)).mean(-1)


def select_references(landmarks: np.ndarray, cap: int) -> np.ndarray:
    """Indices (sorted, int64) of at most ``cap`` shots chosen by farthest-landmarks selection."""
    lm = np.asarray(landmarks, np.float64)
    n = lm.shape[0]
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    first = int(landmark_distances(lm, lm.mean(0, keepdims=True))[:, 0].argmin())
    chosen = [first]
    nearest = landmark_distances(lm, lm[[first]])[:, 0]
    while len(chosen) < cap:
        nxt = int(nearest.argmax())
        chosen.append(nxt)
        nearest = np.minimum(nearest, landmark_distances(lm, lm[[nxt]])[:, 0])
    return np.array(sorted(chosen), dtype=np.int64)
