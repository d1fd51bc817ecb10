"""ONNX Runtime sessions for a model package's graphs, created once and reused."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from .errors import InputError, ModelPackageError
from .limits import clamp_threads
from .providers import ProvidersArg, check_running, resolve_providers

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # recent ORT builds write under $HOME otherwise

_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass
class SessionConfig:
    """Options of every session a model creates.

    Attributes:
        providers: "auto", a short name ("cpu", "cuda") or a list in priority order.
        intra_op_threads: threads per operator (0: onnxruntime's default, all cores; more than the
            CPU count is lowered to it, with a RuntimeWarning).
        inter_op_threads: threads across operators (0: default).
        graph_optimization: "disable" | "basic" | "extended" | "all".
        variant: which generator file to run: "fp32" (reference), "int8" (CPU) or "fp16" (GPU);
            "auto" picks fp16 on CUDA when the package has it, else fp32.
        enable_mem_arena: onnxruntime's CPU memory arena.
        allow_spinning: intra-op threads spin between runs (ONNX Runtime's default, fastest);
            False lets them sleep: less idle CPU for the application's other threads, ~20% slower
            frames (bench/ort_settings.py).
    """

    providers: ProvidersArg = "auto"
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    variant: Literal["auto", "fp32", "int8", "fp16"] = "auto"
    enable_mem_arena: bool = True
    allow_spinning: bool = True

    def validate(self) -> "SessionConfig":
        if self.graph_optimization not in _OPT_LEVELS:
            raise InputError(f"graph_optimization must be one of {sorted(_OPT_LEVELS)}, "
                             f"got {self.graph_optimization!r}")
        self.intra_op_threads = clamp_threads(self.intra_op_threads, "intra_op_threads")
        self.inter_op_threads = clamp_threads(self.inter_op_threads, "inter_op_threads")
        if self.variant not in ("auto", "fp32", "int8", "fp16"):
            raise InputError(f"variant must be auto, fp32, int8 or fp16, got {self.variant!r}")
        return self

    def session_options(self) -> ort.SessionOptions:
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.intra_op_threads
        so.inter_op_num_threads = self.inter_op_threads
        so.graph_optimization_level = _OPT_LEVELS[self.graph_optimization]
        so.enable_cpu_mem_arena = self.enable_mem_arena
        so.log_severity_level = 3
        if not self.allow_spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return so


class GraphSession:
    """One graph on onnxruntime: named float32 inputs in, the first output out.

    The package checks the session against its manifest (``ModelPackage.check_session``).
    """

    def __init__(self, path: Path, role: str, config: SessionConfig) -> None:
        self.path = Path(path)
        self.role = role
        requested = resolve_providers(config.providers)
        try:
            self.session = ort.InferenceSession(str(self.path), config.session_options(), providers=requested)
        except Exception as exc:  # onnxruntime raises its own types for corrupt graphs
            raise ModelPackageError(f"{self.path.name}: onnxruntime cannot load this graph ({exc})") from exc
        self.providers = check_running(self.session, requested, f"{role} ({self.path.name})")
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, **inputs: np.ndarray) -> np.ndarray:
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise InputError(f"{self.role} graph needs inputs {sorted(missing)}")
        feed = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items() if k in self.input_names}
        return self.session.run(self.output_names[:1], feed)[0]
