"""PyTorch module -> ONNX graph with the names, dynamic batch axis and role stamp DESIGN.md fixes.

Spectral norm is folded into the weights of a copy of each module first (the parametrisation would
otherwise be exported as a power iteration); see :func:`folded_copy`.

Instance norm: ONNX Runtime's CPU ``InstanceNormalization`` (and a plain ``ReduceMean`` over H*W)
loses precision on channels that are mostly zero with a few large values, which is what the
rasterised landmark lines are: on a random ``lite`` generator the output differs from PyTorch by
~4e-4 max abs (PyTorch itself is within 2e-5 of float64). :class:`TwoStageInstanceNorm` is the same
formula with the means taken in two stages (over W, then over H): ~2e-5 of PyTorch, 5-20% more
time (noisy measurements on 2 shared cores).
The exporter uses the fused op unless parity needs the two-stage form (``--instance-norm``), and
always builds the variants (int8, fp16) from the fused-op graph, since their own error is far larger.

The TorchScript exporter (``dynamo=False``) is used: it handles every module here and names nodes
after their module path (``/rasterizer/...``), which the variant conversions use to keep the
rasteriser in fp32. FACTS.md found both exporters equally exact.
"""
from __future__ import annotations

import dataclasses
import io
import warnings
from dataclasses import dataclass
from typing import Callable

import onnx
import torch
from torch import nn
from torch.nn.utils import parametrize

from talkinghead.manifest import expected_io
from talkinghead.package import ROLE_KEY, VARIANT_KEY

from training.networks.embedder import Embedder
from training.networks.generator import Generator, PersonalisedGenerator
from training.networks.warp_generator import SharedReferences, WarpGenerator

from .errors import ExportError

DEFAULT_OPSET = 17


@dataclass
class GraphModules:
    """The modules to export, ready for tracing (eval mode, spectral norm folded)."""

    kind: str  # "meta" | "personalised"
    generator: nn.Module  # Generator (landmarks, identity) or PersonalisedGenerator (landmarks)
    embedder: nn.Module | None


class TwoStageInstanceNorm(nn.Module):
    """``nn.InstanceNorm2d`` (eval, no running stats) with its means over W then H (see above)."""

    def __init__(self, src: nn.InstanceNorm2d) -> None:
        super().__init__()
        if src.track_running_stats:
            raise ExportError("instance norm with running statistics is not supported by the exporter")
        self.eps = float(src.eps)
        self.weight = None if not src.affine else nn.Parameter(src.weight.detach().clone())
        self.bias = None if not src.affine else nn.Parameter(src.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=3, keepdim=True).mean(dim=2, keepdim=True)
        d = x - mean
        var = (d * d).mean(dim=3, keepdim=True).mean(dim=2, keepdim=True)
        y = d * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def use_two_stage_norm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.InstanceNorm2d`` in ``module`` (in place) by :class:`TwoStageInstanceNorm`."""
    for name, child in module.named_children():
        if isinstance(child, nn.InstanceNorm2d):
            setattr(module, name, TwoStageInstanceNorm(child))
        else:
            use_two_stage_norm(child)
    return module


def folded_copy(module: nn.Module, build: Callable[[], nn.Module]) -> nn.Module:
    """A fresh module (from ``build``, built without spectral norm) holding ``module``'s weights with
    spectral norm folded in: each parametrised weight is evaluated once, in eval mode (no power
    iteration step).

    Removing the parametrisation in place (``parametrize.remove_parametrizations``) is avoided: a
    ``copy.deepcopy`` shares the class torch's parametrisation creates per module, so removing it
    from the copy deletes the ``weight`` property from that class and breaks the original module.
    """
    was_training = module.training
    module.eval()
    state: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, sub in module.named_modules():
            if parametrize.is_parametrized(sub):
                for tensor_name in sub.parametrizations:
                    key = f"{name}.{tensor_name}" if name else tensor_name
                    state[key] = getattr(sub, tensor_name).detach().clone()
        for key, value in module.state_dict().items():
            if not (key.startswith("parametrizations.") or ".parametrizations." in key):
                state[key] = value.detach().clone()
    module.train(was_training)
    fresh = build()
    try:
        fresh.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ExportError(f"cannot fold spectral norm of {type(module).__name__}: {exc}") from exc
    return fresh.eval()


def prepare_modules(models, kind: str, *, two_stage_norm: bool = True) -> GraphModules:
    """Copies of the checkpoint's modules for export (spectral norm folded); the originals are untouched."""
    net = dataclasses.replace(models.config.net, spectral_norm=False)
    if net.family == "warp":  # no spectral norm or instance norm inside; the graph shares one avatar's shots
        if kind != "meta":
            raise ExportError("a personalised warp-family checkpoint cannot be exported yet")
        gen = folded_copy(models.generator, lambda: WarpGenerator(net))
        gen.stages = models.generator.stages  # the ablation's stage switch is state, not a weight: keep it
        return GraphModules(kind, SharedReferences(gen).eval(), folded_copy(models.embedder, lambda: Embedder(net)))
    gen = folded_copy(models.generator, lambda: Generator(net))
    if two_stage_norm:
        use_two_stage_norm(gen)
    if kind == "personalised":
        if models.psi is None:
            raise ExportError("the checkpoint is marked personalised but holds no personal.psi")
        return GraphModules(kind, PersonalisedGenerator(gen, models.psi).eval(), None)
    emb = folded_copy(models.embedder, lambda: Embedder(net))
    if two_stage_norm:
        use_two_stage_norm(emb)
    return GraphModules(kind, gen, emb)


def io_names(kind: str, role: str, family: str = "adain") -> tuple[list[str], list[str], dict[str, dict[int, str]]]:
    """Input names, output names and dynamic axes of a role, from the manifest contract."""
    inputs, outputs = expected_io(kind, role, 8, 1, family)  # sizes do not matter for names and axes
    dynamic = {t["name"]: {0: t["shape"][0]} for t in inputs + outputs}
    return [t["name"] for t in inputs], [t["name"] for t in outputs], dynamic


def stamp(model: onnx.ModelProto, role: str, variant: str | None = None, **extra: str) -> onnx.ModelProto:
    """Set ``talkinghead.role`` (and ``talkinghead.variant``) in the model's metadata_props."""
    entries = {p.key: p.value for p in model.metadata_props}
    entries[ROLE_KEY] = role
    entries.pop(VARIANT_KEY, None)
    if variant is not None:
        entries[VARIANT_KEY] = variant
    entries.update(extra)
    del model.metadata_props[:]
    for k, v in sorted(entries.items()):
        model.metadata_props.add(key=k, value=v)
    return model


def export_module(module: nn.Module, kind: str, role: str, example: tuple[torch.Tensor, ...],
                  opset: int = DEFAULT_OPSET, family: str = "adain") -> onnx.ModelProto:
    """Trace ``module`` on ``example`` and return the ONNX model (weights inline, role stamped)."""
    if family == "warp" and opset < 16:
        raise ExportError(f"the warp family needs opset 16 or later (GridSample), got {opset}")
    input_names, output_names, dynamic = io_names(kind, role, family)
    if len(example) != len(input_names):
        raise ExportError(f"{role}: {len(example)} example inputs for inputs {input_names}")
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python scalars are expected here
        torch.onnx.export(module, example, buf, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True,
                          dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    model.producer_name = "talkinghead.export"
    return stamp(model, role)
