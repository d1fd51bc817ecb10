"""The Python API: load_model, create_avatar, render, animate, avatars on disk, providers."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import talkinghead
from talkinghead.avatar import Avatar, AvatarFileError
from talkinghead.crop import crop_from_landmarks, to_normalised
from talkinghead.errors import InputError, ModelPackageError, NoFaceError, ProviderError
from talkinghead.motion import MotionTransfer, face_size
from talkinghead.providers import resolve_providers


def test_auto_provider_falls_back_to_cpu_here(tiny_package: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="talkinghead")
    model = talkinghead.load_model(tiny_package, providers="auto")
    assert model.providers == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in caplog.text  # it says which it took


def test_unknown_provider_lists_the_available_ones(tiny_package: Path) -> None:
    with pytest.raises(ProviderError, match="available: .*CPUExecutionProvider"):
        talkinghead.load_model(tiny_package, providers=["NoSuchExecutionProvider"])
    with pytest.raises(ProviderError, match="cuda"):
        resolve_providers("cuda")  # this onnxruntime has no CUDA
    assert resolve_providers(["cpu"]) == ["CPUExecutionProvider"]


def test_create_avatar_render_and_batch(tiny_model, face_photo: Path) -> None:
    avatar = tiny_model.create_avatar(face_photo)
    assert avatar.identity.shape == (tiny_model.package.embedding_dim,) and avatar.identity.dtype == np.float32
    assert avatar.can_paste and avatar.shots == 1
    r = tiny_model.resolution
    one = tiny_model.render(avatar, avatar.landmarks)
    assert one.shape == (r, r, 3) and one.dtype == np.uint8
    batch = tiny_model.render(avatar, np.stack([avatar.landmarks, avatar.landmarks * 0.9]))
    assert batch.shape == (2, r, r, 3)
    assert np.abs(batch[0].astype(int) - one.astype(int)).max() <= 1
    # Pixel landmarks of a frame are framed by the crop rule: the same result as normalised.
    crop = crop_from_landmarks(avatar.landmarks * 100 + 300)
    px = avatar.landmarks * 100 + 300
    same = tiny_model.render(avatar, to_normalised(px, crop))
    assert np.abs(tiny_model.render(avatar, px, coords="pixels").astype(int) - same).max() <= 1


def test_session_options_reach_onnxruntime(tiny_package: Path, tiny_model, face_photo: Path) -> None:
    quiet = talkinghead.load_model(tiny_package, providers="cpu", allow_spinning=False, enable_mem_arena=False)
    options = quiet.engine.generator.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert not options.enable_cpu_mem_arena
    avatar = tiny_model.create_avatar(face_photo)
    assert np.abs(quiet.render(avatar, avatar.landmarks).astype(int)
                  - tiny_model.render(avatar, avatar.landmarks).astype(int)).max() <= 1
    with pytest.raises(TypeError):
        talkinghead.load_model(tiny_package, providers="cpu", allow_spin=False)


def test_identity_is_the_mean_of_the_shots(tiny_model, face_photo: Path, shared_data: Path) -> None:
    other = shared_data / "faces" / "aaai22_KevinBrady.jpg"
    a = tiny_model.create_avatar(face_photo)
    b = tiny_model.create_avatar(other)
    both = tiny_model.create_avatar([face_photo, other])
    assert both.shots == 2
    np.testing.assert_allclose(both.identity, (a.identity + b.identity) / 2, atol=1e-5)


def test_avatar_file_round_trip(tiny_model, face_photo: Path, tmp_path: Path) -> None:
    avatar = tiny_model.create_avatar(face_photo)
    path = avatar.save(tmp_path / "me.npz")
    loaded = Avatar.load(path)
    np.testing.assert_array_equal(loaded.identity, avatar.identity)
    np.testing.assert_array_equal(loaded.image, avatar.image)
    assert loaded.crop == avatar.crop
    with pytest.raises(talkinghead.OutputExistsError):
        avatar.save(path)
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(AvatarFileError):
        Avatar.load(tmp_path / "bad.npz")


def test_bad_inputs_get_clear_errors(tiny_model, face_photo: Path, shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="at most 32"):
        tiny_model.create_avatar([face_photo] * 33)
    with pytest.raises(talkinghead.ImageReadError, match="missing.jpg"):
        tiny_model.create_avatar(tmp_path / "missing.jpg")
    blank = np.full((200, 200, 3), 127, np.uint8)
    with pytest.raises(NoFaceError, match="image 0"):
        tiny_model.create_avatar([blank])
    avatar = tiny_model.create_avatar(face_photo)
    bad = avatar.landmarks.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        tiny_model.render(avatar, bad)
    with pytest.raises(InputError, match=r"\[68, 2\]"):
        tiny_model.render(avatar, np.zeros((5, 2), np.float32))
    wrong = Avatar(identity=np.zeros(7, np.float32), landmarks=avatar.landmarks, model=tiny_model.name, embedding_dim=7)
    with pytest.raises(InputError, match="7 dims"):
        tiny_model.render(wrong, avatar.landmarks)
    other = Avatar(identity=avatar.identity, landmarks=avatar.landmarks, model="x", embedding_dim=avatar.embedding_dim)
    with pytest.raises(InputError, match="made by model 'x'"):
        tiny_model.render(other, avatar.landmarks)


def test_relative_mode_keeps_the_source_face_shape(tiny_model, face_photo: Path, short_clip: Path) -> None:
    """Relative transfer moves the source's own landmarks; absolute takes the driver's shape."""
    from talkinghead.landmarks.tracker import FaceTracker
    from talkinghead.video import iter_frames

    avatar = tiny_model.create_avatar(face_photo)
    tracker = FaceTracker()
    driver = np.stack([tracker.update(f).smoothed for f in iter_frames(short_clip, limit=30)])
    rel = MotionTransfer(avatar.landmarks, "relative")
    out_rel = np.stack([rel(d) for d in driver])
    absolute = MotionTransfer(avatar.landmarks, "absolute")
    out_abs = np.stack([absolute(d) for d in driver])

    def shape_error(points: np.ndarray, reference: np.ndarray) -> float:
        """RMS distance after removing translation and scale, in face sizes."""
        a = (points - points.mean(0)) / face_size(points)
        b = (reference - reference.mean(0)) / face_size(reference)
        return float(np.sqrt(((a - b) ** 2).sum(-1).mean()))

    np.testing.assert_allclose(out_rel[0], avatar.landmarks, atol=1e-6)  # first frame: the source itself
    rel_err = np.mean([shape_error(p, avatar.landmarks) for p in out_rel])
    abs_err = np.mean([shape_error(p, avatar.landmarks) for p in out_abs])
    assert rel_err < 0.5 * abs_err, (rel_err, abs_err)
    # And the motion is the driver's: the mouth opening follows the driver's over time.
    mouth = lambda p: p[..., 66, 1] - p[..., 62, 1]  # noqa: E731
    assert np.corrcoef(mouth(out_rel), mouth(out_abs))[0, 1] > 0.9


def test_animate_from_landmark_arrays_and_frames(tiny_model, face_photo: Path, short_clip: Path) -> None:
    from talkinghead.video import iter_frames

    avatar = tiny_model.create_avatar(face_photo)
    frames = list(iter_frames(short_clip, limit=8))
    pasted = list(tiny_model.animate(avatar, frames, batch_size=3))
    assert len(pasted) == 8 and pasted[0].shape == avatar.image.shape
    crops = list(tiny_model.animate(avatar, np.stack([avatar.landmarks * 50 + 100] * 5), output="crop"))
    assert len(crops) == 5 and crops[0].shape == (tiny_model.resolution,) * 2 + (3,)
    with pytest.raises(InputError, match="empty"):
        list(tiny_model.animate(avatar, []))


def test_each_animate_call_counts_its_own_frames_and_passes_fps_to_the_tracker(tiny_model, face_photo: Path,
                                                                              short_clip: Path, monkeypatch) -> None:
    """Two interleaved animate() calls on one model keep separate stats; the tracker's smoother gets
    the clip's own frame rate (a video) or the caller's fps (frames in memory)."""
    from talkinghead.landmarks import tracker as tracker_mod
    from talkinghead.video import iter_frames, probe

    rates: list[float] = []
    original = tracker_mod.FaceTracker.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        rates.append(self.fps)

    monkeypatch.setattr(tracker_mod.FaceTracker, "__init__", spy)
    avatar = tiny_model.create_avatar(face_photo)
    lms = np.stack([avatar.landmarks * 50 + 100] * 6)
    a = tiny_model.animate(avatar, lms[:4], output="crop")
    b = tiny_model.animate(avatar, lms, output="crop")
    for _ in zip(a, b):  # interleaved: a ends after 4 frames
        pass
    list(b)
    assert (a.stats.frames, b.stats.frames) == (4, 6)
    frames = list(iter_frames(short_clip, limit=3))
    list(tiny_model.animate(avatar, frames, output="crop", fps=12.5))
    clip_30fps = short_clip.parent / "liveportrait_d7.mp4"  # 30 fps: not the 25 fps default
    next(tiny_model.animate(avatar, clip_30fps, output="crop"))
    assert rates == [12.5, probe(clip_30fps).fps] and rates[1] == 30.0
    with pytest.raises(InputError, match="fps"):
        tiny_model.animate(avatar, lms, fps=0)


def test_personalised_package_needs_no_shots(tmp_path: Path) -> None:
    from release.default_avatar import add_to_package

    from .conftest import export_tiny_package

    pkg = export_tiny_package(tmp_path / "personal", personalised=True)
    angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    face = (0.5 * np.stack([np.cos(angle), np.sin(angle)], 1)).astype(np.float32)  # any non-degenerate face
    add_to_package(pkg, np.zeros(0, np.float32), face)
    model = talkinghead.load_model(pkg, providers="cpu")
    assert model.personalised and not model.package.has_graph("embedder")
    avatar = model.create_avatar()  # no shots: the package's own person
    frame = model.render(avatar, avatar.landmarks)
    assert frame.shape == (model.resolution, model.resolution, 3)


def test_corrupt_package_is_refused(tiny_package: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_package, broken)
    (broken / "generator.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelPackageError, match="sha256"):
        talkinghead.load_model(broken, providers="cpu")
    with pytest.raises(ModelPackageError):
        talkinghead.load_model(tmp_path / "nowhere", providers="cpu")


def test_bundled_int8_variant_stays_within_the_speed_issues_ssim_bar() -> None:
    """The packaged int8 generator renders the bundled avatar's generated performance at SSIM >= 0.98
    against fp32 (its speed is a benchmark: bench/int8_recipes.py, docs/performance.md)."""
    from training.metrics import ssim
    from talkinghead.performance import generate_performance

    fp32 = talkinghead.load_model(providers="cpu", variant="fp32", intra_op_threads=1)
    int8 = talkinghead.load_model(providers="cpu", variant="int8", intra_op_threads=1)
    assert (fp32.variant, int8.variant) == ("fp32", "int8")
    avatar = fp32.default_avatar()
    performance = generate_performance(avatar.landmarks, seconds=1.0, fps=6)
    a, b = (m.render(avatar, performance).astype(np.float64) / 127.5 - 1 for m in (fp32, int8))
    assert not np.array_equal(a, b)  # really a different graph
    assert ssim(a.transpose(0, 3, 1, 2), b.transpose(0, 3, 1, 2)) >= 0.98
