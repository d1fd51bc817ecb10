"""Reading still images (via PyAV/FFmpeg, no Pillow needed) and validating image arrays."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ImageReadError, InputError

__all__ = ["read_image", "as_rgb_array"]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a still image file (png, jpg, bmp, webp, ... anything FFmpeg decodes) as RGB.

    Grey, palette and RGBA files are converted to RGB (alpha is dropped). EXIF orientation is not
    applied. Returns ``uint8 [H, W, 3]``, C-contiguous.

    Raises:
        ImageReadError: the file is missing, unreadable or not an image; the message names it.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    return decode_first_picture(str(p), str(p))


def decode_first_picture(source, label: str) -> np.ndarray:
    """The first picture of ``source`` (a path, or a file-like object of image bytes) as RGB uint8
    [H, W, 3]; ImageReadError naming ``label`` when it holds none."""
    import av  # core dependency; imported here to keep `import talkinghead` light

    try:
        with av.open(source) as container:
            if not container.streams.video:
                raise ImageReadError(f"{label}: not an image (no picture stream)")
            for frame in container.decode(container.streams.video[0]):
                return np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
    except ImageReadError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ImageReadError(f"{label}: not a readable image ({exc})") from exc
    raise ImageReadError(f"{label}: not a readable image (no picture could be decoded)")


def as_rgb_array(image: object, name: str = "image") -> np.ndarray:
    """Validate an image array: ``uint8 [H, W, 3]`` RGB, returned C-contiguous (copied only when
    it is not already).

    Raises:
        InputError: naming the wrong type, shape or dtype and how to convert.
    """
    if not isinstance(image, np.ndarray):
        raise InputError(
            f"{name} must be a numpy array uint8 [H, W, 3] (RGB), got {type(image).__name__}; "
            "to read a file use talkinghead.images.read_image(path)")
    shape = image.shape
    if image.size == 0:
        raise InputError(f"{name} is empty (shape {shape}); expected uint8 [H, W, 3] RGB")
    if image.ndim == 2 or (image.ndim == 3 and shape[2] == 1):
        raise InputError(
            f"{name} is a grey image of shape {shape}; expected uint8 [H, W, 3] RGB. Convert "
            "with np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)")
    if image.ndim == 3 and shape[2] == 4:
        raise InputError(
            f"{name} has 4 channels (RGBA?), shape {shape}; expected uint8 [H, W, 3] RGB. Drop "
            "the alpha channel with img[..., :3] (or composite it over a background first)")
    if image.ndim != 3 or shape[2] != 3:
        raise InputError(f"{name} must have shape [H, W, 3] (RGB), got {shape}")
    if image.dtype != np.uint8:
        hint = (" Floats in [0, 1]: (img * 255).round().clip(0, 255).astype(np.uint8)."
                if np.issubdtype(image.dtype, np.floating) else
                " Convert with img.clip(0, 255).astype(np.uint8).")
        raise InputError(f"{name} must have dtype uint8, got {image.dtype}.{hint}")
    return np.ascontiguousarray(image)
