"""Building blocks shared by the embedder, generator and discriminator."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations


def sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Spectral normalisation of a conv/linear layer's weight (as in the paper).

    Export folds it by loading the evaluated weights into modules built without it
    (``export.onnx_export.folded_copy``).
    """
    return parametrizations.spectral_norm(module) if enabled else module


def conv3x3(cin: int, cout: int, *, separable: bool = False, use_sn: bool = True) -> nn.Module:
    """A 3x3 conv, or a depthwise 3x3 followed by a pointwise 1x1 when ``separable``."""
    if not separable:
        return sn(nn.Conv2d(cin, cout, 3, padding=1), use_sn)
    return nn.Sequential(
        sn(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), use_sn),
        sn(nn.Conv2d(cin, cout, 1), use_sn),
    )


def conv1x1(cin: int, cout: int, use_sn: bool = True) -> nn.Module:
    return sn(nn.Conv2d(cin, cout, 1), use_sn)


class SelfAttention(nn.Module):
    """SAGAN self-attention: x + gamma * softmax(q k^T) v, gamma starts at 0."""

    def __init__(self, channels: int, use_sn: bool = True) -> None:
        super().__init__()
        inner = max(channels // 8, 1)
        self.q = conv1x1(channels, inner, use_sn)
        self.k = conv1x1(channels, inner, use_sn)
        self.v = conv1x1(channels, max(channels // 2, 1), use_sn)
        self.out = conv1x1(max(channels // 2, 1), channels, use_sn)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.q(x).flatten(2).transpose(1, 2)  # [B, HW, c']
        k = self.k(x).flatten(2)  # [B, c', HW]
        v = self.v(x).flatten(2)  # [B, c'', HW]
        attn = torch.softmax(torch.bmm(q, k), dim=-1)  # [B, HW, HW]
        o = torch.bmm(v, attn.transpose(1, 2)).reshape(b, -1, h, w)
        return x + self.gamma * self.out(o)


class ResBlockDown(nn.Module):
    """Residual block that halves the resolution.

    ``norm``: "none" (embedder, discriminator) or "in" (generator: instance norm with affine).
    ``pool_first``: average-pool before the convs (4x cheaper; used by the generator).
    ``first``: no activation before the first conv (the block that sees the raw input).
    """

    def __init__(self, cin: int, cout: int, *, norm: str = "none", pool_first: bool = False,
                 separable: bool = False, use_sn: bool = True, first: bool = False) -> None:
        super().__init__()
        self.pool_first = pool_first
        self.first = first
        self.conv1 = conv3x3(cin, cout, separable=separable, use_sn=use_sn)
        self.conv2 = conv3x3(cout, cout, separable=separable, use_sn=use_sn)
        self.skip = conv1x1(cin, cout, use_sn)
        if norm == "in":
            self.norm1: nn.Module = nn.InstanceNorm2d(cin, affine=True)
            self.norm2: nn.Module = nn.InstanceNorm2d(cout, affine=True)
        elif norm == "none":
            self.norm1 = nn.Identity()
            self.norm2 = nn.Identity()
        else:
            raise ValueError(f"unknown norm {norm!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_first:
            x = F.avg_pool2d(x, 2)
        h = self.norm1(x)
        if not self.first:
            h = F.relu(h)
        h = self.conv1(h)
        h = self.conv2(F.relu(self.norm2(h)))
        s = self.skip(x)
        if not self.pool_first:
            h = F.avg_pool2d(h, 2)
            s = F.avg_pool2d(s, 2)
        return h + s


class ResBlock(nn.Module):
    """Residual block at constant resolution, no normalisation (discriminator head)."""

    def __init__(self, channels: int, use_sn: bool = True) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels, use_sn=use_sn)
        self.conv2 = conv3x3(channels, channels, use_sn=use_sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class AdaIN(nn.Module):
    """Instance norm whose scale and bias come from outside: x_hat * (1 + gamma) + beta."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.norm = nn.InstanceNorm2d(channels, affine=False)

    @property
    def num_params(self) -> int:
        return 2 * self.channels

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        gamma, beta = params[:, : self.channels], params[:, self.channels :]
        return self.norm(x) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class ResBlockAdaIN(nn.Module):
    """Residual block with AdaIN normalisation; optionally upsamples 2x (nearest)."""

    def __init__(self, cin: int, cout: int, *, upsample: bool = False, separable: bool = False,
                 use_sn: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.norm1 = AdaIN(cin)
        self.norm2 = AdaIN(cout)
        self.conv1 = conv3x3(cin, cout, separable=separable, use_sn=use_sn)
        self.conv2 = conv3x3(cout, cout, separable=separable, use_sn=use_sn)
        self.skip = conv1x1(cin, cout, use_sn) if (cin != cout) else None

    @property
    def num_params(self) -> int:
        return self.norm1.num_params + self.norm2.num_params

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        n1 = self.norm1.num_params
        h = F.relu(self.norm1(x, params[:, :n1]))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = self.conv1(h)
        h = self.conv2(F.relu(self.norm2(h, params[:, n1:])))
        s = self.skip(x) if self.skip is not None else x
        return h + s
