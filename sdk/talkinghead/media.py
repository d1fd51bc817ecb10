"""Still images in memory through PyAV (no Pillow): encode RGB arrays to PNG/JPEG bytes, decode
image bytes, and read an image or clip's size from its header before decoding it."""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np

from .errors import ImageReadError
from .images import decode_image_bytes


def encode_image(rgb: np.ndarray, codec: str = "png", quality: int = 4) -> bytes:
    """RGB uint8 [H, W, 3] -> PNG (``codec="png"``) or JPEG (``"mjpeg"``; ``quality`` is FFmpeg's
    qscale, 2 best .. 31 worst) bytes."""
    import av

    h, w = rgb.shape[:2]
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = w, h
    ctx.time_base = Fraction(1, 25)
    if codec == "png":
        ctx.pix_fmt = "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    else:
        ctx.pix_fmt = "yuvj420p"
        ctx.flags = ctx.flags | av.codec.context.Flags.qscale  # constant quality: global_quality = q * FF_QP2LAMBDA
        ctx.global_quality = int(quality) * 118
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuvj420p")
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    return b"".join(bytes(p) for p in packets)


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Image file bytes (JPEG, PNG, WebP, BMP, GIF, TIFF) -> RGB uint8 [H, W, 3]; ImageReadError when
    they are not a whole, decodable picture (talkinghead.images.decode_image_bytes)."""
    return decode_image_bytes(data, name)


def picture_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image or clip from its header, without decoding a frame."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ImageReadError(f"{path}: no picture stream")
            ctx = container.streams.video[0].codec_context
            return int(ctx.width), int(ctx.height)
    except ImageReadError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: not a readable image or video ({exc})") from None
