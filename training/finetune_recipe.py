"""The few-shot fine-tuning recipe: its schedule as a dataclass and its command-line options.

Torch-free, so that tools can parse their options (bench/quality.py runs without torch when it
skips ``ours_ft``); :func:`training.finetune.finetune` runs the recipe.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass

from .errors import TrainingError
from .precision import PRECISIONS, Precision


@dataclass
class FinetuneConfig:
    """Fine-tuning schedule.

    The default is content loss only (multi-scale L1 + perceptual) at 10x the paper's rates, with
    the shots jittered (``augment``, below). Without the jitter, on the
    held-out clips (``python -m training.heldout_eval CKPT --finetune 50,100,200,300 --limit 2``,
    step-11,953 model, K = 8, bf16) it reaches SSIM 0.770 after 200 steps and 0.781 after 300 (the
    unchanged nearest shot: 0.775), against 0.752 after 200 at 4x the paper's rates and 0.737 for
    the paper's recipe (with the discriminator) at 4x its rates; a step costs about half as much
    without the discriminator. ``use_discriminator=True`` adds the paper's adversarial and
    feature-matching losses; the paper's own recipe is that with ``lr_scale`` 0.1 (its rates) and
    300 steps (docs/model-card.md, "Fine-tuning recipe").
    """

    steps: int = 200
    lr_gen: float = 5e-4  # the paper: 5e-5
    lr_psi: float = 5e-3  # the AdaIN parameters move further than the shared weights
    lr_disc: float = 2e-3  # the paper: 2e-4 (used with use_discriminator)
    batch_size: int = 4
    seed: int = 0
    use_discriminator: bool = False
    # A random similarity jitter of each shot and its landmarks (finetune.jitter): the fine-tuned model
    # follows the driver's landmarks better. bench/quality.py, K = 8, 6 held-out clips, 200 steps:
    # 0.1 against 0 gives SSIM 0.735 / 0.722, landmark error 0.042 / 0.049, CSIM 0.945 / 0.942.
    augment: float = 0.1
    precision: Precision = "auto"  # bf16 autocast where the CPU has native bf16 (training/precision.py)
    channels_last: bool = False


def add_finetune_arguments(parser, prefix: str = "", steps: int | None = FinetuneConfig.steps) -> None:
    """The fine-tuning recipe's command-line options (``--{prefix}lr-scale`` etc.), shared by the tools.

    ``parser``: an argparse parser or argument group. ``steps``: the default of ``--{prefix}steps``;
    None leaves that option out (the caller chooses the steps itself).
    """
    base = FinetuneConfig()
    if steps is not None:
        parser.add_argument(f"--{prefix}steps", type=int, default=steps, help=f"fine-tuning steps (default {steps})")
    parser.add_argument(f"--{prefix}lr-scale", type=float, default=1.0,
                        help=f"multiply the fine-tuning learning rates (generator {base.lr_gen:g}, AdaIN "
                             f"parameters {base.lr_psi:g}, discriminator {base.lr_disc:g}) by this")
    parser.add_argument(f"--{prefix}adversarial", action=argparse.BooleanOptionalAction,
                        default=base.use_discriminator,
                        help="fine-tune the discriminator too and add its adversarial and feature-matching "
                             "losses (the paper's losses; about twice the cost per step; default "
                             f"{'on' if base.use_discriminator else 'off'})")
    parser.add_argument(f"--{prefix}augment", type=float, default=base.augment, metavar="A",
                        help="jitter each shot and its landmarks by a random similarity transform: scale 1 ± A, "
                             f"shift ± A, rotation ± A rad (default {base.augment:g}; 0: none)")
    parser.add_argument(f"--{prefix}precision", choices=PRECISIONS, default=base.precision,
                        help="bf16: autocast forward passes, faster on CPUs with AVX-512 BF16 and on GPUs")
    parser.add_argument(f"--{prefix}channels-last", action=argparse.BooleanOptionalAction,
                        default=base.channels_last, help="NHWC activations (faster convolutions on CPU)")


def finetune_config_from_arguments(args: argparse.Namespace, prefix: str = "") -> FinetuneConfig:
    """The :class:`FinetuneConfig` that :func:`add_finetune_arguments`'s options describe."""
    base = FinetuneConfig()

    def get(name: str, default):
        return getattr(args, (prefix + name).replace("-", "_"), default)

    steps, scale, augment = get("steps", base.steps), get("lr-scale", 1.0), get("augment", base.augment)
    if steps < 1 or not (math.isfinite(scale) and scale > 0):
        raise TrainingError(f"fine-tuning needs steps >= 1 and a positive learning-rate scale, got {steps} and {scale}")
    if not 0 <= augment <= 0.5:
        raise TrainingError(f"fine-tuning augment must be in [0, 0.5], got {augment}")
    return dataclasses.replace(base, steps=steps, lr_gen=base.lr_gen * scale, lr_psi=base.lr_psi * scale,
                               lr_disc=base.lr_disc * scale, use_discriminator=get("adversarial", base.use_discriminator),
                               augment=augment, precision=get("precision", base.precision),
                               channels_last=get("channels-last", base.channels_last))
