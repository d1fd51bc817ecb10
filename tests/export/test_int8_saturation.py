"""The int8 recipe cannot saturate u8 x s8 arithmetic on any x86-64 CPU (issue 18).

Without VNNI (AVX2 only), ONNX Runtime multiplies u8 activations by s8 weights with VPMADDUBSW, which
adds two products into a saturating int16. A u8 activation is at most 255, so a pair stays within
int16 exactly when every weight lies in [-64, 64]: 2 x 255 x 64 = 32640 <= 32767 (8-bit weights reach
2 x 255 x 127 = 64770). These are properties of the graph, so they hold whatever CPU runs the tests
(this host has AVX-512 VNNI, where no saturation shows).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from export import export_checkpoint
from export.quantize import Int8Recipe, quantize_int8
from tests.training.synthetic import make_prepared_dataset
from training.checkpoint import CheckpointState, build_models, save_checkpoint
from training.config import tiny_config

INT16_MAX = 32767
U8_MAX = 255
BUNDLED_INT8 = (Path(__file__).resolve().parents[2] / "sdk" / "talkinghead" / "models" / "default"
                / "generator.int8.onnx")


def _int8_facts(model: onnx.ModelProto) -> dict:
    """The quantised weights of ``model``'s int8 operators and its activations' integer types."""
    inits = {t.name: t for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    weights: dict[str, np.ndarray] = {}
    activation_types: set[int] = set()
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            t = inits[node.input[0]]
            if t.data_type in (TensorProto.INT8, TensorProto.UINT8):
                weights[t.name] = numpy_helper.to_array(t)
        elif node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2] in inits:
            activation_types.add(inits[node.input[2]].data_type)  # the zero point's type is the output's
    int8_inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == TensorProto.INT8}
    conv_weights = [n.input[1] for n in model.graph.node if n.op_type == "Conv" and n.input[1] in producers
                    and producers[n.input[1]].op_type == "DequantizeLinear"]
    return {"weights": weights, "int8_inits": int8_inits, "activation_types": activation_types,
            "int8_convs": len(conv_weights)}


def _assert_cannot_saturate(model: onnx.ModelProto) -> None:
    facts = _int8_facts(model)
    assert facts["int8_convs"] > 0, "nothing was quantised: the property would hold vacuously"
    assert facts["activation_types"] == {TensorProto.UINT8}, "activations are not u8"
    assert facts["weights"] and all(w.dtype == np.int8 for w in facts["weights"].values()), "weights are not s8"
    for name, w in facts["int8_inits"].items():  # every int8 initialiser, weights and zero points alike
        assert -64 <= int(w.min()) and int(w.max()) <= 64, f"{name}: int8 values in [{w.min()}, {w.max()}]"
    worst = max(int(np.abs(w.astype(np.int32)).max()) for w in facts["weights"].values())
    assert 2 * U8_MAX * worst <= INT16_MAX  # the VPMADDUBSW pair sum cannot leave int16


def _heavy_tailed_conv() -> onnx.ModelProto:
    """One 3x3 conv whose weights have outliers, so 8-bit symmetric quantisation uses all of [-127, 127]."""
    rng = np.random.default_rng(0)
    w = rng.standard_t(2, size=(8, 8, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="/small/Conv", pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_the_default_recipe_has_7_bit_weights_and_u8_activations():
    recipe = Int8Recipe()
    assert recipe.reduce_range and recipe.activations == "uint8"
    assert "7-bit weights in [-64, 64]" in recipe.describe()


def test_the_check_tells_8_bit_weights_from_7_bit_ones():
    """The same graph with ORT's full 8-bit range fails the check (so it tests something)."""
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.random((1, 8, 8, 8), dtype=np.float32)} for _ in range(4)]
    _assert_cannot_saturate(quantize_int8(_heavy_tailed_conv(), feeds, Int8Recipe(max_side=None)))
    eight_bit = quantize_int8(_heavy_tailed_conv(), feeds, Int8Recipe(max_side=None, reduce_range=False))
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in _int8_facts(eight_bit)["weights"].values()) == 127
    with pytest.raises(AssertionError, match="int8 values in"):
        _assert_cannot_saturate(eight_bit)


def test_a_tiny_exported_generator_cannot_saturate(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "meta.safetensors", build_models(tiny_config(), 2), CheckpointState(step=0))
    calibration = make_prepared_dataset(tmp_path / "prepared", videos=2, frames=2, resolution=64)
    package = export_checkpoint(ckpt, tmp_path / "pkg", variants=("int8",), calibration=calibration, samples=4).path
    _assert_cannot_saturate(onnx.load(str(package / "generator.int8.onnx")))


def test_the_bundled_int8_generator_cannot_saturate():
    _assert_cannot_saturate(onnx.load(str(BUNDLED_INT8)))
