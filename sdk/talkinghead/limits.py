"""The bounds every input is checked against before any large allocation (issue 18).

One place per language: this module in Python, ``bindings/src/limits.h`` in the C++ core; the
shared numbers are checked equal by tests/bindings/test_native.py. Each bound is far above what a
real face, photo or clip needs and low enough that a wrong value fails at once with an error that
names it, instead of exhausting memory or rendering a silently wrong frame.
"""
from __future__ import annotations

import os
import warnings

from .errors import InputError

#: Shots an avatar is made from, and reference shots a warp avatar or a manifest's cap may keep.
MAX_SHOTS = 32
#: |x|, |y| of landmarks in pixels: float32 keeps 1/16 px there; beyond, points lose their shape.
MAX_PIXEL_COORD = 1.0e6
#: |u|, |v| of the crop-normalised landmarks the generator gets: the crop spans [-1, 1]; a face whose
#: points reach 4 crop half-widths away is off the picture (a tracker glitch or wrong coordinates).
MAX_NORMALISED = 4.0
#: A face smaller than this (its landmarks' larger extent, crop-normalised) is degenerate.
MIN_FACE_SIZE = 1.0e-3
#: A crop at most this many times the image's larger side, and overlapping it: a larger one means
#: landmarks that are not this photo's (and its box prefilter would cost crop-size^2 work).
MAX_CROP_TO_IMAGE = 8.0
#: Frames one ``render`` call returns (its output alone is frames x R x R x 3 bytes).
MAX_RENDER_FRAMES = 4096
#: Frames per generator run inside ``render``/``animate``: bounds the graph's working memory
#: (~27 MB per frame for the warp generator at 256 px).
RENDER_CHUNK = 8
#: Frames per generator call a caller may ask for (``batch_size``, ``--batch``).
MAX_BATCH = 64
#: Pixels of a still image (64 MP) and of a video frame (8K UHD), read from the header before decoding.
MAX_IMAGE_PIXELS = 8192 * 8192
MAX_VIDEO_PIXELS = 7680 * 4320
#: Bytes of a still image file and of an avatar file, and of an avatar's arrays once expanded.
MAX_IMAGE_BYTES = 256 << 20
MAX_AVATAR_BYTES = 256 << 20
MAX_AVATAR_EXPANDED_BYTES = 1 << 30


def cores_if_over(requested: int) -> int | None:
    """This machine's CPU count when ``requested`` threads exceed it, else None (the one rule)."""
    cores = os.cpu_count() or 1
    return cores if requested > cores else None


def clamp_threads(requested: int, what: str = "intra_op_threads") -> int:
    """``requested`` threads (0: the runtime's default), lowered to the CPU count with a warning.

    More threads than cores only make ONNX Runtime slower (and 10^5 of them take minutes to start).
    Raises InputError for negative or non-integer counts.
    """
    if isinstance(requested, bool) or not isinstance(requested, int):
        raise InputError(f"{what} must be an integer, got {requested!r}")
    if requested < 0:
        raise InputError(f"{what} must be >= 0 (0: all cores), got {requested}")
    cores = cores_if_over(requested)
    if cores is not None:
        warnings.warn(f"{what}={requested} is more than this machine's {cores} CPU core(s); using {cores}",
                      RuntimeWarning, stacklevel=3)
        return cores
    return requested
