"""How the training loops run their forward passes: autocast dtype, activation layout, frozen weights.

Shared by meta-learning (:mod:`training.meta_learning`) and few-shot fine-tuning
(:mod:`training.finetune`). None of it changes what is learned beyond rounding: weights, optimiser
state and losses stay fp32; ``bf16`` runs convolutions and matrix products in bfloat16 under
``torch.autocast`` (fast on CPUs with AVX-512 BF16/AMX and on GPUs), and channels-last lays
activations out NHWC, which oneDNN's convolutions prefer. ``bench/train_speed.py`` measures both.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch is imported where it is used: the names below are importable without it (argument parsing
# of bench/quality.py, configs).

Precision = Literal["fp32", "bf16", "auto"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "auto")
# CPU flags (/proc/cpuinfo) of native bf16 arithmetic. Without them (AVX2-only hosts, most laptops)
# bf16 autocast made a lite generator training step 7.5x slower than fp32; with them it is faster.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve(device: torch.device, precision: Precision) -> str:
    """``"auto"`` -> ``"bf16"`` on a GPU or on a CPU with native bf16, else ``"fp32"``; others unchanged."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    return "bf16" if cpu_flags() & set(NATIVE_BF16_FLAGS) else "fp32"


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` for ``"bf16"`` (and ``"auto"`` where it resolves so); nothing for ``"fp32"``."""
    import torch

    if resolve(device, precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(channels_last: bool) -> torch.memory_format:
    import torch

    return torch.channels_last if channels_last else torch.contiguous_format


def lay_out(modules: Iterable[nn.Module], channels_last: bool) -> None:
    """Put the modules' 4-D weights in the chosen layout (in place)."""
    for module in modules:
        module.to(memory_format=memory_format(channels_last))


def as_layout(tensor: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """An image batch [N,C,H,W] in the chosen layout; other tensors unchanged."""
    return tensor.contiguous(memory_format=memory_format(channels_last)) if tensor.dim() == 4 else tensor


@contextlib.contextmanager
def no_gradients(params: Iterable[nn.Parameter]) -> Iterator[None]:
    """Parameters that need no gradient for a while (e.g. the discriminator's in the generator's step,
    whose gradients would be thrown away): saves their weight-gradient computation."""
    params = [p for p in params if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
