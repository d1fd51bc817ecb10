"""Few-shot fine-tuning of a warp-family generator on one person's K shots.

The warp generator has no AdaIN parameters to personalise: fine-tuning adapts its learned parts
(flow correction, confidence, occlusion mask, synthesis) to the person, and the result is still a
``meta`` warp model that renders from landmarks, the identity and the same reference shots, so it
exports as an ordinary warp package.

Each step renders a batch of the shots from the *other* shots (leave one out; with K = 1 the shot
itself is the only reference) after a random similarity jitter of the target and its landmarks
(:func:`training.finetune.jitter`), so the generator must move pixels along the landmarks rather
than copy the target. Losses as in training (training/warp_learning.py): the content loss plus the
L1 of image gradients. The embedder is frozen; the identity is the mean embedding of the shots.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from .checkpoint import Models
from .errors import DatasetError
from .finetune_recipe import FinetuneConfig
from .losses import ContentLoss
from .precision import autocast
from .warp_learning import gradient_l1


def reference_sets(k: int, targets: np.ndarray) -> np.ndarray:
    """For each target shot index, the indices of its references [len(targets), max(k - 1, 1)]:
    every other shot (leave one out), or the shot itself when it is the only one."""
    if k == 1:
        return np.zeros((len(targets), 1), dtype=np.int64)
    return np.stack([np.array([j for j in range(k) if j != int(t)], dtype=np.int64) for t in targets])


def shots_identity(models: Models, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """The avatar's identity as the SDK computes it: the mean embedding of the shots, [1, D]."""
    with torch.no_grad():
        return models.embedder.eval()(images, landmarks).mean(0, keepdim=True)


def finetune_warp(models: Models, shots_image: torch.Tensor, shots_landmarks: torch.Tensor,
                  config: FinetuneConfig | None = None, device: str | torch.device = "cpu",
                  progress: bool = False) -> tuple[Models, list[dict[str, float]]]:
    """Fine-tune a copy of a warp-family ``models`` on K shots ([K,3,R,R] in [-1,1], [K,68,2]).

    Returns the tuned models (same family and kind: render with the same shots as references)
    and the per-step losses. ``config.lr_gen`` is the generator's rate; ``lr_psi`` and the
    discriminator options do not apply (the family has neither).
    """
    from tqdm import tqdm

    cfg = config or FinetuneConfig()
    if models.config.net.family != "warp":
        raise DatasetError("finetune_warp needs a warp-family checkpoint")
    k = shots_image.shape[0]
    if shots_image.ndim != 4 or shots_landmarks.shape != (k, 68, 2):
        raise DatasetError(f"fine-tuning needs [K,3,R,R] images and [K,68,2] landmarks, got "
                           f"{tuple(shots_image.shape)} and {tuple(shots_landmarks.shape)}")
    from .finetune import jitter

    device = torch.device(device)
    m = copy.deepcopy(models)
    m.averaged = None
    G = m.generator.to(device)
    m.embedder.to(device)
    images, lms = shots_image.to(device), shots_landmarks.to(device)
    identity = shots_identity(m, images, lms)
    content = ContentLoss(m.config.loss).to(device)
    opt = torch.optim.Adam(G.parameters(), lr=cfg.lr_gen, betas=(0.9, 0.999))
    rng = np.random.default_rng(cfg.seed)
    w_grad = m.config.loss.w_gradient
    history: list[dict[str, float]] = []
    G.train()
    for _ in tqdm(range(cfg.steps), desc="fine-tuning (warp)", disable=not progress):
        targets = rng.integers(0, k, size=cfg.batch_size)
        refs = torch.as_tensor(reference_sets(k, targets), device=device)
        real, lm = images[targets], lms[targets]
        if cfg.augment > 0:
            real, lm = jitter(real, lm, rng, cfg.augment)
        with autocast(device, cfg.precision):
            fake = G(lm, identity.expand(len(targets), -1), images[refs], lms[refs]).float()
            l_content = content(fake, real).float()
        loss = l_content + w_grad * gradient_l1(fake, real)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            history.append({"content": float(l_content.detach()), "l1": float(torch.mean(torch.abs(fake - real)))})
    G.eval()
    m.generator.cpu()
    m.embedder.cpu()
    return m, history
