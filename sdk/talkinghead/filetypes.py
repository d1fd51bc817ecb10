"""What a file is, from its bytes (never from its name), and whether it is whole (issue 18).

- :func:`sniff`: the type of a file from its first bytes.
- :func:`check_named_type`: the content matches what the file's extension claims.
- :func:`check_image_complete`: an image file ends where its format says it ends (a JPEG cut short
  decodes "successfully" with its bottom half filled in grey or green by FFmpeg).
- :func:`exif_orientation`: the EXIF orientation tag of a JPEG (1..8), read with bounds.
"""
from __future__ import annotations

import struct
from pathlib import Path

IMAGE_TYPES = ("jpeg", "png", "webp", "bmp", "gif", "tiff")
VIDEO_TYPES = ("mp4", "webm", "avi", "mpeg")

#: what a file's extension claims it is (extensions not listed claim nothing)
EXTENSION_TYPES = {
    ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg", ".png": "png", ".webp": "webp",
    ".bmp": "bmp", ".gif": "gif", ".tif": "tiff", ".tiff": "tiff",
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mp4", ".3gp": "mp4", ".webm": "webm", ".mkv": "webm",
    ".avi": "avi", ".mpg": "mpeg", ".mpeg": "mpeg",
}


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
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp":  # ISO base media: mp4, mov, m4v
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska / WebM (what browsers record)
        return "webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):  # MPEG-PS / MPEG-1
        return "mpeg"
    return None


def family(kind: str | None) -> str | None:
    """``"image"``, ``"video"`` or None for a sniffed type."""
    return "image" if kind in IMAGE_TYPES else "video" if kind in VIDEO_TYPES else None


def check_named_type(path: str | Path, kind: str | None) -> tuple[str | None, str | None]:
    """(error, warning) about ``path``'s extension against its sniffed ``kind``, each None when
    there is nothing to say.

    Files are decoded by their content, so a PNG named .jpg (common: four of the 100 photos in
    ../shared/data are) is read with a warning; an extension of the other family (a clip named
    .jpg, a photo named .mp4) is an error: the file is not what the user thinks it is.
    """
    claimed = EXTENSION_TYPES.get(Path(path).suffix.lower())
    if claimed is None or kind is None or claimed == kind:
        return None, None
    says = f"its name says {claimed.upper()} ({Path(path).suffix}) but its content is {kind.upper()}"
    if family(claimed) != family(kind):
        return f"{says}: it is {'a video' if family(kind) == 'video' else 'a still image'}, not " \
               f"{'a video' if family(claimed) == 'video' else 'an image'}", None
    return None, f"{says}; read as {kind.upper()}"


def check_image_complete(data: bytes, kind: str) -> str | None:
    """None when ``data`` (a whole file of type ``kind``) ends where its format says; otherwise why not."""
    if kind == "jpeg":
        # The image data ends with EOI (FF D9) after the last start-of-scan (FF DA). Inside the data
        # FF is always stuffed (FF 00), so an EOI found before the last SOS belongs to an EXIF thumbnail.
        sos = data.rfind(b"\xff\xda")
        if sos < 0:
            return "it has no image data (no start-of-scan marker)"
        if data.find(b"\xff\xd9", sos) < 0:
            return "it is truncated (the JPEG's end-of-image marker is missing)"
    elif kind == "png":
        if data.rfind(b"IEND") < 8:
            return "it is truncated (the PNG's IEND chunk is missing)"
    elif kind == "webp":
        declared = struct.unpack_from("<I", data, 4)[0] + 8 if len(data) >= 12 else None
        if declared is None or declared > len(data):
            return f"it is truncated ({len(data)} of the {declared} bytes its RIFF header declares)"
    elif kind == "bmp":
        declared = struct.unpack_from("<I", data, 2)[0] if len(data) >= 6 else None
        offset = struct.unpack_from("<I", data, 10)[0] if len(data) >= 14 else None
        if declared is None or offset is None or offset >= len(data) or declared > len(data):
            return f"it is truncated ({len(data)} of the {declared} bytes its header declares)"
    elif kind == "gif":
        if not data.rstrip(b"\x00").endswith(b"\x3b"):
            return "it is truncated (the GIF's trailer is missing)"
    return None


def json_depth(data: bytes) -> int:
    """How deep JSON text nests (brackets counted outside strings), read before a parser sees it:
    Python's json module recurses, so 10^5 "[" would exhaust its stack."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            escaped, in_string = (False, True) if escaped else (byte == 0x5C, byte != 0x22)
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1..8; 1 = as stored) of JPEG bytes, 1 when absent or unreadable.

    Walks the JPEG's header segments to APP1 "Exif", then IFD0 of its TIFF block for tag 0x0112;
    every offset is bounds-checked (a corrupt block means "as stored").
    """
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xDA, 0xD9):  # image data: no more header segments
            break
        length = struct.unpack_from(">H", data, pos + 2)[0]
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xE1 and segment[:6] == b"Exif\x00\x00":
            return _tiff_orientation(segment[6:])
        pos += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    e = "<" if tiff[:2] == b"II" else ">"
    ifd = struct.unpack_from(e + "I", tiff, 4)[0]
    if ifd + 2 > len(tiff):
        return 1
    count = struct.unpack_from(e + "H", tiff, ifd)[0]
    for i in range(min(count, 512)):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(tiff):
            break
        tag, typ = struct.unpack_from(e + "HH", tiff, entry)
        if tag == 0x0112 and typ == 3:  # SHORT
            value = struct.unpack_from(e + "H", tiff, entry + 8)[0]
            return value if 1 <= value <= 8 else 1
    return 1
