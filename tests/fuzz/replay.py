"""One input of each Python fuzz target, run as the fuzzer runs it: shared by tests/fuzz/fuzz_python.py
(atheris) and tests/sdk/test_fuzz_regressions.py (which replays tests/fuzz/crashes/). Each returns
normally when the reader reads the bytes or refuses them with its own error type; anything else
escapes, and is a bug. (The C++ targets are replay.h.)"""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

from talkinghead.avatar import Avatar, AvatarFileError
from talkinghead.crop import crop_from_landmarks, warp_to_crop
from talkinghead.errors import InputError, ModelPackageError
from talkinghead.manifest import validate_manifest
from talkinghead.package import parse_manifest_json, read_onnx_header_from


def manifest(data: bytes) -> None:
    try:
        validate_manifest(parse_manifest_json(data))
    except ModelPackageError:
        pass


def onnx_header(data: bytes) -> None:
    try:
        read_onnx_header_from(io.BytesIO(data), len(data), "fuzz.onnx")
    except ModelPackageError:
        pass


def avatar(data: bytes, scratch: Path) -> None:
    """The bytes as an avatar file at ``scratch`` (Avatar.load reads a path)."""
    scratch.write_bytes(data)
    try:
        Avatar.load(scratch).check()
    except AvatarFileError:
        pass


def shot(data: bytes) -> None:
    """fuzz_native.cpp's FUZZ_SHOT layout (replay.h), through the Python crop path."""
    if len(data) < 6 + 544:
        return
    w, h, _pad, res = struct.unpack_from("<HHBB", data)
    lm = np.frombuffer(data[6:6 + 544], np.float32).reshape(68, 2).astype(np.float64)
    image = np.zeros((max(h % 512, 1), max(w % 512, 1), 3), np.uint8)
    try:
        warp_to_crop(image, crop_from_landmarks(lm), 1 + res % 128)
    except InputError:
        pass
