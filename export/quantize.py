"""Variants of the generator: int8 (static QDQ, for CPUs) and fp16 (for GPUs).

Both start from the generator exported with ONNX Runtime's fused ``InstanceNormalization`` (see
:mod:`export.onnx_export`) and keep the rasteriser's nodes (``/rasterizer/...``) in fp32, so every
variant sees exactly the conditioning image of the reference graph; only the network is reduced.
Inputs and outputs stay float32, so a variant is a drop-in file for its graph.

- int8: ``onnxruntime.quantization``: ``quant_pre_process`` (ONNX shape inference and ORT's basic
  graph optimisation; ORT's symbolic shape inference does not complete on the rasteriser's einsum,
  so it is skipped), then ``quantize_static`` in the QDQ format with per-channel symmetric QInt8
  weights in 7 bits ([-64, 64], ORT's ``reduce_range``) and QUInt8 activations, calibrated on real
  face crops and their landmarks. 7 bits because x86-64 CPUs without VNNI (AVX2 only) multiply u8
  activations by s8 weights with VPMADDUBSW, whose int16 sum of two products saturates for 8-bit
  weights (2 x 255 x 127 > 32767): the bundled 8-bit graph rendered SSIM 0.973 against fp32 there
  and 0.99 on VNNI CPUs. With 7-bit weights no pair can exceed 2 x 255 x 64 = 32640, so the error no
  longer depends on the CPU (issue 18; measured in ``bench/int8_recipes.py``, docs/performance.md). What is
  quantised is an :class:`Int8Recipe`; the shipped one makes only the convolutions whose feature maps
  are at most 32 px on a side int8 (for ``lite`` at 256²: the encoder's last two stages, the
  bottleneck and the decoder's first stage), with percentile calibration. There the convolutions are
  wide and the maps small, so int8 arithmetic saves about what the quantise / dequantise / NHWC
  transposes around each float instance norm cost; at larger maps the conversions cost more, and
  quantising every convolution made the generator slower than fp32 and took its SSIM against fp32
  to 0.96 (docs/performance.md, ``bench/int8_recipes.py``).
- fp16: ``onnxruntime.transformers.float16.convert_float_to_float16`` (the converter
  onnxconverter-common ships, bundled with the onnxruntime wheel, so no extra dependency) with
  ``keep_io_types=True``, then a topological sort (the converter appends its input casts at the end
  of the node list, which ``onnx.checker`` refuses).
"""
from __future__ import annotations

import copy
import io
import logging
import platform
import tempfile
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import onnx

from .errors import ExportError

log = logging.getLogger(__name__)

# Module scopes (TorchScript node names) computed in float in every variant: coordinates and
# rasterised conditioning images. The adain generator's rasteriser; the warp generator's rasterisers,
# its piecewise-affine field, and everything outside its two learned networks (the blend, the
# GridSample warps, the shot choice). Only the networks' own convolutions are reduced.
FLOAT_SCOPES = ("rasterizer/", "net_raster/", "synth_raster/", "field/")
WARP_NETWORK_SCOPES = ("/refiner/", "/synthesiser/")


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
        max_side: when given, only nodes whose output feature map is at most this many pixels on a
            side are quantised (measured by running the graph once on a calibration input); nodes
            without a 4-D output (MatMul, Gemm) then stay float. An absolute size: at 512² it
            selects fewer stages than at 256² (speed measured at 256² only).
        reduce_range: 7-bit weights (ONNX Runtime's ``reduce_range``: every int8 weight in
            [-64, 64]) instead of [-127, 127]. Without VNNI, x86-64 CPUs run u8 x s8 convolutions with
            VPMADDUBSW, which adds two u8 x s8 products into a saturating int16: with 8-bit weights a
            pair can reach 2 x 255 x 127 = 64770 and is clipped at 32767, so the error against fp32
            depends on the CPU (AVX2-only machines render worse than VNNI ones); with 7-bit weights a
            pair is at most 2 x 255 x 64 = 32640 and cannot saturate on any x86-64 CPU.
        activations: "uint8" (QUInt8 activations, u8 x s8 arithmetic) or "int8" (S8S8; measured
            in bench/int8_recipes.py).
    """

    op_types: tuple[str, ...] = ("Conv",)
    skip_depthwise: bool = False
    skip_ends: bool = False
    calibration: Literal["minmax", "percentile"] = "percentile"
    percentile: float = 99.99
    only_scopes: tuple[str, ...] = ()
    max_side: int | None = 32
    reduce_range: bool = True
    activations: Literal["uint8", "int8"] = "uint8"

    def excluded(self, model: onnx.ModelProto, sides: dict[str, int] | None = None) -> list[str]:
        """Nodes this recipe keeps in float: the rasteriser's, then its own choices.

        ``sides`` maps node names to the side of their output feature map (:func:`output_sides`);
        a recipe with ``max_side`` needs it.
        """
        out = float_nodes(model)
        candidates = [n for n in model.graph.node if n.op_type in self.op_types and n.name not in out]
        if self.skip_depthwise:
            out += [n.name for n in candidates if n.op_type == "Conv" and _group(n) > 1]
        if self.skip_ends and candidates:
            out += [candidates[0].name, candidates[-1].name]
        if self.only_scopes:
            out += [n.name for n in candidates if not any(scope in n.name for scope in self.only_scopes)]
        if self.max_side is not None:
            if sides is None:
                raise ExportError("an int8 recipe with max_side needs the feature map sides (output_sides)")
            out += [n.name for n in candidates if sides.get(n.name, self.max_side + 1) > self.max_side]
        return list(dict.fromkeys(out))

    def describe(self) -> str:
        """One line for the manifest: what is int8 and how it was calibrated."""
        what = "/".join(self.op_types)
        where = [f"feature maps <= {self.max_side} px"] if self.max_side is not None else []
        where += ["depthwise kept float"] * self.skip_depthwise + ["first/last kept float"] * self.skip_ends
        where += [f"scopes {', '.join(self.only_scopes)}"] if self.only_scopes else []
        calib = f"percentile {self.percentile:g}" if self.calibration == "percentile" else "MinMax"
        weights = "7-bit weights in [-64, 64]" if self.reduce_range else "8-bit weights"
        acts = "u8" if self.activations == "uint8" else "s8"
        return (f"static QDQ of {what}{' (' + '; '.join(where) + ')' if where else ''}, rest and rasteriser fp32, "
                f"{calib}, {weights}, {acts} activations")


CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
_FLAG_NAMES = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI",
               "avx512_bf16": "AVX-512 BF16", "amx_int8": "AMX-INT8"}


def cpu_model_and_flags() -> tuple[str, set[str]]:
    """The CPU's model name and its flags from /proc/cpuinfo (no flags where there is none), as this
    process's libraries see them: under bench/avx2/run.sh, which hides AVX-512 from CPUID so they
    take their AVX2 code paths, the AVX-512 and AMX flags are left out and the model says so."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    if "avx512f" in flags and not _process_sees("AVX512F"):
        flags = {f for f in flags if not f.startswith(("avx512", "amx"))}
        model += " with AVX-512 hidden from CPUID (bench/avx2/run.sh: AVX2 code paths, not an AVX2 machine)"
    return model, flags


def _process_sees(feature: str) -> bool:
    """Whether this process's CPUID reports ``feature`` (numpy's runtime dispatch reads CPUID)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return bool(__cpu_features__.get(feature, True))


def cpu_description() -> str:
    """The CPU's model and which of its int8-relevant vector extensions it has: an int8 graph's error
    against fp32 is measured on one CPU, and for u8 x s8 with 8-bit weights it depends on it
    (:class:`Int8Recipe`)."""
    model, flags = cpu_model_and_flags()
    if not flags:
        return f"CPU: {model} (flags unknown: no /proc/cpuinfo)"
    return f"CPU: {model}; " + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in CPU_FLAGS)


def measured_on(recipe: Int8Recipe) -> str:
    """Where an int8 error was measured, for the manifest: the CPU and its int8 extensions, and what
    that says about CPUs without VNNI."""
    model, flags = cpu_model_and_flags()
    have = [_FLAG_NAMES[f] for f in CPU_FLAGS if f in flags]
    where = f"{model} with {', '.join(have)}" if have else f"{model} (flags unknown)"
    if not {"avx512_vnni", "avx_vnni"} & flags:
        return f"error vs fp32 measured on {where} (no VNNI)"
    safe = ("7-bit weights keep its u8 x s8 int16 pair sums from saturating" if recipe.reduce_range
            else "its u8 x s8 int16 pair sums can saturate with 8-bit weights")
    return f"error vs fp32 measured on {where}; not measured on an AVX2-only CPU (no VNNI), where {safe}"


def _group(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes every variant keeps in float32 (:data:`FLOAT_SCOPES`; in a warp generator,
    recognised by its network scopes, also every node outside :data:`WARP_NETWORK_SCOPES`)."""
    names = [n.name for n in model.graph.node]
    warp = any(scope in name for name in names for scope in WARP_NETWORK_SCOPES)
    return [name for name in names
            if any(scope in name for scope in FLOAT_SCOPES)
            or (warp and not any(scope in name for scope in WARP_NETWORK_SCOPES))]


def output_sides(model: onnx.ModelProto, feed: dict[str, np.ndarray],
                 op_types: tuple[str, ...] = ("Conv",), threads: int = 1) -> dict[str, int]:
    """The side (max of height and width) of each ``op_types`` node's output feature map, by running
    ``model`` once on ``feed`` with those outputs exposed (no shape inference needed)."""
    import onnxruntime as ort

    probe = copy.deepcopy(model)
    outputs = {o.name for o in probe.graph.output}
    watched = {n.output[0]: n.name for n in probe.graph.node if n.op_type in op_types}
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in watched if name not in outputs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = list(watched)
    values = session.run(names, feed)
    return {watched[name]: int(max(v.shape[2:])) for name, v in zip(names, values) if v.ndim == 4}


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """onnxruntime.quantization warns through the root logger about every 1-D per-channel weight,
    and its histogram calibrator prints its progress to stdout; both are kept out of ours."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with redirect_stdout(io.StringIO()):
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
        with _quiet_quantizer():
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        prepared = onnx.load(str(pre))
        sides = output_sides(prepared, feeds[0], recipe.op_types) if recipe.max_side is not None else None
        excluded = recipe.excluded(prepared, sides)
        candidates = [n.name for n in prepared.graph.node if n.op_type in recipe.op_types]
        if candidates and set(candidates) <= set(excluded):
            raise ExportError(f"the int8 recipe quantises none of the {len(candidates)} {'/'.join(recipe.op_types)} "
                              f"nodes (max_side {recipe.max_side}): the result would be an fp32 graph called int8")
        with _quiet_quantizer():  # per-channel axis warnings for InstanceNormalization's 1-D scale
            quantize_static(
                str(pre), str(out), Reader(feeds),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8 if recipe.activations == "uint8" else QuantType.QInt8,
                reduce_range=recipe.reduce_range,
                calibrate_method=(CalibrationMethod.MinMax if recipe.calibration == "minmax"
                                  else CalibrationMethod.Percentile),
                nodes_to_exclude=excluded,
                op_types_to_quantize=list(recipe.op_types),
                extra_options={"CalibPercentile": recipe.percentile},
            )
        return onnx.load(str(out))


def convert_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and compute, float32 inputs and outputs, :func:`float_nodes` in fp32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    half = convert_float_to_float16(copy.deepcopy(model), keep_io_types=True, node_block_list=float_nodes(model))
    wrapped = OnnxModel(half)
    wrapped.topological_sort()
    return wrapped.model
