"""A patch discriminator on the mouth box (warp family, ``loss.w_mouth_adv``).

Input: the mouth crop (``training.losses.mouth_crops``, RGB in [-1, 1]) and, as a fourth channel,
the target's inner-lip polygon filled (``MouthInterior.fill``) cropped the same way, so that it
judges whether the mouth looks open where the landmarks say it is open: an unconditional one would
accept the warp's stretched lips as a plausible closed mouth. Output: a logit per patch (a crop of
64 px gives 4 x 4). Spectral norm on every layer, as the paper's discriminator.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations


class MouthDiscriminator(nn.Module):
    """[B, 4, S, S] (mouth crop + inner-mouth fill) -> patch logits [B, 1, S/16, S/16]."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width, 4 * width)
        layers, cin = [], 4
        for w in widths:
            layers.append(parametrizations.spectral_norm(nn.Conv2d(cin, w, 4, stride=2, padding=1)))
            cin = w
        self.layers = nn.ModuleList(layers)
        self.out = parametrizations.spectral_norm(nn.Conv2d(cin, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
        return self.out(x)
