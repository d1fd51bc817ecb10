"""export.rewrite: GridSample and non-last-axis Softmax replaced by exact equivalents."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from export.rewrite import rewrite_graph


def _graph(padding: str = "border") -> onnx.ModelProto:
    """x [N,C,H,W] sampled at grid [N,Ho,Wo,2], and a Softmax over axis 1 of s [N,K,1,H,W]."""
    nodes = [helper.make_node("GridSample", ["x", "grid"], ["warped"], mode="bilinear",
                              padding_mode=padding, align_corners=0),
             helper.make_node("Softmax", ["s"], ["weights"], axis=1),
             helper.make_node("Softmax", ["s"], ["last"], axis=-1)]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 12, 20]),
         helper.make_tensor_value_info("grid", TensorProto.FLOAT, ["n", 9, 7, 2]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, ["n", 4, 1, 5, 6])],
        [helper.make_tensor_value_info("warped", TensorProto.FLOAT, ["n", 3, 9, 7]),
         helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["n", 4, 1, 5, 6]),
         helper.make_tensor_value_info("last", TensorProto.FLOAT, ["n", 4, 1, 5, 6])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, feed: dict) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


def _feed(rng: np.random.Generator, n: int = 2) -> dict:
    # grid points well outside [-1, 1] too: the border clamp is part of the rule
    return {"x": rng.standard_normal((n, 3, 12, 20)).astype(np.float32),
            "grid": rng.uniform(-1.4, 1.4, (n, 9, 7, 2)).astype(np.float32),
            "s": (rng.standard_normal((n, 4, 1, 5, 6)) * 20).astype(np.float32)}


def test_rewritten_graph_gives_the_same_numbers_without_gridsample() -> None:
    model = _graph()
    rng = np.random.default_rng(0)
    feeds = [_feed(rng, 2), _feed(rng, 1)]
    want = [_run(model, f) for f in feeds]
    counts = rewrite_graph(model)
    assert counts == {"GridSample": 1, "Softmax": 1}  # the last-axis Softmax stays: its kernel is fast
    ops = [n.op_type for n in model.graph.node]
    assert "GridSample" not in ops and ops.count("Softmax") == 1
    for f, w in zip(feeds, want):
        got = _run(model, f)
        for g, e in zip(got, w):
            assert g.shape == e.shape
            np.testing.assert_allclose(g, e, atol=2e-6, rtol=0)


def test_other_padding_modes_are_left_alone() -> None:
    model = _graph(padding="zeros")
    assert rewrite_graph(model)["GridSample"] == 0
    assert "GridSample" in [n.op_type for n in model.graph.node]


def test_rewrite_package_in_place_and_its_errors(tmp_path, capsys) -> None:
    """`python -m export.rewrite PACKAGE`: a package exported with GridSample is rewritten, its hashes
    updated and it still loads; a folder that is no package, or a corrupt graph, is an error that
    writes nothing."""
    import shutil
    from pathlib import Path

    from export import ExportOptions, export_checkpoint
    from export.rewrite import main
    from talkinghead.package import ModelPackage
    from training.config import tiny_warp_config

    from .test_warp_stages import _checkpoint

    pkg = export_checkpoint(_checkpoint(tmp_path, tiny_warp_config()), tmp_path / "pkg", ExportOptions(synthetic=True, rewrite=False)).path
    assert "GridSample" in {n.op_type for n in onnx.load(str(pkg / "generator.onnx")).graph.node}
    assert main([str(pkg)]) == 0
    assert "GridSample" not in {n.op_type for n in onnx.load(str(pkg / "generator.onnx")).graph.node}
    ModelPackage.load(pkg)  # hashes updated
    assert main([str(tmp_path / "nothing")]) == 2
    assert "not a model package" in capsys.readouterr().err
    corrupt = Path(__file__).resolve().parents[2] / "contract" / "packages" / "corrupt"
    copy = shutil.copytree(corrupt, tmp_path / "corrupt")
    before = (copy / "generator.onnx").read_bytes()
    assert main([str(copy)]) == 2
    assert "ONNX checker" in capsys.readouterr().err
    assert (copy / "generator.onnx").read_bytes() == before
