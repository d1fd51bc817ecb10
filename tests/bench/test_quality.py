"""bench/quality.py: the protocol's frame choice, the metrics, the warp baseline, and one end-to-end run
on a short real clip with a tiny random model (exported through `python -m export`)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

from bench.quality import main, shot_indices, target_indices  # noqa: E402
from bench.quality_metrics import landmark_error, psnr, ssim  # noqa: E402
from bench.quality_warp import border_points, delaunay, piecewise_affine_warp, warp_face  # noqa: E402


# -- protocol --------------------------------------------------------------------------------------

def test_shots_and_targets_follow_the_protocol():
    assert shot_indices(100, 1) == [0]
    s8 = shot_indices(100, 8)
    assert len(s8) == 8 and s8[0] == 0 and s8[-1] == 24  # the first 25% of frames
    t = target_indices(100, 20)
    assert len(t) == 20 and t[0] == 50 and t[-1] == 99
    assert np.all(np.diff(t) > 0)
    assert shot_indices(12, 8) == [0, 1, 2]  # a short pool gives fewer, distinct shots


# -- metrics ---------------------------------------------------------------------------------------

def test_ssim_psnr_and_landmark_error():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a) == 100.0
    noisy = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert 0 < ssim(a, noisy) < 1
    assert 15 < psnr(a, noisy) < 40
    pts = rng.uniform(-0.5, 0.5, (68, 2))
    pts[36], pts[45] = (-0.3, 0.0), (0.3, 0.0)
    assert landmark_error(pts, pts) == 0
    assert landmark_error(pts + [0.06, 0.0], pts) == pytest.approx(0.1)


# -- warp baseline ---------------------------------------------------------------------------------

def test_delaunay_covers_the_crop_and_is_delaunay():
    rng = np.random.default_rng(1)
    pts = np.concatenate([rng.uniform(-0.6, 0.6, (68, 2)), border_points()])
    tri = delaunay(pts)
    a = pts[tri]
    area = 0.5 * np.abs((a[:, 1, 0] - a[:, 0, 0]) * (a[:, 2, 1] - a[:, 0, 1])
                        - (a[:, 2, 0] - a[:, 0, 0]) * (a[:, 1, 1] - a[:, 0, 1]))
    assert area.sum() == pytest.approx(4.0)  # the whole [-1, 1]^2 square, no overlaps
    pts[5] = pts[6]  # duplicates (closed lips) are tolerated
    assert len(delaunay(pts)) > 0


def test_warp_identity_and_translation():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    lm = rng.uniform(-0.5, 0.5, (68, 2))
    assert np.array_equal(warp_face(img, lm, lm), img)
    # Landmarks on pixel centres, moved by 8 px: each lands exactly where its source point was.
    yy, xx = np.mgrid[0:64, 0:64]
    ramp = np.stack([xx, yy, np.zeros_like(xx)], -1).astype(np.float32)
    px = rng.choice(np.arange(20, 44), size=(68, 2))
    src = np.concatenate([(px + 0.5) / 32 - 1, border_points()])
    dst = src.copy()
    dst[:68] += 8 / 32
    out = piecewise_affine_warp(ramp, src, dst)
    for x, y in px:
        assert out[y + 8, x + 8, 0] == pytest.approx(x, abs=1e-3)
        assert out[y + 8, x + 8, 1] == pytest.approx(y, abs=1e-3)


# -- end to end ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_package_and_checkpoint(tmp_path_factory) -> tuple[Path, Path]:
    if not (REPO / "export" / "__main__.py").is_file():
        pytest.skip("python -m export is not available yet")
    import torch

    from training.checkpoint import CheckpointState, build_models, save_checkpoint
    from training.config import tiny_config

    out = tmp_path_factory.mktemp("quality") / "tiny"
    torch.manual_seed(0)
    models = build_models(tiny_config(), num_videos=2)
    ckpt = out.parent / "tiny.safetensors"
    save_checkpoint(ckpt, models, CheckpointState(videos=["a", "b"]))
    proc = subprocess.run([sys.executable, "-m", "export", str(ckpt), str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out, ckpt


def test_quality_end_to_end(tmp_path, short_clip, shared_data, tiny_package_and_checkpoint, capsys):
    pytest.importorskip("dlib")
    package, ckpt = tiny_package_and_checkpoint
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / short_clip.name).symlink_to(short_clip)
    (clips / "notes.txt").write_text("not a clip")
    portrait = shared_data / "source" / "photo_lia_macron.png"
    out = tmp_path / "out"
    assert main(["--clips", str(clips), "--model", str(package), "--out", str(out), "--shots", "1",
                 "--targets", "4", "--video-frames", "6", "--threads", "1", "--checkpoint", str(ckpt),
                 "--ft-steps", "1", "--cross", str(portrait), "--write-manifest"]) == 0
    printed = capsys.readouterr().out
    assert "nearest" in printed and "warp" in printed and "ours_ft" in printed

    doc = json.loads((out / "results.json").read_text())
    res = doc["results"]
    # warp_blend needs a training clip to choose its temperature on: one clip gives none, so it is skipped.
    assert set(res) == {"nearest", "warp", "warp_oracle", "ours", "ours_ft"}
    assert "skipped" in doc["protocol"]["blend"]
    # With one shot the oracle has one warp to pick: it is the warp.
    assert res["warp_oracle"]["1"]["ssim"] == pytest.approx(res["warp"]["1"]["ssim"], abs=1e-9)
    for method, per_k in res.items():
        assert set(per_k) == {"1"}
        m = per_k["1"]
        assert {"ssim", "psnr", "lmk_err", "no_face", "csim", "fps", "render_fps", "n"} <= set(m)
        assert m["n"] == 4
        assert -1 <= m["ssim"] <= 1 and m["psnr"] > 0 and m["fps"] > 0 and 0 <= m["no_face"] <= 1
    # The baselines show real faces of the same person: always detected, high similarity.
    for method in ("nearest", "warp"):
        m = res[method]["1"]
        assert 0 < m["ssim"] <= 1
        assert m["no_face"] == 0
        assert 0 <= m["lmk_err"] < 0.5
        assert m["csim"] > 0.9
    assert 0 <= doc["floor"]["lmk_err"] < 0.2 and doc["floor"]["no_face"] == 0
    assert set(doc["bars"]) == {"ours", "ours_ft"} and doc["bars_K"] == "1"
    assert set(doc["bars"]["ours"]) == {"ssim_above_nearest", "lmk_err_closer_to_warp_than_nearest", "ssim_above_warp"}

    clip = doc["per_clip"][short_clip.stem]
    assert clip["frames"] == 75 and clip["shots"] == {"1": [0]}
    assert len(clip["targets"]) == 4 and all(t >= 37 for t in clip["targets"])
    assert len(clip["results"]["warp"]["1"]["values"]["ssim"]) == 4

    p = doc["protocol"]
    assert p["crop"]["rule"] == "CropConfig(scale=1.7, offset_y=-0.1)"
    assert p["targets"]["count"] == 4 and p["shots"]["K"] == [1] and p["finetune"]["steps"] == 1
    assert p["standard"] is False
    assert doc["model"]["resolution"] == 64

    cross = doc["cross"]["results"]
    assert set(cross) == {"nearest", "warp", "ours", "ours_ft"}
    assert cross["nearest"]["1"]["csim"] == pytest.approx(1.0, abs=1e-4)  # the portrait itself
    assert cross["warp"]["1"]["no_face"] == 0 and math.isfinite(cross["warp"]["1"]["lmk_err"])

    from talkinghead.package import ModelPackage

    assert json.loads((package / "manifest.json").read_text())["quality"] == doc["summary"]
    assert ModelPackage.load(package).manifest.raw["quality"]["ours"]["1"]["ssim"] == pytest.approx(res["ours"]["1"]["ssim"], abs=1e-4)

    md = (out / "results.md").read_text()
    assert "| method | K |" in md and "Cross-identity" in md
    for name in ("grid.png", "cross_grid.png", "side_by_side.mp4"):
        assert (out / name).stat().st_size > 0
    if res["ours"]["1"].get("mouth_n"):  # targets opening wider than the shot: their close-ups
        assert doc["mouth_grid"] == "mouth_grid.png" and (out / "mouth_grid.png").stat().st_size > 0
    from talkinghead.video import probe

    info = probe(out / "side_by_side.mp4")
    assert info.width == 3 * info.height  # real | ours | warp


def test_quality_names_a_missing_clip(tmp_path, short_clip):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / short_clip.name).symlink_to(short_clip)
    with pytest.raises(SystemExit, match="no clip named nope"):
        main(["--clips", str(clips), "--model", str(tmp_path), "--out", str(tmp_path / "o"), "--names", "nope"])


def test_square_around_keeps_a_boxes_centre_and_stays_inside_the_image():
    from bench.quality import square_around

    img = np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)
    mid = square_around(img, (slice(30, 40), slice(20, 44)))  # 10 x 24: a 24 px square around its centre
    assert mid.shape == (24, 24, 3) and np.array_equal(mid, img[23:47, 20:44])
    edge = square_around(img, (slice(58, 64), slice(0, 20)))  # near the corner: moved inside
    assert edge.shape == (20, 20, 3) and np.array_equal(edge, img[44:64, 0:20])
    assert square_around(None, (slice(0, 1), slice(0, 1))) is None
