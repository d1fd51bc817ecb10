"""Variants of the generator: int8 (static QDQ, for CPUs) and fp16 (for GPUs).

Both start from the generator exported with ONNX Runtime's fused ``InstanceNormalization`` (see
:mod:`export.onnx_export`) and keep the rasteriser's nodes (``/rasterizer/...``) in fp32, so every
variant sees exactly the conditioning image of the reference graph; only the network is reduced.
Inputs and outputs stay float32, so a variant is a drop-in file for its graph.

- int8: ``onnxruntime.quantization``: ``quant_pre_process`` (ONNX shape inference and ORT's basic
  graph optimisation; ORT's symbolic shape inference does not complete on the rasteriser's einsum,
  so it is skipped), then ``quantize_static`` in the QDQ format with per-channel symmetric QInt8
  weights and QUInt8 activations, calibrated (MinMax) on real face crops and their landmarks. Only
  Conv, MatMul and Gemm are quantised (the weights and the arithmetic); softmax, resize, pooling and
  the element-wise ops stay float: quantising them too (onnxruntime's default) made a random
  ``lite`` generator neither faster nor closer to fp32 here, and QLinearSoftmax alone took 12% of
  its time.
- fp16: ``onnxruntime.transformers.float16.convert_float_to_float16`` (the converter
  onnxconverter-common ships, bundled with the onnxruntime wheel, so no extra dependency) with
  ``keep_io_types=True``, then a topological sort (the converter appends its input casts at the end
  of the node list, which ``onnx.checker`` refuses).
"""
from __future__ import annotations

import copy
import logging
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import onnx

from .errors import ExportError

log = logging.getLogger(__name__)

RASTERIZER_SCOPE = "rasterizer/"


@dataclass(frozen=True)
class Int8Recipe:
    """What static int8 quantises and how it calibrates (the default is what the exporter ships).

    Attributes:
        op_types: operators whose weights and arithmetic become int8.
        skip_depthwise: keep grouped (depthwise) convolutions in float.
        skip_ends: keep the first and the last quantisable node in float.
        calibration: "minmax" (ranges seen) or "percentile" (clip the tails at ``percentile``).
        percentile: for "percentile".
        only_scopes: when given, only nodes whose name contains one of these module paths (e.g.
            ``"/bottleneck."``) are quantised; the rest of the network stays float.
    """

    op_types: tuple[str, ...] = ("Conv", "MatMul", "Gemm")
    skip_depthwise: bool = False
    skip_ends: bool = False
    calibration: Literal["minmax", "percentile"] = "minmax"
    percentile: float = 99.99
    only_scopes: tuple[str, ...] = ()

    def excluded(self, model: onnx.ModelProto) -> list[str]:
        """Nodes this recipe keeps in float: the rasteriser's, then its own choices."""
        out = rasterizer_nodes(model)
        candidates = [n for n in model.graph.node if n.op_type in self.op_types and n.name not in out]
        if self.skip_depthwise:
            out += [n.name for n in candidates if n.op_type == "Conv" and _group(n) > 1]
        if self.skip_ends and candidates:
            out += [candidates[0].name, candidates[-1].name]
        if self.only_scopes:
            out += [n.name for n in candidates if not any(scope in n.name for scope in self.only_scopes)]
        return list(dict.fromkeys(out))


def _group(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def rasterizer_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes the TorchScript exporter scoped under a ``rasterizer`` module."""
    return [n.name for n in model.graph.node if RASTERIZER_SCOPE in n.name]


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization warns through the root logger about every 1-D per-channel weight."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _FeedReader:
    """A CalibrationDataReader over a list of input dicts (one batch-1 sample each)."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # pragma: no cover - unused by MinMax, part of the reader protocol
        pass


def quantize_int8(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]],
                  recipe: Int8Recipe | None = None) -> onnx.ModelProto:
    """Static QDQ int8 of ``model`` calibrated on ``feeds`` (rasteriser kept in fp32)."""
    recipe = recipe or Int8Recipe()
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)

    class Reader(_FeedReader, CalibrationDataReader):
        pass

    if not feeds:
        raise ExportError("int8 calibration needs at least one input sample")
    with tempfile.TemporaryDirectory(prefix="talkinghead-int8-") as tmp:
        src, pre, out = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        prepared = onnx.load(str(pre))
        with _quiet_root_logger():  # per-channel axis warnings for InstanceNormalization's 1-D scale
            quantize_static(
                str(pre), str(out), Reader(feeds),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                calibrate_method=(CalibrationMethod.MinMax if recipe.calibration == "minmax"
                                  else CalibrationMethod.Percentile),
                nodes_to_exclude=recipe.excluded(prepared),
                op_types_to_quantize=list(recipe.op_types),
                extra_options={"CalibPercentile": recipe.percentile},
            )
        return onnx.load(str(out))


def convert_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and compute, float32 inputs and outputs, rasteriser in fp32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    half = convert_float_to_float16(copy.deepcopy(model), keep_io_types=True, node_block_list=rasterizer_nodes(model))
    wrapped = OnnxModel(half)
    wrapped.topological_sort()
    return wrapped.model
