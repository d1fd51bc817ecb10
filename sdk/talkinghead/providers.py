"""Execution providers: "auto", short names and explicit lists, in priority order.

``"auto"`` takes CUDA when onnxruntime has the CUDA provider and a session really runs on it
(checked after the session exists), else the CPU. An explicit list is honoured in order; a name
this onnxruntime does not have is an error that lists the available ones.
"""
from __future__ import annotations

import logging
from typing import Sequence

import onnxruntime as ort

from .errors import ProviderError

log = logging.getLogger("talkinghead")

ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}

ProvidersArg = str | Sequence[str]


def available_providers() -> list[str]:
    """Providers this onnxruntime build has, in its own priority order."""
    return list(ort.get_available_providers())


def resolve_providers(providers: ProvidersArg = "auto") -> list[str]:
    """Turn ``"auto"``, a short name (``"cpu"``, ``"cuda"``) or a list into onnxruntime names.

    Raises:
        ProviderError: a name that is not available here (the message lists what is).
    """
    available = available_providers()
    if isinstance(providers, str):
        if providers.lower() == "auto":
            chosen = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
            return chosen + ["CPUExecutionProvider"]
        providers = [providers]
    if not providers:
        raise ProviderError("empty provider list; use 'auto' or name one of " + ", ".join(available))
    out: list[str] = []
    for name in providers:
        full = ALIASES.get(name.lower(), name) if isinstance(name, str) else name
        if full not in available:
            raise ProviderError(f"execution provider {name!r} is not available in this onnxruntime; "
                                f"available: {', '.join(available)}"
                                + (" (for CUDA install talkinghead[gpu], i.e. onnxruntime-gpu)"
                                   if full == "CUDAExecutionProvider" else ""))
        if full not in out:
            out.append(full)
    return out


def check_running(session: ort.InferenceSession, requested: list[str], what: str) -> list[str]:
    """Warn when onnxruntime silently dropped a requested provider; return those in use."""
    running = list(session.get_providers())
    dropped = [p for p in requested if p not in running]
    if dropped:
        log.warning("%s: onnxruntime could not use %s (no working device or libraries?); running on %s",
                    what, ", ".join(dropped), ", ".join(running))
    return running
