"""Ship a checkpoint as the SDK's bundled default model.

``python -m release.ship_default CHECKPOINT [--data PREPARED ...] [--holdout-file F]``

1. exports the checkpoint (fp32 + int8 + fp16) with real calibration frames (the prepared data's,
   else the exporter's default: export.data),
2. adds the default avatar (release/default_avatar.py): for the ``adain`` family the mean identity
   of the training videos (no training image; needs ``--data``), for ``warp`` the public-domain
   portrait ``DEFAULT_PORTRAIT`` (needs the ``ship`` extra: scikit-image),
3. checks the package budget (40 MB) and replaces ``sdk/talkinghead/models/default`` atomically,
4. writes the compact (fp16, weights-only) checkpoint that the repo keeps for resuming, when asked.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from export import ExportError, export_checkpoint

from training.checkpoint import load_checkpoint, save_checkpoint
from training.config import REFERENCE_SCALES
from training.dataset import read_name_list
from .default_avatar import DEFAULT_PORTRAIT, add_to_package, from_portrait, mean_identity
from training.errors import TrainingError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PACKAGE = REPO / "sdk" / "talkinghead" / "models" / "default"
BUDGET_BYTES = 40 * 2**20


def package_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


MODEL_NAMES = {"adain": "talkinghead-lite", "warp": "talkinghead-warp"}


def ship(checkpoint: Path, data: list[Path], holdout: tuple[str, ...], dest: Path = DEFAULT_PACKAGE,
         variants: tuple[str, ...] = ("int8", "fp16"), compact: Path | None = None,
         reference_scale: int = 1) -> Path:
    """Export, add the default avatar, check the budget and move into ``dest``; returns ``dest``.
    ``reference_scale``: the warp family's shots at this multiple of the output side (the exporter's
    option of that name)."""
    family = load_checkpoint(checkpoint)[0].config.net.family
    if family == "adain" and not data:
        raise TrainingError("an 'adain' default avatar is the mean identity of the training videos: give --data")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".ship-") as tmp:
        staged = Path(tmp) / "default"
        export_checkpoint(checkpoint, staged, variants=variants, calibration=data[0] if data else None,
                          name=MODEL_NAMES[family], reference_scale=reference_scale)
        if family == "warp":
            from_portrait(staged, DEFAULT_PORTRAIT.load())
            avatar_note = f"portrait: {DEFAULT_PORTRAIT.credit}"
        else:
            identity, landmarks, n = mean_identity(checkpoint, data, holdout=holdout)
            add_to_package(staged, identity, landmarks)
            avatar_note = f"mean identity of {n} videos"
        size = package_bytes(staged)
        if size > BUDGET_BYTES:
            raise TrainingError(f"the default package is {size / 2**20:.1f} MB, over the 40 MB budget")
        old = dest.parent / ".default-old"
        if old.exists():
            shutil.rmtree(old)
        if dest.exists():
            os.replace(dest, old)
        os.replace(staged, dest)
        if old.exists():
            shutil.rmtree(old)
    if compact is not None:
        models, state = load_checkpoint(checkpoint)
        save_checkpoint(compact, models, state, half=True)
    logging.getLogger("talkinghead.ship").info("shipped %s (%.1f MB, default avatar: %s)",
                                               dest, package_bytes(dest) / 2**20, avatar_note)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m release.ship_default", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", type=Path, nargs="+", default=[],
                   help="the prepared training data (calibration; the adain family's mean identity)")
    p.add_argument("--holdout-file", type=Path, default=None,
                   help="videos left out of the default avatar (default: training/holdout.txt when present)")
    p.add_argument("--dest", type=Path, default=DEFAULT_PACKAGE)
    p.add_argument("--compact", type=Path, help="also write the fp16 weights-only checkpoint here")
    p.add_argument("--reference-scale", type=int, default=1, choices=REFERENCE_SCALES,
                   help="warp family: the avatar keeps its shots at this multiple of the output side (default 1)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        default_list = REPO / "training" / "holdout.txt"  # used when present; a named file must be readable
        holdout_file = args.holdout_file or (default_list if default_list.is_file() else None)
        holdout = read_name_list(holdout_file) if holdout_file else ()
        path = ship(args.checkpoint, args.data, holdout, args.dest, compact=args.compact,
                    reference_scale=args.reference_scale)
    except (TrainingError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"default model: {path} ({package_bytes(path) / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
