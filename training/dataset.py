"""Episodes for meta-learning, read from a prepared dataset (``python -m training.prepare``).

A prepared folder holds one sub-folder per video (or photo): ``frames/NNNNNN.jpg`` crops at the
training resolution, ``landmarks.npy`` [N, 68, 2] in crop-normalised coordinates, ``meta.json``.
An episode is K frames of one video (the shots) plus one more frame (the target). Photos are
one-frame videos: their shots repeat the frame and the target is its mirror image, so they add
identities without adding motion.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .augment import Augmentation
from .errors import DatasetError
from .networks.warp_generator import mouth_opening
from .resample import box_filter_to


@dataclass
class VideoItem:
    """One prepared video (or photo)."""

    name: str
    folder: Path
    landmarks: np.ndarray  # [N, 68, 2] float32, crop-normalised

    @property
    def num_frames(self) -> int:
        return int(self.landmarks.shape[0])

    def frame_path(self, i: int) -> Path:
        return self.folder / "frames" / f"{i:06d}.jpg"


def _load_item(folder: Path) -> VideoItem:
    lm_file = folder / "landmarks.npy"
    if not lm_file.is_file():
        raise DatasetError(f"{folder} has no landmarks.npy: not a prepared video (run training.prepare)")
    landmarks = np.load(lm_file).astype(np.float32)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise DatasetError(f"{lm_file}: expected [N, 68, 2] landmarks, got {landmarks.shape}")
    return VideoItem(folder.name, folder, landmarks)


def find_items(roots: list[Path]) -> list[VideoItem]:
    """Every prepared video under the given dataset folders, sorted by name."""
    items: list[VideoItem] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"dataset folder not found: {root}")
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if (folder / "meta.json").is_file():
                items.append(_load_item(folder))
    if not items:
        raise DatasetError(f"no prepared videos in {[str(r) for r in roots]} "
                           "(each needs meta.json, landmarks.npy and frames/; run training.prepare)")
    return items


class EpisodeDataset:
    """Samples meta-learning episodes deterministically from (seed, step, slot).

    Args:
        roots: prepared dataset folders.
        k_shots: frames per identity estimate (K).
        resolution: the model's frame size; frames of another size are an error.
        reference_scale: the shots stay at this multiple of ``resolution`` (frames prepared at
            ``resolution x reference_scale``) and the target is box-filtered down to ``resolution``,
            as a warp package exported with ``--reference-scale`` keeps its shots (so training sees
            the shots that inference samples from).
        min_frames: videos with 1 < frames < min_frames raise (or are skipped with skip_short).
        mouth_open_targets: this fraction of episodes takes as target the frame whose mouth opens
            widest of the episode's K + 1 (``train.mouth_open_targets``).
        holdout: video names left out (evaluation clips).
    """

    def __init__(self, roots: list[Path], k_shots: int, resolution: int, *, augmentation: Augmentation | None = None,
                 min_frames: int | None = None, skip_short: bool = False, holdout: tuple[str, ...] = (),
                 reference_scale: int = 1, mouth_open_targets: float = 0.0) -> None:
        if reference_scale < 1:
            raise DatasetError(f"reference_scale must be >= 1, got {reference_scale}")
        self.k_shots = k_shots
        self.resolution = resolution
        self.reference_scale = reference_scale
        self.mouth_open_targets = mouth_open_targets
        self.augmentation = augmentation or Augmentation(flip_prob=0.0, color_jitter=0.0)
        need = min_frames if min_frames is not None else k_shots + 1
        items, self.skipped = [], []
        for item in find_items(roots):
            if item.name in holdout:
                continue
            if item.num_frames == 0:  # prepare found no face in it (listed as "empty" in index.json)
                self.skipped.append(item.name)
                continue
            if 1 < item.num_frames < need:
                if not skip_short:
                    raise DatasetError(f"video {item.name} has {item.num_frames} frames; an episode needs "
                                       f"{need} (K={k_shots} shots + 1 target). Use --skip-short to leave it out.")
                self.skipped.append(item.name)
                continue
            items.append(item)
        if not items:
            raise DatasetError("no usable videos left after skipping short ones")
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    @property
    def names(self) -> list[str]:
        return [it.name for it in self.items]

    def summary(self) -> dict:
        frames = sum(it.num_frames for it in self.items)
        return {"videos": sum(it.num_frames > 1 for it in self.items),
                "photos": sum(it.num_frames == 1 for it in self.items),
                "frames": frames, "skipped": self.skipped}

    def _read(self, item: VideoItem, i: int) -> np.ndarray:
        path = item.frame_path(i)
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read frame {path}: {exc}") from exc
        side = self.resolution * self.reference_scale
        if arr.shape[:2] != (side, side):
            raise DatasetError(f"{path} is {arr.shape[1]}x{arr.shape[0]}, the model needs "
                               f"{side}x{side}: prepare with --resolution {side}")
        return arr

    def episode(self, video: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """K shots + 1 target of video ``video``, augmented consistently within the episode."""
        item = self.items[video]
        n, k = item.num_frames, self.k_shots
        if n == 1:
            idx = np.zeros(k + 1, dtype=np.int64)
        else:
            idx = rng.choice(n, size=k + 1, replace=n < k + 1)
            if self.mouth_open_targets > 0 and rng.random() < self.mouth_open_targets:
                widest = int(mouth_opening(torch.from_numpy(item.landmarks[idx])).argmax())
                idx[[widest, k]] = idx[[k, widest]]  # the widest-open frame becomes the target
        frames = np.stack([self._read(item, int(i)) for i in idx])  # [K+1, R, R, 3]
        landmarks = item.landmarks[idx].copy()
        images = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        lms = torch.from_numpy(landmarks)
        images, lms = self.augmentation(images, lms, rng, mirror_target=(n == 1))
        return {"shots_image": images[:k], "shots_landmarks": lms[:k],
                "target_image": box_filter_to(images[k], self.resolution), "target_landmarks": lms[k],
                "video_index": torch.tensor(video)}

    def batch(self, seed: int, step: int, batch_size: int, rank: int = 0) -> dict[str, torch.Tensor]:
        """A batch of episodes that depends only on (seed, step, rank): resumable and reproducible."""
        rng = np.random.default_rng([seed, step, rank])
        videos = rng.integers(0, len(self.items), size=batch_size)
        eps = [self.episode(int(v), rng) for v in videos]
        return {key: torch.stack([e[key] for e in eps]) for key in eps[0]}


def read_name_list(path: Path) -> tuple[str, ...]:
    """Names from a file, one per line; blank lines and lines starting with # are ignored.

    Raises:
        DatasetError: the file is missing or unreadable.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the name list {path}: {exc}") from exc
    return tuple(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))
