"""The warp family's generator before training is the classical warp of the nearest shot (issue 17).

Properties that hold for any weights the initialisation can draw: the learned flow correction and
confidence start at zero and the synthesis branch paints the warp plus a zero correction (residual
synthesis; the mask starts at 0.5), so training can only add to the piecewise-affine warp. Checked on the tiny-warp preset (64 px), on the crop's interior (the prior
field is bilinearly upsampled, which clamps at the image edge).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from training.config import tiny_warp_config
from training.networks.warp_generator import STAGES, WarpGenerator

from .synthetic import template_landmarks

MASK_LEAK = 1e-6  # residual synthesis: the painter's correction is exactly zero at init


def _generator(seed: int = 0) -> WarpGenerator:
    torch.manual_seed(seed)
    return WarpGenerator(tiny_warp_config().validate().net).eval()


def _shots(r: int, k: int, seed: int = 1) -> torch.Tensor:
    """K smooth random images in [-1, 1] (smooth: bilinear resampling is then nearly exact)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(k, 3, r // 8, r // 8, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(r, r), mode="bicubic", align_corners=False).clamp(-1, 1)


def _interior(x: torch.Tensor, margin: int = 6) -> torch.Tensor:
    return x[..., margin:-margin, margin:-margin]


def test_untrained_generator_returns_the_nearest_shot_when_the_target_is_its_pose() -> None:
    g = _generator()
    r = g.resolution
    base = torch.from_numpy(template_landmarks())
    shot_lms = torch.stack([base * 0.9 + torch.tensor([0.05, 0.0]), base, base * 1.08 - torch.tensor([0.0, 0.04])])
    shots = _shots(r, 3)
    identity = torch.randn(1, g.synthesiser.film.in_features)
    for nearest in range(3):
        with torch.no_grad():
            out = g(shot_lms[nearest][None], identity, shots[None], shot_lms[None])
        diff = (_interior(out[0]) - _interior(shots[nearest])).abs().max()
        assert float(diff) <= MASK_LEAK + 0.02, f"shot {nearest}: max abs {float(diff):.4f}"
        others = [float((_interior(out[0]) - _interior(shots[j])).abs().mean()) for j in range(3) if j != nearest]
        assert min(others) > 0.05  # it really picked that shot, not a blend or another one


def test_untrained_generator_moves_the_shot_with_its_landmarks() -> None:
    """A target that is the shot's face shifted right by 4 px renders the shot shifted by 4 px
    around the face (the border points stay put, so only the face region is checked)."""
    g = _generator()
    r = g.resolution
    base = torch.from_numpy(template_landmarks())
    shift = 8.0 / r  # crop-normalised units per 4 px at r: 2 / r per px
    shots = _shots(r, 1, seed=3)
    identity = torch.zeros(1, g.synthesiser.film.in_features)
    with torch.no_grad():
        out = g((base + torch.tensor([shift, 0.0]))[None], identity, shots[None], base[None, None])
    # the face's centre box: inside every triangle that the landmarks span
    lo = ((base.min(0).values + 1) * r / 2).int() + 8
    hi = ((base.max(0).values + 1) * r / 2).int() - 8
    y0, y1, x0, x1 = int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0])
    moved = out[0, :, y0:y1, x0 + 4:x1 + 4]
    assert float((moved - shots[0, :, y0:y1, x0:x1]).abs().max()) <= MASK_LEAK + 0.03
    assert float((out[0, :, y0:y1, x0:x1] - shots[0, :, y0:y1, x0:x1]).abs().mean()) > \
        3 * float((moved - shots[0, :, y0:y1, x0:x1]).abs().mean())


def test_shots_larger_than_the_output_are_box_filtered_before_the_warp_samples_them() -> None:
    """Shots at 2x the output: the warp box-filters them over an output pixel's footprint first, so
    a target in the shot's pose renders exactly the shot box-filtered (the crop rule's prefilter),
    and a face moved by a quarter pixel stays so filtered; without the prefilter one bilinear sample
    per output pixel reads only some of the shot's pixels and aliases its fine detail."""
    from training.resample import box_filter_to

    g = _generator()
    r = g.resolution
    assert g.footprint(2 * r) == 2 and g.footprint(r) == 1
    base = torch.from_numpy(template_landmarks())
    noise = torch.Generator().manual_seed(5)
    shot = (torch.rand(1, 3, 2 * r, 2 * r, generator=noise) * 2 - 1)  # detail at the shot's own pixels
    identity = torch.zeros(1, g.synthesiser.film.in_features)
    with torch.no_grad():
        still = g(base[None], identity, shot[None], base[None, None])
    assert float((_interior(still[0]) - _interior(box_filter_to(shot[0], r))).abs().max()) <= MASK_LEAK + 1e-4
    moved_lms = (base + torch.tensor([1.0 / (2 * r), 0.0]))[None]  # a quarter of an output pixel
    # what a half-pixel move of the 2x shot, box-filtered, gives (integer-free: bilinear by 0.5 px)
    half = 0.5 * (shot[0] + torch.roll(shot[0], 1, dims=-1))  # output x reads the shot at x - shift
    expected = box_filter_to(half, r)
    with torch.no_grad():
        ours = g(moved_lms, identity, shot[None], base[None, None])
        g.prefilter = 1
        aliased = g(moved_lms, identity, shot[None], base[None, None])
    lo = ((base.min(0).values + 1) * r / 2).int() + 8
    hi = ((base.max(0).values + 1) * r / 2).int() - 8
    box = (slice(None), slice(int(lo[1]), int(hi[1])), slice(int(lo[0]), int(hi[0])))
    err_ours = float((ours[0][box] - expected[box]).abs().mean())
    err_aliased = float((aliased[0][box] - expected[box]).abs().mean())
    assert err_ours <= 1e-3 < err_aliased / 10, (err_ours, err_aliased)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_one_graph_serves_any_number_of_shots(k: int) -> None:
    g = _generator()
    r = g.resolution
    base = torch.from_numpy(template_landmarks())
    lms = torch.stack([base * (1 + 0.03 * i) for i in range(k)])
    with torch.no_grad():
        out = g(torch.stack([base, base * 1.02]), torch.zeros(2, g.synthesiser.film.in_features),
                _shots(r, k)[None].expand(2, -1, -1, -1, -1), lms[None].expand(2, -1, -1, -1))
    assert out.shape == (2, 3, r, r) and torch.isfinite(out).all() and float(out.abs().max()) <= 1.0
    with torch.no_grad():  # the graph's form: one set of shots shared by the batch, not copied per frame
        shared = g(torch.stack([base, base * 1.02]), torch.zeros(2, g.synthesiser.film.in_features), _shots(r, k), lms)
    assert torch.equal(shared, out)


def test_every_ablation_stage_is_the_prior_at_initialisation() -> None:
    """Each learned stage starts as a no-op, so the ablation table's rows differ only by training."""
    g = _generator(seed=5)
    r = g.resolution
    base = torch.from_numpy(template_landmarks())
    args = ((base * 1.05)[None], torch.randn(1, g.synthesiser.film.in_features), _shots(r, 2)[None],
            torch.stack([base, base * 1.1])[None])
    outs = []
    for n in range(1, len(STAGES) + 1):
        g.stages = STAGES[:n]
        with torch.no_grad():
            outs.append(g(*args))
    for n, out in enumerate(outs[1:], 2):
        assert float((out - outs[0]).abs().max()) <= MASK_LEAK + 1e-4, STAGES[:n]
    assert np.isfinite(outs[-1].numpy()).all()


def test_warp_finetuning_adapts_to_the_shots_and_keeps_the_family(synthetic) -> None:
    """training.finetune on a warp model: leave-one-out episodes, the loss falls, the original is
    untouched and the result still renders from the shots (it exports as an ordinary warp package)."""
    from training.checkpoint import build_models
    from training.dataset import EpisodeDataset
    from training.finetune import finetune
    from training.finetune_recipe import FinetuneConfig
    from training.warp_finetune import reference_sets

    assert reference_sets(1, np.array([0, 0])).tolist() == [[0], [0]]
    assert reference_sets(3, np.array([1, 0])).tolist() == [[0, 2], [1, 2]]
    torch.manual_seed(0)
    models = build_models(tiny_warp_config().validate(), 1)
    before = {k: v.clone() for k, v in models.generator.state_dict().items()}
    b = EpisodeDataset([synthetic], 4, 64).batch(0, 0, 1)
    tuned, hist = finetune(models, b["shots_image"][0], b["shots_landmarks"][0],
                           FinetuneConfig(steps=30, lr_gen=2e-3, batch_size=4, precision="fp32", augment=0.05))
    assert tuned.psi is None and tuned.config.net.family == "warp"
    first, last = sum(h["l1"] for h in hist[:5]) / 5, sum(h["l1"] for h in hist[-5:]) / 5
    assert last < first
    assert all(torch.equal(before[k], v) for k, v in models.generator.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in tuned.generator.state_dict().items())


def test_converting_the_first_design_to_residual_synthesis_keeps_the_frame_and_feeds_the_painter() -> None:
    """training.warp_convert: a first-design model (absolute synthesis, mask logit 6) converted to
    residual synthesis renders its warp (what the old one showed, up to its mask's leak), with the
    mask at 0.5 and a painter whose gradient is no longer damped by the sigmoid's slope at 6."""
    from training.checkpoint import build_models
    from training.warp_convert import to_residual

    config = tiny_warp_config()
    config.net.warp.synth_residual, config.net.warp.mask_bias = False, 6.0
    torch.manual_seed(0)
    models = build_models(config.validate(), 1)
    g = models.generator
    r = g.resolution
    base = torch.from_numpy(template_landmarks())
    lms = torch.stack([base, base * 1.05 - torch.tensor([0.0, 0.02])])[None]
    shots, identity = _shots(r, 2)[None], torch.randn(1, g.synthesiser.film.in_features)
    target = _shots(r, 1, seed=7)

    def painter_grad() -> tuple[dict[str, torch.Tensor], float]:
        g.zero_grad(set_to_none=True)
        out = g.render(base[None] * 1.02, identity, shots, lms)
        (out["image"] - target).abs().mean().backward()
        return {k: v.detach() for k, v in out.items()}, float(g.synthesiser.out.weight.grad[:3].abs().sum())

    old, old_grad = painter_grad()
    to_residual(models, 0.0)
    new, new_grad = painter_grad()
    assert models.config.net.warp.synth_residual and g.config.synth_residual
    assert float((new["image"] - new["warped"]).abs().max()) < 1e-6
    assert float((new["image"] - old["image"]).abs().max()) <= 1.0 - float(torch.sigmoid(torch.tensor(6.0))) + 1e-4
    assert abs(float(new["mask"].mean()) - 0.5) < 1e-6
    assert new_grad > 50 * old_grad > 0


def test_adversarial_warp_training_starts_a_discriminator_beside_a_checkpoint_without_one(synthetic, tmp_path) -> None:
    """--init from a warp checkpoint trained without an adversary, with w_adv / w_fm above zero: a fresh
    discriminator trains beside it (its weights move, its losses are logged), the checkpoint then
    holds it and resumes with it, the exported weights load without a config, and the plain warp
    config refuses that checkpoint instead of silently dropping its discriminator."""
    from training.checkpoint import CheckpointState, build_models, load_checkpoint, save_checkpoint
    from training.errors import TrainingError
    from training.run_dir import METRICS, read_metrics
    from training.train import RunOptions, train

    plain = tiny_warp_config()
    plain.train.k_shots, plain.train.batch_size, plain.train.log_every = 2, 1, 1
    assert not plain.loss.adversarial
    start = tmp_path / "plain.safetensors"
    save_checkpoint(start, build_models(plain.validate(), 3), CheckpointState(step=10))
    adv = tiny_warp_config()
    adv.train.k_shots, adv.train.batch_size, adv.train.log_every, adv.train.steps = 2, 1, 1, 12
    adv.loss.w_adv, adv.loss.w_fm = 1.0, 10.0
    ckpt = train(adv.validate(), RunOptions(data=[synthetic], out=tmp_path / "adv", init=start, quiet=True))
    fresh = build_models(adv, 3).discriminator
    models, state = load_checkpoint(ckpt)
    assert state.step == 12 and models.discriminator is not None
    assert models.discriminator.state_dict().keys() == fresh.state_dict().keys()
    rows = read_metrics(tmp_path / "adv" / METRICS)
    assert len(rows) == 2 and all({"adv", "fm", "loss_d", "d_real", "d_fake"} <= set(r) for r in rows)
    assert all(np.isfinite([float(r["adv"]), float(r["fm"]), float(r["loss_d"])]).all() for r in rows)
    adv.train.steps = 13
    resumed = train(adv.validate(), RunOptions(data=[synthetic], out=tmp_path / "adv", resume=True, quiet=True))
    again, _ = load_checkpoint(resumed)
    moved = [not torch.equal(a, b) for a, b in zip(models.discriminator.state_dict().values(),
                                                     again.discriminator.state_dict().values())]
    assert any(moved)
    plain.train.steps = 14
    with pytest.raises(TrainingError, match="discriminator"):
        train(plain.validate(), RunOptions(data=[synthetic], out=tmp_path / "plain", init=resumed, quiet=True))


def test_training_with_shots_at_twice_the_output_side(tmp_path) -> None:
    """train.reference_scale 2: episodes keep the shots at 2x (as a package exported with
    --reference-scale 2 renders from them) and box-filter the target to the output side; the warp
    generator trains on them; data at the wrong size and the adain family are refused by name."""
    import torch.nn.functional as F

    from training.config import tiny_config
    from training.dataset import EpisodeDataset
    from training.errors import ConfigError, DatasetError
    from training.train import RunOptions, train

    from .synthetic import make_prepared_dataset

    data = make_prepared_dataset(tmp_path / "data", videos=2, frames=6, resolution=128)
    ds = EpisodeDataset([data], 2, 64, reference_scale=2)
    b = ds.batch(0, 0, 1)
    assert b["shots_image"].shape[-2:] == (128, 128) and b["target_image"].shape[-2:] == (64, 64)
    plain = EpisodeDataset([data], 2, 128).batch(0, 0, 1)  # same draw, no augmentation in either
    assert torch.allclose(b["target_image"], F.avg_pool2d(plain["target_image"], 2), atol=1e-6)
    assert torch.equal(b["shots_image"], plain["shots_image"])
    with pytest.raises(DatasetError, match="prepare with --resolution 256"):
        EpisodeDataset([data], 2, 128, reference_scale=2).batch(0, 0, 1)
    cfg = tiny_warp_config()
    cfg.train.k_shots, cfg.train.batch_size, cfg.train.steps, cfg.train.reference_scale = 2, 1, 2, 2
    models, _ = __import__("training.checkpoint", fromlist=["load_checkpoint"]).load_checkpoint(
        train(cfg.validate(), RunOptions(data=[data], out=tmp_path / "run", quiet=True)))
    assert models.config.train.reference_scale == 2
    adain = tiny_config()
    adain.train.reference_scale = 2
    with pytest.raises(ConfigError, match="warp family"):
        adain.validate()


def test_the_mouth_loss_trains_and_is_logged(synthetic, tmp_path) -> None:
    """loss.w_mouth above zero adds the content loss on the mouth box: it is logged every step
    (finite, positive: the untrained painter does not reproduce the target) and the run trains."""
    from training.run_dir import METRICS, read_metrics
    from training.train import RunOptions, train

    cfg = tiny_warp_config()
    cfg.train.k_shots, cfg.train.batch_size, cfg.train.log_every, cfg.train.steps = 2, 1, 1, 2
    cfg.loss.w_mouth, cfg.loss.mouth_crop = 1.0, 32
    train(cfg.validate(), RunOptions(data=[synthetic], out=tmp_path / "mouth", quiet=True))
    rows = read_metrics(tmp_path / "mouth" / METRICS)
    assert len(rows) == 2 and all(0 < float(r["mouth"]) < float(r["loss_g"]) for r in rows)


def test_the_mouth_channel_marks_an_opening_no_shot_shows_and_converts_without_changing_frames() -> None:
    """MouthInterior fills the target's inner-lip polygon where its mouth opens wider than every
    chosen shot's, and is zero when a shot opens as wide; training.warp_convert --mouth-channel
    adds it with zero weights (same frames) and the painter's new weights then get gradient."""
    from training.checkpoint import build_models
    from training.networks.warp_generator import INNER_GAP, MouthInterior, mouth_opening
    from training.warp_convert import add_mouth_channel

    closed = torch.from_numpy(template_landmarks())
    opened = closed.clone()
    opened[INNER_GAP[1]:68, 1] += 0.08  # the lower inner lip (points 65-67) drops
    opened[INNER_GAP[1] - 1, 1] += 0.08
    assert float(mouth_opening(opened)) > float(mouth_opening(closed)) + 0.05
    mouth = MouthInterior(64)
    beyond = mouth(opened[None], closed[None, None])
    assert float(beyond.max()) > 0.3 and 0 < float((beyond > 0).float().mean()) < 0.05
    ys, xs = torch.nonzero(beyond[0, 0] > 0, as_tuple=True)
    centre = (opened[60:68].mean(0) + 1) * 32  # in pixels of the 64 grid
    assert abs(float(xs.float().mean()) + 0.5 - float(centre[0])) < 2 and abs(float(ys.float().mean()) + 0.5 - float(centre[1])) < 2
    assert float(mouth(opened[None], torch.stack([closed, opened])[None]).abs().max()) == 0.0

    config = tiny_warp_config()
    torch.manual_seed(0)
    models = build_models(config.validate(), 1)
    g = models.generator.eval()
    r = g.resolution
    shots, identity = _shots(r, 1)[None], torch.randn(1, g.synthesiser.film.in_features)
    with torch.no_grad():
        before = g(opened[None], identity, shots, closed[None, None])
    add_mouth_channel(models)
    assert models.config.net.warp.mouth_channel and g.mouth is not None
    after = g(opened[None], identity, shots, closed[None, None])
    assert torch.equal(before, after.detach())
    torch.nn.init.normal_(g.synthesiser.out.weight, std=0.01)  # a trained painter (zero at init passes no gradient)
    after = g(opened[None], identity, shots, closed[None, None])
    (after - _shots(r, 1, seed=7)).abs().mean().backward()
    assert float(g.synthesiser.c1.weight.grad[:, -1].abs().sum()) > 0


def test_the_mouth_mask_gain_lowers_the_mask_only_where_the_mouth_opens_beyond_every_shot() -> None:
    """warp.mouth_mask_gain (training.warp_convert --mouth-mask-gain): the mask's logit drops by the
    gain times the mouth channel, so the painter shows where only painting can; elsewhere, and when a
    shot opens as wide, the mask is unchanged. It needs the mouth channel."""
    from training.checkpoint import build_models
    from training.errors import ConfigError
    from training.networks.warp_generator import INNER_GAP
    from training.warp_convert import add_mouth_channel, set_mouth_mask_gain

    closed = torch.from_numpy(template_landmarks())
    opened = closed.clone()
    opened[INNER_GAP[1] - 1:68, 1] += 0.08
    torch.manual_seed(0)
    models = build_models(tiny_warp_config().validate(), 1)
    with pytest.raises(ConfigError, match="mouth_channel"):
        set_mouth_mask_gain(models, 8.0)
    add_mouth_channel(models)
    g = models.generator.eval()
    shots, identity = _shots(g.resolution, 1)[None], torch.randn(1, g.synthesiser.film.in_features)

    def mask(shot_landmarks: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return g.render(opened[None], identity, shots, shot_landmarks[None, None])["mask"][0, 0]

    before, as_wide_before = mask(closed), mask(opened)
    set_mouth_mask_gain(models, 8.0)
    after, as_wide_after = mask(closed), mask(opened)
    lowered = after < before - 1e-3
    assert 0 < float(lowered.float().mean()) < 0.1  # the inner-lip polygon only
    assert float(after.min()) < 0.5 * float(before.max())
    assert torch.allclose(after[~lowered], before[~lowered], atol=1e-6)
    assert torch.equal(as_wide_after, as_wide_before)


def test_blend_top_one_renders_a_one_shot_avatar_as_blend_top_two_does() -> None:
    """A one-shot avatar warps its lone shot once whatever warp.blend_top is, so
    training.warp_convert --blend-top 1 renders the same frame for K = 1; with two shots it shows
    the nearest shot's warp alone."""
    from training.checkpoint import build_models
    from training.warp_convert import set_blend_top

    torch.manual_seed(0)
    models = build_models(tiny_warp_config().validate(), 1)
    g = models.generator.eval()
    for p in g.parameters():  # a trained model: every learned part moves the frame
        torch.nn.init.normal_(p, std=0.05) if p.dim() > 1 else None
    assert g.config.blend_top == 2
    lm = torch.from_numpy(template_landmarks())
    shots = _shots(g.resolution, 2)
    identity = torch.randn(1, g.synthesiser.film.in_features)
    target = (lm + 0.02)[None]
    with torch.no_grad():
        one_before = g(target, identity, shots[:1][None], lm[None, None])
        two_before = g(target, identity, shots[None], torch.stack([lm, lm + 0.05])[None])
        set_blend_top(models, 1)
        one_after = g(target, identity, shots[:1][None], lm[None, None])
        two_after = g(target, identity, shots[None], torch.stack([lm, lm + 0.05])[None])
    assert torch.allclose(one_after, one_before, atol=1e-5)
    assert float((two_after - two_before).abs().max()) > 1e-3


def test_mouth_open_targets_make_the_widest_open_frame_the_target(synthetic) -> None:
    """train.mouth_open_targets = 1: every episode's target opens its mouth at least as wide as each
    of its shots; 0 draws the same frames as before the option existed (the rng is not consumed)."""
    from training.dataset import EpisodeDataset
    from training.networks.warp_generator import mouth_opening

    wide = EpisodeDataset([synthetic], k_shots=3, resolution=64, mouth_open_targets=1.0)
    plain = EpisodeDataset([synthetic], k_shots=3, resolution=64)
    margins = []
    for seed in range(6):
        ep = wide.episode(seed % len(wide), np.random.default_rng(seed))
        margins.append(float(mouth_opening(ep["target_landmarks"]) - mouth_opening(ep["shots_landmarks"]).max()))
    assert min(margins) >= 0 and max(margins) > 0.01
    a, b = plain.episode(0, np.random.default_rng(3)), plain.episode(0, np.random.default_rng(3))
    assert torch.equal(a["target_landmarks"], b["target_landmarks"])


def test_the_mouth_discriminator_trains_beside_the_generator_and_resumes(synthetic, tmp_path) -> None:
    """loss.w_mouth_adv above zero: a fresh mouth discriminator trains beside a warp checkpoint
    without one (its losses logged, its weights saved and moved on resume); the plain config then
    refuses that checkpoint instead of dropping the discriminator."""
    from training.checkpoint import CheckpointState, build_models, load_checkpoint, save_checkpoint
    from training.errors import TrainingError
    from training.run_dir import METRICS, read_metrics
    from training.train import RunOptions, train

    plain = tiny_warp_config()
    plain.train.k_shots, plain.train.batch_size, plain.train.log_every = 2, 1, 1
    start = tmp_path / "plain.safetensors"
    save_checkpoint(start, build_models(plain.validate(), 3), CheckpointState(step=10))
    adv = tiny_warp_config()
    adv.train.k_shots, adv.train.batch_size, adv.train.log_every, adv.train.steps = 2, 1, 1, 12
    adv.loss.w_mouth, adv.loss.w_mouth_adv, adv.loss.mouth_crop = 1.0, 0.5, 32
    ckpt = train(adv.validate(), RunOptions(data=[synthetic], out=tmp_path / "adv", init=start, quiet=True))
    models, state = load_checkpoint(ckpt)
    assert state.step == 12 and models.mouth_discriminator is not None and models.discriminator is None
    rows = read_metrics(tmp_path / "adv" / METRICS)
    assert len(rows) == 2 and all(np.isfinite([float(r[k]) for k in ("mouth_adv", "mouth_d", "mouth")]).all()
                                  for r in rows)
    adv.train.steps = 13
    again, _ = load_checkpoint(train(adv.validate(), RunOptions(data=[synthetic], out=tmp_path / "adv", resume=True,
                                                                quiet=True)))
    assert any(not torch.equal(a, b) for a, b in zip(models.mouth_discriminator.state_dict().values(),
                                                      again.mouth_discriminator.state_dict().values()))
    plain.train.steps = 14
    with pytest.raises(TrainingError, match="mouth discriminator"):
        train(plain.validate(), RunOptions(data=[synthetic], out=tmp_path / "plain", init=ckpt, quiet=True))
