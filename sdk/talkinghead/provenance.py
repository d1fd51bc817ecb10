"""Provenance of what the SDK writes: container tags that say the file is synthetic, and
``talkinghead verify``'s check of a file (the invisible watermark, talkinghead.watermark, and the tags).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .errors import TalkingHeadError, VideoError

PREFIX = "talkinghead_"
MAX_VERIFY_FRAMES = 150  # frames of a video folded together (evenly from its start)


def tags(model) -> dict[str, str]:
    """Container tags for a file written with ``model``: synthetic, the tool, the model's name,
    version and generator hash."""
    pkg = model.package
    sha = pkg.manifest.graphs["generator"].sha256 if "generator" in pkg.manifest.graphs else ""
    return {
        "comment": f"Synthetic video made by talkinghead {__version__} (model {pkg.name} {pkg.version})",
        f"{PREFIX}synthetic": "true",
        f"{PREFIX}tool": f"talkinghead {__version__}",
        f"{PREFIX}model": pkg.name,
        f"{PREFIX}model_version": pkg.version,
        f"{PREFIX}model_sha256": sha,
        f"{PREFIX}watermark": "on" if getattr(model, "marker", None) is not None else "off",
    }


@dataclass
class Verdict:
    """What ``talkinghead verify`` found in one file."""

    path: str
    found: bool = False
    confidence: float = 0.0
    model_id: int | None = None
    frames: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    synthetic_tag: bool = False
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def verify(path: str | os.PathLike, max_frames: int = MAX_VERIFY_FRAMES) -> Verdict:
    """Look for the watermark in an image or video file (its first ``max_frames`` frames folded
    together) and read its container tags. Errors (missing, truncated, not media) go in ``error``."""
    import av

    from .watermark import detect

    p = Path(path)
    v = Verdict(str(p))
    if not p.is_file():
        v.error = f"{p}: no such file"
        return v
    frames = []
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise VideoError(f"{p}: no picture stream (not an image or a video)")
            v.metadata = {str(k): str(val) for k, val in container.metadata.items()}
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= max_frames:
                    break
    except TalkingHeadError as exc:
        v.error = str(exc)
        return v
    except (av.FFmpegError, OSError, ValueError) as exc:
        v.error = f"{p}: not a readable image or video ({exc})"
        return v
    if not frames:
        v.error = f"{p}: no frame could be decoded (truncated?)"
        return v
    d = detect(frames)
    v.found, v.confidence, v.model_id, v.frames = d.found, round(d.confidence, 2), d.model_id if d.found else None, len(frames)
    v.synthetic_tag = v.metadata.get(f"{PREFIX}synthetic") == "true"
    return v
