"""Parity: the exported graphs on ONNX Runtime (CPU) against the PyTorch modules, same inputs.

The PyTorch side runs the checkpoint's own modules (spectral norm not folded, eval mode), so the
check covers the fold, the instance-norm rewrite and the exporter together.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx
import torch

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import onnxruntime as ort  # noqa: E402

from talkinghead.manifest import REFERENCE_INPUTS  # noqa: E402

from training.metrics import ssim  # noqa: E402


@dataclass
class Diff:
    """How far two outputs are apart."""

    max_abs: float
    mean_abs: float

    def as_dict(self) -> dict[str, float]:
        """For the manifest: 4 significant digits."""
        return {"max_abs": _sig(self.max_abs), "mean_abs": _sig(self.mean_abs)}

    def __str__(self) -> str:
        return f"max abs {self.max_abs:.2e}, mean abs {self.mean_abs:.2e}"


def _sig(x: float) -> float:
    return float(f"{x:.4g}")


def diff(a: np.ndarray, b: np.ndarray) -> Diff:
    if a.shape != b.shape:
        raise ValueError(f"outputs differ in shape: {a.shape} vs {b.shape}")
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return Diff(float(d.max()), float(d.mean()))


def image_error(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """A variant's error record: max and mean abs difference and SSIM of the rendered images."""
    d = diff(reference, other)
    return {**d.as_dict(), "ssim": round(ssim(reference, other), 6)}


def cpu_session(model: onnx.ModelProto | bytes | str, threads: int = 2) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with full graph optimisation (as the SDK runs it)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def run_session(session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return session.run(None, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()})[0]


def run_torch(module: torch.nn.Module, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Call ``module`` with the feeds as positional tensors, in the order given."""
    with torch.no_grad():
        out = module(*(torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for v in feeds.values()))
    return out.numpy()


def check_batch_one(session: ort.InferenceSession, feeds: dict[str, np.ndarray], batched: np.ndarray) -> Diff:
    """Run the first sample alone: the dynamic batch axis must give the same row (a warp generator's
    references, shared by the batch, stay whole)."""
    one = run_session(session, {k: v if k in REFERENCE_INPUTS else v[:1] for k, v in feeds.items()})
    return diff(one, batched[:1])
