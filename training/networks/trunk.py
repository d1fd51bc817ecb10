"""Residual downsampling trunk on image + rasterised landmarks (embedder and discriminator)."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ResBlockDown, SelfAttention


class DownTrunk(nn.Module):
    """Residual downsampling blocks (no normalisation) with self-attention at chosen resolutions.

    Returns the final feature map and every block's output (for feature matching).
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...], resolution: int,
                 attention: tuple[int, ...], use_sn: bool = True, pool_first: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        self.attn = nn.ModuleDict()
        cin, res = in_channels, resolution
        for i, cout in enumerate(widths):
            self.blocks.append(ResBlockDown(cin, cout, use_sn=use_sn, first=(i == 0),
                                            pool_first=pool_first and i == 0))
            cin, res = cout, res // 2
            if res in attention:
                self.attn[str(i)] = SelfAttention(cout, use_sn)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if str(i) in self.attn:
                x = self.attn[str(i)](x)
            feats.append(x)
        return x, feats
