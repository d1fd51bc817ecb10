"""Attention blocks that add nothing are measured, left out of the exported generator, and recorded."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch

from export import ExportError, export_checkpoint
from export.prune import attention_blocks, attention_off, negligible_attention, remove_attention
from talkinghead.package import ModelPackage
from tests.training.synthetic import make_prepared_dataset
from training.checkpoint import CheckpointState, build_models, save_checkpoint
from training.config import Config, tiny_config
from training.networks.generator import Generator


def _config() -> Config:
    """The tiny model with attention at 32x32: one block in the encoder, one in the decoder."""
    cfg = tiny_config()
    return dataclasses.replace(cfg, net=dataclasses.replace(cfg.net, gen_attention=(32,)))


def _generator(gammas: dict[str, float]) -> Generator:
    torch.manual_seed(0)
    gen = Generator(_config().net).eval()
    with torch.no_grad():
        for name, block in attention_blocks(gen).items():
            block.gamma.fill_(gammas[name])
    return gen


def _feeds(n: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"landmarks": rng.uniform(-0.6, 0.6, (n, 68, 2)).astype(np.float32),
            "identity": rng.normal(0, 1, (n, 64)).astype(np.float32)}


def _render(gen: torch.nn.Module, feeds: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return gen(*(torch.from_numpy(v) for v in feeds.values())).numpy()


def test_generator_has_one_block_each_way():
    assert list(attention_blocks(_generator({"down_attn.0": 0.0, "up_attn.0": 0.0}))) == ["down_attn.0", "up_attn.0"]


def test_only_the_block_that_adds_nothing_is_pruned():
    gen = _generator({"down_attn.0": 0.0, "up_attn.0": 1.0})
    feeds = _feeds()
    before = _render(gen, feeds)
    plan = negligible_attention(gen, feeds, tolerance=2e-3)
    assert plan.blocks == ("down_attn.0",)
    assert plan.max_abs == 0.0
    # measuring leaves the model as it was
    assert attention_blocks(gen)["up_attn.0"].gamma.item() == 1.0
    np.testing.assert_array_equal(_render(gen, feeds), before)
    # with the used block off too, the output moves by more than the tolerance
    with attention_off(gen, ["down_attn.0", "up_attn.0"]):
        assert np.abs(_render(gen, feeds) - before).max() > 2e-3


def test_removal_is_the_same_function_as_switching_off():
    gen = _generator({"down_attn.0": 0.5, "up_attn.0": -0.3})
    feeds = _feeds()
    with attention_off(gen, ["up_attn.0"]):
        off = _render(gen, feeds)
    remove_attention(gen, ["up_attn.0"])
    assert list(attention_blocks(gen)) == ["down_attn.0"]
    np.testing.assert_allclose(_render(gen, feeds), off, atol=1e-6)


def test_unknown_block_is_an_export_error():
    gen = _generator({"down_attn.0": 0.0, "up_attn.0": 0.0})
    with pytest.raises(ExportError, match="up_attn.7"):
        remove_attention(gen, ["up_attn.7"])
    with pytest.raises(ExportError, match=">= 0"):
        negligible_attention(gen, _feeds(), tolerance=-1)


def _softmaxes(path) -> int:
    return sum(n.op_type == "Softmax" for n in onnx.load(str(path)).graph.node)


def test_export_leaves_out_the_unused_block_and_records_it(tmp_path):
    torch.manual_seed(0)
    models = build_models(_config(), 2)
    with torch.no_grad():
        models.generator.up_attn["0"].gamma.fill_(1.0)  # used; down_attn.0 stays at its initial 0
    ckpt = save_checkpoint(tmp_path / "m.safetensors", models, CheckpointState(step=0))
    data = make_prepared_dataset(tmp_path / "prepared", videos=2, frames=3, resolution=64)
    pruned = ModelPackage.load(export_checkpoint(ckpt, tmp_path / "pruned", calibration=data, samples=3).path)
    record = pruned.manifest.parity["pruned"]
    assert record["blocks"] == ["down_attn.0"] and record["max_abs"] == 0.0 and record["tolerance"] == 2e-3
    assert pruned.manifest.parity["generator"]["max_abs"] <= 1e-4  # ONNX vs PyTorch with that block off
    assert _softmaxes(pruned.generator_path) == 1
    full = ModelPackage.load(export_checkpoint(ckpt, tmp_path / "full", calibration=data, samples=3,
                                               prune_attention=0).path)
    assert "pruned" not in full.manifest.parity
    assert _softmaxes(full.generator_path) == 2
