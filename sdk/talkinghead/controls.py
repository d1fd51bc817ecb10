"""Expression and pose controls: edits of the landmarks that drive the generator.

A landmark-driven model makes these natural: each control moves the 68 crop-normalised points
before rendering, the way LivePortrait's sliders move its keypoints. They apply to the
transferred landmarks (after motion transfer), per frame:

- ``eye_open``: a factor on each eye's opening (0 closes the eyes, 1 leaves them, 1.5 widens);
- ``mouth_open``: added jaw drop, in units of the face size (0.1 opens the mouth about a third);
- ``smile``: -1..1, mouth corners out and up (positive) or in and down;
- ``yaw``, ``pitch``, ``roll``: head rotation offsets in degrees (out-of-plane turns use a rough
  per-point depth, :func:`point_depth`): positive yaw turns the nose towards the image's right,
  positive pitch lifts it (the face looks up), positive roll turns the face clockwise on screen;
- ``expression_only``: the source's head stays where it is in the crop (position, scale and
  in-plane rotation of the transferred face are aligned back onto the source's), so only the
  expression of the driver transfers.

All are exact no-ops at their defaults. :func:`rotate_head` is also what the demo performance
(talkinghead.performance) turns its head with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .errors import InputError
from .motion import face_size

# iBUG-68 groups.
UPPER_LID_TO_LOWER = {37: 41, 38: 40, 43: 47, 44: 46}  # upper-lid point -> the lower-lid point it closes onto
LOWER_LIP = [55, 56, 57, 58, 59, 65, 66, 67]
MOUTH_CORNERS = [48, 54, 60, 64]
CHIN = list(range(5, 12))
BROWS = list(range(17, 27))
# Points that move little with expression: what expression_only aligns on (eye corners, nose).
STABLE = [27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45]

LIMITS = {"eye_open": (0.0, 2.0), "mouth_open": (-0.1, 0.4), "smile": (-1.0, 1.0),
          "yaw": (-45.0, 45.0), "pitch": (-30.0, 30.0), "roll": (-45.0, 45.0)}


def point_depth() -> np.ndarray:
    """A rough per-point depth (towards the camera, in face sizes) for out-of-plane head turns."""
    z = np.zeros(68, np.float32)
    jaw = np.abs(np.linspace(-1, 1, 17))
    z[0:17] = 0.12 * (1 - jaw)
    z[17:27] = 0.12
    z[27:31] = np.linspace(0.18, 0.32, 4)
    z[31:36] = [0.2, 0.25, 0.3, 0.25, 0.2]
    z[36:48] = 0.1
    z[48:68] = 0.18
    return z


def rotate_head(points: np.ndarray, yaw: np.ndarray | float, pitch: np.ndarray | float,
                roll: np.ndarray | float, centre: np.ndarray, size: float) -> np.ndarray:
    """Turn faces [..., 68, 2] about ``centre`` ([2], or [..., 2] one per face) by angles in radians
    (one per face, or scalars): out-of-plane yaw and pitch shift each point by its depth, then
    in-plane roll rotates."""
    pts = np.asarray(points, np.float32)
    lead = pts.shape[:-2]
    yaw, pitch, roll = (np.broadcast_to(np.asarray(a, np.float64), lead)[..., None] for a in (yaw, pitch, roll))
    centre = np.broadcast_to(np.asarray(centre, np.float64), lead + (2,))[..., None, :]  # [..., 1, 2]
    depth = point_depth() * size
    x = pts[..., 0] - centre[..., 0]
    y = pts[..., 1] - centre[..., 1]
    x = x * np.cos(yaw) + depth * np.sin(yaw)
    y = y * np.cos(pitch) - depth * np.sin(pitch)
    c, s = np.cos(roll), np.sin(roll)
    out = np.empty_like(pts)
    out[..., 0] = centre[..., 0] + c * x - s * y
    out[..., 1] = centre[..., 1] + s * x + c * y
    return out


def similarity_onto(points: np.ndarray, target: np.ndarray, idx: list[int]) -> np.ndarray:
    """``points`` [68, 2] moved by the similarity (scale, rotation, shift) that best maps their
    ``idx`` points onto ``target``'s, in the least-squares sense (closed form in 2-D: with centred
    a, b, ``s cos = sum(a . b) / |a|^2`` and ``s sin = sum(a x b) / |a|^2``); float64 inside."""
    a, b = points[idx].astype(np.float64), target[idx].astype(np.float64)
    ma, mb = a.mean(0), b.mean(0)
    a0, b0 = a - ma, b - mb
    norm = float((a0 * a0).sum())
    if norm <= 0:
        return np.asarray(points, np.float32).copy()
    c = float((a0 * b0).sum()) / norm
    s = float((a0[:, 0] * b0[:, 1] - a0[:, 1] * b0[:, 0]).sum()) / norm
    p = points.astype(np.float64) - ma
    out = np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], -1) + mb
    return out.astype(np.float32)


@dataclass(frozen=True)
class Controls:
    """Expression and pose edits applied to the driving landmarks (all no-ops at their defaults)."""

    eye_open: float = 1.0
    mouth_open: float = 0.0
    smile: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    expression_only: bool = False

    def validate(self) -> "Controls":
        for name, (lo, hi) in LIMITS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                raise InputError(f"controls.{name} must be a number in [{lo:g}, {hi:g}], got {v!r}")
        if not isinstance(self.expression_only, bool):
            raise InputError(f"controls.expression_only must be true or false, got {self.expression_only!r}")
        return self

    def with_(self, **changes) -> "Controls":
        """A copy with some controls changed (validated)."""
        return replace(self, **changes).validate()

    @property
    def is_identity(self) -> bool:
        return self == Controls()

    def apply(self, points: np.ndarray, source: np.ndarray) -> np.ndarray:
        """Landmarks [68, 2] or [B, 68, 2] (crop-normalised) edited by these controls; ``source``
        is the avatar's own landmarks [68, 2] (the head that expression_only keeps still)."""
        pts = np.array(points, np.float32, copy=True)
        if self.is_identity:
            return pts
        single = pts.ndim == 2
        pts = pts[None] if single else pts
        size = face_size(source)
        if self.expression_only:
            pts = np.stack([similarity_onto(p, source, STABLE) for p in pts])
        if self.eye_open != 1.0:
            for upper, lower in UPPER_LID_TO_LOWER.items():
                mid = 0.5 * (pts[:, upper, 1] + pts[:, lower, 1])
                for i in (upper, lower):
                    pts[:, i, 1] = mid + self.eye_open * (pts[:, i, 1] - mid)
        if self.mouth_open:
            drop = self.mouth_open * size
            pts[:, LOWER_LIP, 1] += drop
            pts[:, CHIN, 1] += 0.6 * drop
        if self.smile:
            centre_x = pts[:, MOUTH_CORNERS, 0].mean(1, keepdims=True)
            side = np.sign(pts[:, MOUTH_CORNERS, 0] - centre_x)
            pts[:, MOUTH_CORNERS, 0] += 0.06 * size * self.smile * side
            pts[:, MOUTH_CORNERS, 1] -= 0.05 * size * self.smile
        if self.yaw or self.pitch or self.roll:
            pts = rotate_head(pts, math.radians(self.yaw), math.radians(self.pitch), math.radians(self.roll),
                              pts.mean(1), size)
        return pts[0] if single else pts
