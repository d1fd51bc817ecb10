"""A quick held-out check of checkpoints, for choosing which one to ship.

``python -m training.heldout_eval CKPT [CKPT ...] --data prepared/driving --holdout-file training/holdout.txt``

For each held-out prepared video: K shots evenly spaced over its first quarter, targets evenly
spaced over its second half (the quality protocol's frame choice, on the prepared crops), rendered
in PyTorch from the mean embedding. Prints mean L1, PSNR and SSIM against the real crops (and the
SSIM of ``nearest``, the unchanged shot closest in landmarks: the quality benchmark's first bar),
and how far the AdaIN parameters psi = P e differ between people (their std across videos,
averaged over parameters): ~0 means the generator ignores identity. ``--raw``: score the
optimiser's own weights of a checkpoint that also holds a weight average (training/averaging.py)
instead of the average that ships. ``--grid DIR``: also a PNG per checkpoint, one row per
held-out video (its middle target): nearest shot | real frame | rendered. Minutes on a CPU, against bench/quality.py's
tens of minutes; GAN training is not monotonic, so compare checkpoints with it before shipping.

``--finetune 100,200,400``: instead, how few-shot fine-tuning (:func:`training.finetune.finetune`
on the same K shots) improves with its number of steps: L1, PSNR and SSIM of ``nearest`` (the shot
whose landmarks are closest to the target's, unchanged: the quality benchmark's baseline), ``ours``
(feed-forward) and ``ours_ft@N`` after N steps, all from one fine-tuning run per video.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpoint import load_checkpoint
from .dataset import find_items, read_name_list
from .errors import DatasetError, TrainingError
from .finetune import finetune
from .finetune_recipe import FinetuneConfig, add_finetune_arguments, finetune_config_from_arguments


@dataclass
class HeldoutScore:
    checkpoint: str
    step: int
    l1: float
    psnr: float
    ssim: float
    nearest_ssim: float
    psi_spread: float
    videos: int


def _frames(folder: Path, index: np.ndarray) -> torch.Tensor:
    ims = np.stack([np.asarray(Image.open(folder / "frames" / f"{int(i):06d}.jpg").convert("RGB")) for i in index])
    return torch.from_numpy(ims).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _held_out_items(roots: list[Path], names: tuple[str, ...], limit: int | None = None) -> list:
    items = [it for it in find_items(roots) if it.name in names and it.num_frames >= 4][:limit]
    if not items:
        raise DatasetError(f"none of the held-out videos {list(names)} is in {[str(r) for r in roots]}")
    return items


def _frame_choice(n: int, k: int, targets: int) -> tuple[np.ndarray, np.ndarray]:
    """K shots evenly over the first quarter of n frames, targets evenly over the second half."""
    shots = np.linspace(0, max(0, n // 4 - 1), k).round().astype(int)
    return shots, np.linspace(n // 2, n - 1, targets).round().astype(int)


def _l1_psnr(out: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    mse = ((out - real) / 2).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return {"l1": float((out - real).abs().mean()), "psnr": float((10 * torch.log10(1 / mse)).mean())}


def _nearest_shot(shot_lm: torch.Tensor, target_lm: torch.Tensor) -> torch.Tensor:
    """For each target, the index of the shot whose landmarks are closest (mean squared distance)."""
    return ((shot_lm[None] - target_lm[:, None]) ** 2).sum(-1).mean(-1).argmin(1)


@torch.no_grad()
def evaluate(checkpoint: Path, roots: list[Path], names: tuple[str, ...], k: int = 8, targets: int = 10,
             raw: bool = False, grid: Path | None = None) -> HeldoutScore:
    models, state = load_checkpoint(checkpoint, for_training=raw)
    if raw and models.averaged is None:
        raise TrainingError(f"--raw: {checkpoint} holds no separate training weights (no weight average)")
    E, G = models.embedder.eval(), models.generator.eval()
    rows, nearest, psis, pictures = [], [], [], []
    for it in _held_out_items(roots, names):
        shots, tgt = _frame_choice(it.num_frames, k, targets)
        lms = torch.from_numpy(it.landmarks)
        shot_img, real = _frames(it.folder, shots), _frames(it.folder, tgt)
        e = E(shot_img, lms[shots]).mean(0, keepdim=True)
        psis.append(G.project(e))
        out = G(lms[tgt], e.expand(len(tgt), -1))
        closest = shot_img[_nearest_shot(lms[shots], lms[tgt])]
        rows.append(_image_scores(out, real))
        nearest.append(_image_scores(closest, real)["ssim"])
        middle = len(tgt) // 2
        pictures.append(torch.stack([closest[middle], real[middle], out[middle]]))
    if grid is not None:
        from .run_dir import write_grid

        grid.mkdir(parents=True, exist_ok=True)
        columns = list(torch.stack(pictures).unbind(1))  # nearest | real | ours, one row per video
        write_grid(grid / f"heldout_step{state.step}{'_raw' if raw else ''}.png", columns, max_rows=len(pictures))
    spread = float(torch.cat(psis).std(0).mean()) if len(psis) > 1 else 0.0
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    return HeldoutScore(str(checkpoint) + (" (raw)" if raw else ""), state.step, mean["l1"], mean["psnr"],
                        mean["ssim"], float(np.mean(nearest)), spread, len(psis))


def _image_scores(out: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    from .metrics import ssim

    return {**_l1_psnr(out, real), "ssim": ssim(out.numpy(), real.numpy())}


@dataclass
class FinetuneCurve:
    """Mean scores over the held-out videos' targets, by method (``nearest``, ``ours``, ``ours_ft@N``)."""

    checkpoint: str
    step: int
    videos: int
    scores: dict[str, dict[str, float]]


def finetune_curve(checkpoint: Path, roots: list[Path], names: tuple[str, ...], steps: list[int], k: int = 8,
                   targets: int = 10, limit: int | None = None, log=print,
                   config: FinetuneConfig | None = None) -> FinetuneCurve:
    """Held-out scores of nearest / feed-forward / fine-tuned for each of ``steps`` (one run per video).

    ``config``: the fine-tuning recipe (its ``steps`` is replaced by the largest of ``steps``).
    """
    models, state = load_checkpoint(checkpoint)
    E, G = models.embedder.eval(), models.generator.eval()
    items = _held_out_items(roots, names, limit)
    wanted = sorted(set(steps))
    per: dict[str, list[dict[str, float]]] = {}
    for it in items:
        shots, tgt = _frame_choice(it.num_frames, k, targets)
        lms = torch.from_numpy(it.landmarks)
        shot_img, shot_lm, real, tl = _frames(it.folder, shots), lms[shots], _frames(it.folder, tgt), lms[tgt]
        nearest = _nearest_shot(shot_lm, tl)
        with torch.no_grad():
            e = E(shot_img, shot_lm).mean(0, keepdim=True)
            outs = {"nearest": shot_img[nearest], "ours": G(tl, e.expand(len(tgt), -1))}
        for name, out in outs.items():
            per.setdefault(name, []).append(_image_scores(out, real))

        def at_step(step: int, gen: torch.nn.Module, psi: torch.Tensor) -> None:
            if step in wanted:
                per.setdefault(f"ours_ft@{step}", []).append(_image_scores(gen.synthesize(tl, psi), real))

        recipe = replace(config or FinetuneConfig(), steps=wanted[-1])
        finetune(models, shot_img, shot_lm, recipe, on_step=at_step)
        log(f"  {it.name}: " + ", ".join(f"{m} SSIM {v[-1]['ssim']:.3f}" for m, v in per.items()))
    scores = {m: {key: float(np.mean([r[key] for r in rows])) for key in rows[0]} for m, rows in per.items()}
    return FinetuneCurve(str(checkpoint), state.step, len(items), scores)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.heldout_eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", type=Path, nargs="+")
    p.add_argument("--data", type=Path, nargs="+", required=True, help="prepared dataset folder(s)")
    p.add_argument("--holdout-file", type=Path, required=True)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--finetune", metavar="STEPS", help="comma-separated fine-tuning step counts (e.g. 100,200,400)")
    p.add_argument("--limit", type=int, help="at most this many held-out videos (with --finetune)")
    add_finetune_arguments(p.add_argument_group("fine-tuning recipe (with --finetune)"), prefix="ft-", steps=None)
    p.add_argument("--grid", type=Path, metavar="DIR", help="also write nearest | real | rendered PNGs here")
    p.add_argument("--raw", action="store_true",
                   help="the optimiser's own weights instead of the weight average (checkpoints of runs with ema_decay)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        names = read_name_list(args.holdout_file)
        recipe = finetune_config_from_arguments(args, prefix="ft-")
        for ckpt in args.checkpoints:
            if args.finetune:
                steps = [int(v) for v in args.finetune.split(",")]
                if min(steps) < 1:
                    raise DatasetError(f"--finetune: step counts must be >= 1, got {steps}")
                c = finetune_curve(ckpt, args.data, names, steps, args.k, limit=args.limit,
                                   log=lambda m: print(m, flush=True),
                                   config=recipe)
                print(f"{c.checkpoint}: step {c.step}, {c.videos} held-out videos, K = {args.k}")
                for method, sc in c.scores.items():
                    print(f"  {method:14s} L1 {sc['l1']:.4f}  PSNR {sc['psnr']:.2f} dB  SSIM {sc['ssim']:.4f}", flush=True)
                continue
            s = evaluate(ckpt, args.data, names, args.k, raw=args.raw, grid=args.grid)
            print(f"{s.checkpoint}: step {s.step}, {s.videos} held-out videos, L1 {s.l1:.4f}, PSNR {s.psnr:.2f} dB, "
                  f"SSIM {s.ssim:.4f} (nearest shot {s.nearest_ssim:.4f}), psi spread {s.psi_spread:.4f}", flush=True)
    except (DatasetError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
