"""One training step of the warping generator (family ``warp``): losses and update, no I/O.

Per episode: the target frame is rendered from its landmarks and a random number of the episode's
shots (1..K, so one model serves any K), with the identity from the embedder (frozen: the warp family
reuses the lite model's embedder, so a warp package ships the same embedder graph). Losses: the
content loss (multi-scale L1 + EfficientNet-Lite0 features) plus an L1 on image gradients, which
punishes the blur that blending shots drifts into. No discriminator.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .averaging import Averaged
from .checkpoint import Models
from .config import Config
from .errors import TrainingError
from .losses import ContentLoss
from .meta_learning import StepResult, embed_episode
from .precision import autocast


IDENTITY_SHOTS = 2  # the frozen embedder's cost per step; the identity only conditions the synthesis branch


def gradient_l1(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean L1 between the horizontal and vertical finite differences of two image batches."""
    def grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]
    (fx, fy), (rx, ry) = grads(fake), grads(real)
    return 0.5 * (F.l1_loss(fx, rx) + F.l1_loss(fy, ry))


def shots_for_step(step: int, k_max: int) -> int:
    """How many of the episode's shots step ``step`` uses: cycles 1..k_max (deterministic: resumable)."""
    return 1 + step % k_max


class WarpLearner:
    """Owns the optimizer and performs training steps of a warp-family generator."""

    def __init__(self, models: Models, config: Config, device: torch.device, wrap=None, start_step: int = 0) -> None:
        self.models, self.config, self.device = models, config, device
        t = config.train
        if wrap is not None:
            raise TrainingError("the warp family trains in one process (no DistributedDataParallel yet)")
        self.E = models.embedder.to(device).eval().requires_grad_(False)
        self.G = models.generator.to(device)
        self.content = ContentLoss(config.loss).to(device)
        self.opt_g = torch.optim.Adam(models.generator.parameters(), lr=t.lr_gen, betas=t.betas)
        if t.ema_decay == 0:
            models.averaged = None
        elif models.averaged is None:
            models.averaged = Averaged.copy_of(models.embedder, models.generator)
        if models.averaged is not None:
            models.averaged.to(device)
        self.step_index = start_step

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"gen": self.opt_g}

    def step(self, batch: dict[str, torch.Tensor]) -> StepResult:
        t, w = self.config.train, self.config.loss
        batch = {k: v.to(self.device) for k, v in batch.items()}
        k = shots_for_step(self.step_index, batch["shots_image"].shape[1])
        shots, shots_lm = batch["shots_image"][:, :k], batch["shots_landmarks"][:, :k]
        real, lm = batch["target_image"], batch["target_landmarks"]
        self.G.train()
        with torch.no_grad(), autocast(self.device, t.precision):  # identity from <= 2 shots: the embedder is
            identity = embed_episode(self.E, shots[:, :IDENTITY_SHOTS], shots_lm[:, :IDENTITY_SHOTS]).float()
        with autocast(self.device, t.precision):
            out = self.G.render(lm, identity, shots, shots_lm)
            fake = out["image"].float()
            l_content = self.content(fake, real).float()
        l_grad = gradient_l1(fake, real)
        loss = l_content + w.w_gradient * l_grad
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if self.models.averaged is not None:
            self.models.averaged.update(self.models.embedder, self.models.generator, t.ema_decay)
        self.step_index += 1
        with torch.no_grad():
            l1 = torch.mean(torch.abs(fake - real))
            mask = out["mask"].mean() if "mask" in out else torch.ones(())
        losses = {"loss_g": float(loss.detach()), "content": float(l_content.detach()), "grad": float(l_grad.detach()),
                  "l1": float(l1),
                  "mask": float(mask), "shots": float(k), "tau": float(self.models.generator.log_tau.detach().exp())}
        return StepResult(losses, fake.detach(), real.detach(), shots[:, 0].detach())
