"""The weight average (train.ema_decay): its update rule, what checkpoints ship, exact resume."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from training.averaging import Averaged
from training.checkpoint import TRAIN_PREFIX, build_models, load_checkpoint
from training.config import tiny_config
from training.errors import ConfigError
from training.train import RunOptions, train


def _tiny_ema(steps: int, decay: float = 0.5):
    cfg = tiny_config()
    cfg.train.k_shots = 2
    cfg.train.steps = steps
    cfg.train.checkpoint_every = 2
    cfg.train.ema_decay = decay
    return cfg.validate()


def _weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return list(module.state_dict().values())


def test_update_is_the_exponential_moving_average() -> None:
    models = build_models(tiny_config(), 1)
    avg = Averaged.copy_of(models.embedder, models.generator)
    before = [p.clone() for p in avg.generator.parameters()]
    with torch.no_grad():
        for p in models.generator.parameters():
            p.add_(torch.randn_like(p))
    avg.update(models.embedder, models.generator, 0.9)
    for old, new, live in zip(before, avg.generator.parameters(), models.generator.parameters()):
        assert torch.allclose(new, 0.9 * old + 0.1 * live, atol=1e-6)
        assert not new.requires_grad


def test_decay_out_of_range_is_a_config_error() -> None:
    cfg = tiny_config()
    cfg.train.ema_decay = 1.0
    with pytest.raises(ConfigError, match="ema_decay"):
        cfg.validate()


def test_checkpoints_ship_the_average_and_resume_both_exactly(synthetic: Path, tmp_path: Path) -> None:
    compact = tmp_path / "compact.safetensors"
    straight = train(_tiny_ema(4), RunOptions(data=[synthetic], out=tmp_path / "a", quiet=True, compact=compact))
    train(_tiny_ema(2), RunOptions(data=[synthetic], out=tmp_path / "b", quiet=True))
    resumed = train(_tiny_ema(4), RunOptions(data=[synthetic], out=tmp_path / "b", resume=True, quiet=True))
    for for_training in (False, True):
        m1, _ = load_checkpoint(straight, for_training=for_training)
        m2, _ = load_checkpoint(resumed, for_training=for_training)
        for a, b in zip(_weights(m1.generator) + _weights(m1.embedder), _weights(m2.generator) + _weights(m2.embedder)):
            assert torch.allclose(a, b, atol=1e-6)

    shipped, _ = load_checkpoint(straight)
    trained, _ = load_checkpoint(straight, for_training=True)
    assert shipped.averaged is None and trained.averaged is not None
    for a, b in zip(_weights(shipped.generator), _weights(trained.averaged.generator)):
        assert torch.equal(a, b)  # the loader's default weights are the average
    differs = [not torch.equal(a, b) for a, b in zip(_weights(shipped.generator), _weights(trained.generator))]
    assert any(differs), "the average should not equal the last step's weights"

    with safe_open(str(compact), framework="pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith(TRAIN_PREFIX) for k in keys)
    from_compact, _ = load_checkpoint(compact, for_training=True)
    assert from_compact.averaged is None  # --init from it starts the optimiser's weights at the average
    for a, b in zip(_weights(from_compact.generator), _weights(shipped.generator)):
        assert torch.allclose(a, b.half().float())
