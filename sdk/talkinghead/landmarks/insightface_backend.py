"""InsightFace backend: SCRFD detector + 68-point 3D landmark model on onnxruntime.

Runs the two graphs of an InsightFace ``buffalo_l`` model pack from a folder the user names;
nothing is downloaded. Expected files (as unzipped from ``buffalo_l.zip``)::

    MODEL_DIR/det_10g.onnx     SCRFD-10GF face detector (input [1, 3, H, W]; 9 outputs:
                               scores, box distances and 5 keypoints at strides 8, 16, 32)
    MODEL_DIR/1k3d68.onnx      68-point 3D landmarks (input [1, 3, 192, 192]; output [1, 3309])

Pre- and post-processing follow InsightFace's ``SCRFD.detect`` and ``Landmark.get`` with fixed
constants (no guessing from graph nodes): the detector takes RGB ``(x - 127.5) / 128`` letterboxed
into a ``det_size`` square; the landmark model takes RGB 0..255 from a square of side
``1.5 * max(box width, height)`` around the box centre, and its last 68 (x, y, z) rows are
crop-normalised coordinates in [-1, 1]. One difference: outside the image the crop repeats the
edge pixels (InsightFace pads black). Check the pack's licence before commercial use.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..crop import Crop, resize_image, warp_to_crop
from ..errors import MissingDependencyError, ModelPackageError
from ..images import as_rgb_array
from .base import Face, LandmarkDetector, points_box

__all__ = ["InsightFaceDetector", "DETECTOR_FILE", "LANDMARK_FILE"]

DETECTOR_FILE = "det_10g.onnx"
LANDMARK_FILE = "1k3d68.onnx"
STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2
# Approximate mapping from the 68 points' bounding box to an SCRFD-like box (SCRFD boxes reach
# up to the forehead): centre moved up by 0.1 side, side 1.15x. Not calibrated on real SCRFD
# output (no InsightFace weights here); the landmark model's 1.5x margin absorbs the error.
_BOX_DY, _BOX_SCALE = -0.1, 1.15


def _ort():
    try:
        import onnxruntime  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MissingDependencyError("the insightface backend needs onnxruntime") from exc
    return onnxruntime


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression (InsightFace's +1 pixel area convention)."""
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = scores.argsort()[::-1]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= threshold]
    return keep


class InsightFaceDetector(LandmarkDetector):
    """SCRFD (``det_10g.onnx``) + ``1k3d68.onnx`` from an InsightFace buffalo_l folder.

    Args:
        model_dir: folder holding ``det_10g.onnx`` and ``1k3d68.onnx``.
        det_size: side of the square the detector sees (InsightFace's default 640).
        det_threshold: minimum detection score.
        nms_threshold: overlap above which weaker detections are dropped.
        providers: onnxruntime execution providers (default: CPU).

    Raises:
        MissingDependencyError: a file is missing; the message lists what to put where.
        ModelPackageError: a graph's inputs/outputs are not those of the expected model.
    """

    name = "insightface"

    def __init__(self, model_dir: str | os.PathLike, det_size: int = 640,
                 det_threshold: float = 0.5, nms_threshold: float = 0.4,
                 providers: Sequence[str] | None = None) -> None:
        self.model_dir = Path(model_dir).expanduser()
        det_path, lmk_path = self.model_dir / DETECTOR_FILE, self.model_dir / LANDMARK_FILE
        missing = [p.name for p in (det_path, lmk_path) if not p.is_file()]
        if missing:
            raise MissingDependencyError(
                f"the insightface backend needs {DETECTOR_FILE} and {LANDMARK_FILE} from "
                f"InsightFace's buffalo_l pack in {self.model_dir}; missing: "
                f"{', '.join(missing)}. Unzip buffalo_l.zip (from the InsightFace model zoo) "
                f"so that {det_path} and {lmk_path} exist; talkinghead downloads nothing.")
        self.det_size = int(det_size)
        self.det_threshold = float(det_threshold)
        self.nms_threshold = float(nms_threshold)
        ort = _ort()
        providers = list(providers) if providers else ["CPUExecutionProvider"]
        self._det = ort.InferenceSession(str(det_path), providers=providers)
        self._lmk = ort.InferenceSession(str(lmk_path), providers=providers)
        self._check_graphs(det_path, lmk_path)
        self._centres: dict[tuple[int, int, int], np.ndarray] = {}

    def _check_graphs(self, det_path: Path, lmk_path: Path) -> None:
        d_in = self._det.get_inputs()
        d_out = self._det.get_outputs()
        if len(d_in) != 1 or len(d_in[0].shape) != 4 or len(d_out) != 9:
            raise ModelPackageError(
                f"{det_path}: expected SCRFD with kps (1 input [1, 3, H, W], 9 outputs), got "
                f"{len(d_in)} input(s) and {len(d_out)} outputs")
        for i, o in enumerate(d_out):
            want = (1, 4, 10)[i // 3]
            if o.shape[-1] != want:
                raise ModelPackageError(f"{det_path}: output {i} ({o.name}) should end in {want}, "
                                        f"has shape {o.shape}")
        self._det_input = d_in[0].name
        self._det_outputs = [o.name for o in d_out]
        l_in, l_out = self._lmk.get_inputs(), self._lmk.get_outputs()
        if (len(l_in) != 1 or len(l_out) != 1 or len(l_in[0].shape) != 4
                or not isinstance(l_in[0].shape[2], int) or l_in[0].shape[2] != l_in[0].shape[3]):
            raise ModelPackageError(f"{lmk_path}: expected one input [1, 3, S, S] and one output")
        width = l_out[0].shape[-1]
        if not isinstance(width, int) or width % 3 or width < 68 * 3:
            raise ModelPackageError(f"{lmk_path}: output should be [1, 3 * K] with K >= 68 "
                                    f"(3309 for 1k3d68), has {l_out[0].shape}")
        self._lmk_input = l_in[0].name
        self._lmk_output = l_out[0].name
        self.lmk_size = int(l_in[0].shape[2])

    def describe(self) -> dict:
        return {"name": self.name, "model_dir": str(self.model_dir), "det_size": self.det_size,
                "det_threshold": self.det_threshold}

    # -- detection ----------------------------------------------------------------------------

    def _letterbox(self, img: np.ndarray) -> tuple[np.ndarray, float]:
        """Resize into the top-left of a black ``det_size`` square; returns blob and scale."""
        h, w = img.shape[:2]
        s = self.det_size
        if h / w > 1.0:
            new_h, new_w = s, int(s / (h / w))
        else:
            new_w, new_h = s, int(s * (h / w))
        new_w, new_h = max(new_w, 1), max(new_h, 1)
        canvas = np.zeros((s, s, 3), np.float32)
        canvas[:new_h, :new_w] = resize_image(img, new_h, new_w)
        blob = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None]
        return np.ascontiguousarray(blob, dtype=np.float32), new_h / h

    def _anchor_centres(self, height: int, width: int, stride: int) -> np.ndarray:
        key = (height, width, stride)
        if key not in self._centres:
            ys, xs = np.mgrid[:height, :width]
            c = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
            self._centres[key] = np.repeat(c, ANCHORS_PER_CELL, axis=0)
        return self._centres[key]

    def detect_boxes(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores, _ = self.detect_with_keypoints(image)
        return boxes, scores

    def detect_with_keypoints(self, image: np.ndarray
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run SCRFD only: boxes ``[N, 4]``, scores ``[N]``, 5 keypoints ``[N, 5, 2]`` in image
        pixels, best first."""
        img = as_rgb_array(image)
        blob, scale = self._letterbox(img)
        outs = self._det.run(self._det_outputs, {self._det_input: blob})
        boxes, scores, kps = [], [], []
        for i, stride in enumerate(STRIDES):
            sc = outs[i].reshape(-1)
            dist = outs[i + 3].reshape(-1, 4) * stride
            kd = outs[i + 6].reshape(-1, 10) * stride
            centres = self._anchor_centres(self.det_size // stride, self.det_size // stride,
                                           stride)
            if centres.shape[0] != sc.shape[0]:
                raise ModelPackageError(
                    f"{DETECTOR_FILE}: stride {stride} output has {sc.shape[0]} anchors, "
                    f"expected {centres.shape[0]} for det_size {self.det_size}")
            keep = np.nonzero(sc >= self.det_threshold)[0]
            c = centres[keep]
            boxes.append(np.concatenate([c - dist[keep, :2], c + dist[keep, 2:]], axis=1))
            scores.append(sc[keep])
            kps.append(np.tile(c, 5).reshape(-1, 5, 2) + kd[keep].reshape(-1, 5, 2))
        b = np.concatenate(boxes) / scale
        s = np.concatenate(scores)
        k = np.concatenate(kps) / scale
        keep = _nms(b, s, self.nms_threshold) if len(s) else []
        return (b[keep].astype(np.float32), s[keep].astype(np.float32),
                k[keep].astype(np.float32))

    def detect(self, image: np.ndarray) -> list[Face]:
        img = as_rgb_array(image)
        boxes, scores, kps = self.detect_with_keypoints(img)
        faces = []
        for box, score, k in zip(boxes, scores, kps):
            face = self.fit(img, box)
            face.confidence = float(score)
            face.extra["kps5"] = k
            faces.append(face)
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    # -- landmarks ----------------------------------------------------------------------------

    def landmark_crop(self, box: np.ndarray) -> tuple[float, float, float]:
        """Centre and side of the square the landmark model sees for ``box``."""
        x0, y0, x1, y1 = (float(v) for v in box)
        return (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 1.5

    def preprocess_landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The landmark model's input for ``box``: float32 ``[1, 3, S, S]``, RGB 0..255."""
        cx, cy, side = self.landmark_crop(box)
        r = self.lmk_size
        # InsightFace maps output pixel j to source cx + (j - S/2) * side / S (pixel centres at
        # integers); the project's crop grid samples cx' + (j + 0.5 - S/2) * side / S.
        half_px = 0.5 * side / r
        crop = warp_to_crop(image, Crop(cx - half_px, cy - half_px, side), r)
        return np.ascontiguousarray(crop.transpose(2, 0, 1)[None], dtype=np.float32)

    def fit(self, image: np.ndarray, box: np.ndarray) -> Face:
        img = as_rgb_array(image)
        box = np.asarray(box, np.float32).reshape(4)
        blob = self.preprocess_landmarks(img, box)
        pred = self._lmk.run([self._lmk_output], {self._lmk_input: blob})[0]
        pts = pred.reshape(-1, 3)[-68:, :2].astype(np.float64)
        cx, cy, side = self.landmark_crop(box)
        points = np.array([cx, cy]) + pts * (side / 2)
        return Face(box=box, points=points.astype(np.float32), confidence=1.0)

    def box_from_points(self, points: np.ndarray) -> np.ndarray:
        b = points_box(points).astype(np.float64)
        side = float((b[2:] - b[:2]).max())
        c = (b[:2] + b[2:]) / 2 + np.array([0.0, _BOX_DY * side])
        half = _BOX_SCALE * side / 2
        return np.array([c[0] - half, c[1] - half, c[0] + half, c[1] + half], np.float32)
