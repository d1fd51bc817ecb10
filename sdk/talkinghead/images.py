"""Reading still images (via PyAV/FFmpeg, no Pillow needed) and validating image arrays."""
from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import numpy as np

from .errors import ImageReadError, InputError
from .filetypes import IMAGE_TYPES, check_image_complete, check_named_type, exif_orientation, sniff
from .limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS

__all__ = ["read_image", "decode_image_bytes", "as_rgb_array"]

log = logging.getLogger("talkinghead")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a still image file (JPEG, PNG, WebP, BMP, GIF, TIFF) as RGB, upright.

    The file is checked before it is decoded: its content must be an image (a clip is refused,
    whatever its name; another image type than its extension says is read, with a warning), be whole (a JPEG cut short is refused, not decoded with a filled-in
    bottom), and hold at most ``MAX_IMAGE_PIXELS`` pixels in at most ``MAX_IMAGE_BYTES`` bytes.
    Grey, palette and RGBA files become RGB (alpha dropped); a JPEG's EXIF orientation is applied.
    Returns ``uint8 [H, W, 3]``, C-contiguous.

    Raises:
        ImageReadError: the file is missing, unreadable, not a (whole) image, or too large; the
            message names it and the problem.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    size = p.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise ImageReadError(f"{p}: {size / 2**20:.0f} MiB is larger than an image may be ({MAX_IMAGE_BYTES >> 20} MiB)")
    data = p.read_bytes()
    error, warning = check_named_type(p, sniff(data[:64]))
    if error:
        raise ImageReadError(f"{p}: {error}")
    if warning:
        log.warning("%s: %s", p, warning)
    return decode_image_bytes(data, str(p))


def decode_image_bytes(data: bytes, label: str) -> np.ndarray:
    """The picture in image file bytes as upright RGB uint8 [H, W, 3]; ImageReadError naming
    ``label`` when they are not one whole image of an allowed size (see :func:`read_image`)."""
    import av  # core dependency; imported here to keep `import talkinghead` light

    kind = sniff(data[:64])
    if kind not in IMAGE_TYPES:
        what = f"a video ({kind.upper()}), not an image" if kind else "not an image file (unknown content)"
        raise ImageReadError(f"{label}: {what}; give a JPEG, PNG, WebP, BMP, GIF or TIFF photo")
    problem = check_image_complete(data, kind)
    if problem:
        raise ImageReadError(f"{label}: {problem}")
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.video:
                raise ImageReadError(f"{label}: not an image (no picture stream)")
            ctx = container.streams.video[0].codec_context
            if ctx.width * ctx.height > MAX_IMAGE_PIXELS:
                raise ImageReadError(f"{label}: {ctx.width}x{ctx.height} is more pixels than an image may have "
                                     f"({MAX_IMAGE_PIXELS / 1e6:.0f} MP); scale it down")
            for frame in container.decode(container.streams.video[0]):
                rgb = frame.to_ndarray(format="rgb24")
                break
            else:
                raise ImageReadError(f"{label}: not a readable image (no picture could be decoded)")
    except ImageReadError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ImageReadError(f"{label}: not a readable image ({exc})") from exc
    if kind == "jpeg":
        rgb = upright(rgb, exif_orientation(data))
    return np.ascontiguousarray(rgb)


def upright(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to a stored picture: the picture as it is meant to be seen."""
    ops = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
           8: lambda a: np.rot90(a, 1)}
    return ops.get(orientation, ops[1])(rgb)


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
