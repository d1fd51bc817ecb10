"""The landmark detector interface and the face record it returns."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

__all__ = ["Face", "LandmarkDetector", "box_iou", "points_box"]


@dataclass
class Face:
    """One face in an image.

    Attributes:
        box: ``float32 [4]`` (x0, y0, x1, y1) in pixels: the detector's box, or for a tracked fit
            the box the fit started from.
        points: ``float32 [68, 2]`` iBUG-68 landmarks in pixel coordinates (x right, y down,
            pixel centres at integers).
        confidence: the detector's score (backend-specific scale); for a tracked fit, the
            confidence of the detection the track started from.
    """

    box: np.ndarray
    points: np.ndarray
    confidence: float = 1.0
    extra: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float32).reshape(4)
        self.points = np.asarray(self.points, dtype=np.float32)
        if self.points.shape != (68, 2):
            raise InputError(f"Face.points must have shape [68, 2], got {self.points.shape}")
        self.confidence = float(self.confidence)

    @property
    def area(self) -> float:
        """Area of ``box`` in square pixels (how "largest" is measured)."""
        x0, y0, x1, y1 = self.box.tolist()
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def points_box(points: np.ndarray) -> np.ndarray:
    """Bounding box ``float32 [4]`` (x0, y0, x1, y1) of points ``[N, 2]``."""
    p = np.asarray(points, dtype=np.float32)
    return np.concatenate([p.min(axis=0), p.max(axis=0)]).astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ax0, ay0, ax1, ay1 = (float(v) for v in a)
    bx0, by0, bx1, by1 = (float(v) for v in b)
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


class LandmarkDetector(abc.ABC):
    """Image (RGB ``uint8 [H, W, 3]``) -> faces with 68 iBUG landmarks.

    Implementations: :class:`~talkinghead.landmarks.dlib_backend.DlibDetector` (default) and
    :class:`~talkinghead.landmarks.insightface_backend.InsightFaceDetector`.
    """

    #: Short backend name ("dlib", "insightface"), recorded in dataset metadata.
    name: str = "base"

    @abc.abstractmethod
    def detect(self, image: np.ndarray) -> list[Face]:
        """Find every face; return them sorted by box area, largest first."""

    def detect_boxes(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes ``float32 [N, 4]`` and scores ``float32 [N]`` without landmarks (cheaper
        when only presence or position matters). The default runs :meth:`detect`."""
        faces = self.detect(image)
        boxes = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
        return boxes, np.array([f.confidence for f in faces], np.float32)

    @abc.abstractmethod
    def fit(self, image: np.ndarray, box: np.ndarray) -> Face:
        """Fit 68 landmarks inside ``box`` (x0, y0, x1, y1) without detecting (for tracking)."""

    @abc.abstractmethod
    def box_from_points(self, points: np.ndarray) -> np.ndarray:
        """The box this backend's detector would give for a face with these landmarks, so a
        tracker can fit the next frame from the previous frame's points."""

    def describe(self) -> dict:
        """Plain description (name and settings) for metadata files."""
        return {"name": self.name}
