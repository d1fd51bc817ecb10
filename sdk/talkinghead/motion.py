"""Motion transfer: the driver's landmarks -> landmarks for the avatar's face (crop-normalised).

``relative`` (default): the driver's motion since its reference frame (its first), scaled by the
ratio of face sizes, is added to the source's own landmarks, so the source keeps its face shape.
``absolute``: the driver's landmarks are used as they are (the source takes the driver's shape).
Both express the driver in the crop of its reference frame, so head translation and scale survive.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .crop import Crop, CropConfig, crop_from_landmarks, to_normalised
from .errors import InputError
from .limits import MAX_NORMALISED, MAX_PIXEL_COORD, MIN_FACE_SIZE

Mode = Literal["relative", "absolute"]


def check_landmarks(points: object, name: str = "landmarks", batched: bool | None = None) -> np.ndarray:
    """float32 [68, 2] or [B, 68, 2], finite as float32 and within +-``MAX_PIXEL_COORD``;
    InputError naming the problem (and the first bad frame and point) otherwise."""
    arr = np.asarray(points)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{name} must be numeric, got dtype {arr.dtype}")
    ok_shapes = {False: arr.ndim == 2, True: arr.ndim == 3, None: arr.ndim in (2, 3)}[batched]
    if not ok_shapes or arr.shape[-2:] != (68, 2):
        raise InputError(f"{name} must have shape {'[B, 68, 2]' if batched else '[68, 2]'}"
                         f"{' or [B, 68, 2]' if batched is None else ''}, got {list(arr.shape)}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr.reshape(-1, 68, 2)).all(axis=-1))
        raise InputError(f"{name} contain NaN or infinite values (first at frame {bad[0][0]}, point {bad[0][1]})")
    big = np.abs(arr.reshape(-1, 68, 2)) > MAX_PIXEL_COORD  # also what would overflow float32
    if big.any():
        f, i, _ = np.argwhere(big)[0]
        x, y = (float(v) for v in arr.reshape(-1, 68, 2)[f, i])
        raise InputError(f"{name} hold a coordinate beyond +-{MAX_PIXEL_COORD:g} (frame {f}, point {i}: "
                         f"({x:g}, {y:g})); "
                         "landmarks are pixels of a frame or crop-normalised values near [-1, 1]")
    return arr.astype(np.float32, copy=False)


def check_face_in_crop(norm: np.ndarray, name: str = "landmarks") -> np.ndarray:
    """Crop-normalised landmarks [B, 68, 2] as the generator takes them: every point within
    +-``MAX_NORMALISED`` and every face larger than ``MIN_FACE_SIZE`` (else the frame would render
    without a face); InputError naming the first bad frame otherwise."""
    reach = np.abs(norm).reshape(norm.shape[0], -1).max(axis=1)
    size = (norm.max(axis=1) - norm.min(axis=1)).max(axis=1)
    far = np.flatnonzero(reach > MAX_NORMALISED)
    if far.size:
        raise InputError(f"{name} of frame {far[0]} put the face {reach[far[0]]:.3g} crop half-widths from the "
                         f"crop's centre (at most {MAX_NORMALISED:g}): the face would be off the picture. "
                         "Pixel landmarks passed as coords='normalised', or a tracker glitch?")
    tiny = np.flatnonzero(size < MIN_FACE_SIZE)
    if tiny.size:
        raise InputError(f"{name} of frame {tiny[0]} are degenerate (the face spans {size[tiny[0]]:.3g} of the "
                         "crop: its points coincide)")
    return norm


def face_size(points: np.ndarray) -> float:
    """Size of a face in its own units: the larger side of its landmarks' bounding box."""
    return float(np.max(points.max(axis=0) - points.min(axis=0)))


@dataclass
class MotionTransfer:
    """Stateful per-sequence transfer; the first driver frame becomes the reference.

    Args:
        source: the avatar's landmarks, crop-normalised [68, 2].
        mode: "relative" or "absolute".
        crop_config: the crop rule that frames the driver's reference.
    """

    source: np.ndarray
    mode: Mode = "relative"
    crop_config: CropConfig | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("relative", "absolute"):
            raise InputError(f"mode must be 'relative' or 'absolute', got {self.mode!r}")
        self.source = check_landmarks(self.source, "source landmarks", batched=False)
        self.reference_crop: Crop | None = None
        self.reference: np.ndarray | None = None
        self._scale = 1.0

    def set_reference(self, driver_px: np.ndarray, crop: Crop | None = None) -> None:
        """Use these driver landmarks (pixels) as the reference frame, framed by ``crop`` (default:
        the crop rule; ``Crop(0, 0, 2)`` takes landmarks that are already crop-normalised)."""
        driver_px = check_landmarks(driver_px, "driver landmarks", batched=False)
        self.reference_crop = crop if crop is not None else crop_from_landmarks(driver_px, self.crop_config)
        self.reference = to_normalised(driver_px, self.reference_crop)
        self._scale = face_size(self.source) / max(face_size(self.reference), 1e-6)

    def __call__(self, driver_px: np.ndarray) -> np.ndarray:
        """Driver landmarks in pixels [68, 2] or [B, 68, 2] -> avatar landmarks, crop-normalised."""
        driver_px = check_landmarks(driver_px, "driver landmarks")
        if self.reference is None:
            self.set_reference(driver_px[0] if driver_px.ndim == 3 else driver_px)
        norm = to_normalised(driver_px, self.reference_crop)
        if self.mode == "absolute":
            return norm.astype(np.float32)
        return (self.source + (norm - self.reference) * self._scale).astype(np.float32)
