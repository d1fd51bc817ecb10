"""Prepare a training dataset: face crops and 68 landmarks for every video (and photo) in a folder.

    python -m training.prepare VIDEOS_DIR OUT_DIR [--resolution 256] [--workers N]
                                                  [--limit-frames N] [--every N]

Every ffmpeg-readable video (mp4, mov, mpg, mkv, avi, webm, ...) and every still image (jpg,
png, ...: a one-frame "video") under VIDEOS_DIR becomes one folder::

    OUT_DIR/<name>/frames/000000.jpg ...   crops at the training resolution (JPEG q95, 4:4:4)
    OUT_DIR/<name>/landmarks.npy           float32 [N, 68, 2], each frame's raw landmarks in the
                                           crop-normalised coordinates of its own crop
    OUT_DIR/<name>/crops.npy               float32 [N, 3]: cx, cy, size in source pixels
    OUT_DIR/<name>/source_index.npy        int64 [N]: index of each kept frame in the source
    OUT_DIR/<name>/meta.json               source, fps, counts, resolution, crop, detector
    OUT_DIR/index.json                     every item with its counts, and the failures

Detection, tracking and cropping are the SDK's (``talkinghead.landmarks``, ``talkinghead.crop``),
so training sees faces exactly as inference does. Each frame's crop comes from its One-Euro
smoothed landmarks; frames without a face are skipped and counted. Items whose meta.json exists
are skipped (resumable); an item is written to ``<name>.partial`` and renamed when complete.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

import talkinghead
from talkinghead.crop import CropConfig, crop_from_landmarks, to_normalised, warp_to_crop
from talkinghead.errors import TalkingHeadError
from talkinghead.images import read_image
from talkinghead.landmarks import FaceTracker, LandmarkDetector, TrackerConfig, get_detector
from talkinghead.video import iter_frames, probe

log = logging.getLogger("training.prepare")

FORMAT_VERSION = 1
VIDEO_EXTENSIONS = {".mp4", ".mov", ".mpg", ".mpeg", ".m4v", ".mkv", ".avi", ".webm", ".flv",
                    ".wmv", ".ts", ".3gp"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of one preparation run (recorded in every meta.json).

    Attributes:
        resolution: side of the stored square crops.
        every: keep every N-th frame (all frames are still tracked).
        limit_frames: decode at most this many frames per video (None: all).
        detector: landmark backend name for ``talkinghead.landmarks.get_detector``.
        crop: the crop rule (the SDK's defaults).
        jpeg_quality: JPEG quality of the stored frames.
        verify_every: the tracker confirms the face by detection every N frames (1: every
            frame, so a face that left the picture is never kept; costs ~3 ms a frame).
    """

    resolution: int = 256
    every: int = 1
    limit_frames: int | None = None
    detector: str = "dlib"
    crop: CropConfig = field(default_factory=CropConfig)
    jpeg_quality: int = 95
    verify_every: int = 1

    def validate(self) -> "PrepareConfig":
        """Raise ValueError on out-of-range values; return self."""
        if self.resolution < 8:
            raise ValueError(f"--resolution must be >= 8, got {self.resolution}")
        if self.every < 1:
            raise ValueError(f"--every must be >= 1, got {self.every}")
        if self.verify_every < 0:
            raise ValueError(f"--verify-every must be >= 0, got {self.verify_every}")
        if self.limit_frames is not None and self.limit_frames < 1:
            raise ValueError(f"--limit-frames must be >= 1, got {self.limit_frames}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg quality must be in 1..100, got {self.jpeg_quality}")
        self.crop.validate()
        return self


@dataclass(frozen=True)
class Item:
    """One source file to prepare."""

    name: str
    path: Path
    kind: str  # "video" | "image"


def find_items(videos_dir: Path) -> list[Item]:
    """Videos and images under ``videos_dir`` (recursively), with unique folder names."""
    files = sorted(p for p in videos_dir.rglob("*")
                   if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS)
    stems: dict[str, int] = {}
    rel = [p.relative_to(videos_dir) for p in files]
    for r in rel:
        key = str(r.with_suffix("")).replace(os.sep, "__")
        stems[key] = stems.get(key, 0) + 1
    items = []
    for p, r in zip(files, rel):
        name = str(r.with_suffix("")).replace(os.sep, "__")
        if stems[name] > 1:  # a.mp4 and a.jpg side by side
            name = f"{name}_{p.suffix.lower().lstrip('.')}"
        kind = "image" if p.suffix.lower() in IMAGE_EXTENSIONS else "video"
        items.append(Item(name, p, kind))
    return items


def _frames(item: Item, cfg: PrepareConfig, threads: int) -> tuple[float, Iterator[np.ndarray]]:
    if item.kind == "image":
        return 0.0, iter([read_image(item.path)])
    info = probe(item.path)
    return info.fps, iter_frames(item.path, limit=cfg.limit_frames, threads=threads)


def _save_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    from PIL import Image

    Image.fromarray(image).save(path, format="JPEG", quality=quality, subsampling=0)


def prepare_item(item: Item, out_dir: Path, cfg: PrepareConfig, detector: LandmarkDetector,
                 threads: int = 0) -> dict:
    """Prepare one video or image into ``out_dir/<name>``; return its meta.json content.

    Raises:
        TalkingHeadError: the source cannot be read (nothing is left behind).
    """
    start = time.perf_counter()
    final = out_dir / item.name
    tmp = out_dir / f"{item.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "frames").mkdir(parents=True)
    try:
        fps, frames = _frames(item, cfg, threads)
        tracker = FaceTracker(detector, TrackerConfig(verify_every=cfg.verify_every),
                              fps=fps or 25.0)
        landmarks, crops, source_index = [], [], []
        decoded = dropped = 0
        size = None
        for i, frame in enumerate(frames):
            decoded += 1
            size = size or [int(frame.shape[1]), int(frame.shape[0])]
            result = tracker.update(frame)
            if i % cfg.every:
                continue
            if not result.ok:
                dropped += 1
                continue
            crop = crop_from_landmarks(result.smoothed, cfg.crop)
            _save_jpeg(tmp / "frames" / f"{len(crops):06d}.jpg",
                       warp_to_crop(frame, crop, cfg.resolution), cfg.jpeg_quality)
            landmarks.append(to_normalised(result.points, crop))
            crops.append(crop.as_array())
            source_index.append(i)
        np.save(tmp / "landmarks.npy", np.asarray(landmarks, np.float32).reshape(-1, 68, 2))
        np.save(tmp / "crops.npy", np.asarray(crops, np.float32).reshape(-1, 3))
        np.save(tmp / "source_index.npy", np.asarray(source_index, np.int64))
        meta = {
            "format_version": FORMAT_VERSION,
            "name": item.name,
            "source": str(item.path.absolute()),
            "kind": item.kind,
            "fps": fps,
            "frame_count": decoded,
            "size": size,
            "kept": len(crops),
            "dropped": dropped,
            "every": cfg.every,
            "limit_frames": cfg.limit_frames,
            "resolution": cfg.resolution,
            "crop": cfg.crop.to_dict(),
            "detector": detector.describe(),
            "tracking": {**tracker.counts, "verify_every": cfg.verify_every},
            "landmarks": "raw per-frame landmarks, crop-normalised in each frame's own crop; "
                         "crops from One-Euro smoothed landmarks",
            "frames": {"format": "jpeg", "quality": cfg.jpeg_quality, "subsampling": "4:4:4"},
            "seconds": round(time.perf_counter() - start, 3),
            "talkinghead_version": talkinghead.__version__,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return meta
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- parallel driver ------------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(detector_name: str, threads: int) -> None:
    _WORKER["detector"] = get_detector(detector_name)
    _WORKER["threads"] = threads


def _run_one(args: tuple[Item, Path, PrepareConfig]) -> dict:
    item, out_dir, cfg = args
    try:
        meta = prepare_item(item, out_dir, cfg, _WORKER["detector"], _WORKER["threads"])
        return {"name": item.name, "ok": True, "meta": meta}
    except TalkingHeadError as exc:
        return {"name": item.name, "ok": False, "source": str(item.path), "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop a long batch
        log.exception("%s: unexpected failure", item.path)
        return {"name": item.name, "ok": False, "source": str(item.path),
                "error": f"{item.path}: {type(exc).__name__}: {exc}"}


def _write_index(out_dir: Path, failures: list[dict]) -> dict:
    items, empty = [], []
    for meta_path in sorted(out_dir.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        entry = {k: meta[k] for k in ("name", "source", "kind", "kept", "dropped", "frame_count",
                                      "fps")}
        (items if meta["kept"] > 0 else empty).append(entry)
    index = {
        "format_version": FORMAT_VERSION,
        "items": items,
        "empty": empty,
        "failed": failures,
        "totals": {"items": len(items), "frames": sum(i["kept"] for i in items),
                   "dropped": sum(i["dropped"] for i in items + empty),
                   "empty": len(empty), "failed": len(failures)},
    }
    (out_dir / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return index


def run(videos_dir: Path, out_dir: Path, cfg: PrepareConfig, workers: int = 1,
        progress: bool = True) -> dict:
    """Prepare every item under ``videos_dir`` not yet done; return a summary dict."""
    cfg.validate()
    if not videos_dir.is_dir():
        raise FileNotFoundError(f"{videos_dir}: no such folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    items = find_items(videos_dir)
    todo = [it for it in items if not (out_dir / it.name / "meta.json").is_file()]
    skipped = len(items) - len(todo)
    # Largest files first: better load balance across workers.
    todo.sort(key=lambda it: it.path.stat().st_size, reverse=True)
    workers = max(1, min(workers, len(todo) or 1))
    threads = 1 if workers > 1 else 0
    results: list[dict] = []
    bar = _progress(len(todo), progress)
    jobs = [(it, out_dir, cfg) for it in todo]
    if not jobs:
        results = []
    elif workers == 1:
        _init_worker(cfg.detector, threads)
        stream = map(_run_one, jobs)
        results = _collect(stream, bar)
    else:
        ctx = mp.get_context("spawn" if sys.platform == "darwin" else "fork")
        with ctx.Pool(workers, initializer=_init_worker,
                      initargs=(cfg.detector, threads)) as pool:
            results = _collect(pool.imap_unordered(_run_one, jobs), bar)
    bar.close()
    failures = [r for r in results if not r["ok"]]
    index = _write_index(out_dir, failures)
    done = [r["meta"] for r in results if r["ok"]]
    return {
        "items_found": len(items),
        "prepared": len(done),
        "skipped_done": skipped,
        "failed": len(failures),
        "videos": sum(m["kind"] == "video" for m in done),
        "images": sum(m["kind"] == "image" for m in done),
        "frames_decoded": sum(m["frame_count"] for m in done),
        "frames_kept": sum(m["kept"] for m in done),
        "frames_dropped": sum(m["dropped"] for m in done),
        "empty_items": sum(m["kept"] == 0 for m in done),
        "seconds": round(time.perf_counter() - start, 1),
        "workers": workers,
        "index_totals": index["totals"],
        "failures": failures,
    }


def _progress(total: int, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the train extra
        enabled = False
    if not enabled:
        class _Null:
            def update(self, n=1): ...
            def set_postfix_str(self, s): ...
            def close(self): ...
        return _Null()
    return tqdm(total=total, unit="item", dynamic_ncols=True)


def _collect(stream, bar) -> list[dict]:
    results, frames, dropped = [], 0, 0
    for r in stream:
        results.append(r)
        if r["ok"]:
            frames += r["meta"]["kept"]
            dropped += r["meta"]["dropped"]
        else:
            log.warning("%s", r["error"])
        bar.update(1)
        bar.set_postfix_str(f"frames={frames} dropped={dropped}")
    return results


def format_summary(s: dict) -> str:
    """A few human-readable lines."""
    fps = s["frames_decoded"] / s["seconds"] if s["seconds"] else 0.0
    lines = [
        f"items: {s['items_found']} found, {s['prepared']} prepared "
        f"({s['videos']} videos, {s['images']} images), {s['skipped_done']} already done, "
        f"{s['failed']} failed, {s['empty_items']} without any face",
        f"frames: {s['frames_kept']} kept, {s['frames_dropped']} dropped (no face), "
        f"{s['frames_decoded']} decoded",
        f"time: {s['seconds']:.1f} s with {s['workers']} worker(s) ({fps:.1f} decoded frames/s)",
    ]
    lines += [f"failed: {f['error']}" for f in s["failures"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code (1 when any item failed)."""
    ap = argparse.ArgumentParser(prog="python -m training.prepare", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("videos_dir", type=Path, help="folder of videos and/or images")
    ap.add_argument("out_dir", type=Path, help="output folder (created)")
    ap.add_argument("--resolution", type=int, default=256, help="crop side in pixels")
    ap.add_argument("--workers", type=int, default=1, help="parallel processes")
    ap.add_argument("--limit-frames", type=int, default=None, help="max frames per video")
    ap.add_argument("--every", type=int, default=1, help="keep every N-th frame")
    ap.add_argument("--detector", default="dlib", help="landmark backend")
    ap.add_argument("--verify-every", type=int, default=1,
                    help="confirm the tracked face by detection every N frames")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = PrepareConfig(resolution=args.resolution, every=args.every,
                            limit_frames=args.limit_frames, detector=args.detector,
                            verify_every=args.verify_every).validate()
    except ValueError as exc:
        ap.error(str(exc))
    try:
        summary = run(args.videos_dir, args.out_dir, cfg, workers=args.workers,
                      progress=not args.no_progress)
    except (FileNotFoundError, TalkingHeadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    if args.json:
        args.json.write_text(json.dumps({**summary, "config": {**asdict(cfg)}}, indent=2) + "\n")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
