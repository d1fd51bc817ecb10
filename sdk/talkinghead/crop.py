"""The crop rule, pixel <-> crop-normalised coordinates, crop warps and the iBUG flip.

One implementation for training and inference (see docs/architecture.md, "Landmarks and
coordinates" and "The crop rule"). Numpy only.

Conventions:

- Pixel coordinates: x right, y down, pixel centres at integer coordinates (pixel (0, 0) covers
  [-0.5, 0.5]^2).
- A crop is a square (cx, cy, size) in source pixels. Crop-normalised coordinates are
  ``u = (x - cx) / (size / 2)``, ``v = (y - cy) / (size / 2)``; the crop spans [-1, 1]^2.
- An R x R crop image samples the crop on the pixel-centre grid: column j is at
  ``u = (2j + 1) / R - 1`` (``align_corners=False``), rows alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np

from .errors import InputError
from .limits import MAX_CROP_TO_IMAGE

__all__ = [
    "CropConfig",
    "Crop",
    "CropLike",
    "IBUG_FLIP_PERMUTATION",
    "crop_from_landmarks",
    "crops_from_landmarks",
    "to_normalised",
    "to_pixels",
    "warp_to_crop",
    "resize_image",
    "paste_box",
    "sample_from_crop",
    "flip_landmarks",
]

NUM_LANDMARKS = 68


@dataclass(frozen=True)
class CropConfig:
    """How a square face crop is derived from 68 landmarks.

    Attributes:
        scale: crop side as a multiple of the larger side of the landmarks' bounding box.
        offset_y: vertical shift of the centre as a fraction of the crop side (negative: up, to
            keep the forehead).
    """

    scale: float = 1.7
    offset_y: float = -0.1

    def validate(self) -> "CropConfig":
        """Raise :class:`InputError` unless the values are usable; return self."""
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale)
                and self.scale > 0):
            raise InputError(f"CropConfig.scale must be a finite number > 0, got {self.scale!r}")
        if not (isinstance(self.offset_y, (int, float)) and math.isfinite(self.offset_y)
                and abs(self.offset_y) < 1):
            raise InputError(
                f"CropConfig.offset_y must be a finite number in (-1, 1), got {self.offset_y!r}")
        return self

    def to_dict(self) -> dict:
        """The config as plain JSON-able values (as stored in manifests and meta.json)."""
        return {"scale": float(self.scale), "offset_y": float(self.offset_y)}

    def __str__(self) -> str:
        return f"CropConfig(scale={self.scale:g}, offset_y={self.offset_y:+g})"


@dataclass(frozen=True)
class Crop:
    """A square crop in source pixels: centre (cx, cy) and side ``size``."""

    cx: float
    cy: float
    size: float

    def as_array(self) -> np.ndarray:
        """``float32 [3]``: (cx, cy, size)."""
        return np.array([self.cx, self.cy, self.size], dtype=np.float32)

    @classmethod
    def from_array(cls, values: np.ndarray) -> "Crop":
        """Build from a length-3 sequence (cx, cy, size)."""
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.shape != (3,):
            raise InputError(f"a crop is (cx, cy, size), got shape {np.shape(values)}")
        return cls(float(v[0]), float(v[1]), float(v[2]))

    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) edges of the crop square in pixel coordinates."""
        h = self.size / 2
        return (self.cx - h, self.cy - h, self.cx + h, self.cy + h)


CropLike = Union[Crop, np.ndarray]

# iBUG 300-W 68-point horizontal flip: point i of the mirrored face is point P[i] of the original.
IBUG_FLIP_PERMUTATION: np.ndarray = np.array(
    list(range(16, -1, -1))                     # jaw 0..16
    + list(range(26, 16, -1))                   # brows 17..26
    + [27, 28, 29, 30]                          # nose bridge
    + [35, 34, 33, 32, 31]                      # nose bottom
    + [45, 44, 43, 42, 47, 46]                  # right eye <- left eye
    + [39, 38, 37, 36, 41, 40]                  # left eye <- right eye
    + [54, 53, 52, 51, 50, 49, 48]              # outer lip, top
    + [59, 58, 57, 56, 55]                      # outer lip, bottom
    + [64, 63, 62, 61, 60]                      # inner lip, top
    + [67, 66, 65],                             # inner lip, bottom
    dtype=np.int64,
)
IBUG_FLIP_PERMUTATION.setflags(write=False)


def _check_points(points: np.ndarray, name: str = "landmarks") -> np.ndarray:
    p = np.asarray(points)
    if p.ndim < 2 or p.shape[-2:] != (NUM_LANDMARKS, 2):
        raise InputError(f"{name} must have shape [..., 68, 2], got {p.shape}")
    if not np.issubdtype(p.dtype, np.floating) and not np.issubdtype(p.dtype, np.integer):
        raise InputError(f"{name} must be numeric, got dtype {p.dtype}")
    if not np.all(np.isfinite(p)):
        raise InputError(f"{name} contain NaN or infinite values")
    return p


def crops_from_landmarks(landmarks: np.ndarray, config: CropConfig | None = None) -> np.ndarray:
    """The crop rule, batched: ``[..., 68, 2]`` pixel landmarks -> ``float32 [..., 3]`` crops.

    ``centre = (min + max) / 2``, ``size = scale * max(max - min)``, ``cy += offset_y * size``.
    """
    cfg = (config or CropConfig()).validate()
    p = _check_points(landmarks).astype(np.float64, copy=False)
    lo, hi = p.min(axis=-2), p.max(axis=-2)
    centre = (lo + hi) / 2
    size = cfg.scale * (hi - lo).max(axis=-1)
    if np.any(size <= 0):
        raise InputError("landmarks are degenerate (all points coincide): cannot derive a crop")
    cy = centre[..., 1] + cfg.offset_y * size
    return np.stack([centre[..., 0], cy, size], axis=-1).astype(np.float32)


def crop_from_landmarks(landmarks: np.ndarray, config: CropConfig | None = None) -> Crop:
    """The crop rule for one face: ``[68, 2]`` pixel landmarks -> :class:`Crop`."""
    p = np.asarray(landmarks)
    if p.shape != (NUM_LANDMARKS, 2):
        raise InputError(f"landmarks of one face must have shape [68, 2], got {p.shape}")
    # Computed in float64 and kept so (not rounded through float32).
    cfg = (config or CropConfig()).validate()
    p = _check_points(p).astype(np.float64)
    lo, hi = p.min(axis=0), p.max(axis=0)
    size = cfg.scale * float((hi - lo).max())
    if size <= 0:
        raise InputError("landmarks are degenerate (all points coincide): cannot derive a crop")
    c = (lo + hi) / 2
    return Crop(float(c[0]), float(c[1] + cfg.offset_y * size), size)


def _crop_params(crop: CropLike) -> tuple[np.ndarray, np.ndarray]:
    """Centre ``[..., 1, 2]`` and half-size ``[..., 1, 1]`` ready to broadcast over points."""
    if isinstance(crop, Crop):
        c = np.array([crop.cx, crop.cy, crop.size], dtype=np.float64)
    else:
        c = np.asarray(crop, dtype=np.float64)
    if c.ndim < 1 or c.shape[-1] != 3:
        raise InputError(f"crops must have shape [..., 3] (cx, cy, size), got {c.shape}")
    if np.any(~np.isfinite(c)) or np.any(c[..., 2] <= 0):
        raise InputError("crops must be finite with size > 0")
    return c[..., None, 0:2], c[..., None, 2:3] / 2


def to_normalised(points_px: np.ndarray, crop: CropLike) -> np.ndarray:
    """Pixel points ``[..., 68, 2]`` -> crop-normalised ``float32 [..., 68, 2]``.

    ``crop`` is a :class:`Crop` or an array ``[..., 3]`` that broadcasts against the points'
    leading dimensions (one crop per face).
    """
    p = _check_points(points_px, "points")
    centre, half = _crop_params(crop)
    return ((p - centre) / half).astype(np.float32)


def to_pixels(points_norm: np.ndarray, crop: CropLike) -> np.ndarray:
    """Crop-normalised points ``[..., 68, 2]`` -> pixel ``float32 [..., 68, 2]`` (inverse of
    :func:`to_normalised`)."""
    p = _check_points(points_norm, "points")
    centre, half = _crop_params(crop)
    return (p * half + centre).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------

def _axis_taps(coords: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps along one axis with edge padding: indices i0, i1 and weight of i1."""
    f = np.floor(coords)
    w = (coords - f).astype(np.float32)
    i0 = f.astype(np.int64)
    i1 = i0 + 1
    np.clip(i0, 0, n - 1, out=i0)
    np.clip(i1, 0, n - 1, out=i1)
    return i0, i1, w


def _sample_separable(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image [H, W, C]`` at the grid ``ys x xs`` (edge padding).

    Returns float32 ``[len(ys), len(xs), C]``. Separable: rows are blended first, over only the
    columns the grid touches.
    """
    h, w = image.shape[:2]
    x0, x1, wx = _axis_taps(xs, w)
    y0, y1, wy = _axis_taps(ys, h)
    lo = int(min(x0.min(), x1.min()))
    hi = int(max(x0.max(), x1.max())) + 1
    band = image[:, lo:hi]
    rows = band[y0].astype(np.float32)  # in place from here: this runs per frame (paste-back)
    step = band[y1].astype(np.float32)
    step -= rows
    step *= wy[:, None, None]
    rows += step
    out = np.take(rows, x0 - lo, axis=1)
    step = np.take(rows, x1 - lo, axis=1)
    step -= out
    step *= wx[None, :, None]
    out += step
    return out


def _box_reduce(image: np.ndarray, k: int, bx0: int, bx1: int, by0: int, by1: int) -> np.ndarray:
    """Mean of k x k pixel blocks (blocks aligned to the image origin; edge padding past the
    border) for block columns [bx0, bx1) and block rows [by0, by1). float32."""
    h, w = image.shape[:2]
    if by1 * k <= h:
        region = image[by0 * k:by1 * k]
    else:
        region = np.take(image, np.arange(by0 * k, by1 * k), axis=0, mode="clip")
    if bx1 * k <= w:
        region = region[:, bx0 * k:bx1 * k]
    else:
        region = np.take(region, np.arange(bx0 * k, bx1 * k), axis=1, mode="clip")
    # Strided partial sums: much faster than a reshape + sum over the block axes.
    acc_t = np.uint16 if region.dtype == np.uint8 and k <= 15 else np.float32
    rows = region[0::k].astype(acc_t)
    for i in range(1, k):
        rows += region[i::k]
    cols = rows[:, 0::k].copy()
    for i in range(1, k):
        cols += rows[:, i::k]
    out = cols.astype(np.float32)
    out *= 1.0 / (k * k)
    return out


def _sample_grid(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, step: float) -> np.ndarray:
    """Bilinear sampling at ``ys x xs`` with a box prefilter when the grid ``step`` (source pixels
    per output pixel) exceeds 2: blocks of ``k = floor(step)`` pixels are averaged first."""
    if step <= 2.0:
        return _sample_separable(image, xs, ys)
    k = int(math.floor(step))
    h, w = image.shape[:2]
    # Block b covers source pixels [b*k, b*k + k - 1]; its centre is at b*k + (k - 1) / 2.
    bxs = (xs - (k - 1) / 2) / k
    bys = (ys - (k - 1) / 2) / k
    nbx, nby = -(-w // k), -(-h // k)
    bx0 = max(0, min(int(math.floor(bxs.min())), nbx - 1))
    bx1 = max(bx0 + 1, min(int(math.floor(bxs.max())) + 2, nbx))
    by0 = max(0, min(int(math.floor(bys.min())), nby - 1))
    by1 = max(by0 + 1, min(int(math.floor(bys.max())) + 2, nby))
    reduced = _box_reduce(image, k, bx0, bx1, by0, by1)
    return _sample_separable(reduced, bxs - bx0, bys - by0)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape, dtype=np.uint8)
    np.rint(x, out=x)
    np.clip(x, 0, 255, out=x)
    out[...] = x
    return out


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0 or img.shape[2] == 0:
        raise InputError(f"image must have shape [H, W, C] with H, W, C > 0, got {img.shape}")
    return img


def check_crop_on_image(crop: Crop, width: int, height: int) -> None:
    """InputError unless ``crop`` overlaps the ``width`` x ``height`` image and is at most
    ``MAX_CROP_TO_IMAGE`` times its larger side (else the landmarks are not this image's)."""
    x0, y0, x1, y1 = crop.box()
    if crop.size > MAX_CROP_TO_IMAGE * max(width, height):
        raise InputError(f"the face's crop ({crop.size:.0f} px) is more than {MAX_CROP_TO_IMAGE:g}x this "
                         f"{width}x{height} image's larger side: are the landmarks this image's?")
    if x1 <= -0.5 or y1 <= -0.5 or x0 >= width - 0.5 or y0 >= height - 0.5:  # pixels span [-0.5, w - 0.5]
        raise InputError(f"the face's crop {crop} lies outside this {width}x{height} image: are the landmarks "
                         "this image's?")


def warp_to_crop(image: np.ndarray, crop: CropLike, resolution: int) -> np.ndarray:
    """Sample ``crop`` of ``image`` (``uint8 [H, W, C]``) into a ``uint8 [R, R, C]`` crop image.

    Bilinear on the pixel-centre grid, edge padding outside the image, and a box prefilter
    (k x k block means, ``k = floor(size / R)``) when the crop is more than 2x larger than the
    output.
    """
    img = _check_image(image)
    c = crop if isinstance(crop, Crop) else Crop.from_array(crop)
    r = int(resolution)
    if r <= 0:
        raise InputError(f"resolution must be > 0, got {resolution}")
    if not (math.isfinite(c.size) and c.size > 0 and math.isfinite(c.cx) and math.isfinite(c.cy)):
        raise InputError(f"crop must be finite with size > 0, got {c}")
    check_crop_on_image(c, img.shape[1], img.shape[0])
    step = c.size / r
    grid = (np.arange(r, dtype=np.float64) + 0.5) * step - c.size / 2
    out = _sample_grid(img, c.cx + grid, c.cy + grid, step)
    return _to_uint8(out) if img.dtype == np.uint8 else out.astype(img.dtype)


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``image [H, W, C]`` to ``[height, width, C]`` (pixel-centre grid, bilinear, box
    prefilter beyond 2x downscaling). Keeps uint8 as uint8."""
    img = _check_image(image)
    h, w = img.shape[:2]
    if height <= 0 or width <= 0:
        raise InputError(f"target size must be > 0, got {height}x{width}")
    sy, sx = h / height, w / width
    xs = (np.arange(width, dtype=np.float64) + 0.5) * sx - 0.5
    ys = (np.arange(height, dtype=np.float64) + 0.5) * sy - 0.5
    # Prefilter by the smaller factor of the two axes: never blur more than needed.
    out = _sample_grid(img, xs, ys, min(sx, sy))
    return _to_uint8(out) if img.dtype == np.uint8 else out.astype(img.dtype)


def paste_box(crop: CropLike, frame_height: int, frame_width: int) -> tuple[int, int, int, int]:
    """Frame pixels ``[y0, y1) x [x0, x1)`` whose centres lie inside the crop square, clipped to
    the frame. Empty (x0 == x1 or y0 == y1) when the crop lies outside the frame."""
    c = crop if isinstance(crop, Crop) else Crop.from_array(crop)
    bx0, by0, bx1, by1 = c.box()
    x0 = min(max(int(math.ceil(bx0)), 0), frame_width)
    y0 = min(max(int(math.ceil(by0)), 0), frame_height)
    x1 = max(min(int(math.ceil(bx1)), frame_width), x0)
    y1 = max(min(int(math.ceil(by1)), frame_height), y0)
    return x0, y0, x1, y1


def sample_from_crop(crop_image: np.ndarray, crop: CropLike, frame_height: int,
                     frame_width: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The inverse warp used by paste-back: sample an ``[R, R, C]`` crop image at the frame pixels
    the crop covers.

    Returns ``(patch, (x0, y0, x1, y1))`` where ``patch`` is float32 ``[y1 - y0, x1 - x0, C]`` and
    the box is :func:`paste_box`. Frame pixel x maps to crop column
    ``j = ((x - cx) / (size / 2) + 1) * R / 2 - 0.5``; bilinear, edge padding, box prefilter when
    the crop image is more than 2x larger than its footprint in the frame.
    """
    img = _check_image(crop_image)
    if img.shape[0] != img.shape[1]:
        raise InputError(f"crop image must be square, got {img.shape[:2]}")
    c = crop if isinstance(crop, Crop) else Crop.from_array(crop)
    r = img.shape[0]
    x0, y0, x1, y1 = paste_box(c, frame_height, frame_width)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((y1 - y0, x1 - x0, img.shape[2]), np.float32), (x0, y0, x1, y1)
    per_px = r / c.size
    xs = (np.arange(x0, x1, dtype=np.float64) - c.cx) * per_px + r / 2 - 0.5
    ys = (np.arange(y0, y1, dtype=np.float64) - c.cy) * per_px + r / 2 - 0.5
    return _sample_grid(img, xs, ys, per_px), (x0, y0, x1, y1)


def flip_landmarks(points: np.ndarray, width: float | None = None) -> np.ndarray:
    """Mirror landmarks ``[..., 68, 2]`` horizontally and reorder them with
    :data:`IBUG_FLIP_PERMUTATION` so they describe the mirrored face.

    ``width=None``: crop-normalised coordinates (``u -> -u``). A pixel width W: pixel coordinates
    of an image W pixels wide (``x -> W - 1 - x``, pixel centres at integers).
    """
    p = _check_points(points, "points").astype(np.float32)
    out = p[..., IBUG_FLIP_PERMUTATION, :].copy()
    out[..., 0] = -out[..., 0] if width is None else (float(width) - 1.0) - out[..., 0]
    return out
