"""``export --stages``: a warp checkpoint exported with only some learned stages (the ablation table)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export import ExportError, ExportOptions, export_checkpoint
from training.checkpoint import CheckpointState, build_models, save_checkpoint
from training.config import tiny_config, tiny_warp_config


def _checkpoint(tmp: Path, config, seed: int = 3) -> Path:
    torch.manual_seed(seed)
    models = build_models(config, 1)
    if config.net.family == "warp":  # make every learned stage do something, as after training
        with torch.no_grad():
            for p in models.generator.refiner.out.parameters():
                p.normal_(std=0.5)
            models.generator.synthesiser.out.bias[3] = 0.0
    return save_checkpoint(tmp / f"ckpt-{config.size}" / "checkpoint.safetensors", models, CheckpointState())


def test_stages_export_the_generator_with_only_those_parts(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, tiny_warp_config())
    outs, names = [], []
    ops = []
    for stages, rewrite in ((("prior",), False), (("prior", "flow", "blend", "synthesis"), True)):
        res = export_checkpoint(ckpt, tmp_path / stages[-1], ExportOptions(stages=stages, synthetic=True, rewrite=rewrite))
        names.append(res.manifest["name"])
        ops.append({n.op_type for n in onnx.load(str(res.path / "generator.onnx")).graph.node})
        sess = ort.InferenceSession(str(res.path / "generator.onnx"), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        r = res.manifest["resolution"]
        base = rng.uniform(-0.5, 0.5, (68, 2)).astype(np.float32)
        feed = {"landmarks": base[None] * 1.05, "identity": rng.standard_normal((1, res.manifest["embedding_dim"])).astype(np.float32),
                "ref_images": rng.uniform(-1, 1, (2, 3, r, r)).astype(np.float32),
                "ref_landmarks": np.stack([base, base * 1.1])}
        outs.append(sess.run(None, feed)[0])
    assert names == ["talkinghead-tiny-warp-prior", "talkinghead-tiny-warp"]
    assert float(np.abs(outs[0] - outs[1]).mean()) > 1e-3  # the learned stages are really left out
    # export.rewrite: GridSample kept only when asked (parity against PyTorch passed on the rewritten graph)
    assert "GridSample" in ops[0] and "GridSample" not in ops[1] and "GatherElements" in ops[1]


def test_stages_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="prefix"):
        ExportOptions(stages=("flow",)).validate()
    with pytest.raises(ExportError, match="warp family only"):
        export_checkpoint(_checkpoint(tmp_path, tiny_config()), tmp_path / "pkg",
                          ExportOptions(stages=("prior",), synthetic=True))
    assert not (tmp_path / "pkg").exists()


def test_reference_scale_keeps_the_shots_at_twice_the_output(tmp_path: Path, face_photo: Path) -> None:
    """--reference-scale 2: the manifest, the graph's ref_images and the SDK's avatar all carry the
    shots at twice the output side, and the frame is still the output's size."""
    from talkinghead.model import load_model

    ckpt = _checkpoint(tmp_path, tiny_warp_config())
    res = export_checkpoint(ckpt, tmp_path / "x2", ExportOptions(synthetic=True, reference_scale=2))
    r = res.manifest["resolution"]
    assert res.manifest["references"]["resolution"] == 2 * r
    ref_input = next(i for i in res.manifest["graphs"]["generator"]["inputs"] if i["name"] == "ref_images")
    assert ref_input["shape"][2:] == [2 * r, 2 * r]
    model = load_model(res.path, providers="cpu", watermark=False)
    avatar = model.create_avatar([face_photo])
    assert avatar.ref_images.shape[1] == 2 * r
    frame = model.render(avatar, avatar.landmarks)
    assert frame.shape == (r, r, 3)
    with pytest.raises(ExportError, match="warp family only"):
        export_checkpoint(_checkpoint(tmp_path, tiny_config()), tmp_path / "adain2",
                          ExportOptions(synthetic=True, reference_scale=2))


def test_the_graph_warps_min_of_blend_top_and_k_shots_and_matches_torch(tmp_path: Path) -> None:
    """The exported graph takes its shot count from ref_images' shape at run time, not from the
    example it was traced with: a one-shot avatar warps one shot (blend_top is 2), K >= 2 warps two,
    and every K renders what PyTorch does."""
    from training.checkpoint import load_checkpoint
    from training.networks.warp_generator import SharedReferences

    ckpt = _checkpoint(tmp_path, tiny_warp_config())
    res = export_checkpoint(ckpt, tmp_path / "pkg", ExportOptions(synthetic=True))
    model = onnx.load(str(res.path / "generator.onnx"))
    topk = [n for n in model.graph.node if n.op_type == "TopK"]
    assert len(topk) == 1
    model.graph.output.append(onnx.helper.make_value_info(topk[0].output[1], onnx.TypeProto()))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    torch_graph = SharedReferences(load_checkpoint(ckpt)[0].generator.eval())
    assert torch_graph.generator.config.blend_top == 2
    r, d = res.manifest["resolution"], res.manifest["embedding_dim"]
    rng = np.random.default_rng(1)
    base = rng.uniform(-0.5, 0.5, (68, 2)).astype(np.float32)
    for k, warped in ((1, 1), (2, 2), (5, 2)):
        feed = {"landmarks": base[None] * 1.05, "identity": rng.standard_normal((1, d)).astype(np.float32),
                "ref_images": rng.uniform(-1, 1, (k, 3, r, r)).astype(np.float32),
                "ref_landmarks": np.stack([base * (1 + 0.04 * i) for i in range(k)])}
        image, chosen = sess.run(None, feed)
        assert chosen.shape == (1, warped), k
        with torch.no_grad():
            expected = torch_graph(*(torch.from_numpy(feed[n]) for n in
                                     ("landmarks", "identity", "ref_images", "ref_landmarks"))).numpy()
        assert float(np.abs(image - expected).max()) < 1e-4, k
