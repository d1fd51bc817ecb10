"""Convert a warp-family checkpoint between designs, keeping its weights and step.

- ``--residual`` (from the first design): absolute synthesis, mask started near 1 -> residual
  synthesis (``warp.synth_residual``: the painter corrects the warp; the mask restarts at
  ``--mask-logit``). Why: the first design's mask started at logit 6 (sigmoid 0.998) so that the
  untrained model showed the warp; the sigmoid's slope there is 0.0025, so the synthesis branch got
  no gradient and in 8,730 steps the mask never left 0.999 (docs/model-card.md). The residual design
  shows the warp at any mask, so the mask can start at 0.5. The painter's colour outputs are zeroed
  (a correction of zero: the converted model renders what the old one did up to the old mask's 0.1%).
- ``--mouth-channel``: the synthesis branch also reads ``MouthInterior`` (``warp.mouth_channel``:
  where the target's mouth opens beyond every chosen shot's). Its first convolution gains an input
  channel with zero weights, so the converted model renders exactly what the old one did.
- ``--mouth-mask-gain G`` (needs the mouth channel): the mask's logit minus G x the mouth channel
  (``warp.mouth_mask_gain``), so where the target's mouth opens beyond every shot the painter's
  correction shows in full. It holds no weights; the frames change only by the painter's (small)
  correction there.
- ``--blend-top N``: how many of the nearest shots are warped and blended per frame
  (``warp.blend_top``). It holds no weights. A graph warps min(N, K) shots, so a one-photo
  avatar warps once whatever N is; with more shots N = 1 shows the nearest shot's warp alone, at
  half the warping (measure it: docs/model-card.md).
- ``--prior-grid N``: the resolution of the analytic piecewise-affine field (``warp.prior_grid``).
  It holds no weights (the mesh is solved per frame), so any multiple of 4 works with the same
  weights; a finer field follows the mesh more closely (the classical warp solves it per pixel).

    python -m training.warp_convert checkpoints/warp/checkpoint.safetensors runs/warp/init.safetensors --residual
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from .checkpoint import CheckpointState, Models, load_checkpoint, save_checkpoint
from .errors import CheckpointError
from .networks import WarpGenerator
from .networks.warp_generator import MouthInterior, PiecewiseAffineField


def _warp_generator(models: Models) -> WarpGenerator:
    """The checkpoint's warp generator; a CheckpointError for any other family."""
    if not isinstance(models.generator, WarpGenerator):
        raise CheckpointError("only a warp-family checkpoint can be converted (its generator is not a warp generator)")
    return models.generator


def to_residual(models: Models, mask_logit: float = 0.0) -> None:
    """Switch a warp-family model to residual synthesis in place (see the module docstring)."""
    gen = _warp_generator(models)
    if models.config.net.warp.synth_residual:
        raise CheckpointError("the checkpoint already uses residual synthesis")
    models.config.net.warp.synth_residual = True
    models.config.net.warp.mask_bias = float(mask_logit)
    gen.config = models.config.net.warp
    out = gen.synthesiser.out
    with torch.no_grad():
        out.weight.zero_()  # colour correction 0; the mask a constant logit (learns from here)
        out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, float(mask_logit)]))


def add_mouth_channel(models: Models) -> None:
    """Give a warp-family model's synthesis branch the mouth-interior input, in place (see the module
    docstring): a zero-weighted input channel, so its frames do not change."""
    gen = _warp_generator(models)
    if models.config.net.warp.mouth_channel:
        raise CheckpointError("the checkpoint already has the mouth channel")
    models.config.net.warp.mouth_channel = True
    gen.config = models.config.net.warp
    gen.mouth = MouthInterior(gen.config.synth_grid)
    old = gen.synthesiser.c1
    new = torch.nn.Conv2d(old.in_channels + 1, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, :old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    gen.synthesiser.c1 = new


def _replace_warp_config(models: Models, **changes) -> WarpGenerator:
    """Give a warp-family model a copy of its ``warp`` config with ``changes`` (validated before
    anything changes: a refused value leaves the model as it was); returns its generator."""
    gen = _warp_generator(models)
    wc = dataclasses.replace(models.config.net.warp, **changes)
    wc.validate()
    models.config.net.warp = gen.config = wc
    return gen


def set_mouth_mask_gain(models: Models, gain: float) -> None:
    """Set a warp-family model's ``warp.mouth_mask_gain`` (in place; see the module docstring)."""
    _replace_warp_config(models, mouth_mask_gain=float(gain))


def set_blend_top(models: Models, top: int) -> None:
    """Set a warp-family model's ``warp.blend_top`` (in place; see the module docstring)."""
    _replace_warp_config(models, blend_top=int(top))


def set_prior_grid(models: Models, grid: int) -> None:
    """Give a warp-family model's analytic field ``grid`` x ``grid`` resolution (in place)."""
    _replace_warp_config(models, prior_grid=int(grid)).field = PiecewiseAffineField(int(grid))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m training.warp_convert", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a warp-family checkpoint")
    p.add_argument("out", type=Path, help="where to write the converted checkpoint (must not exist)")
    p.add_argument("--residual", action="store_true", help="first design -> residual synthesis")
    p.add_argument("--mask-logit", type=float, default=0.0, help="with --residual: the mask's starting logit (0: 0.5)")
    p.add_argument("--mouth-channel", action="store_true", help="add the mouth-interior input to the synthesis branch")
    p.add_argument("--mouth-mask-gain", type=float, help="lower the mask by G x the mouth channel (needs it)")
    p.add_argument("--blend-top", type=int, help="shots warped and blended per frame (1..8)")
    p.add_argument("--prior-grid", type=int, help="the analytic field's resolution (a multiple of 4)")
    args = p.parse_args(argv)
    valued = (args.mouth_mask_gain, args.blend_top, args.prior_grid)
    if not args.residual and not args.mouth_channel and all(v is None for v in valued):
        p.error("nothing to convert: give --residual, --mouth-channel, --mouth-mask-gain, --blend-top and/or --prior-grid")
    if args.out.exists() or args.out.resolve() == args.checkpoint.resolve():
        p.error(f"{args.out} exists; choose a new path")
    models, state = load_checkpoint(args.checkpoint)
    if args.residual:
        to_residual(models, args.mask_logit)
    if args.mouth_channel:
        add_mouth_channel(models)
    if args.mouth_mask_gain is not None:
        set_mouth_mask_gain(models, args.mouth_mask_gain)
    if args.blend_top is not None:
        set_blend_top(models, args.blend_top)
    if args.prior_grid is not None:
        set_prior_grid(models, args.prior_grid)
    save_checkpoint(args.out, models, CheckpointState(step=state.step, videos=state.videos, data=state.data,
                                                      kind=state.kind, extra=state.extra))
    wc = models.config.net.warp
    print(f"{args.out}: step {state.step}, {'residual' if wc.synth_residual else 'absolute'} synthesis, "
          f"prior grid {wc.prior_grid}, mouth channel {'on' if wc.mouth_channel else 'off'}, "
          f"mouth mask gain {wc.mouth_mask_gain:g}, blend top {wc.blend_top}")


if __name__ == "__main__":
    main()
