"""Landmarks -> one soft line image per face part, as pure tensor ops (exports to ONNX).

Points are sampled densely along each part's polyline and splatted as separable Gaussians: for a
part with sample points p_k, the channel is sum_k exp(-(y - p_k.y)^2 / 2s^2) * exp(-(x - p_k.x)^2 / 2s^2),
which is one batched matrix product gy^T @ gx. The sum is clipped to 1, so lines are flat-topped
with anti-aliased Gaussian edges. Cost is O(parts * samples * (H + W) + parts * H * W * samples)
in a matmul (~4 ms at 256^2 on ONNX Runtime CPU, see FACTS.md) instead of a dense distance field.

The same module conditions the embedder, the generator and the discriminator, and is exported
inside embedder.onnx and generator.onnx, so every runtime sees exactly the same conditioning.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import FACE_PARTS, RasterConfig

NUM_PARTS = len(FACE_PARTS)


def _interpolation_matrix(samples_per_segment: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[parts, K, 68] weights mapping landmarks to sample points, and a [parts, K] validity mask."""
    rows_per_part: list[list[list[float]]] = []
    for _, idx, closed in FACE_PARTS:
        segs = list(zip(idx[:-1], idx[1:]))
        if closed:
            segs.append((idx[-1], idx[0]))
        rows: list[list[float]] = []
        for a, b in segs:
            for s in range(samples_per_segment):
                t = s / samples_per_segment
                row = [0.0] * 68
                row[a] += 1.0 - t
                row[b] += t
                rows.append(row)
        if not closed:  # the last endpoint
            row = [0.0] * 68
            row[idx[-1]] = 1.0
            rows.append(row)
        rows_per_part.append(rows)
    kmax = max(len(r) for r in rows_per_part)
    weights = torch.zeros(NUM_PARTS, kmax, 68)
    mask = torch.zeros(NUM_PARTS, kmax)
    for c, rows in enumerate(rows_per_part):
        weights[c, : len(rows)] = torch.tensor(rows)
        mask[c, : len(rows)] = 1.0
    return weights, mask


class LandmarkRasterizer(nn.Module):
    """[B, 68, 2] crop-normalised landmarks (x, y in [-1, 1]) -> [B, parts, R, R] in [0, 1]."""

    def __init__(self, resolution: int, config: RasterConfig | None = None) -> None:
        super().__init__()
        config = config or RasterConfig()
        self.resolution = resolution
        weights, mask = _interpolation_matrix(config.samples_per_segment)
        self.register_buffer("weights", weights, persistent=False)
        self.register_buffer("mask", mask, persistent=False)
        # Pixel centres of the R x R grid in normalised units (align_corners=False).
        grid = (torch.arange(resolution, dtype=torch.float32) * 2 + 1) / resolution - 1
        self.register_buffer("grid", grid, persistent=False)
        # Gaussian std in normalised units: sigma pixels of the output image.
        self.inv_two_var = float(1.0 / (2.0 * (config.sigma * 2.0 / resolution) ** 2))

    @property
    def channels(self) -> int:
        return NUM_PARTS

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        # Always in fp32, also inside a bf16 autocast region (training/precision.py): bf16 sample
        # points would snap the lines to a grid of up to half a pixel.
        with torch.autocast(landmarks.device.type, enabled=False):
            return self._draw(landmarks.float())

    def _draw(self, landmarks: torch.Tensor) -> torch.Tensor:
        # [B, 68, 2] -> sample points [B, parts, K, 2]
        pts = torch.einsum("ckl,bld->bckd", self.weights, landmarks)
        px = pts[..., 0:1]  # [B, C, K, 1]
        py = pts[..., 1:2]
        m = self.mask.unsqueeze(-1)  # [C, K, 1]
        gx = torch.exp(-((self.grid - px) ** 2) * self.inv_two_var) * m  # [B, C, K, W]
        gy = torch.exp(-((self.grid - py) ** 2) * self.inv_two_var)  # [B, C, K, H]
        img = torch.matmul(gy.transpose(-1, -2), gx)  # [B, C, H, W]
        return torch.clamp(img, 0.0, 1.0)
