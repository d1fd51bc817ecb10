"""68-point face landmarks: detectors, tracking over video, temporal smoothing.

    from talkinghead.landmarks import get_detector, detect_landmarks, FaceTracker

    face = detect_landmarks(image)             # the largest face; NoFaceError if none
    det = get_detector("insightface", model_dir="~/models/buffalo_l")

Backends: "dlib" (default; ``pip install talkinghead[landmarks]``) and "insightface" (an
InsightFace buffalo_l pack the user provides, run on onnxruntime).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import InputError, NoFaceError
from ..images import as_rgb_array, read_image
from .base import Face, LandmarkDetector, box_iou, points_box
from .one_euro import OneEuroConfig, OneEuroFilter
from .tracker import FaceTracker, TrackedFrame, TrackerConfig, shape_change

__all__ = [
    "Face",
    "LandmarkDetector",
    "get_detector",
    "default_detector",
    "detect_landmarks",
    "available_backends",
    "FaceTracker",
    "TrackerConfig",
    "TrackedFrame",
    "OneEuroConfig",
    "OneEuroFilter",
    "box_iou",
    "points_box",
    "shape_change",
]

BACKENDS = ("dlib", "insightface")
_DEFAULT: dict[str, LandmarkDetector] = {}


def get_detector(name: str = "dlib", **kwargs: Any) -> LandmarkDetector:
    """Create a landmark detector by backend name.

    Args:
        name: "dlib" (kwargs: upsample, predictor_path, threshold, max_side) or "insightface"
            (kwargs: model_dir (required), det_size, det_threshold, providers).

    Raises:
        InputError: unknown backend name.
        MissingDependencyError: the backend's packages or model files are not installed.
    """
    if name == "dlib":
        from .dlib_backend import DlibDetector

        return DlibDetector(**kwargs)
    if name == "insightface":
        from .insightface_backend import InsightFaceDetector

        return InsightFaceDetector(**kwargs)
    raise InputError(f"unknown landmark backend {name!r}; choose one of {', '.join(BACKENDS)}")


def default_detector() -> LandmarkDetector:
    """The process-wide dlib detector (created on first use; the model loads in ~1 s)."""
    if "dlib" not in _DEFAULT:
        _DEFAULT["dlib"] = get_detector("dlib")
    return _DEFAULT["dlib"]


def available_backends() -> list[str]:
    """Backends whose Python packages import here (insightface also needs model files)."""
    out = []
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401

        out.append("dlib")
    except ImportError:
        pass
    try:
        import onnxruntime  # noqa: F401

        out.append("insightface")
    except ImportError:
        pass
    return out


def detect_landmarks(image: np.ndarray | str | os.PathLike, face_index: int = 0,
                     detector: LandmarkDetector | None = None, name: str | None = None) -> Face:
    """Detect faces and return the ``face_index``-th largest (0: the largest).

    Args:
        image: RGB ``uint8 [H, W, 3]`` array or an image file path.
        face_index: which face by size rank.
        detector: the detector to use (default: a shared dlib detector).
        name: how to name the image in errors (default: the path, or "image").

    Raises:
        NoFaceError: no face (or fewer than ``face_index + 1`` faces); names the image.
    """
    if isinstance(image, (str, os.PathLike)):
        label = name or str(image)
        img = read_image(image)
    else:
        label = name or "image"
        img = as_rgb_array(image, label)
    if face_index < 0:
        raise InputError(f"face_index must be >= 0, got {face_index}")
    if detector is None:
        detector = default_detector()
    faces = detector.detect(img)
    if not faces:
        raise NoFaceError(f"no face found in {label}")
    if face_index >= len(faces):
        raise NoFaceError(f"{label} has {len(faces)} face(s); face_index {face_index} asked for")
    return faces[face_index]
