"""Graph clean-up after tracing: onnxslim (constant folding, dead-node and redundant-op removal),
then ``onnx.checker`` (full check) and strict shape inference, and a check that the interface the
manifest will record survived: input and output names, dtypes, shapes, dynamic batch axis, metadata.
"""
from __future__ import annotations

import logging

import onnx
from onnx import TensorProto

from .errors import ExportError

log = logging.getLogger(__name__)

_DTYPES = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.INT64: "int64",
           TensorProto.INT32: "int32", TensorProto.UINT8: "uint8", TensorProto.INT8: "int8"}


def tensor_specs(values) -> list[dict]:
    """Manifest records (name, dtype, shape) of graph inputs or outputs."""
    out = []
    for v in values:
        t = v.type.tensor_type
        shape: list[int | str] = []
        for d in t.shape.dim:
            if d.HasField("dim_value"):
                shape.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                shape.append(d.dim_param)
            else:
                shape.append("?")
        out.append({"name": v.name, "dtype": _DTYPES.get(t.elem_type, f"onnx:{t.elem_type}"), "shape": shape})
    return out


def interface(model: onnx.ModelProto) -> tuple[list[dict], list[dict]]:
    return tensor_specs(model.graph.input), tensor_specs(model.graph.output)


def check(model: onnx.ModelProto, what: str) -> onnx.ModelProto:
    """onnx.checker (full) and strict shape inference; returns the shape-inferred model."""
    try:
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{what}: the ONNX checker refused the graph: {exc}") from exc


def simplify(model: onnx.ModelProto, what: str) -> onnx.ModelProto:
    """Simplify with onnxslim, keeping the interface and metadata; check the result."""
    before = interface(model)
    metadata = [(p.key, p.value) for p in model.metadata_props]
    n_before = len(model.graph.node)
    try:
        import onnxslim

        slim = onnxslim.slim(model)
    except Exception as exc:  # noqa: BLE001 - onnxslim is best effort; the traced graph is valid
        log.warning("%s: onnxslim failed (%s); keeping the traced graph", what, exc)
        slim = model
    if slim is None:
        slim = model
    if interface(slim) != before:
        log.warning("%s: onnxslim changed the graph interface; keeping the traced graph", what)
        slim = model
    del slim.metadata_props[:]
    for k, v in metadata:
        slim.metadata_props.add(key=k, value=v)
    slim.producer_name = model.producer_name
    log.info("%s: %d -> %d nodes after simplification", what, n_before, len(slim.graph.node))
    return check(slim, what)
