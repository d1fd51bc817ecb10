"""One meta-learning step of Zakharov et al. 2019 (the losses and updates, no I/O).

Per episode: the embedder turns K frames (+ landmarks) of video i into e_hat (the mean of the
per-frame vectors); the generator renders the target frame's landmarks with AdaIN parameters
P e_hat; the embedder and generator (and W_i through the match loss) are updated on
content + adversarial + feature-matching + embedding-match losses; then the discriminator is
updated ``d_steps`` times on the hinge loss (the paper's two-time-scale rule). With
``train.ema_decay`` > 0 an average of the embedder's and generator's weights follows each update.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .averaging import Averaged
from .checkpoint import Models
from .config import Config
from .precision import as_layout, autocast, lay_out, no_gradients
from .losses import (ContentLoss, adversarial_g_loss, embedding_match_loss, feature_matching_loss,
                     hinge_d_loss)


@dataclass
class StepResult:
    """Losses of one step (floats) and the images for sample grids."""

    losses: dict[str, float]
    fake: torch.Tensor
    real: torch.Tensor
    shot: torch.Tensor


def embed_episode(embedder: nn.Module, shots_image: torch.Tensor, shots_landmarks: torch.Tensor) -> torch.Tensor:
    """[B,K,3,R,R] + [B,K,68,2] -> mean identity [B,D]."""
    b, k = shots_image.shape[:2]
    e = embedder(shots_image.flatten(0, 1), shots_landmarks.flatten(0, 1))
    return e.view(b, k, -1).mean(dim=1)


class MetaLearner:
    """Owns the optimizers and performs meta-learning steps on (possibly DDP-wrapped) modules."""

    def __init__(self, models: Models, config: Config, device: torch.device,
                 wrap: "callable | None" = None) -> None:
        self.models = models
        self.config = config
        self.device = device
        t = config.train
        wrap = wrap or (lambda m: m)
        lay_out((models.embedder, models.generator, models.discriminator), t.channels_last)
        self.E = wrap(models.embedder.to(device))
        self.G = wrap(models.generator.to(device))
        self.D = wrap(models.discriminator.to(device))
        self.content = ContentLoss(config.loss).to(device)
        lay_out([self.content], t.channels_last)
        disc = models.discriminator
        projection = list(models.generator.projection.parameters())
        if t.lr_projection_scale == 1.0:  # two groups, as runs before the option had (--resume keeps working)
            groups = [{"params": list(models.embedder.parameters()) + list(models.generator.parameters())}]
        else:
            in_projection = {id(p) for p in projection}
            rest = [p for p in models.generator.parameters() if id(p) not in in_projection]
            groups = [{"params": list(models.embedder.parameters()) + rest},
                      {"params": projection, "lr": t.lr_gen * t.lr_projection_scale}]
        groups.append({"params": [disc.W]})  # W_i also learns from the embedding-match loss
        self.opt_g = torch.optim.Adam(groups, lr=t.lr_gen, betas=t.betas)
        self.opt_d = torch.optim.Adam(disc.parameters(), lr=t.lr_disc, betas=t.betas)
        if t.ema_decay == 0:  # no average (or a resumed one the config turns off: it would go stale)
            models.averaged = None
        elif models.averaged is None:  # a fresh run, or --init from a compact copy
            models.averaged = Averaged.copy_of(models.embedder, models.generator)
        if models.averaged is not None:
            models.averaged.to(device)
        # The discriminator's gradients from the generator's loss are discarded (its own step starts
        # from zero), so in a single process its weights need none then; W_i does (embedding match).
        # Under DDP the set of parameters that get gradients must not change, so all keep them there.
        self._frozen_in_g_step = [] if self.D is not disc else [p for p in disc.parameters() if p is not disc.W]

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"gen": self.opt_g, "disc": self.opt_d}

    def step(self, batch: dict[str, torch.Tensor]) -> StepResult:
        w = self.config.loss
        t = self.config.train
        batch = {k: as_layout(v.to(self.device), t.channels_last) for k, v in batch.items()}
        real, lm, vid = batch["target_image"], batch["target_landmarks"], batch["video_index"]
        for m in (self.E, self.G, self.D):
            m.train()

        # Embedder + generator update (forward passes under autocast where enabled; losses in fp32).
        with no_gradients(self._frozen_in_g_step):
            with autocast(self.device, t.precision):
                identity = embed_episode(self.E, batch["shots_image"], batch["shots_landmarks"]).float()
                fake = self.G(lm, identity).float()
                fake_score, fake_feats = self.D(fake, lm, vid)
                with torch.no_grad():
                    _, real_feats = self.D(real, lm, vid)
                l_content = self.content(fake, real).float()
            l_adv = adversarial_g_loss(fake_score.float())
            l_fm = feature_matching_loss([f.float() for f in fake_feats], [f.float() for f in real_feats])
            l_match = embedding_match_loss(identity, self.models.discriminator.W[vid])
            loss_g = l_content + w.w_adv * l_adv + w.w_fm * l_fm + w.w_match * l_match
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
        self.opt_g.step()
        if self.models.averaged is not None:
            self.models.averaged.update(self.models.embedder, self.models.generator, t.ema_decay)

        # Discriminator updates.
        fake_d = fake.detach()
        l_d = torch.zeros((), device=self.device)
        real_score = torch.zeros(1)
        for _ in range(t.d_steps):
            with autocast(self.device, t.precision):
                real_score, _ = self.D(real, lm, vid)
                fscore, _ = self.D(fake_d, lm, vid)
            real_score = real_score.float()
            l_d = hinge_d_loss(real_score, fscore.float())
            self.opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            self.opt_d.step()

        with torch.no_grad():
            l1 = torch.mean(torch.abs(fake_d - real))
        values = {"loss_g": loss_g, "content": l_content, "adv": l_adv, "fm": l_fm, "match": l_match,
                  "loss_d": l_d, "l1": l1, "d_real": real_score.mean(), "d_fake": fake_score.mean()}
        losses = {k: float(v.detach()) for k, v in values.items()}
        return StepResult(losses, fake_d, real.detach(), batch["shots_image"][:, 0].detach())
