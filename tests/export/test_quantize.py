"""Int8 recipes choose which nodes stay float (the rasteriser always does)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.quantize import Int8Recipe


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


def test_default_recipe_keeps_only_the_rasteriser_float():
    assert Int8Recipe().excluded(_graph()) == ["/rasterizer/Relu"]


def test_recipe_keeps_depthwise_and_ends_float():
    excluded = Int8Recipe(op_types=("Conv",), skip_depthwise=True, skip_ends=True).excluded(_graph())
    assert sorted(excluded) == ["/dw/Conv", "/out/Conv", "/rasterizer/Relu", "/stem/Conv"]
    assert "/pw/Conv" not in excluded


def test_recipe_quantises_only_the_named_scopes():
    excluded = Int8Recipe(op_types=("Conv",), only_scopes=("/pw/",)).excluded(_graph())
    assert sorted(excluded) == ["/dw/Conv", "/out/Conv", "/rasterizer/Relu", "/stem/Conv"]
    both = Int8Recipe(op_types=("Conv",), skip_ends=True, only_scopes=("/stem/", "/pw/")).excluded(_graph())
    assert sorted(both) == ["/dw/Conv", "/out/Conv", "/rasterizer/Relu", "/stem/Conv"]  # no name twice
