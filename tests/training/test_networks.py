"""Shapes, dtypes and the rasteriser's drawing, for every model size."""
from __future__ import annotations

import pytest
import torch

from training.config import FACE_PARTS, PRESETS, RasterConfig
from training.networks import Discriminator, Embedder, Generator, PersonalisedGenerator
from training.rasterizer import LandmarkRasterizer

from .synthetic import template_landmarks


@pytest.mark.parametrize("size", ["tiny", "lite", "paper"])
def test_module_shapes_and_dtypes(size: str) -> None:
    cfg = PRESETS[size]().validate().net
    r, d = cfg.resolution, cfg.embedding_dim
    lm = torch.from_numpy(template_landmarks())[None].repeat(2, 1, 1)
    img = torch.rand(2, 3, r, r) * 2 - 1
    emb, gen, disc = Embedder(cfg).eval(), Generator(cfg).eval(), Discriminator(cfg, num_videos=3).eval()
    with torch.no_grad():
        e = emb(img, lm)
        y = gen(lm, e)
        score, feats = disc(y, lm, torch.tensor([0, 2]))
        y_personal = PersonalisedGenerator(gen, gen.project(e[:1]))(lm)
    assert e.shape == (2, d) and e.dtype == torch.float32
    assert y.shape == (2, 3, r, r) and y.dtype == torch.float32
    assert float(y.abs().max()) <= 1.0  # tanh output
    assert score.shape == (2,) and len(feats) == len(cfg.disc_widths) + 1
    assert y_personal.shape == (2, 3, r, r)
    assert torch.allclose(y_personal[0], y[0], atol=1e-4)  # batch of one vs two: float reordering


def test_rasteriser_draws_each_part_where_its_points_are() -> None:
    r = 64
    rast = LandmarkRasterizer(r, RasterConfig(sigma=1.0))
    lm = torch.from_numpy(template_landmarks())[None]
    img = rast(lm)[0]
    assert img.shape == (len(FACE_PARTS), r, r)
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    px = ((lm[0] + 1) * r / 2 - 0.5).round().long().clamp(0, r - 1)
    for c, (name, idx, _) in enumerate(FACE_PARTS):
        for i in idx:
            x, y = int(px[i, 0]), int(px[i, 1])
            assert img[c, y, x] > 0.5, f"part {name} not drawn at its point {i}"
        others = [j for j in range(68) if j not in idx]
        # Far from this part's points the channel is dark.
        mask = torch.ones(r, r, dtype=torch.bool)
        for i in idx:
            x, y = int(px[i, 0]), int(px[i, 1])
            mask[max(0, y - 6): y + 7, max(0, x - 6): x + 7] = False
        assert float(img[c][mask].max()) < 0.05 or not others


def test_rasteriser_is_deterministic_and_batched() -> None:
    rast = LandmarkRasterizer(64)
    lm = torch.from_numpy(template_landmarks())[None]
    a = rast(lm)
    b = rast(torch.cat([lm, lm * 0.5]))
    assert torch.equal(a[0], b[0])
    assert torch.equal(rast(lm), a)
    assert not torch.equal(b[0], b[1])


def test_rasteriser_stays_fp32_under_bf16_autocast() -> None:
    """bf16 training (training/precision.py) must see the same conditioning image as the fp32 graphs."""
    raster = LandmarkRasterizer(64, RasterConfig(sigma=0.8))
    lms = torch.from_numpy(template_landmarks())[None] * 0.97 + 0.013
    exact = raster(lms)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = raster(lms)
    assert under_autocast.dtype == torch.float32
    assert torch.equal(exact, under_autocast)
