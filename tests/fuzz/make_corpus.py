"""Write the fuzzers' seed corpus (tests/fuzz/corpus/<target>/): small valid inputs of each reader,
made here so that the seeds are ours and tiny. Re-run only when a format changes.

    python tests/fuzz/make_corpus.py
"""
from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def onnx_seed(role: str, opset: int = 17, graph_bytes: int = 40) -> bytes:
    """A ModelProto's top level: ir_version, a graph field of filler, opset_import, metadata_props."""
    opset_import = _field(1, b"") + _varint(2 << 3 | 0) + _varint(opset)
    meta = _field(1, b"talkinghead.role") + _field(2, role.encode())
    return (_varint(1 << 3 | 0) + _varint(8) + _field(7, b"\x0a" * graph_bytes) + _field(8, opset_import)
            + _field(14, meta))


def avatar_seed(references: int) -> bytes:
    meta = {"format": "talkinghead-avatar/2", "model": "talkinghead-warp", "embedding_dim": 8, "shots": 1}
    angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    face = (0.5 * np.stack([np.cos(angle), np.sin(angle)], 1)).astype(np.float32)
    arrays = {"identity": np.linspace(-1, 1, 8, dtype=np.float32), "landmarks": face,
              "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
              "image": np.full((12, 10, 3), 128, np.uint8), "crop": np.array([5.0, 6.0, 8.0])}
    if references:
        arrays["ref_images"] = np.zeros((references, 8, 8, 3), np.uint8)
        arrays["ref_landmarks"] = np.repeat(face[None], references, 0)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def shot_seed(w: int, h: int, pad: int, res: int) -> bytes:
    """fuzz_native.cpp's FUZZ_SHOT layout: a header, 68 landmarks in pixels, then the pixels."""
    angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    lm = np.stack([w / 2 + w / 4 * np.cos(angle), h / 2 + h / 4 * np.sin(angle)], 1).astype(np.float32)
    pixels = bytes(((x * 7) & 0xFF for x in range((w * 3 + pad) * h)))
    return struct.pack("<HHBB", w, h, pad, res) + lm.tobytes() + pixels


def main() -> None:
    seeds = {
        "manifest": {"bundled.json": (REPO / "sdk/talkinghead/models/default/manifest.json").read_bytes(),
                     "empty_object.json": b"{}", "v1_minimal.json": json.dumps({"schema_version": 1}).encode()},
        "onnx": {"generator.onnx": onnx_seed("generator"), "embedder.onnx": onnx_seed("embedder", 16)},
        "avatar": {"warp.npz": avatar_seed(2), "adain.npz": avatar_seed(0)},
        "shot": {"small.bin": shot_seed(16, 12, 0, 8), "padded.bin": shot_seed(20, 20, 5, 16)},
    }
    for target, files in seeds.items():
        folder = HERE / "corpus" / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        print(f"{folder.relative_to(REPO)}: {len(files)} seeds, {sum(map(len, files.values()))} bytes")


if __name__ == "__main__":
    main()
