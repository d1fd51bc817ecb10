"""Light augmentation for episodes: horizontal flip with iBUG re-indexing, colour jitter."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talkinghead.crop import IBUG_FLIP_PERMUTATION

_FLIP = torch.tensor(np.array(IBUG_FLIP_PERMUTATION), dtype=torch.long)


def flip_episode(images: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror images [N,3,R,R] and crop-normalised landmarks [N,68,2] (x -> -x, points re-indexed)."""
    lm = landmarks[:, _FLIP].clone()
    lm[..., 0] = -lm[..., 0]
    return images.flip(-1), lm


@dataclass
class Augmentation:
    """One flip decision and one colour jitter per episode (identity stays consistent)."""

    flip_prob: float = 0.5
    color_jitter: float = 0.1  # max relative change of brightness, contrast and saturation

    def __call__(self, images: torch.Tensor, landmarks: torch.Tensor, rng: np.random.Generator,
                 mirror_target: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if self.flip_prob > 0 and rng.random() < self.flip_prob:
            images, landmarks = flip_episode(images, landmarks)
        if mirror_target:  # a photo: the target is the mirror of the shots
            t_img, t_lm = flip_episode(images[-1:], landmarks[-1:])
            images = torch.cat([images[:-1], t_img])
            landmarks = torch.cat([landmarks[:-1], t_lm])
        if self.color_jitter > 0:
            j = self.color_jitter
            b, c, s = (1.0 + rng.uniform(-j, j, size=3)).tolist()
            x = (images + 1) / 2 * b
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * c + mean
            grey = x.mean(dim=1, keepdim=True)
            x = (x - grey) * s + grey
            images = x.clamp(0, 1) * 2 - 1
        return images, landmarks
