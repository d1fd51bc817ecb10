"""One training step of the warping generator (family ``warp``): losses and update, no I/O.

Per episode: the target frame is rendered from its landmarks and a random number of the episode's
shots (1..K, so one model serves any K), with the identity from the embedder (frozen: the warp family
reuses the lite model's embedder, so a warp package ships the same embedder graph). Losses: the
content loss (multi-scale L1 + EfficientNet-Lite0 features) plus an L1 on image gradients, which
punishes the blur that blending shots drifts into, and with ``loss.w_mouth`` above zero
(training/configs/warp_mouth.json) the content loss again on the mouth box, where an opening mouth
needs painting (teeth) that the whole-image loss barely weighs; with ``loss.w_mouth_adv`` above
zero a patch discriminator on the mouth box (conditioned on the inner-lip polygon) adds its hinge
loss and takes one step of its own per generator step. With ``loss.w_adv`` or ``loss.w_fm`` above zero
(training/configs/warp_adversarial.json) the paper's projection discriminator (lite's, conditioned
on the target's landmarks and a vector per training video) adds its hinge loss and feature matching,
and takes ``train.d_steps`` steps of its own per generator step; otherwise there is no discriminator.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from .averaging import Averaged
from .checkpoint import Models
from .config import Config
from .resample import box_filter_to
from .errors import TrainingError
from .losses import ContentLoss, adversarial_g_loss, feature_matching_loss, hinge_d_loss, mouth_crops
from .meta_learning import StepResult, embed_episode
from .networks.warp_generator import MouthInterior
from .precision import autocast, no_gradients


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
        self.D = models.discriminator.to(device) if models.discriminator is not None else None
        if self.D is not None and not config.loss.adversarial:
            raise TrainingError("this checkpoint trained with a discriminator: train it with a config whose "
                                "loss.w_adv or loss.w_fm is above zero")
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=t.lr_disc, betas=t.betas) if self.D is not None else None
        self.MD = models.mouth_discriminator.to(device) if models.mouth_discriminator is not None else None
        if self.MD is not None and config.loss.w_mouth_adv <= 0:
            raise TrainingError("this checkpoint trained with a mouth discriminator: train it with a config whose "
                                "loss.w_mouth_adv is above zero")
        self.opt_md = torch.optim.Adam(self.MD.parameters(), lr=t.lr_disc, betas=t.betas) if self.MD is not None else None
        self.lips = MouthInterior(config.net.resolution).to(device) if self.MD is not None else None  # its condition
        if t.ema_decay == 0:
            models.averaged = None
        elif models.averaged is None:
            models.averaged = Averaged.copy_of(models.embedder, models.generator)
        if models.averaged is not None:
            models.averaged.to(device)
        self.step_index = start_step

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"gen": self.opt_g, "disc": self.opt_d, "mouth_disc": self.opt_md}
        return {k: o for k, o in opts.items() if o is not None}

    def step(self, batch: dict[str, torch.Tensor]) -> StepResult:
        t, w = self.config.train, self.config.loss
        batch = {k: v.to(self.device) for k, v in batch.items()}
        k = shots_for_step(self.step_index, batch["shots_image"].shape[1])
        shots, shots_lm = batch["shots_image"][:, :k], batch["shots_landmarks"][:, :k]
        real, lm, vid = batch["target_image"], batch["target_landmarks"], batch["video_index"]
        self.G.train()
        # The embedder reads the shots at the output size, as the SDK gives it; the generator the shots.
        with torch.no_grad(), autocast(self.device, t.precision):  # identity from <= 2 shots: the embedder is
            identity = embed_episode(self.E, box_filter_to(shots[:, :IDENTITY_SHOTS], real.shape[-1]),
                                     shots_lm[:, :IDENTITY_SHOTS]).float()
        with autocast(self.device, t.precision):
            out = self.G.render(lm, identity, shots, shots_lm)
            fake = out["image"].float()
            l_content = self.content(fake, real).float()
        l_grad = gradient_l1(fake, real)
        loss = l_content + w.w_gradient * l_grad
        extra: dict[str, float] = {}
        mouths = None  # fake and real mouth crops
        if w.w_mouth > 0 or self.MD is not None:
            mouths = (mouth_crops(fake, lm, w.mouth_crop), mouth_crops(real, lm, w.mouth_crop))
        if w.w_mouth > 0:  # the content loss again on the mouth box: asks the painter for teeth
            with autocast(self.device, t.precision):
                l_mouth = self.content(mouths[0], mouths[1])
            loss = loss + w.w_mouth * l_mouth.float()
            extra["mouth"] = float(l_mouth.detach())
        self.opt_g.zero_grad(set_to_none=True)
        frozen = [m.parameters() for m in (self.D, self.MD) if m is not None]
        with no_gradients(itertools.chain(*frozen)):  # their own steps follow
            if self.D is not None:
                l_adv, l_fm = self._adversarial_terms(fake, real, lm, vid)
                loss = loss + w.w_adv * l_adv + w.w_fm * l_fm
                extra.update(adv=float(l_adv.detach()), fm=float(l_fm.detach()))
            if self.MD is not None:  # the inner-lip polygon, cropped like the image, is its condition
                lips = mouth_crops(self.lips.fill(lm.float()), lm, w.mouth_crop)
                l_madv = adversarial_g_loss(self.MD(torch.cat([mouths[0], lips], 1)).float())
                loss = loss + w.w_mouth_adv * l_madv
                extra["mouth_adv"] = float(l_madv.detach())
            loss.backward()
        self.opt_g.step()
        if self.models.averaged is not None:
            self.models.averaged.update(self.models.embedder, self.models.generator, t.ema_decay)
        if self.D is not None:
            extra.update(self._discriminator_steps(fake.detach(), real, lm, vid))
        if self.MD is not None:
            extra.update(self._mouth_discriminator_step(mouths[0].detach(), mouths[1], lips))
        self.step_index += 1
        with torch.no_grad():
            l1 = torch.mean(torch.abs(fake - real))
            mask = out["mask"].mean() if "mask" in out else torch.ones(())
        losses = {"loss_g": float(loss.detach()), "content": float(l_content.detach()), "grad": float(l_grad.detach()),
                  "l1": float(l1), **extra,
                  "mask": float(mask), "shots": float(k), "tau": float(self.models.generator.log_tau.detach().exp())}
        return StepResult(losses, fake.detach(), real.detach(), box_filter_to(shots[:, 0], real.shape[-1]).detach())

    def _adversarial_terms(self, fake: torch.Tensor, real: torch.Tensor, lm: torch.Tensor,
                           vid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The generator's hinge term and feature matching against the real frame's D features."""
        self.D.train()
        with autocast(self.device, self.config.train.precision):
            fake_score, fake_feats = self.D(fake, lm, vid)
            with torch.no_grad():
                _, real_feats = self.D(real, lm, vid)
        l_adv = adversarial_g_loss(fake_score.float())
        l_fm = feature_matching_loss([f.float() for f in fake_feats], [f.float() for f in real_feats])
        return l_adv, l_fm

    def _mouth_discriminator_step(self, fake: torch.Tensor, real: torch.Tensor, lips: torch.Tensor) -> dict[str, float]:
        """One hinge update of the mouth discriminator on this step's real and rendered mouth crops."""
        self.MD.train()
        real_score = self.MD(torch.cat([real, lips], 1)).float()
        fake_score = self.MD(torch.cat([fake, lips], 1)).float()
        l_d = hinge_d_loss(real_score, fake_score)
        self.opt_md.zero_grad(set_to_none=True)
        l_d.backward()
        self.opt_md.step()
        return {"mouth_d": float(l_d.detach()), "mouth_d_real": float(real_score.mean().detach()),
                "mouth_d_fake": float(fake_score.mean().detach())}

    def _discriminator_steps(self, fake: torch.Tensor, real: torch.Tensor, lm: torch.Tensor,
                             vid: torch.Tensor) -> dict[str, float]:
        """``train.d_steps`` hinge updates of the discriminator on this step's real and fake frames."""
        out = {"loss_d": 0.0, "d_real": 0.0, "d_fake": 0.0}
        for _ in range(self.config.train.d_steps):
            with autocast(self.device, self.config.train.precision):
                real_score, _ = self.D(real, lm, vid)
                fake_score, _ = self.D(fake, lm, vid)
            l_d = hinge_d_loss(real_score.float(), fake_score.float())
            self.opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            self.opt_d.step()
            out = {"loss_d": float(l_d.detach()), "d_real": float(real_score.float().mean().detach()),
                   "d_fake": float(fake_score.float().mean().detach())}
        return out
