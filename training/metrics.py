"""The project's one SSIM (Wang et al. 2004), numpy only: 11-tap Gaussian window (sigma 1.5), K1 = 0.01,
K2 = 0.03, per channel over the valid region (no padding), averaged over channels and images.

Every SSIM the project reports comes from here: a variant's error against the fp32 graph
(export; images [N, C, H, W] in [-1, 1], data range 2), held-out checks (training.heldout_eval) and
the quality bench (bench/quality_metrics.ssim: uint8 [H, W, C], data range 255, the same function on
channels-first views). Torch-free, so any layer may import it.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    w = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return w / w.sum()


def _filter(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable valid-region filter over the last two axes."""
    x = sliding_window_view(x, w.size, axis=-1) @ w
    return np.swapaxes(sliding_window_view(np.swapaxes(x, -1, -2), w.size, axis=-1) @ w, -1, -2)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> float:
    """Mean SSIM of two image batches of the same shape [..., H, W] (H, W >= 11)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ: {a.shape} vs {b.shape}")
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"ssim: images must be at least 11x11, got {a.shape[-2:]}")
    w = _gaussian()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _filter(a, w), _filter(b, w)
    var_a = _filter(a * a, w) - mu_a ** 2
    var_b = _filter(b * b, w) - mu_b ** 2
    cov = _filter(a * b, w) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean())
