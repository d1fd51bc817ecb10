"""Projection discriminator D(x, y, i) with a learned vector W_i per training video."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import NetworkConfig
from ..rasterizer import LandmarkRasterizer
from .blocks import ResBlock
from .trunk import DownTrunk


class Discriminator(nn.Module):
    """Realism r = v^T (W_i + w_0) + b, v the pooled features of image + rasterised landmarks.

    ``W`` has one row per training video; its rows are matched to the embedder's output by the
    embedding-match loss, so its width is the embedding size D.
    """

    def __init__(self, config: NetworkConfig, num_videos: int) -> None:
        super().__init__()
        if config.disc_widths[-1] != config.embedding_dim:
            raise ValueError("the discriminator's last width must equal embedding_dim (W_i ~ e_i)")
        self.rasterizer = LandmarkRasterizer(config.resolution, config.raster)
        self.trunk = DownTrunk(3 + self.rasterizer.channels, config.disc_widths, config.resolution,
                               config.disc_attention, config.spectral_norm, config.trunk_pool_first)
        self.head = ResBlock(self.trunk.out_channels, config.spectral_norm)
        d = config.embedding_dim
        self.W = nn.Parameter(torch.randn(num_videos, d) * 0.02)
        self.w0 = nn.Parameter(torch.zeros(d))
        self.b = nn.Parameter(torch.zeros(1))

    @property
    def num_videos(self) -> int:
        return self.W.shape[0]

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor, video_index: torch.Tensor,
                w_override: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Score [B] and intermediate features. ``w_override`` [B,D] replaces W_i (fine-tuning)."""
        x = torch.cat([image, self.rasterizer(landmarks)], dim=1)
        h, feats = self.trunk(x)
        h = self.head(h)
        feats.append(h)
        v = torch.sum(F.relu(h), dim=(2, 3))  # global sum pooling
        w = w_override if w_override is not None else self.W[video_index]
        score = (v * (w + self.w0)).sum(dim=1) + self.b
        return score, feats
