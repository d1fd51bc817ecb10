"""The meta-learning loop: learning on real frames, checkpoints, resume, DDP, bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.checkpoint import build_models, load_checkpoint, save_checkpoint, CheckpointState
from training.config import load_config, tiny_config
from training.dataset import EpisodeDataset
from training.errors import CheckpointError, ConfigError, DatasetError, TrainingError
from training.finetune import FinetuneConfig, finetune
from training.meta_learning import MetaLearner, embed_episode
from training.train import RunOptions, train

REPO = Path(__file__).resolve().parents[2]


def _tiny(steps: int = 4):
    cfg = tiny_config()
    cfg.train.k_shots = 2
    cfg.train.steps = steps
    cfg.train.log_every = 1
    cfg.train.checkpoint_every = 2
    return cfg.validate()


def _reconstruction_l1(models, dataset: EpisodeDataset, seed: int = 123, n: int = 4) -> float:
    """Mean L1 of the generator on fixed held-back episodes (eval mode, no grad)."""
    total = 0.0
    with torch.no_grad():
        models.embedder.eval()
        models.generator.eval()
        for i in range(n):
            b = dataset.batch(seed, i, 1)
            ident = embed_episode(models.embedder, b["shots_image"], b["shots_landmarks"])
            fake = models.generator(b["target_landmarks"], ident)
            total += float(torch.mean(torch.abs(fake - b["target_image"])))
    return total / n


@pytest.mark.parametrize("precision,channels_last", [("fp32", False), ("bf16", True)])
def test_short_real_run_lowers_reconstruction_loss(real_prepared: Path, precision: str, channels_last: bool) -> None:
    """Meta-learning on real frames from ../shared/data/driving lowers the L1 reconstruction loss
    (also with the CPU speed settings: bf16 autocast and channels-last activations)."""
    torch.manual_seed(0)
    cfg = _tiny(steps=60)
    cfg.train.precision, cfg.train.channels_last = precision, channels_last
    cfg.loss.w_fm = 1.0
    cfg.train.lr_gen = 1e-3
    ds = EpisodeDataset([real_prepared], cfg.train.k_shots, cfg.net.resolution)
    models = build_models(cfg, len(ds))
    before = _reconstruction_l1(models, ds)
    learner = MetaLearner(models, cfg, torch.device("cpu"))
    for step in range(cfg.train.steps):
        learner.step(ds.batch(cfg.train.seed, step, 2))
    after = _reconstruction_l1(models, ds)
    assert after < 0.8 * before, f"L1 {before:.4f} -> {after:.4f}"


def test_checkpoint_round_trip_and_resume_continue_identically(synthetic: Path, tmp_path: Path) -> None:
    straight = train(_tiny(steps=4), RunOptions(data=[synthetic], out=tmp_path / "a", quiet=True))
    train(_tiny(steps=2), RunOptions(data=[synthetic], out=tmp_path / "b", quiet=True))
    resumed = train(_tiny(steps=4), RunOptions(data=[synthetic], out=tmp_path / "b", resume=True, quiet=True))
    m1, s1 = load_checkpoint(straight)
    m2, s2 = load_checkpoint(resumed)
    assert s1.step == s2.step == 4
    for a, b in zip(m1.generator.state_dict().values(), m2.generator.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    rows = (tmp_path / "b" / "metrics.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]  # the same curve, continued
    assert (tmp_path / "b" / "loss_curve.png").is_file()
    assert list((tmp_path / "b" / "samples").glob("*.png"))
    # Round trip: save and load gives the same weights; compact fp16 stays close.
    save_checkpoint(tmp_path / "c.safetensors", m1, s1, half=True)
    m3, _ = load_checkpoint(tmp_path / "c.safetensors")
    for a, b in zip(m1.embedder.state_dict().values(), m3.embedder.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-2, rtol=1e-2)


def test_run_refuses_to_overwrite_and_resume_needs_a_run(synthetic: Path, tmp_path: Path) -> None:
    train(_tiny(steps=1), RunOptions(data=[synthetic], out=tmp_path / "r", quiet=True))
    with pytest.raises(TrainingError, match="--resume"):
        train(_tiny(steps=1), RunOptions(data=[synthetic], out=tmp_path / "r", quiet=True))
    with pytest.raises(TrainingError, match="no checkpoint"):
        train(_tiny(steps=1), RunOptions(data=[synthetic], out=tmp_path / "new", resume=True, quiet=True))


def test_bad_inputs_get_clear_errors(synthetic: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        EpisodeDataset([tmp_path / "missing"], 2, 64)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no prepared videos"):
        EpisodeDataset([tmp_path / "empty"], 2, 64)
    with pytest.raises(DatasetError, match="has 12 frames"):
        EpisodeDataset([synthetic], 20, 64)
    with pytest.raises(DatasetError, match="64x64"):
        EpisodeDataset([synthetic], 2, 128).batch(0, 0, 1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"size": "tiny", "train": {"learning_rate": 1}}))
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(str(bad))
    # A checkpoint of another architecture.
    ckpt = train(_tiny(steps=1), RunOptions(data=[synthetic], out=tmp_path / "x", quiet=True))
    with pytest.raises(CheckpointError, match="another architecture"):
        load_checkpoint(ckpt, load_config("lite"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.safetensors")


@pytest.mark.parametrize("precision,channels_last,adversarial,augment",
                         [("fp32", False, True, 0.0), ("bf16", True, True, 0.0), ("bf16", True, False, 0.1)])
def test_finetune_personalises_and_lowers_loss(synthetic: Path, precision: str, channels_last: bool,
                                               adversarial: bool, augment: float) -> None:
    cfg = _tiny()
    ds = EpisodeDataset([synthetic], 4, 64)
    models = build_models(cfg, len(ds))
    b = ds.batch(0, 0, 1)
    seen: list[int] = []
    tuned, hist = finetune(models, b["shots_image"][0], b["shots_landmarks"][0],
                           FinetuneConfig(steps=25, lr_gen=1e-3, lr_psi=1e-2, batch_size=4, precision=precision,
                                          channels_last=channels_last, use_discriminator=adversarial,
                                          augment=augment),
                           on_step=lambda step, gen, psi: seen.append(step) or gen.training)
    assert seen == list(range(1, 26))
    assert all(("loss_d" in h) == adversarial for h in hist)
    assert tuned.psi is not None and tuned.psi.shape == (1, models.generator.num_adain_params)
    first, last = sum(h["l1"] for h in hist[:3]) / 3, sum(h["l1"] for h in hist[-3:]) / 3
    assert last < first
    # The original model is left untouched.
    assert models.psi is None


def test_finetune_jitter_moves_landmarks_with_the_image() -> None:
    import numpy as np

    from training.finetune import jitter

    res = 64
    lm = torch.tensor([[[0.3, -0.2], [-0.4, 0.5]]])
    img = torch.zeros(1, 3, res, res)
    for u, v in lm[0].tolist():  # a bright pixel under each landmark (pixel centres at integers)
        img[0, :, round((v + 1) * res / 2 - 0.5), round((u + 1) * res / 2 - 0.5)] = 1.0
    rng = np.random.default_rng(0)
    for _ in range(4):
        out, moved = jitter(img, lm, rng, 0.2)
        assert not torch.allclose(moved, lm)
        for u, v in moved[0].tolist():
            x, y = (u + 1) * res / 2 - 0.5, (v + 1) * res / 2 - 0.5
            patch = out[0, 0, round(y) - 1:round(y) + 2, round(x) - 1:round(x) + 2]
            assert patch.max() > 0.2  # the bright pixel went where its landmark went
        assert float(out[0, 0].sum()) > 0.5


def test_distributed_data_parallel_two_processes_gloo(synthetic: Path, tmp_path: Path) -> None:
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"size": "tiny", "train": {"k_shots": 2, "log_every": 1}}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "training.train", "--config", str(cfg_file), "--data", str(synthetic),
           "--out", str(tmp_path / "ddp"), "--steps", "2", "--device", "cpu", "--quiet"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-6000:]
    _, state = load_checkpoint(tmp_path / "ddp" / "checkpoint.safetensors")
    assert state.step == 2
    opts = json.loads((tmp_path / "ddp" / "options.json").read_text())
    assert opts["world_size"] == 2


def test_cli_reports_errors_with_exit_code_2(tmp_path: Path) -> None:
    from training.train import main

    assert main(["--config", "tiny", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2


def test_init_on_other_videos_keeps_their_vectors_and_resume_refuses(synthetic: Path, tmp_path: Path) -> None:
    ckpt = train(_tiny(steps=1), RunOptions(data=[synthetic], out=tmp_path / "a", quiet=True))
    before, state = load_checkpoint(ckpt, _tiny())
    dropped = state.videos[0]
    out = train(_tiny(steps=2), RunOptions(data=[synthetic], out=tmp_path / "b", init=ckpt, holdout=(dropped,),
                                           quiet=True))
    after, new_state = load_checkpoint(out, _tiny())
    assert new_state.videos == state.videos[1:] and new_state.step == 2
    assert after.discriminator.W.shape[0] == len(state.videos) - 1
    with pytest.raises(TrainingError, match="videos differ"):
        train(_tiny(steps=3), RunOptions(data=[synthetic], out=tmp_path / "b", resume=True, quiet=True))


def test_max_minutes_stops_with_a_checkpoint(synthetic: Path, tmp_path: Path) -> None:
    ckpt = train(_tiny(steps=50), RunOptions(data=[synthetic], out=tmp_path / "t", max_minutes=1e-6, quiet=True))
    _, state = load_checkpoint(ckpt, _tiny())
    assert state.step == 1


def test_sigint_stops_a_real_run_with_a_resumable_checkpoint(synthetic: Path, tmp_path: Path) -> None:
    """Ctrl-C on `python -m training.train`: the step finishes, a checkpoint is written, exit 0."""
    import signal
    import time

    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"size": "tiny", "train": {"k_shots": 2, "log_every": 1,
                                                               "checkpoint_every": 100000}}))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "training.train", "--config", str(cfg_file), "--data", str(synthetic),
           "--out", str(out), "--steps", "100000", "--device", "cpu", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not ((out / "metrics.csv").is_file() and len((out / "metrics.csv").read_text().splitlines()) > 2):
            assert proc.poll() is None and time.time() < deadline, "the run did not start logging steps"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "stop requested" in err
    _, state = load_checkpoint(out / "checkpoint.safetensors")
    assert 2 <= state.step < 100000
    assert (out / "optimizer.pt").is_file()  # resumable


def test_projection_learning_rate_scale_makes_its_own_group() -> None:
    cfg = _tiny()
    cfg.train.lr_projection_scale = 10.0
    models = build_models(cfg.validate(), num_videos=2)
    opt = MetaLearner(models, cfg, torch.device("cpu")).opt_g
    params = [p for g in opt.param_groups for p in g["params"]]
    assert len(params) == len({id(p) for p in params})  # every parameter once
    proj = [g for g in opt.param_groups if any(p is models.generator.projection.weight for p in g["params"])]
    assert len(proj) == 1 and proj[0]["lr"] == pytest.approx(10 * cfg.train.lr_gen)
    with pytest.raises(ConfigError):
        cfg.train.lr_projection_scale = 0.0
        cfg.validate()


def test_heldout_eval_scores_checkpoints_on_named_videos(real_prepared: Path, tmp_path: Path, capsys) -> None:
    from training.heldout_eval import evaluate, main as heldout_main

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "c.safetensors", build_models(_tiny(), 2), CheckpointState(step=7))
    names = tuple(p.name for p in sorted(real_prepared.iterdir()) if p.is_dir())
    score = evaluate(ckpt, [real_prepared], names, k=2, targets=3, grid=tmp_path / "grids")
    assert score.step == 7 and score.videos == 2
    from PIL import Image

    with Image.open(tmp_path / "grids" / "heldout_step7.png") as im:
        assert im.size == (3 * 64, 2 * 64)  # nearest | real | rendered, one row per video
    assert 0 < score.l1 < 2 and 0 < score.psnr < 60 and score.psi_spread > 0
    assert -1 < score.ssim < 1 and score.nearest_ssim > score.ssim + 0.2  # a real frame beats an untrained model
    with pytest.raises(TrainingError, match="no weight average"):
        evaluate(ckpt, [real_prepared], names, k=2, targets=3, raw=True)
    (tmp_path / "holdout.txt").write_text("nobody\n")
    assert heldout_main([str(ckpt), "--data", str(real_prepared), "--holdout-file", str(tmp_path / "holdout.txt")]) == 2
    assert "none of the held-out videos" in capsys.readouterr().err
    missing = tmp_path / "no_such_list.txt"
    assert heldout_main([str(ckpt), "--data", str(real_prepared), "--holdout-file", str(missing)]) == 2
    assert f"cannot read the name list {missing}" in capsys.readouterr().err


def test_heldout_finetune_curve_scores_nearest_ours_and_each_step(real_prepared: Path, tmp_path: Path) -> None:
    from training.heldout_eval import finetune_curve

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "c.safetensors", build_models(_tiny(), 2), CheckpointState(step=3))
    names = tuple(p.name for p in sorted(real_prepared.iterdir()) if p.is_dir())
    curve = finetune_curve(ckpt, [real_prepared], names, steps=[2, 1], k=2, targets=3, limit=1, log=lambda m: None)
    assert curve.videos == 1 and curve.step == 3
    assert list(curve.scores) == ["nearest", "ours", "ours_ft@1", "ours_ft@2"]
    # a real frame of the same clip is far closer to the target than an untrained model's output
    assert curve.scores["nearest"]["ssim"] > curve.scores["ours"]["ssim"] + 0.2
    assert curve.scores["ours_ft@1"] != curve.scores["ours_ft@2"]
