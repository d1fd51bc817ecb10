"""Box filtering down by an integer factor: the crop rule's prefilter when it samples down, used by
the episodes' targets (training/dataset.py), the warp learner's embedder input
(training/warp_learning.py) and the warp generator's shot thumbnails (training/networks)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def box_filter_to(images: torch.Tensor, side: int) -> torch.Tensor:
    """Images [..., C, S, S] box-filtered down to ``side`` (S a multiple of it); unchanged when S is
    ``side``."""
    s = images.shape[-1]
    if s == side:
        return images
    flat = images.reshape(-1, *images.shape[-3:])
    return F.avg_pool2d(flat, s // side).reshape(*images.shape[:-2], side, side)
