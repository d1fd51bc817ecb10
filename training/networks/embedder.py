"""Embedder E(x, y): a frame and its rasterised landmarks -> a D-dimensional identity vector."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import NetworkConfig
from ..rasterizer import LandmarkRasterizer
from .blocks import sn
from .trunk import DownTrunk


class Embedder(nn.Module):
    """image [N,3,R,R] in [-1,1] + landmarks [N,68,2] (crop-normalised) -> embedding [N,D]."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.rasterizer = LandmarkRasterizer(config.resolution, config.raster)
        self.trunk = DownTrunk(3 + self.rasterizer.channels, config.emb_widths, config.resolution,
                               config.emb_attention, config.spectral_norm, config.trunk_pool_first)
        c = self.trunk.out_channels
        self.proj = sn(nn.Linear(c, config.embedding_dim), config.spectral_norm) \
            if c != config.embedding_dim else None

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, self.rasterizer(landmarks)], dim=1)
        h, _ = self.trunk(x)
        e = torch.amax(F.relu(h), dim=(2, 3))  # global max pooling
        return self.proj(e) if self.proj is not None else e
