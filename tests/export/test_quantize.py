"""Int8 recipes choose which nodes stay float (the rasteriser always does)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import pytest

from export.errors import ExportError
from export.quantize import Int8Recipe, output_sides, quantize_int8


def _graph() -> onnx.ModelProto:
    w = lambda name, shape: numpy_helper.from_array(np.ones(shape, np.float32), name)  # noqa: E731
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="/rasterizer/Relu"),
        helper.make_node("Conv", ["r", "w0"], ["a"], name="/stem/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "wd"], ["b"], name="/dw/Conv", group=4, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["b", "wp"], ["c"], name="/pw/Conv"),
        helper.make_node("Conv", ["c", "w1"], ["y"], name="/out/Conv"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [w("w0", (4, 4, 3, 3)), w("wd", (4, 1, 3, 3)), w("wp", (4, 4, 1, 1)),
                               w("w1", (4, 4, 1, 1))])
    return helper.make_model(graph)


EVERYWHERE = Int8Recipe(max_side=None)


def _strided() -> onnx.ModelProto:
    """Two convs: one keeps the 8x8 map, the next halves it to 4x4."""
    w = [numpy_helper.from_array(np.full((4, 4, 3, 3), 0.1, np.float32), f"w{i}") for i in range(2)]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], name="/big/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"], name="/big/Relu"),
             helper.make_node("Conv", ["r", "w1"], ["y"], name="/small/Conv", pads=[1, 1, 1, 1], strides=[2, 2])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])], w)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_recipe_without_a_size_limit_keeps_only_the_rasteriser_float():
    assert EVERYWHERE.excluded(_graph()) == ["/rasterizer/Relu"]


def test_output_sides_are_measured_by_running_the_graph():
    feed = {"x": np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)}
    assert output_sides(_strided(), feed) == {"/big/Conv": 8, "/small/Conv": 4}


def test_max_side_keeps_the_large_feature_maps_float():
    sides = {"/big/Conv": 8, "/small/Conv": 4}
    assert Int8Recipe(max_side=4).excluded(_strided(), sides) == ["/big/Conv"]
    assert Int8Recipe(max_side=8).excluded(_strided(), sides) == []
    with pytest.raises(ExportError, match="needs the feature map sides"):
        Int8Recipe(max_side=4).excluded(_strided())


def test_max_side_recipe_quantises_only_the_small_maps():
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 4, 8, 8)).astype(np.float32)} for _ in range(4)]
    model = quantize_int8(_strided(), feeds, Int8Recipe(max_side=4))
    dequantised = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    convs = {n.name: n for n in model.graph.node if n.op_type == "Conv"}
    assert all(i in dequantised for i in convs["/small/Conv"].input)  # int8 input and weights
    assert not any(i in dequantised for i in convs["/big/Conv"].input)  # float
    assert "feature maps <= 32 px" in Int8Recipe().describe() and "percentile" in Int8Recipe().describe()
    assert EVERYWHERE.describe().startswith("static QDQ of Conv, ")
    with pytest.raises(ExportError, match="quantises none of the 2 Conv nodes"):
        quantize_int8(_strided(), feeds, Int8Recipe(max_side=2))  # no map that small: not an int8 graph


def test_recipe_keeps_depthwise_and_ends_float():
    excluded = Int8Recipe(op_types=("Conv",), skip_depthwise=True, skip_ends=True, max_side=None).excluded(_graph())
    assert sorted(excluded) == ["/dw/Conv", "/out/Conv", "/rasterizer/Relu", "/stem/Conv"]
    assert "/pw/Conv" not in excluded


def test_recipe_quantises_only_the_named_scopes():
    excluded = Int8Recipe(op_types=("Conv",), only_scopes=("/pw/",), max_side=None).excluded(_graph())
    assert sorted(excluded) == ["/dw/Conv", "/out/Conv", "/rasterizer/Relu", "/stem/Conv"]
    both = Int8Recipe(op_types=("Conv",), skip_ends=True, only_scopes=("/stem/", "/pw/"),
                      max_side=None).excluded(_graph())
    assert sorted(both) == ["/dw/Conv", "/out/Conv", "/rasterizer/Relu", "/stem/Conv"]  # no name twice
