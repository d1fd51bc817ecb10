"""Shrink prepared datasets into one file small enough to carry to a GPU machine.

``python -m training.compact_data prepared/driving prepared/faces --out data.tar [--budget-mib 40]``

The prepared data (``training.prepare``) is ~340 MB of JPEG quality-95 frames; a lent GPU machine
takes 64 MiB per call and has neither dlib nor PyAV to prepare clips itself. This keeps every video
and photo, takes every ``stride``-th frame of each video (chosen so the estimate fits the budget;
talking-head clips at 25-30 fps change little from frame to frame), re-encodes them at
``--quality``, and writes one uncompressed tar of prepared-dataset folders (same format: meta.json,
landmarks.npy, crops.npy, source_index.npy, frames/), so training reads it after
``tar xf data.tar -C DIR`` with ``--data DIR/<root name> ...``.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .dataset import find_items
from .errors import DatasetError

PER_ARRAY = ("landmarks.npy", "crops.npy", "source_index.npy")  # per-frame arrays, sliced with the frames
TAR_ENTRY = 768  # a tar member's header (512 bytes) and, on average, half a block of padding
ITEM_FILES = 8 * 1024  # meta.json, the arrays' headers and their tar entries, per video or photo


def _jpeg(path: Path, quality: int) -> bytes:
    with Image.open(path) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="JPEG", quality=quality, subsampling=2)
    return buf.getvalue()


def estimate_stride(roots: list[Path], quality: int, budget_bytes: int, sample: int = 120) -> int:
    """The smallest frame stride whose estimated size fits ``budget_bytes`` (photos always kept)."""
    items = find_items(roots)
    videos = [it for it in items if it.num_frames > 1]
    photos = [it for it in items if it.num_frames == 1]
    rng = np.random.default_rng(0)
    picks = [(v, int(rng.integers(v.num_frames))) for v in rng.choice(videos, size=min(sample, len(videos) * 4))] \
        if videos else []
    per_frame = float(np.mean([len(_jpeg(v.frame_path(i), quality)) for v, i in picks])) + TAR_ENTRY if picks else 0.0
    photo_bytes = sum(len(_jpeg(p.frame_path(0), quality)) + TAR_ENTRY for p in photos)
    frames = sum(v.num_frames for v in videos)
    room = budget_bytes - photo_bytes - ITEM_FILES * len(items)
    if room <= 0:
        raise DatasetError(f"the photos alone need {photo_bytes / 2**20:.1f} MiB; raise --budget-mib")
    return max(1, math.ceil(frames * per_frame / room))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def write_compact(roots: list[Path], out: Path, stride: int, quality: int) -> dict:
    """Write the tar; returns a summary (videos, frames kept, bytes)."""
    if out.exists():
        raise DatasetError(f"{out} exists; remove it or choose another --out")
    names = [Path(r).name for r in roots]
    if len(set(names)) != len(names):
        raise DatasetError(f"dataset folders need distinct names inside the tar, got {names}")
    tmp = out.with_name(f".{out.name}.tmp")
    kept = items_done = 0
    work = [(Path(root), item) for root in roots for item in find_items([Path(root)])]
    with tarfile.open(tmp, "w") as tar:
        for root, item in tqdm(work, desc="compacting", unit="item"):
            step = stride if item.num_frames > 1 else 1
            index = np.arange(0, item.num_frames, step)
            prefix = f"{root.name}/{item.name}"
            meta = json.loads((item.folder / "meta.json").read_text())
            meta.update(every=int(meta.get("every", 1)) * step, kept=int(index.size),
                        frames={**meta.get("frames", {}), "quality": quality, "subsampling": "4:2:0"},
                        compacted_from=str(item.folder))
            _add_bytes(tar, f"{prefix}/meta.json", json.dumps(meta, indent=1).encode())
            for name in PER_ARRAY:
                if (item.folder / name).is_file():
                    _add_bytes(tar, f"{prefix}/{name}", _npy(np.load(item.folder / name)[index]))
            for j, i in enumerate(index):
                _add_bytes(tar, f"{prefix}/frames/{j:06d}.jpg", _jpeg(item.frame_path(int(i)), quality))
            kept += int(index.size)
            items_done += 1
    tmp.rename(out)
    return {"items": items_done, "frames": kept, "stride": stride, "quality": quality, "bytes": out.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.compact_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("roots", type=Path, nargs="+", help="prepared dataset folders")
    p.add_argument("--out", type=Path, required=True, help="the tar file to write (not overwritten)")
    p.add_argument("--budget-mib", type=float, default=40.0, help="target size (default 40 MiB)")
    p.add_argument("--quality", type=int, default=75, help="JPEG quality of the kept frames (default 75)")
    p.add_argument("--stride", type=int, help="keep every Nth frame (default: the smallest that fits the budget)")
    args = p.parse_args(argv)
    try:
        stride = args.stride or estimate_stride(args.roots, args.quality, int(args.budget_mib * 2**20))
        print(f"stride {stride}, JPEG quality {args.quality}", file=sys.stderr)
        summary = write_compact(args.roots, args.out, stride, args.quality)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {summary['items']} videos/photos, {summary['frames']} frames (every {stride}), "
          f"{summary['bytes'] / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
