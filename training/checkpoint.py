"""Checkpoints: one safetensors file of weights whose metadata carries the config and run state.

``checkpoint.safetensors`` holds the embedder, generator and discriminator weights (prefixed
``embedder.``, ``generator.``, ``discriminator.``; a warp run with ``loss.w_mouth_adv`` also
``mouth_discriminator.``; a personalised checkpoint also holds ``personal.psi``) and, in its metadata, the config, the step, the training videos and the content
backbone, so export can rebuild the modules from the file alone (no pickled code). The optimizer
state lives beside it in ``optimizer.pt``. A compact copy (fp16, no optimizer) is what the repo keeps.

With a weight average (``train.ema_decay`` > 0, training/averaging.py) the ``embedder.`` and
``generator.`` weights are the average, which everything downstream uses, and the optimiser's own
weights are kept under ``train.embedder.`` / ``train.generator.`` for an exact ``--resume``. A
compact copy leaves those out: ``--init`` from it starts both from the average.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .averaging import Averaged
from .config import Config, config_from_dict
from .errors import CheckpointError, ConfigError
from .networks import Discriminator, Embedder, Generator, MouthDiscriminator, WarpGenerator

FORMAT = "talkinghead-checkpoint/1"
TRAIN_PREFIX = "train."  # the optimiser's own weights, beside an average


@dataclass
class Models:
    """The three networks of a run, plus fine-tuned parameters when personalised."""

    config: Config
    embedder: Embedder
    generator: Generator | WarpGenerator
    discriminator: Discriminator | None  # None for a warp model trained without an adversary
    psi: torch.Tensor | None = None  # personalised AdaIN parameters [1, P]
    averaged: Averaged | None = None  # EMA of embedder + generator (what ships), while training with one
    mouth_discriminator: MouthDiscriminator | None = None  # warp family with loss.w_mouth_adv


@dataclass
class CheckpointState:
    """What a checkpoint records besides weights."""

    step: int = 0
    videos: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    kind: str = "meta"  # "meta" | "personalised"
    extra: dict[str, Any] = field(default_factory=dict)


def build_models(config: Config, num_videos: int, *, discriminator: bool | None = None,
                 mouth_discriminator: bool | None = None) -> Models:
    """Fresh modules for a config: the family's generator and, for the adain family or a warp config
    with adversarial weights (``discriminator`` overrides), a discriminator; for a warp config with
    ``loss.w_mouth_adv`` (``mouth_discriminator`` overrides), the mouth discriminator."""
    net = config.net
    if net.family == "warp":
        with_d = config.loss.adversarial if discriminator is None else discriminator
        with_md = config.loss.w_mouth_adv > 0 if mouth_discriminator is None else mouth_discriminator
        return Models(config, Embedder(net), WarpGenerator(net), Discriminator(net, max(num_videos, 1)) if with_d else None,
                      mouth_discriminator=MouthDiscriminator() if with_md else None)
    return Models(config, Embedder(net), Generator(net), Discriminator(net, max(num_videos, 1)))


def load_embedder(path: Path, models: Models) -> int:
    """Copy the embedder weights of another checkpoint (e.g. lite's, for a warp run); returns its step.

    Raises:
        CheckpointError: not a checkpoint, or its embedder has another architecture.
    """
    path = Path(path)
    read_metadata(path)
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys() if k.startswith("embedder.")}
    _load_module(path, models.embedder, tensors, "embedder")
    return int(read_metadata(path).get("step", 0))


def _state_dict(models: Models, with_training_weights: bool) -> dict[str, torch.Tensor]:
    avg = models.averaged
    modules = [("embedder", avg.embedder if avg else models.embedder),
               ("generator", avg.generator if avg else models.generator),
               ("discriminator", models.discriminator), ("mouth_discriminator", models.mouth_discriminator)]
    modules = [(prefix, module) for prefix, module in modules if module is not None]
    if avg is not None and with_training_weights:
        modules += [(TRAIN_PREFIX + "embedder", models.embedder), (TRAIN_PREFIX + "generator", models.generator)]
    out: dict[str, torch.Tensor] = {}
    for prefix, module in modules:
        for k, v in module.state_dict().items():
            out[f"{prefix}.{k}"] = v.detach().cpu().contiguous()
    if models.psi is not None:
        out["personal.psi"] = models.psi.detach().cpu().contiguous()
    return out


def save_checkpoint(path: Path, models: Models, state: CheckpointState, *,
                    optimizers: dict[str, torch.optim.Optimizer] | None = None, half: bool = False) -> Path:
    """Write ``path`` (a .safetensors file) atomically, and ``optimizer.pt`` beside it if given.

    ``half``: the compact copy (fp16; with an average, only the averaged embedder and generator).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = _state_dict(models, with_training_weights=not half)
    if half:
        tensors = {k: (v.half() if v.is_floating_point() else v) for k, v in tensors.items()}
    meta = {
        "format": FORMAT,
        "config": json.dumps(models.config.to_dict()),
        "step": str(state.step),
        "videos": json.dumps(state.videos),
        "data": json.dumps(state.data),
        "kind": state.kind,
        "content_backbone": models.config.loss.content_backbone,
        "extra": json.dumps(state.extra),
    }
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    if optimizers:
        opt_tmp = path.parent / "optimizer.pt.tmp"
        torch.save({k: o.state_dict() for k, o in optimizers.items()}, opt_tmp)
        os.replace(opt_tmp, path.parent / "optimizer.pt")
    return path


def read_metadata(path: Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a talkinghead checkpoint (format {meta.get('format')!r}, "
                              f"expected {FORMAT!r})")
    return meta


def load_checkpoint(path: Path, config: Config | None = None, *,
                    for_training: bool = False) -> tuple[Models, CheckpointState]:
    """Rebuild the modules from a checkpoint. ``config``, when given, must match its architecture.

    The embedder and generator are the averaged weights where the checkpoint has an average (what
    ships). ``for_training``: the optimiser's own weights instead, with the average in
    ``models.averaged`` (None when the checkpoint holds no separate training weights).
    """
    path = Path(path)
    meta = read_metadata(path)
    try:
        saved = config_from_dict(_first_design_defaults(json.loads(meta["config"])))
    except (ConfigError, KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: its config is unreadable: {exc}") from exc
    if config is not None and config.net != saved.net:
        raise CheckpointError(f"{path} is a checkpoint of another architecture "
                              f"(size {saved.size!r}, resolution {saved.net.resolution}) than the config "
                              f"(size {config.size!r}, resolution {config.net.resolution})")
    cfg = config or saved
    videos = json.loads(meta.get("videos", "[]"))
    state = CheckpointState(step=int(meta.get("step", 0)), videos=videos, data=json.loads(meta.get("data", "{}")),
                            kind=meta.get("kind", "meta"), extra=json.loads(meta.get("extra", "{}")))
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    has_d = "discriminator.W" in tensors
    num_videos = tensors["discriminator.W"].shape[0] if has_d else max(len(videos), 1)
    # A warp checkpoint holds a discriminator only if it trained with one; training from one that did
    # not (--init) with an adversarial config starts a fresh discriminator (nothing to load into it).
    fresh_d = cfg.net.family == "warp" and not has_d
    with_d = (not fresh_d or (for_training and cfg.loss.adversarial)) if cfg.net.family == "warp" else None
    # Likewise the mouth discriminator: loaded where the checkpoint has one, fresh where the config asks.
    has_md = any(k.startswith("mouth_discriminator.") for k in tensors)
    with_md = has_md or (for_training and cfg.loss.w_mouth_adv > 0) if cfg.net.family == "warp" else False
    models = build_models(cfg, num_videos, discriminator=with_d, mouth_discriminator=with_md)
    for prefix, module in (("embedder", models.embedder), ("generator", models.generator),
                           ("discriminator", None if fresh_d else models.discriminator),
                           ("mouth_discriminator", models.mouth_discriminator if has_md else None)):
        if module is not None:
            _load_module(path, module, tensors, prefix)
    if for_training and any(k.startswith(TRAIN_PREFIX) for k in tensors):
        models.averaged = Averaged.copy_of(models.embedder, models.generator)
        for prefix, module in (("embedder", models.embedder), ("generator", models.generator)):
            _load_module(path, module, tensors, TRAIN_PREFIX + prefix)
    if "personal.psi" in tensors:
        models.psi = tensors["personal.psi"].float()
    return models, state


def _first_design_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A warp checkpoint written before ``warp.synth_residual`` existed used absolute synthesis;
    missing keys would otherwise take the preset's (residual) value and change what it renders."""
    warp = config.get("net", {}).get("warp")
    if isinstance(warp, dict) and "synth_residual" not in warp:
        warp["synth_residual"] = False
    return config


def _load_module(path: Path, module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    sub = {k[len(prefix) + 1:]: v.float() if v.is_floating_point() else v
           for k, v in tensors.items() if k.startswith(prefix + ".")}
    try:
        module.load_state_dict(sub, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the {prefix} weights do not fit the architecture of its config "
                              f"(another architecture?): {str(exc).splitlines()[0]}") from exc


def load_optimizers(path: Path, optimizers: dict[str, torch.optim.Optimizer]) -> bool:
    """Restore optimizer states saved beside checkpoint ``path``; False when there are none."""
    opt_file = Path(path).parent / "optimizer.pt"
    if not opt_file.is_file():
        return False
    states = torch.load(opt_file, map_location="cpu", weights_only=True)
    for name, opt in optimizers.items():
        if name in states:
            opt.load_state_dict(states[name])
    return True
