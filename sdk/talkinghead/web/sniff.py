"""What an uploaded file is, from its first bytes (never from its name or the client's type)."""
from __future__ import annotations

IMAGE_TYPES = ("jpeg", "png", "webp", "bmp")
VIDEO_TYPES = ("mp4", "webm", "avi", "mpeg")


def sniff(head: bytes) -> str | None:
    """The file type of ``head`` (the file's first 32 bytes or more), or None when unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[4:8] == b"ftyp":  # ISO base media: mp4, mov, m4v
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska / WebM (what browsers record)
        return "webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):  # MPEG-PS / MPEG-1
        return "mpeg"
    return None
