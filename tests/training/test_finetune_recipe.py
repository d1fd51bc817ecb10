"""The fine-tuning recipe's options: one definition shared by training.finetune, heldout_eval and the quality bench."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from training.errors import TrainingError
from training.finetune_recipe import FinetuneConfig, add_finetune_arguments, finetune_config_from_arguments

REPO = Path(__file__).resolve().parents[2]


def _parse(argv: list[str], prefix: str = "", steps: int | None = FinetuneConfig.steps) -> FinetuneConfig:
    p = argparse.ArgumentParser()
    add_finetune_arguments(p, prefix=prefix, steps=steps)
    return finetune_config_from_arguments(p.parse_args(argv), prefix=prefix)


def test_defaults_are_the_dataclass_defaults() -> None:
    assert _parse([]) == FinetuneConfig()


def test_options_with_a_prefix_change_the_recipe() -> None:
    base = FinetuneConfig()
    cfg = _parse(["--ft-steps", "40", "--ft-lr-scale", "2", "--ft-precision", "bf16", "--ft-channels-last", "--ft-augment", "0.1",
                  "--no-ft-adversarial" if base.use_discriminator else "--ft-adversarial"], prefix="ft-")
    assert cfg.steps == 40 and cfg.precision == "bf16" and cfg.channels_last and cfg.augment == 0.1
    assert cfg.use_discriminator is not base.use_discriminator
    assert (cfg.lr_gen, cfg.lr_psi, cfg.lr_disc) == pytest.approx((2 * base.lr_gen, 2 * base.lr_psi, 2 * base.lr_disc))


def test_without_a_steps_option_the_default_steps_are_kept() -> None:
    assert _parse([], steps=None).steps == FinetuneConfig().steps


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--lr-scale", "0"], ["--lr-scale", "nan"], ["--lr-scale", "inf"], ["--augment", "-0.1"]])
def test_bad_values_are_named(argv: list[str]) -> None:
    with pytest.raises(TrainingError, match="fine-tuning (needs steps|augment must be)"):
        _parse(argv)


def test_the_recipe_module_and_the_quality_bench_do_not_import_torch() -> None:
    code = "import sys, training.finetune_recipe, bench.quality; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
