"""Exact rewrites of operators that ONNX Runtime's CPU kernels run slowly, applied to exported graphs.

Measured on ONNX Runtime 1.32, 2 threads, AMD EPYC (AVX2), warping 2 shots of 3 x 256 x 256:

- ``GridSample`` (bilinear, border padding, align_corners=0, 4-D): 6.9 ms. The same sampling as four
  ``GatherElements`` over the flattened image and a weighted sum: 2.8 ms, equal to 1.2e-7.
- ``Softmax`` over a non-last axis (the blend of the warped shots, axis 1 of [B, 2, 1, 256, 256]):
  1.9 ms (the kernel transposes). Written as exp(x - max) / sum over that axis: the same values,
  without the transposes.

Both rewrites give the same numbers as the operators they replace (up to float rounding), so they
need no retraining and change no quality figure; the graph stays ONNX opset 17 with plain 4-D ops.
The exporter applies them to every generator (:func:`rewrite_graph`); ``python -m export.rewrite
PACKAGE`` applies them to an existing package's generator and variants, checks each rewritten graph
against the original on real inputs, and updates the manifest's hashes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from .errors import ExportError
from .manifest_writer import write_manifest

log = logging.getLogger(__name__)


class _Names:
    """Fresh tensor and node names under a prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.count = prefix, 0

    def __call__(self, what: str) -> str:
        self.count += 1
        return f"{self.prefix}/{what}_{self.count}"


def _const(nodes: list, name: _Names, value, dtype=np.int64) -> str:
    out = name("const")
    nodes.append(helper.make_node("Constant", [], [out], value=onnx.numpy_helper.from_array(np.array(value, dtype))))
    return out


def _op(nodes: list, name: _Names, op: str, inputs: list[str], **attrs) -> str:
    out = name(op.lower())
    nodes.append(helper.make_node(op, inputs, [out], name=out + "_node", **attrs))
    return out


def _grid_sample_nodes(node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """Nodes computing ``node`` (GridSample bilinear/border/align_corners=0 on [N,C,H,W] with a
    float grid [N,Ho,Wo,2]) with GatherElements; its output keeps the node's output name."""
    x, grid = node.input
    name = _Names(node.name or node.output[0])
    n: list = []
    c = lambda v, dt=np.int64: _const(n, name, v, dt)  # noqa: E731
    shape = _op(n, name, "Shape", [x])
    dims_h = _op(n, name, "Gather", [shape, c(2)], axis=0)           # H (scalar)
    dims_w = _op(n, name, "Gather", [shape, c(3)], axis=0)           # W
    nc = _op(n, name, "Slice", [shape, c([0]), c([2])])               # [N, C]
    gshape = _op(n, name, "Shape", [grid])
    out_hw = _op(n, name, "Slice", [gshape, c([1]), c([3])])          # [Ho, Wo]
    hw_out = _op(n, name, "ReduceProd", [out_hw], keepdims=1)         # [Ho*Wo]
    g = _op(n, name, "Cast", [grid], to=TensorProto.FLOAT)
    gx = _op(n, name, "Gather", [g, c(0)], axis=3)                   # [N, Ho, Wo]
    gy = _op(n, name, "Gather", [g, c(1)], axis=3)
    one, half = c(1.0, np.float32), c(0.5, np.float32)

    def axis_coords(gv: str, size: str):
        """Pixel coordinate (align_corners=0), clamped to the border; the floor, its neighbour and
        the weight of the neighbour."""
        size_f = _op(n, name, "Cast", [size], to=TensorProto.FLOAT)
        last_f = _op(n, name, "Sub", [size_f, one])
        pix = _op(n, name, "Sub", [_op(n, name, "Mul", [_op(n, name, "Add", [gv, one]), _op(n, name, "Mul", [size_f, half])]), half])
        pix = _op(n, name, "Max", [_op(n, name, "Min", [pix, last_f]), c(0.0, np.float32)])
        lo_f = _op(n, name, "Floor", [pix])
        weight = _op(n, name, "Sub", [pix, lo_f])
        lo = _op(n, name, "Cast", [lo_f], to=TensorProto.INT64)
        hi = _op(n, name, "Min", [_op(n, name, "Add", [lo, c(1)]), _op(n, name, "Sub", [size, c(1)])])
        return lo, hi, weight

    x0, x1, wx = axis_coords(gx, dims_w)
    y0, y1, wy = axis_coords(gy, dims_h)
    flat = _op(n, name, "Reshape", [x, c([0, 0, -1])])                # [N, C, H*W]
    index_shape = _op(n, name, "Concat", [nc, hw_out], axis=0)        # [N, C, Ho*Wo]
    out_shape = _op(n, name, "Concat", [nc, out_hw], axis=0)          # [N, C, Ho, Wo]

    def tap(yi: str, xi: str) -> str:
        idx = _op(n, name, "Add", [_op(n, name, "Mul", [yi, dims_w]), xi])        # [N, Ho, Wo]
        idx = _op(n, name, "Reshape", [idx, c([0, 1, -1])])                         # [N, 1, Ho*Wo]
        idx = _op(n, name, "Expand", [idx, index_shape])
        return _op(n, name, "Reshape", [_op(n, name, "GatherElements", [flat, idx], axis=2), out_shape])

    def weight4(w: str) -> str:  # [N, Ho, Wo] -> [N, 1, Ho, Wo], in the image's dtype
        return _op(n, name, "CastLike", [_op(n, name, "Unsqueeze", [w, c([1])]), x])

    def lerp(a: str, b: str, w: str) -> str:  # a + (b - a) * w
        return _op(n, name, "Add", [a, _op(n, name, "Mul", [_op(n, name, "Sub", [b, a]), w])])

    wx4, wy4 = weight4(wx), weight4(wy)
    top = lerp(tap(y0, x0), tap(y0, x1), wx4)
    bottom = lerp(tap(y1, x0), tap(y1, x1), wx4)
    n.append(helper.make_node("Add", [top, _op(n, name, "Mul", [_op(n, name, "Sub", [bottom, top]), wy4])],
                              [node.output[0]], name=name("out")))
    return n


def _softmax_nodes(node: onnx.NodeProto, axis: int) -> list[onnx.NodeProto]:
    """exp(x - max) / sum over ``axis``: Softmax without the kernel's transposes."""
    name = _Names(node.name or node.output[0])
    n: list = []
    top = _op(n, name, "ReduceMax", [node.input[0]], axes=[axis], keepdims=1)
    e = _op(n, name, "Exp", [_op(n, name, "Sub", [node.input[0], top])])
    total = _op(n, name, "ReduceSum", [e, _const(n, name, [axis])], keepdims=1)
    n.append(helper.make_node("Div", [e, total], [node.output[0]], name=name("out")))
    return n


def _attr(node: onnx.NodeProto, key: str, default):
    for a in node.attribute:
        if a.name == key:
            return helper.get_attribute_value(a)
    return default


def _rank(model: onnx.ModelProto, tensor: str) -> int | None:
    for v in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        if v.name == tensor and v.type.tensor_type.HasField("shape"):
            return len(v.type.tensor_type.shape.dim)
    return None


def rewrite_graph(model: onnx.ModelProto) -> dict[str, int]:
    """Rewrites, in place, every GridSample (bilinear, border, align_corners=0, 4-D) and every
    Softmax over a non-last axis of ``model``'s main graph; returns how many of each."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13 or opset >= 18:  # ReduceMax's axes attribute and ReduceSum's axes input: 13..17
        return {"GridSample": 0, "Softmax": 0}
    inferred = onnx.shape_inference.infer_shapes(model)
    counts = {"GridSample": 0, "Softmax": 0}
    out: list = []
    for node in model.graph.node:
        if (node.op_type == "GridSample" and node.domain in ("", "ai.onnx")
                and _attr(node, "mode", b"bilinear") in (b"bilinear", "bilinear")
                and _attr(node, "padding_mode", b"zeros") in (b"border", "border")
                and _attr(node, "align_corners", 0) == 0 and _rank(inferred, node.input[0]) == 4):
            out.extend(_grid_sample_nodes(node))
            counts["GridSample"] += 1
            continue
        if node.op_type == "Softmax" and node.domain in ("", "ai.onnx"):
            rank = _rank(inferred, node.input[0])
            axis = _attr(node, "axis", -1)
            if rank is not None and axis % rank != rank - 1:
                out.extend(_softmax_nodes(node, axis % rank))
                counts["Softmax"] += 1
                continue
        out.append(node)
    del model.graph.node[:]
    model.graph.node.extend(out)
    onnx.checker.check_model(model)
    return counts


# ---- an existing package ------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sample_feed(session, package: Path, manifest: dict) -> dict[str, np.ndarray]:
    """Inputs for a generator: the package's default avatar (its references and landmarks) driven
    by its own face moved a little; without a default avatar, synthetic shots (export.data)."""
    from talkinghead.avatar import Avatar

    from .data import synthetic

    rng = np.random.default_rng(0)
    if (package / "avatar.npz").is_file():
        avatar = Avatar.load(package / "avatar.npz")
        face, identity = avatar.landmarks, avatar.identity
        images, ref_lm = avatar.reference_inputs() if avatar.has_references else (None, None)
    else:
        refs = synthetic(manifest.get("references", {}).get("resolution", manifest["resolution"]), 2)
        images, ref_lm = refs.images, refs.landmarks
        face, identity = refs.landmarks[0], rng.normal(0, 1, manifest["embedding_dim"])
    values = {"landmarks": (face[None] + rng.normal(0, 0.01, (2, 68, 2))).astype(np.float32),
              "identity": np.repeat(np.asarray(identity, np.float32)[None], 2, 0),
              "ref_images": images, "ref_landmarks": ref_lm}
    return {i.name: np.asarray(values[i.name], np.float32) for i in session.get_inputs()}


def rewrite_package(package: Path, tolerance: float = 1e-4) -> dict[str, dict[str, int]]:
    """Rewrites the generator graph and its variants of the package at ``package`` in place, after
    checking each against the original (max abs difference <= ``tolerance`` on [-1, 1] images);
    updates the manifest's sha256 records. Returns the counts per file."""
    import onnxruntime as ort

    from talkinghead.errors import TalkingHeadError
    from talkinghead.package import ModelPackage

    try:
        ModelPackage.load(package)  # a whole, valid package (manifest, hashes, role stamps) or a clear error
    except TalkingHeadError as exc:
        raise ExportError(f"{package}: not a model package to rewrite: {exc}") from exc
    manifest_path = package / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    records = [manifest["graphs"]["generator"]] + [v for v in manifest.get("variants", {}).values()
                                                   if v.get("graph", "generator") == "generator"]
    done: dict[str, dict[str, int]] = {}
    for record in records:
        path = package / record["file"]
        model = onnx.load(str(path))
        try:
            counts = rewrite_graph(model)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
            raise ExportError(f"{path.name}: the graph does not pass the ONNX checker ({exc}); nothing rewritten") from exc
        if not any(counts.values()):
            done[record["file"]] = counts
            continue
        so = ort.SessionOptions()
        so.log_severity_level = 3
        before = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        after = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        feed = _sample_feed(before, package, manifest)
        diff = float(np.abs(before.run(None, feed)[0] - after.run(None, feed)[0]).max())
        if not diff <= tolerance:
            raise ExportError(f"{path.name}: the rewritten graph differs by {diff:.3g} (> {tolerance}); nothing written")
        tmp = path.with_suffix(".rewrite.tmp")
        onnx.save(model, str(tmp))
        tmp.replace(path)
        record["sha256"] = _sha256(path)
        log.info("%s: %s rewritten (max abs difference %.2g)", path.name, counts, diff)
        done[record["file"]] = {**counts, "max_abs_difference": diff}
    write_manifest(package, manifest)
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Rewrite a package's slow CPU operators exactly (export/rewrite.py).")
    ap.add_argument("package", type=Path, help="a model package folder (rewritten in place)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        done = rewrite_package(args.package)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for file, counts in done.items():
        print(f"{file}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
