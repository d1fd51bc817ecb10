"""An exponential moving average (EMA) of the embedder's and generator's weights.

Meta-learning at batch 1 is noisy: the held-out scores swing by more than a dB between checkpoints a
few hundred steps apart. The average of the weights over the last ~1/(1 - decay) steps is a better
model than any single step's (the usual practice for GAN generators), at the cost of one copy of the
two networks. Checkpoints store the average as *the* embedder and generator (what export, fine-tuning
and evaluation use) and the optimiser's own weights under ``train.`` for an exact ``--resume``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .networks import Embedder, Generator


@dataclass
class Averaged:
    """The averaged copies of the two networks that ship."""

    embedder: Embedder
    generator: Generator

    @classmethod
    def copy_of(cls, embedder: Embedder, generator: Generator) -> "Averaged":
        """Start the average at the current weights (frozen copies)."""
        avg = cls(copy.deepcopy(embedder), copy.deepcopy(generator))
        for module in (avg.embedder, avg.generator):
            module.eval()
            module.requires_grad_(False)
        return avg

    def to(self, device: torch.device) -> "Averaged":
        self.embedder.to(device)
        self.generator.to(device)
        return self

    @torch.no_grad()
    def update(self, embedder: nn.Module, generator: nn.Module, decay: float) -> None:
        """avg <- decay * avg + (1 - decay) * live, for every parameter; buffers are copied."""
        for avg, live in ((self.embedder, embedder), (self.generator, generator)):
            ours, theirs = list(avg.parameters()), list(live.parameters())
            if len(ours) != len(theirs):
                raise ValueError("the averaged and live networks have different parameters")
            for a, p in zip(ours, theirs):
                a.lerp_(p, 1.0 - decay)
            for a, b in zip(avg.buffers(), live.buffers()):
                a.copy_(b)
