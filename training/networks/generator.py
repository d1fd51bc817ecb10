"""Generator G(y, e): rasterised landmarks -> face, AdaIN parameters projected from the identity.

Downsampling residual blocks with instance norm, residual bottleneck and upsampling residual
blocks with AdaIN whose scale and bias are ``psi = P e`` (P a learned matrix), self-attention at
configured resolutions, tanh output. ``synthesize`` takes psi directly: fine-tuning trains psi
itself (initialised from P e), and a personalised export bakes it in.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import NetworkConfig
from ..rasterizer import LandmarkRasterizer
from .blocks import AdaIN, ResBlockAdaIN, ResBlockDown, SelfAttention, conv3x3, sn


class Generator(nn.Module):
    """landmarks [B,68,2] + identity [B,D] -> image [B,3,R,R] in [-1, 1]."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        use_sn, sep = config.spectral_norm, config.gen_separable
        self.rasterizer = LandmarkRasterizer(config.resolution, config.raster)
        res, cin = config.resolution, self.rasterizer.channels
        self.stem = conv3x3(cin, config.gen_stem, use_sn=use_sn) if config.gen_stem else None
        if self.stem is not None:
            cin = config.gen_stem
        self.down = nn.ModuleList()
        self.down_attn = nn.ModuleDict()
        for i, cout in enumerate(config.gen_down):
            self.down.append(ResBlockDown(cin, cout, norm="in", pool_first=True, separable=sep,
                                          use_sn=use_sn, first=(i == 0 and self.stem is None)))
            cin, res = cout, res // 2
            if res in config.gen_attention:
                self.down_attn[str(i)] = SelfAttention(cout, use_sn)
        self.bottleneck = nn.ModuleList(
            ResBlockAdaIN(cin, cin, separable=sep, use_sn=use_sn) for _ in range(config.gen_bottleneck)
        )
        self.up = nn.ModuleList()
        self.up_attn = nn.ModuleDict()
        for i, cout in enumerate(config.gen_up):
            self.up.append(ResBlockAdaIN(cin, cout, upsample=True, separable=sep, use_sn=use_sn))
            cin, res = cout, res * 2
            if res in config.gen_attention:
                self.up_attn[str(i)] = SelfAttention(cout, use_sn)
        self.out_norm = AdaIN(cin)
        self.out_conv = sn(nn.Conv2d(cin, 3, 3, padding=1), use_sn)
        self.num_adain_params = (sum(b.num_params for b in self.bottleneck)
                                 + sum(b.num_params for b in self.up) + self.out_norm.num_params)
        # P: identity -> AdaIN parameters (small init so AdaIN starts near plain instance norm).
        self.projection = nn.Linear(config.embedding_dim, self.num_adain_params)
        nn.init.normal_(self.projection.weight, std=0.01)
        nn.init.zeros_(self.projection.bias)

    def project(self, identity: torch.Tensor) -> torch.Tensor:
        """psi = P e: [B, D] -> [B, num_adain_params]."""
        return self.projection(identity)

    def forward(self, landmarks: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return self.synthesize(landmarks, self.project(identity))

    def synthesize(self, landmarks: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """Render from AdaIN parameters psi [B or 1, num_adain_params]."""
        x = self.rasterizer(landmarks)
        psi = psi.expand(x.shape[0], -1)  # a personalised psi [1, P] serves any batch
        if self.stem is not None:
            x = self.stem(x)
        for i, block in enumerate(self.down):
            x = block(x)
            if str(i) in self.down_attn:
                x = self.down_attn[str(i)](x)
        offset = 0
        for block in self.bottleneck:
            x = block(x, psi[:, offset: offset + block.num_params])
            offset += block.num_params
        for i, block in enumerate(self.up):
            x = block(x, psi[:, offset: offset + block.num_params])
            offset += block.num_params
            if str(i) in self.up_attn:
                x = self.up_attn[str(i)](x)
        x = F.relu(self.out_norm(x, psi[:, offset:]))
        return torch.tanh(self.out_conv(x))


class PersonalisedGenerator(nn.Module):
    """A fine-tuned generator with its AdaIN parameters baked in: landmarks -> image."""

    def __init__(self, generator: Generator, psi: torch.Tensor) -> None:
        super().__init__()
        self.generator = generator
        self.register_buffer("psi", psi.detach().reshape(1, -1).clone())

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        return self.generator.synthesize(landmarks, self.psi)
