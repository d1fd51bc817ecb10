"""Leave out of the per-frame graph the self-attention blocks a trained generator does not use.

A SAGAN self-attention block adds ``gamma * out(attention(x))`` to its input, with ``gamma``
starting at zero. Training may leave it there: the default ``lite`` model at step 7,500 has
``gamma = -1.6e-3`` and ``7.9e-3`` in its two 32x32 attention blocks, and removing both moves the
output by 1.1e-4 at most (in [-1, 1]; one 8-bit level is 7.8e-3), while they cost 12% of the
generator's time on a CPU (two 1024x1024 attention matrices per frame; docs/performance.md).

:func:`negligible_attention` measures that on the export's own parity inputs: it switches blocks
off one at a time (``gamma = 0``, exactly the block's removal) and keeps each one off while the
output stays within ``tolerance`` (max abs, all blocks off together) of the full model.
:func:`remove_attention` then replaces those blocks by identities in the copy that is exported, so
the graph has no attention nodes at all. The exporter's parity check compares ONNX Runtime with the
PyTorch model with the same blocks off (:func:`attention_off`), and records the pruning's own error
against the full model in the manifest (``parity.pruned``).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from training.networks.blocks import SelfAttention
from training.networks.generator import Generator, PersonalisedGenerator

from .errors import ExportError

ATTENTION_GROUPS = ("down_attn", "up_attn")


@dataclass(frozen=True)
class PrunedAttention:
    """Which attention blocks were left out and what that cost against the full model.

    Attributes:
        blocks: module paths inside the generator (``"down_attn.2"``).
        tolerance: the max abs error allowed for leaving blocks out.
        max_abs: the max abs difference of the output with these blocks off (parity inputs).
        mean_abs: the mean abs difference.
    """

    blocks: tuple[str, ...]
    tolerance: float
    max_abs: float
    mean_abs: float

    def as_dict(self) -> dict[str, object]:
        return {"blocks": list(self.blocks), "tolerance": self.tolerance,
                "max_abs": float(f"{self.max_abs:.4g}"), "mean_abs": float(f"{self.mean_abs:.4g}")}


def _core(generator: nn.Module) -> Generator:
    core = generator.generator if isinstance(generator, PersonalisedGenerator) else generator
    if not isinstance(core, Generator):
        raise ExportError(f"attention pruning needs a Generator, got {type(generator).__name__}")
    return core


def attention_blocks(generator: nn.Module) -> dict[str, SelfAttention]:
    """The generator's self-attention blocks by module path (``"up_attn.0"``), in forward order."""
    core = _core(generator)
    return {f"{group}.{key}": block for group in ATTENTION_GROUPS
            for key, block in getattr(core, group).items() if isinstance(block, SelfAttention)}


@contextmanager
def attention_off(generator: nn.Module, names: tuple[str, ...] | list[str]) -> Iterator[None]:
    """Within the block, the named attention blocks add nothing (``gamma = 0``); restored after.
    No names: nothing changes (and ``generator`` may be any module)."""
    if not names:
        yield
        return
    blocks = attention_blocks(generator)
    missing = [n for n in names if n not in blocks]
    if missing:
        raise ExportError(f"no attention block(s) {missing} in the generator (has {sorted(blocks)})")
    saved = {n: blocks[n].gamma.detach().clone() for n in names}
    try:
        with torch.no_grad():
            for n in names:
                blocks[n].gamma.zero_()
        yield
    finally:
        with torch.no_grad():
            for n, gamma in saved.items():
                blocks[n].gamma.copy_(gamma)


def remove_attention(generator: nn.Module, names: tuple[str, ...] | list[str]) -> nn.Module:
    """Replace the named attention blocks by identities (in place); returns ``generator``."""
    core = _core(generator)
    blocks = attention_blocks(generator)
    for name in names:
        if name not in blocks:
            raise ExportError(f"no attention block {name!r} in the generator (has {sorted(blocks)})")
        group, key = name.split(".")
        getattr(core, group)[key] = nn.Identity()
    return generator


def _render(generator: nn.Module, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return generator(*(torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values())).numpy()


def negligible_attention(generator: nn.Module, feeds: Mapping[str, np.ndarray],
                         tolerance: float) -> PrunedAttention:
    """The attention blocks that can be left out with the output within ``tolerance`` (max abs) of
    the full model on ``feeds`` (the generator's inputs, in order), chosen greedily in forward order."""
    if tolerance < 0:
        raise ExportError(f"attention pruning tolerance must be >= 0, got {tolerance}")
    generator.eval()
    reference = _render(generator, feeds)
    chosen: list[str] = []
    max_abs = mean_abs = 0.0
    for name in attention_blocks(generator):
        with attention_off(generator, chosen + [name]):
            err = np.abs(_render(generator, feeds) - reference)
        if float(err.max()) <= tolerance:
            chosen.append(name)
            max_abs, mean_abs = float(err.max()), float(err.mean())
    return PrunedAttention(tuple(chosen), tolerance, max_abs, mean_abs)
