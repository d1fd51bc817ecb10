"""Few-shot fine-tuning of a meta-learned model on K frames of a new person (paper, section 3.3).

The identity e_hat (mean embedding of the K shots) initialises the generator's AdaIN parameters
psi' = P e_hat, which are then trained directly along with the generator's weights. With the
adversarial losses on (``use_discriminator``, the paper's losses; off by default, see
:class:`training.finetune_recipe.FinetuneConfig`) the discriminator is fine-tuned too, its W_i
replaced by w' initialised from e_hat. The embedder is no longer needed: the result is a
personalised checkpoint that renders from landmarks alone.

``python -m training.finetune --checkpoint CKPT (--data PREPARED_VIDEO | --images IMG ...) --out FILE``
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from .checkpoint import CheckpointState, Models, load_checkpoint, save_checkpoint
from .errors import DatasetError, TrainingError
from .losses import ContentLoss, adversarial_g_loss, feature_matching_loss, hinge_d_loss
from .finetune_recipe import FinetuneConfig, add_finetune_arguments, finetune_config_from_arguments
from .precision import as_layout, autocast, lay_out, no_gradients


StepCallback = Callable[[int, torch.nn.Module, torch.Tensor], None]


def jitter(images: torch.Tensor, landmarks: torch.Tensor, rng: np.random.Generator,
           amount: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random similarity transform on each image and its landmarks (crop-normalised).

    Scale in 1 ± ``amount``, shift in ± ``amount`` (of the half crop), rotation in ± ``amount``
    radians, independently per image; borders repeat the edge pixels. Fine-tuning on K shots with
    it has to follow the landmarks instead of memorising where the face was in each shot.
    """
    n = images.shape[0]
    scale = 1 + rng.uniform(-amount, amount, n)
    angle = rng.uniform(-amount, amount, n)
    shift = rng.uniform(-amount, amount, (n, 2))
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    a = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)  # [n,2,2]: output -> input
    theta = torch.from_numpy(np.concatenate([a, shift[:, :, None]], 2)).to(images)
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # A landmark at input position p lands where A q + t = p: q = A^-1 (p - t).
    inv = torch.linalg.inv(theta[:, :, :2])
    moved = torch.einsum("nij,nkj->nki", inv, landmarks - theta[:, None, :, 2])
    return out, moved


def finetune(models: Models, shots_image: torch.Tensor, shots_landmarks: torch.Tensor,
             config: FinetuneConfig | None = None, device: str | torch.device = "cpu",
             progress: bool = False, on_step: StepCallback | None = None) -> tuple[Models, list[dict[str, float]]]:
    """Fine-tune a copy of ``models`` on K shots ([K,3,R,R] in [-1,1], [K,68,2]).

    ``on_step(step, generator, psi)``, if given, is called after every step (1-based) with the
    generator in eval mode and gradients off, e.g. to render held-out frames along the way
    (:mod:`training.heldout_eval`); it must not change them.

    Returns the personalised models (``psi`` set) and the per-step losses. A warp-family model is
    fine-tuned by :func:`training.warp_finetune.finetune_warp` instead (no psi: it stays a warp
    model that renders from the same shots).
    """
    cfg = config or FinetuneConfig()
    if models.config.net.family == "warp":
        if on_step is not None:
            raise TrainingError("on_step is not supported for the warp family")
        from .warp_finetune import finetune_warp

        return finetune_warp(models, shots_image, shots_landmarks, cfg, device, progress)
    if shots_image.ndim != 4 or shots_landmarks.shape != (shots_image.shape[0], 68, 2):
        raise DatasetError(f"fine-tuning needs [K,3,R,R] images and [K,68,2] landmarks, got "
                           f"{tuple(shots_image.shape)} and {tuple(shots_landmarks.shape)}")
    device = torch.device(device)
    m = copy.deepcopy(models)
    E, G, D = m.embedder.to(device).eval(), m.generator.to(device), m.discriminator.to(device)
    images, lms = as_layout(shots_image.to(device), cfg.channels_last), shots_landmarks.to(device)
    with torch.no_grad():
        e_hat = E(images, lms).mean(dim=0, keepdim=True)
    psi = torch.nn.Parameter(G.project(e_hat).detach().clone())
    w_prime = torch.nn.Parameter(e_hat.detach().clone())
    content = ContentLoss(m.config.loss).to(device)
    lay_out((G, D, content), cfg.channels_last)
    w = m.config.loss
    opt_g = torch.optim.Adam([{"params": G.parameters()}, {"params": [psi], "lr": cfg.lr_psi}],
                             lr=cfg.lr_gen, betas=m.config.train.betas)
    opt_d = torch.optim.Adam(list(D.parameters()) + [w_prime], lr=cfg.lr_disc, betas=m.config.train.betas)
    rng = np.random.default_rng(cfg.seed)
    history: list[dict[str, float]] = []
    G.train()
    D.train()
    zero_index = torch.zeros(1, dtype=torch.long, device=device)
    disc_params = list(D.parameters()) + [w_prime]
    for step in tqdm(range(1, cfg.steps + 1), desc="fine-tuning", disable=not progress):
        idx = torch.as_tensor(rng.integers(0, images.shape[0], size=cfg.batch_size), device=device)
        real, lm = images[idx], lms[idx]
        if cfg.augment > 0:
            real, lm = jitter(real, lm, rng, cfg.augment)
            real = as_layout(real, cfg.channels_last)
        # The discriminator's gradients from the generator's loss would be thrown away: none are taken.
        with no_gradients(disc_params):
            with autocast(device, cfg.precision):
                fake = G.synthesize(lm, psi).float()
                loss = content(fake, real).float()
                row = {"content": float(loss.detach())}
                if cfg.use_discriminator:
                    wo = w_prime.expand(lm.shape[0], -1)
                    fscore, ffeats = D(fake, lm, zero_index, w_override=wo)
                    with torch.no_grad():
                        _, rfeats = D(real, lm, zero_index, w_override=wo)
            if cfg.use_discriminator:
                loss = loss + w.w_adv * adversarial_g_loss(fscore.float()) + \
                    w.w_fm * feature_matching_loss([f.float() for f in ffeats], [f.float() for f in rfeats])
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
        opt_g.step()
        if cfg.use_discriminator:
            wo = w_prime.expand(lm.shape[0], -1)
            with autocast(device, cfg.precision):
                rscore, _ = D(real, lm, zero_index, w_override=wo)
                fscore, _ = D(fake.detach(), lm, zero_index, w_override=wo)
            l_d = hinge_d_loss(rscore.float(), fscore.float())
            opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            opt_d.step()
            row["loss_d"] = float(l_d.detach())
        with torch.no_grad():
            row["l1"] = float(torch.mean(torch.abs(fake - real)))
        history.append(row)
        if on_step is not None:
            G.eval()  # no spectral-norm power iteration while the caller renders
            with torch.no_grad():
                on_step(step, G, psi.detach())
            G.train()
    G.eval()
    lay_out((G, D), False)
    m.psi = psi.detach().cpu()
    m.embedder.cpu()
    m.generator.cpu()
    m.discriminator.cpu()
    return m, history


def _load_prepared_shots(folder: Path, k: int, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    from .dataset import EpisodeDataset

    ds = EpisodeDataset([folder.parent], k_shots=k, resolution=resolution, min_frames=1, skip_short=True)
    if folder.name not in ds.names:
        raise DatasetError(f"{folder} is not a prepared video (run training.prepare on it)")
    item = ds.items[ds.names.index(folder.name)]
    idx = np.linspace(0, item.num_frames - 1, num=min(k, item.num_frames)).round().astype(int)
    frames = np.stack([ds._read(item, int(i)) for i in idx])
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    return images, torch.from_numpy(item.landmarks[idx].copy())


def _load_image_shots(paths: list[Path], resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    from talkinghead.crop import crop_from_landmarks, to_normalised, warp_to_crop
    from talkinghead.images import read_image
    from talkinghead.landmarks import detect_landmarks

    imgs, lms = [], []
    for p in paths:
        image = read_image(p)
        points = detect_landmarks(image).points
        crop = crop_from_landmarks(points)
        imgs.append(warp_to_crop(image, crop, resolution))
        lms.append(to_normalised(points, crop))
    images = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return images, torch.from_numpy(np.stack(lms).astype(np.float32))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.finetune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="meta-learned checkpoint")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="one prepared video folder (training.prepare output)")
    src.add_argument("--images", type=Path, nargs="+", help="photos of the person (landmarks detected)")
    p.add_argument("-k", "--shots", type=int, default=8, help="frames taken from --data (default 8)")
    add_finetune_arguments(p)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, required=True, help="personalised checkpoint to write")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.out.exists() and not args.overwrite:
            raise TrainingError(f"{args.out} exists; pass --overwrite to replace it")
        models, state = load_checkpoint(args.checkpoint)
        res = models.config.net.resolution
        if args.data is not None:
            images, lms = _load_prepared_shots(args.data, args.shots, res)
        else:
            if not 1 <= len(args.images) <= 32:
                raise TrainingError("give 1 to 32 images")
            images, lms = _load_image_shots(args.images, res)
        ft = finetune_config_from_arguments(args)
        tuned, hist = finetune(models, images, lms, ft, args.device, progress=True)
        warp = models.config.net.family == "warp"  # stays a meta model: it renders from the same shots
        state = CheckpointState(step=state.step, videos=state.videos, data=state.data,
                                kind="meta" if warp else "personalised",
                                extra={"finetune_steps": ft.steps, "shots": int(images.shape[0]),
                                       "final_l1": hist[-1]["l1"] if hist else None})
        save_checkpoint(args.out, tuned, state)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"fine-tuned checkpoint: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
