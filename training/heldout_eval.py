"""A quick held-out check of checkpoints, for choosing which one to ship.

``python -m training.heldout_eval CKPT [CKPT ...] --data prepared/driving --holdout-file training/holdout.txt``

For each held-out prepared video: K shots evenly spaced over its first quarter, targets evenly
spaced over its second half (the quality protocol's frame choice, on the prepared crops), rendered
in PyTorch from the mean embedding. Prints mean L1 and PSNR against the real crops, and how far
the AdaIN parameters psi = P e differ between people (their std across videos, averaged over
parameters): ~0 means the generator ignores identity. Minutes on a CPU, against bench/quality.py's
tens of minutes; GAN training is not monotonic, so compare checkpoints with it before shipping.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpoint import load_checkpoint
from .dataset import find_items, read_name_list
from .errors import DatasetError, TrainingError


@dataclass
class HeldoutScore:
    checkpoint: str
    step: int
    l1: float
    psnr: float
    psi_spread: float
    videos: int


def _frames(folder: Path, index: np.ndarray) -> torch.Tensor:
    ims = np.stack([np.asarray(Image.open(folder / "frames" / f"{int(i):06d}.jpg").convert("RGB")) for i in index])
    return torch.from_numpy(ims).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def evaluate(checkpoint: Path, roots: list[Path], names: tuple[str, ...], k: int = 8, targets: int = 10) -> HeldoutScore:
    models, state = load_checkpoint(checkpoint)
    E, G = models.embedder.eval(), models.generator.eval()
    items = [it for it in find_items(roots) if it.name in names and it.num_frames >= 4]
    if not items:
        raise DatasetError(f"none of the held-out videos {list(names)} is in {[str(r) for r in roots]}")
    l1, psnr, psis = [], [], []
    for it in items:
        n = it.num_frames
        shots = np.linspace(0, max(0, n // 4 - 1), k).round().astype(int)
        tgt = np.linspace(n // 2, n - 1, targets).round().astype(int)
        lms = torch.from_numpy(it.landmarks)
        e = E(_frames(it.folder, shots), lms[shots]).mean(0, keepdim=True)
        psis.append(G.project(e))
        out, real = G(lms[tgt], e.expand(len(tgt), -1)), _frames(it.folder, tgt)
        l1.append(float((out - real).abs().mean()))
        mse = ((out - real) / 2).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        psnr.append(float((10 * torch.log10(1 / mse)).mean()))
    spread = float(torch.cat(psis).std(0).mean()) if len(psis) > 1 else 0.0
    return HeldoutScore(str(checkpoint), state.step, float(np.mean(l1)), float(np.mean(psnr)), spread, len(items))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.heldout_eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", type=Path, nargs="+")
    p.add_argument("--data", type=Path, nargs="+", required=True, help="prepared dataset folder(s)")
    p.add_argument("--holdout-file", type=Path, required=True)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        names = read_name_list(args.holdout_file)
        for ckpt in args.checkpoints:
            s = evaluate(ckpt, args.data, names, args.k)
            print(f"{s.checkpoint}: step {s.step}, {s.videos} held-out videos, L1 {s.l1:.4f}, PSNR {s.psnr:.2f} dB, "
                  f"psi spread {s.psi_spread:.4f}", flush=True)
    except (DatasetError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
