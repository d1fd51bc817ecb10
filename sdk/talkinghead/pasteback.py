"""Paste a rendered crop back into the source image with a feathered mask."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .crop import Crop, sample_from_crop
from .errors import InputError

#: The SDK's feather: the mask falls to 0 over this share of the crop's side at its border.
DEFAULT_FEATHER = 0.12


def check_feather(feather: float) -> None:
    """InputError unless ``feather`` is a finite number in [0, 0.5]."""
    try:
        value = float(feather)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 0.5):
        raise InputError(f"feather must be a finite number in [0, 0.5], got {feather!r}")


@lru_cache(maxsize=8)
def feather_mask(resolution: int, feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """[R, R, 1] float32: 1 inside, falling smoothly to 0 over ``feather`` of the side at the border."""
    t = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution
    edge = np.minimum(t, 1 - t) / max(feather, 1e-6)
    ramp = np.clip(edge, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    return (ramp[:, None] * ramp[None, :])[..., None].astype(np.float32)


def paste_back(frame: np.ndarray, crop_image: np.ndarray, crop: Crop, feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """A copy of ``frame`` with ``crop_image`` (the model's output for ``crop``) blended in.

    The frame pixels whose centres lie in the crop square get ``frame + (crop - frame) * alpha``
    (rounded half up), with ``crop`` and ``alpha`` (the feather mask) sampled as
    :func:`talkinghead.crop.sample_from_crop` samples. The C ABI's ``th_paste_back`` is the same rule.
    """
    check_feather(feather)
    h, w = frame.shape[:2]
    r = crop_image.shape[0]
    c = crop if isinstance(crop, Crop) else Crop.from_array(crop)
    # Sampling is per channel, so the colour and the mask sample apart; the mask depends only on the
    # geometry, which a still background repeats every frame (live and animate paste onto one image).
    alpha = _sampled_alpha(r, float(feather), c.cx, c.cy, c.size, h, w)
    patch, (x0, y0, x1, y1) = sample_from_crop(crop_image, c, h, w)
    out = frame.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    region = out[y0:y1, x0:x1]
    blend = region.astype(np.float32)
    patch -= blend
    patch *= alpha
    blend += patch
    blend += 0.5
    np.clip(blend, 0, 255, out=blend)
    region[...] = blend  # float -> uint8 truncates: with the + 0.5, rounding half up
    return out


@lru_cache(maxsize=8)
def _sampled_alpha(resolution: int, feather: float, cx: float, cy: float, size: float, height: int,
                   width: int) -> np.ndarray:
    """The feather mask sampled at the frame pixels the crop covers, in [0, 1]: [H', W', 1] float32."""
    # Sampled in levels and scaled back, as the mask was when it rode along as a 4th channel: the same
    # float32 rounding, so the frames stay bit-identical to the rule th_paste_back shares.
    patch, _ = sample_from_crop(feather_mask(resolution, feather) * 255.0, Crop(cx, cy, size), height, width)
    patch /= 255.0
    patch.setflags(write=False)
    return patch
