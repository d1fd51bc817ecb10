"""Inputs for parity checks and int8 calibration: real face crops and their landmarks.

In order of preference:

1. ``--calibration DIR``: a prepared dataset (``python -m training.prepare`` output: one folder per
   video with ``frames/NNNNNN.jpg`` crops and crop-normalised ``landmarks.npy``), or one such video
   folder. Frames are spread evenly over the videos.
2. The project's shared media (``../shared/data`` beside the repo, or ``$TALKINGHEAD_SHARED_DATA``):
   landmarks detected on the portraits in ``source/`` and then the photos in ``faces/`` with
   ``talkinghead.landmarks.detect_landmarks``, cropped with ``talkinghead.crop`` exactly as the SDK
   crops them.
3. Synthetic inputs (jittered template landmarks, smooth noise images) when neither exists. The
   manifest records which was used (``parity.data.kind``).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ExportError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class Samples:
    """N crops ``images`` [N,3,R,R] float32 in [-1,1] and ``landmarks`` [N,68,2] crop-normalised."""

    images: np.ndarray
    landmarks: np.ndarray
    kind: str  # "real" | "synthetic"
    description: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def driving_landmarks(self) -> np.ndarray:
        """Each sample driven by the next sample's landmarks (cross-identity reenactment)."""
        return np.roll(self.landmarks, -1, axis=0).copy()


def shared_data_root() -> Path | None:
    """``$TALKINGHEAD_SHARED_DATA``, else ``../shared/data`` beside the repository, if it exists."""
    env = os.environ.get("TALKINGHEAD_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def _to_model_image(rgb: np.ndarray, resolution: int) -> np.ndarray:
    from talkinghead.crop import resize_image

    if rgb.shape[:2] != (resolution, resolution):
        rgb = resize_image(rgb, resolution, resolution)
    return (rgb.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


def _prepared_videos(root: Path) -> list[Path]:
    if (root / "landmarks.npy").is_file() and (root / "frames").is_dir():
        return [root]
    videos = sorted(p for p in root.iterdir() if p.is_dir() and (p / "landmarks.npy").is_file()
                    and (p / "frames").is_dir())
    if not videos:
        raise ExportError(f"--calibration {root}: no prepared videos (folders with frames/ and landmarks.npy; "
                          "run python -m training.prepare)")
    return videos


def from_prepared(root: Path, resolution: int, count: int) -> Samples:
    """``count`` frames spread over the prepared videos under ``root``."""
    from talkinghead.images import read_image

    videos = _prepared_videos(Path(root))
    lms = [np.load(v / "landmarks.npy").astype(np.float32) for v in videos]
    images, points = [], []
    for i in range(count):
        v = i % len(videos)
        n = lms[v].shape[0]
        if n == 0:
            continue
        rounds = (count + len(videos) - 1) // len(videos)
        f = min(n - 1, (i // len(videos)) * n // rounds)
        images.append(_to_model_image(read_image(videos[v] / "frames" / f"{f:06d}.jpg"), resolution))
        points.append(lms[v][f])
    if not images:
        raise ExportError(f"--calibration {root}: the prepared videos have no frames")
    return Samples(np.stack(images), np.stack(points), "real",
                   f"{len(images)} frames of {len(videos)} prepared videos in {Path(root).name}")


def from_photos(folders: list[Path], resolution: int, count: int) -> Samples | None:
    """Detect, crop and normalise faces in the photos of ``folders`` until ``count`` are found."""
    from talkinghead.crop import CropConfig, crop_from_landmarks, to_normalised, warp_to_crop
    from talkinghead.errors import TalkingHeadError
    from talkinghead.images import read_image
    from talkinghead.landmarks import detect_landmarks

    images, points, used = [], [], []
    for folder in folders:
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            if len(images) >= count:
                break
            try:
                rgb = read_image(path)
                face = detect_landmarks(rgb, name=path.name)
            except TalkingHeadError as exc:
                log.info("skipping %s: %s", path.name, exc)
                continue
            crop = crop_from_landmarks(face.points, CropConfig())
            images.append(_to_model_image(warp_to_crop(rgb, crop, resolution), resolution))
            points.append(to_normalised(face.points, crop).astype(np.float32))
            used.append(f"{folder.name}/{path.name}")
    if not images:
        return None
    counts = {f.name: sum(u.startswith(f.name + "/") for u in used) for f in folders}
    per_folder = ", ".join(f"{n} from {name}/" for name, n in counts.items() if n)
    log.debug("face crops: %s", ", ".join(used))
    return Samples(np.stack(images), np.stack(points), "real",
                   f"{len(images)} face crops (landmarks by talkinghead.landmarks.detect_landmarks) from the "
                   f"shared data ({per_folder})")


def template_landmarks() -> np.ndarray:
    """A frontal 68-point face in crop-normalised coordinates (same layout as the tests' template)."""
    t = np.linspace(0, np.pi, 17)
    parts = [np.stack([-0.55 * np.cos(t), 0.05 + 0.55 * np.sin(t)], 1)]
    arc = 0.05 * np.sin(np.linspace(0, np.pi, 5))
    parts.append(np.stack([np.linspace(-0.45, -0.1, 5), -0.25 - arc], 1))
    parts.append(np.stack([np.linspace(0.1, 0.45, 5), -0.25 - arc], 1))
    parts.append(np.stack([np.zeros(4), np.linspace(-0.15, 0.1, 4)], 1))
    parts.append(np.stack([np.linspace(-0.12, 0.12, 5), 0.17 + 0.4 * arc], 1))
    for cx in (-0.27, 0.27):
        a = np.linspace(0, 2 * np.pi, 7)[:-1]
        parts.append(np.stack([cx - 0.1 * np.cos(a), -0.1 - 0.04 * np.sin(a)], 1))
    a = np.linspace(0, 2 * np.pi, 13)[:-1]
    parts.append(np.stack([-0.22 * np.cos(a), 0.36 - 0.08 * np.sin(a)], 1))
    a = np.linspace(0, 2 * np.pi, 9)[:-1]
    parts.append(np.stack([-0.15 * np.cos(a), 0.36 - 0.03 * np.sin(a)], 1))
    return np.concatenate(parts).astype(np.float32)


def synthetic(resolution: int, count: int, seed: int = 0) -> Samples:
    """Jittered template landmarks and smooth random images (when no real data is available)."""
    rng = np.random.default_rng(seed)
    base = template_landmarks()
    lms = base[None] * rng.uniform(0.9, 1.1, (count, 1, 1)) + rng.normal(0, 0.02, (count, 1, 2))
    lms = (lms + rng.normal(0, 0.005, lms.shape)).astype(np.float32)
    coarse = rng.uniform(-1, 1, (count, 3, 8, 8)).astype(np.float32)
    reps = -(-resolution // 8)
    images = np.kron(coarse, np.ones((1, 1, reps, reps), np.float32))[:, :, :resolution, :resolution]
    return Samples(np.ascontiguousarray(images), lms, "synthetic",
                   f"{count} synthetic samples (no real data found: jittered template landmarks, block noise images)")


def load_samples(resolution: int, count: int, calibration: Path | None = None, *, allow_real: bool = True) -> Samples:
    """The export's parity and calibration inputs (see the module docstring for the order)."""
    if calibration is not None:
        return from_prepared(Path(calibration), resolution, count)
    root = shared_data_root() if allow_real else None
    if root is not None:
        folders = [root / name for name in ("source", "faces") if (root / name).is_dir()]
        try:
            samples = from_photos(folders, resolution, count)
        except ImportError as exc:  # no landmark backend installed
            log.warning("cannot detect landmarks (%s); using synthetic inputs", exc)
            samples = None
        if samples is not None:
            return samples
        log.warning("no faces found in %s; using synthetic inputs", root)
    return synthetic(resolution, count)


def describe(samples: Samples) -> dict:
    """The manifest's ``parity.data`` record (the description kept to one readable line)."""
    text = samples.description
    if len(text) > 400:
        text = text[:397] + "..."
    return {"kind": samples.kind, "description": text, "samples": len(samples)}


__all__ = ["Samples", "load_samples", "from_prepared", "from_photos", "synthetic", "shared_data_root",
           "describe"]
