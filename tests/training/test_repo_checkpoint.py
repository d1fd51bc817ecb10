"""The repo's warp checkpoint resumes with the config README's training command names: a config
whose architecture differs (say a new warp option) would refuse it at the start of a session."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_checkpoints_warp_loads_for_training_with_the_readme_config() -> None:
    from training.checkpoint import load_checkpoint
    from training.config import load_config

    command = next(line for line in (REPO / "README.md").read_text().splitlines()
                   if "training.train" in line and "--config training/configs/" in line)
    config_path = re.search(r"--config (training/configs/\S+\.json)", command).group(1)
    config = load_config(str(REPO / config_path)).validate()
    models, state = load_checkpoint(REPO / "checkpoints" / "warp" / "checkpoint.safetensors", config,
                                    for_training=True)
    assert state.step > 0 and models.config.net.family == "warp"
    assert (models.mouth_discriminator is not None) == (config.loss.w_mouth_adv > 0)
