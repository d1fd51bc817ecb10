"""The default avatar of a model package.

Two kinds, by the model's family:

- ``adain``: the mean identity of the model's training set. ``python -m release.default_avatar
  CHECKPOINT PACKAGE_DIR --data PREPARED [PREPARED ...]`` embeds up to ``--frames`` frames of every
  training video, averages per video and then over videos, and writes ``avatar.npz`` (identity +
  the mean crop-normalised landmarks). No training image is stored: ``talkinghead demo`` renders a
  face that belongs to nobody in the data.
- ``warp``: a real face, since a warp generator moves the avatar's own pixels. The portrait is
  :data:`DEFAULT_PORTRAIT`, a public-domain photo that a registry package ships (scikit-image's
  ``data.astronaut()``: NASA's portrait of astronaut Eileen Collins, "no known copyright
  restrictions, released into the public domain" in scikit-image's own words). The avatar is made
  by the SDK itself from the exported package (``from_portrait``), so it is what a user would get.
  Never the project's shared media.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from talkinghead.avatar import Avatar

from training.checkpoint import load_checkpoint
from training.dataset import EpisodeDataset, read_name_list
from training.errors import TrainingError


def mean_identity(checkpoint: Path, data: list[Path], frames_per_video: int = 4,
                  holdout: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray, int]:
    """(identity [D], mean landmarks [68, 2], videos used) over the prepared videos."""
    models, _ = load_checkpoint(checkpoint)
    res = models.config.net.resolution
    ds = EpisodeDataset(data, k_shots=1, resolution=res, min_frames=1, skip_short=True, holdout=holdout)
    embedder = models.embedder.eval()
    per_video, shapes = [], []
    with torch.no_grad():
        for item in ds.items:
            idx = np.linspace(0, item.num_frames - 1, num=min(frames_per_video, item.num_frames)).round().astype(int)
            imgs = np.stack([ds._read(item, int(i)) for i in idx])
            x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
            lm = torch.from_numpy(item.landmarks[idx].copy())
            per_video.append(embedder(x, lm).mean(0).numpy())
            shapes.append(item.landmarks.mean(0))
    return (np.mean(per_video, axis=0).astype(np.float32), np.mean(shapes, axis=0).astype(np.float32),
            len(per_video))


@dataclass(frozen=True)
class Portrait:
    """A face photo for a default avatar, with where it comes from and why it may be shipped."""

    name: str
    credit: str
    load: Callable[[], np.ndarray]  # -> RGB uint8 [H, W, 3]


def _astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as exc:
        raise TrainingError("the default portrait comes from scikit-image: pip install '.[ship]'") from exc
    return np.ascontiguousarray(data.astronaut())


DEFAULT_PORTRAIT = Portrait(
    name="astronaut",
    credit="Eileen Collins, NASA astronaut: NASA portrait, public domain (no known copyright restrictions), "
           "as shipped by scikit-image (skimage.data.astronaut)",
    load=_astronaut,
)


def _manifest_of(package: Path) -> tuple[Path, dict]:
    manifest_file = package / "manifest.json"
    if not manifest_file.is_file():
        raise TrainingError(f"{package} is not a model package (no manifest.json)")
    return manifest_file, json.loads(manifest_file.read_text())


def _write(package: Path, avatar: Avatar) -> Path:
    """Save ``avatar`` as the package's avatar.npz and name it in manifest.json."""
    manifest_file, manifest = _manifest_of(package)
    avatar.check()
    avatar.save(package / "avatar.npz", overwrite=True)
    manifest["default_avatar"] = "avatar.npz"
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
    return package / "avatar.npz"


def add_to_package(package: Path, identity: np.ndarray, landmarks: np.ndarray, name: str | None = None) -> Path:
    """Write an identity-only avatar.npz (the adain family) into the package folder and reference it."""
    _, manifest = _manifest_of(package)
    return _write(package, Avatar(identity=identity, landmarks=landmarks, model=name or manifest["name"],
                                  embedding_dim=int(manifest["embedding_dim"]), shots=0))


def from_portrait(package: Path, image: np.ndarray, landmarks: np.ndarray | None = None) -> Path:
    """Make the package's default avatar from a photo with the SDK (landmarks detected when not given)."""
    from talkinghead.model import TalkingHeadModel
    from talkinghead.package import ModelPackage
    from talkinghead.sessions import SessionConfig

    model = TalkingHeadModel(ModelPackage.load(package), SessionConfig(providers="cpu"))
    return _write(package, model.create_avatar(image, landmarks))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m release.default_avatar", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("package", type=Path, help="the exported model package folder")
    p.add_argument("--data", type=Path, nargs="+", required=True, help="prepared training data")
    p.add_argument("--frames", type=int, default=4, help="frames embedded per video")
    p.add_argument("--holdout-file", type=Path, help="videos to leave out")
    args = p.parse_args(argv)
    try:
        holdout = read_name_list(args.holdout_file) if args.holdout_file else ()
        identity, landmarks, n = mean_identity(args.checkpoint, args.data, args.frames, holdout)
        path = add_to_package(args.package, identity, landmarks)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"default avatar: {path} (mean identity of {n} training videos)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
