"""Convert a warp checkpoint of the first design (absolute synthesis, mask started near 1) to the
residual one (``warp.synth_residual``: the painter corrects the warp; the mask restarts at a logit
with slope).

Why: in the first design the occlusion mask started at logit 6 (sigmoid 0.998) so that the untrained
model showed the warp; the sigmoid's slope there is 0.0025, so the synthesis branch got no gradient
and in 8,730 steps the mask never left 0.999 (docs/model-card.md). The residual design shows the warp
at any mask, so the mask can start at 0.5.

The painter's colour outputs are zeroed (a correction of zero: the converted model renders what the
old one did up to the old mask's 0.1 %), the mask logit set; every other weight and the step kept.

    python -m training.warp_residual checkpoints/warp/checkpoint.safetensors runs/warp/init.safetensors
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .checkpoint import CheckpointState, Models, load_checkpoint, save_checkpoint
from .errors import CheckpointError
from .networks import WarpGenerator


def to_residual(models: Models, mask_logit: float = 0.0) -> None:
    """Switch a warp-family model to residual synthesis in place (see the module docstring)."""
    gen = models.generator
    if not isinstance(gen, WarpGenerator):
        raise CheckpointError("only a warp-family checkpoint has a synthesis branch to convert")
    if models.config.net.warp.synth_residual:
        raise CheckpointError("the checkpoint already uses residual synthesis")
    models.config.net.warp.synth_residual = True
    models.config.net.warp.mask_bias = float(mask_logit)
    gen.config = models.config.net.warp
    out = gen.synthesiser.out
    with torch.no_grad():
        out.weight.zero_()  # colour correction 0; the mask a constant logit (learns from here)
        out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, float(mask_logit)]))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m training.warp_residual", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a warp checkpoint of the first design")
    p.add_argument("out", type=Path, help="where to write the converted checkpoint (must not exist)")
    p.add_argument("--mask-logit", type=float, default=0.0, help="the mask's starting logit (default 0: 0.5)")
    args = p.parse_args(argv)
    if args.out.exists() or args.out.resolve() == args.checkpoint.resolve():
        p.error(f"{args.out} exists; choose a new path")
    models, state = load_checkpoint(args.checkpoint)
    to_residual(models, args.mask_logit)
    save_checkpoint(args.out, models, CheckpointState(step=state.step, videos=state.videos, data=state.data,
                                                      kind=state.kind, extra=state.extra))
    print(f"{args.out}: step {state.step}, residual synthesis, mask logit {args.mask_logit}")


if __name__ == "__main__":
    main()
