"""A small model package made by the tests: a random `tiny` model exported with `python -m export`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def export_tiny_package(out: Path, personalised: bool = False) -> Path:
    """Export a randomly initialised tiny model (64x64) to ``out`` through the real exporter."""
    import torch

    from training.checkpoint import CheckpointState, build_models, save_checkpoint
    from training.config import tiny_config

    torch.manual_seed(0)
    models = build_models(tiny_config(), num_videos=2)
    state = CheckpointState(videos=["a", "b"])
    if personalised:
        models.psi = models.generator.project(torch.randn(1, models.config.net.embedding_dim)).detach()
        state.kind = "personalised"
    ckpt = out.parent / f"{out.name}.safetensors"
    save_checkpoint(ckpt, models, state)
    proc = subprocess.run([sys.executable, "-m", "export", str(ckpt), str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory) -> Path:
    return export_tiny_package(tmp_path_factory.mktemp("pkg") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_package: Path):
    import talkinghead

    return talkinghead.load_model(tiny_package, providers="cpu", intra_op_threads=1)
