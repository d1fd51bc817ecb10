"""bench/quality.py's sharpness, mouth and flicker columns and its multi-shot warp baselines
(warp_blend, warp_oracle): fast, synthetic, no detector and no model."""
from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.quality import (METRICS, Renderer, Shots, aggregate, choose_blend, flicker_runs, markdown_table,
                           split_runs, summary, sweep_clips)
from bench.quality_metrics import (face_box, flicker, frame_changes, landmark_box, laplacian_variance, luminance,
                                   mouth_box, mouth_opening, sharpness, ssim)
from bench.quality_warp import best_warp, blend, blend_weights, to_uint8, warp_face, warp_shots


_NO_EMBEDDER = SimpleNamespace(personalised=True)  # a package that cannot embed shots: no `ours` row


def _texture(size: int = 64, seed: int = 0) -> np.ndarray:
    """A face-sized RGB texture with detail at every scale."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (size, size, 3)).astype(np.float64)
    yy, xx = np.mgrid[0:size, 0:size]
    img += 60 * np.sin(xx / 5.0)[..., None] + 40 * np.cos(yy / 7.0)[..., None]
    return np.clip(img * 0.7, 0, 255).astype(np.uint8)


def _box_blur(img: np.ndarray) -> np.ndarray:
    x = np.pad(img.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    out = sum(x[i:i + img.shape[0], j:j + img.shape[1]] for i in range(3) for j in range(3)) / 9.0
    return to_uint8(out)


def _landmarks(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lm = rng.uniform(-0.5, 0.5, (68, 2))
    lm[62], lm[66] = (0.0, 0.30), (0.0, 0.34)  # inner lips a little apart
    return lm


# -- sharpness -----------------------------------------------------------------------------------

def test_sharpness_of_a_blurred_image_is_below_one():
    img = _texture()
    box = (slice(0, 64), slice(0, 64))
    assert sharpness(img, img, box) == pytest.approx(1.0)
    blurred = _box_blur(img)
    assert sharpness(blurred, img, box) < 0.5
    assert sharpness(_box_blur(blurred), img, box) < sharpness(blurred, img, box)
    flat = np.full_like(img, 128)
    assert laplacian_variance(luminance(flat)) == 0
    assert sharpness(img, flat, box) is None  # nothing to compare with


def test_luminance_weights_and_grey_input():
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    assert luminance(px)[0] == pytest.approx([0.299 * 255, 0.587 * 255, 0.114 * 255])
    grey = np.arange(12.0).reshape(3, 4)
    assert np.array_equal(luminance(grey), grey)


def test_landmark_boxes_expand_and_stay_in_the_crop():
    lm = np.zeros((68, 2))
    lm[:, 0] = np.linspace(-0.5, 0.5, 68)
    lm[:, 1] = np.linspace(-0.25, 0.25, 68)
    rows, cols = landmark_box(lm, 64)
    tight = (rows.stop - rows.start, cols.stop - cols.start)
    rows, cols = face_box(lm, 64)
    assert (rows.stop - rows.start) > tight[0] and (cols.stop - cols.start) > tight[1]
    edge = lm + [0.45, 0.7]  # partly outside: the box is moved inside, not cut below its size
    rows, cols = landmark_box(edge, 64, 0.1, 16)
    assert 0 <= rows.start < rows.stop <= 64 and 0 <= cols.start < cols.stop <= 64
    # The mouth box is at least 16 px (above the SSIM window) even for a tiny mouth.
    tiny = _landmarks()
    tiny[48:68] = tiny[48:68] * 0.01
    rows, cols = mouth_box(tiny, 64)
    assert rows.stop - rows.start >= 16 and cols.stop - cols.start >= 16


def test_mouth_opening_grows_with_the_inner_lip_gap_and_not_with_scale():
    lm = _landmarks()
    wide = lm.copy()
    wide[66] = (0.0, 0.44)
    assert mouth_opening(wide) > mouth_opening(lm) > 0
    assert mouth_opening(lm * 0.5) == pytest.approx(mouth_opening(lm))


# -- flicker ---------------------------------------------------------------------------------------

def test_flicker_of_a_constant_sequence_is_zero_and_of_the_real_one_is_one():
    rng = np.random.default_rng(4)
    real = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(5)]
    still = [real[0]] * 5
    assert np.all(frame_changes(still) == 0)
    assert flicker([still], [real]) == 0
    assert flicker([real], [real]) == pytest.approx(1.0)
    noisy = [np.clip(f.astype(int) + rng.integers(-40, 41, f.shape), 0, 255).astype(np.uint8) for f in real]
    assert flicker([noisy, still], [real, real]) > 0
    assert flicker([real], [still]) is None  # a still real clip: no reference
    assert len(frame_changes(real[:1])) == 0


def test_flicker_runs_lie_in_the_last_half_and_are_cut_at_missing_faces():
    runs = flicker_runs(100, 2, 8)
    assert runs == [list(range(50, 58)), list(range(92, 100))]
    assert flicker_runs(100, 0, 8) == []
    assert flicker_runs(3, 2, 8) == [[1, 2]]  # a short last half: one run as long as it
    assert flicker_runs(2, 2, 8) == []  # one frame in the last half: no pair
    assert split_runs(list(range(10, 18)), lambda i: i not in (12, 16)) == [[10, 11], [13, 14, 15]]


# -- multi-shot warp baselines --------------------------------------------------------------------

def _synthetic_shots(real: np.ndarray, target: np.ndarray, k: int = 4) -> Shots:
    """K shots of one 'face': the real crop warped onto perturbed landmarks (more for later shots)."""
    rng = np.random.default_rng(5)
    norms, crops = [], []
    for i in range(k):
        lm = target + rng.normal(0, 0.004 + 0.01 * i, target.shape)
        norms.append(lm)
        crops.append(warp_face(real, target, lm))
    return Shots(list(range(k)), [], [], np.stack(crops), np.stack(norms).astype(np.float32))


def test_warp_shots_round_to_the_single_shot_warp():
    real, target = _texture(), _landmarks()
    shots = _synthetic_shots(real, target)
    warps = warp_shots(shots.crops, shots.norm, target)
    assert warps.dtype == np.float32 and warps.shape == (4, 64, 64, 3)
    for i in range(4):
        assert np.array_equal(to_uint8(warps[i]), warp_face(shots.crops[i], shots.norm[i], target))


def test_blend_weights_go_from_nearest_to_uniform():
    d = np.array([0.03, 0.01, 0.02])
    w = blend_weights(d, 1e-4)
    assert w.sum() == pytest.approx(1.0) and w[1] == pytest.approx(1.0)
    assert blend_weights(d, 1e3) == pytest.approx(np.full(3, 1 / 3), abs=1e-4)
    assert np.all(np.diff(blend_weights(d, 0.01)[[1, 2, 0]]) < 0)  # nearer shots weigh more
    with pytest.raises(ValueError, match="temperature"):
        blend_weights(d, 0.0)
    warps = np.stack([np.full((4, 4, 3), v, np.float32) for v in (0.0, 100.0, 200.0)])
    assert np.all(blend(warps, np.array([0.5, 0.5, 0.0])) == 50)


def test_oracle_is_at_least_the_nearest_shot_warp_and_blend_at_low_temperature_is_the_warp():
    real, target = _texture(), _landmarks()
    shots = _synthetic_shots(real, target)
    renderer = Renderer(model=_NO_EMBEDDER)
    renderer.blend_temperature = 1e-6
    methods = ["nearest", "warp", "warp_blend", "warp_oracle"]
    assert renderer.methods() == methods
    fns, setup = renderer.prepare(shots, methods)
    assert set(fns) == set(methods) and set(setup) == set(methods)
    warp = fns["warp"](target)
    oracle = fns["warp_oracle"](target, real)
    assert ssim(oracle, real) >= ssim(warp, real)
    warps = warp_shots(shots.crops, shots.norm, target)
    assert np.array_equal(oracle, to_uint8(warps[best_warp(warps, real, ssim)]))
    assert np.array_equal(fns["warp_blend"](target), warp)  # a sharp softmax picks the nearest shot
    renderer.blend_temperature = 1.0
    fns, _ = renderer.prepare(shots, ["warp_blend"])
    soft = fns["warp_blend"](target)
    box = face_box(target, 64)
    assert sharpness(soft, real, box) < sharpness(warp, real, box)  # averaging shots blurs


def test_renderer_runs_warp_blend_only_with_a_temperature():
    assert "warp_blend" not in Renderer(model=_NO_EMBEDDER).methods()


# -- aggregation, tables, the blend's temperature ---------------------------------------------------

def _row(method: str, **kw) -> dict:
    base = {"method": method, "K": 8, "ssim": 0.5, "psnr": 20.0, "lmk_err": 0.02, "csim": 0.9, "sharpness": 1.0,
            "mouth_ssim": None, "t_detect": 0.01, "t_method": 0.01}
    return dict(base, **kw)


def test_aggregate_takes_the_median_sharpness_counts_mouth_targets_and_pools_flicker():
    rows = [_row("warp", sharpness=s, mouth_ssim=m) for s, m in ((0.2, None), (0.5, 0.4), (0.9, 0.6), (5.0, None))]
    runs = [{"out_change": 2.0, "real_change": 1.0, "pairs": 7}, {"out_change": 1.0, "real_change": 2.0, "pairs": 3}]
    agg = aggregate(rows, METRICS, runs)
    assert agg["sharpness"] == pytest.approx(0.7)
    assert agg["mouth_n"] == 2 and agg["mouth_ssim"] == pytest.approx(0.5)
    assert agg["flicker"] == pytest.approx(1.0) and agg["flicker_pairs"] == 10
    none = aggregate([_row("warp")], METRICS)
    assert none["mouth_n"] == 0 and none["mouth_ssim"] is None and none["flicker"] is None


def test_table_and_summary_carry_the_new_columns_and_label_the_oracle():
    agg = aggregate([_row("warp", mouth_ssim=0.5)], METRICS,
                    [{"out_change": 1.2, "real_change": 1.0, "pairs": 7}])
    results = {m: {"8": agg} for m in ("warp", "warp_blend", "warp_oracle")}
    md = markdown_table(results, METRICS, None)
    assert "sharp" in md and "mouth SSIM" in md and "mouth n" in md and "flicker" in md
    assert "warp_oracle (oracle" in md
    doc = {"results": results, "clips_evaluated": 2, "protocol": {"blend": {"temperature": 0.003}}}
    s = summary(doc)
    assert s["warp_blend"]["8"]["sharpness"] == 1.0 and s["warp"]["8"]["mouth_n"] == 1
    assert s["warp"]["8"]["flicker"] == pytest.approx(1.2)
    assert s["warp_blend_temperature"] == 0.003 and "warp_oracle" in s["oracles"]


def _clip_folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for n in names:
        (folder / f"{n}.mp4").write_bytes(b"")
    return folder


def test_sweep_clips_never_use_held_out_or_evaluated_clips(tmp_path):
    folder = _clip_folder(tmp_path, ["a", "b", "c", "held", "evaluated"])
    picked = sweep_clips(folder, {"held", "evaluated"}, 2)
    assert [p.stem for p in picked] == ["a", "c"]
    assert sweep_clips(folder, {"a", "b", "c", "held", "evaluated"}, 4) == []


class _FakeBench:
    def __init__(self) -> None:
        self.renderer = Renderer(model=_NO_EMBEDDER)
        self.notes: list[str] = []
        self.swept: list[str] | None = None

    def sweep_blend_temperature(self, clips, k, temperatures):
        self.swept = [p.stem for p in clips]
        return {"temperature": 0.005, "chosen_by": "sweep", "K": k, "clips": [], "sweep": {}}


def _args(tmp_path: Path, folder: Path, **kw) -> argparse.Namespace:
    holdout = tmp_path / "holdout.txt"
    holdout.write_text("# held out\nheld\n")
    base = dict(methods=["warp", "warp_blend"], blend_temperature=None, holdout_file=holdout, clips=folder,
                blend_sweep_clips=4, shots=[1, 8])
    return argparse.Namespace(**dict(base, **kw))


def test_choose_blend_sweeps_on_training_clips_or_takes_the_option(tmp_path):
    folder = _clip_folder(tmp_path, ["a", "b", "held", "evaluated"])
    bench = _FakeBench()
    rec = choose_blend(_args(tmp_path, folder), bench, [folder / "evaluated.mp4"])
    assert bench.swept == ["a", "b"] and rec["temperature"] == 0.005
    assert bench.renderer.blend_temperature == 0.005 and "held" in rec["excluded"]["held_out_and_evaluated"]

    bench = _FakeBench()
    rec = choose_blend(_args(tmp_path, folder, blend_temperature=0.02), bench, [])
    assert bench.swept is None and rec == {"temperature": 0.02, "chosen_by": "--blend-temperature"}
    assert bench.renderer.blend_temperature == 0.02

    bench = _FakeBench()
    rec = choose_blend(_args(tmp_path, folder), bench, [folder / f"{n}.mp4" for n in ("a", "b", "evaluated")])
    assert "skipped" in rec and bench.renderer.blend_temperature is None
    assert any("warp_blend skipped" in n for n in bench.notes)
