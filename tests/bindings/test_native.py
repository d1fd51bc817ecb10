"""talkinghead._native (the C++ core through pybind11) against the pure-Python path.

The same package and inputs must give the same frames (max abs difference <= 1 on uint8) and the
same identity (1e-5) as ``talkinghead.model.TalkingHeadModel``; crops and coordinates as
``talkinghead.crop``. Skipped, with the reason, only when the native module was not built
(``bash bindings/build.sh`` builds it; CI runs that first).
"""
from __future__ import annotations

import importlib.util
import math
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

try:
    from talkinghead import _native as native
except ImportError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"talkinghead._native is not built ({exc}): run `bash bindings/build.sh`",
                allow_module_level=True)

from talkinghead import crop as pycrop
from talkinghead.errors import InputError, ModelPackageError, ProviderError

CONTRACT = Path(__file__).resolve().parents[2] / "contract"


def _load_corpus_maker():
    """contract/make_vectors.py (drawn shots, driving landmarks) under a private name."""
    path = CONTRACT / "make_vectors.py"
    spec = importlib.util.spec_from_file_location("talkinghead_contract_vectors", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fixtures = _load_corpus_maker()


@pytest.fixture(scope="module")
def packages():
    """The corpus's test packages (contract/packages), as ctest uses them."""
    root = CONTRACT / "packages"
    return {"meta": root / "model", "personalised": root / "personalised", "warp": root / "warp"}


@pytest.fixture(scope="module")
def models(packages):
    from talkinghead.model import TalkingHeadModel
    from talkinghead.package import ModelPackage
    from talkinghead.sessions import SessionConfig

    py = TalkingHeadModel(ModelPackage.load(packages["meta"]), SessionConfig(providers="cpu"))
    nat = native.Model(str(packages["meta"]), provider="cpu")
    return py, nat


@pytest.fixture(scope="module")
def shots():
    rng = np.random.default_rng(7)
    return [fixtures.make_shot(rng, h, w, f) for h, w, f in ((96, 120, 30.0), (150, 130, 60.0), (480, 400, 200.0))]


def test_identity_matches_python(models, shots):
    py, nat = models
    images, lms = [s[0] for s in shots], np.stack([s[1] for s in shots])
    a_py = py.create_avatar(images, list(lms))
    a_nat = nat.create_avatar(images, lms)
    assert a_nat.identity.shape == a_py.identity.shape
    assert np.abs(a_nat.identity - a_py.identity).max() <= 1e-5
    np.testing.assert_allclose(a_nat.source_landmarks, a_py.landmarks, atol=1e-6)
    assert a_nat.crop == pytest.approx((a_py.crop.cx, a_py.crop.cy, a_py.crop.size))
    assert a_nat.shots == 3


@pytest.mark.parametrize("coords", ["normalised", "pixels"])
def test_frames_match_python(models, shots, coords):
    py, nat = models
    a_py = py.create_avatar([s[0] for s in shots], [s[1] for s in shots])
    a_nat = nat.avatar_from_identity(a_py.identity, a_py.landmarks)
    drive = fixtures.driving_landmarks(np.random.default_rng(3), 5)
    if coords == "pixels":
        drive = pycrop.to_pixels(drive, np.array([300.0, 200.0, 170.0]))
    want = py.render(a_py, drive, coords=coords)
    got = nat.render(a_nat, drive, coords=coords)
    assert got.dtype == np.uint8 and got.shape == want.shape
    assert int(np.abs(got.astype(int) - want.astype(int)).max()) <= 1
    one = nat.render(a_nat, drive[0], coords=coords)  # a single frame keeps its rank
    assert one.shape == want.shape[1:]


def test_relative_motion_matches_motion_transfer(models, shots):
    from talkinghead.motion import MotionTransfer

    py, nat = models
    a_py = py.create_avatar([shots[0][0]], [shots[0][1]])
    a_nat = nat.create_avatar([shots[0][0]], shots[0][1][None])
    drive_px = pycrop.to_pixels(fixtures.driving_landmarks(np.random.default_rng(4), 6), np.array([320.0, 240.0, 260.0]))
    want = py.render(a_py, MotionTransfer(a_py.landmarks, "relative")(drive_px))
    got = nat.render(a_nat, drive_px, coords="pixels", reference=drive_px[0])
    assert int(np.abs(got.astype(int) - want.astype(int)).max()) <= 1


def test_personalised_package(packages):
    from talkinghead.model import TalkingHeadModel
    from talkinghead.package import ModelPackage
    from talkinghead.sessions import SessionConfig

    py = TalkingHeadModel(ModelPackage.load(packages["personalised"]), SessionConfig(providers="cpu"))
    nat = native.Model(str(packages["personalised"]), provider="cpu")
    assert nat.personalised
    drive = fixtures.driving_landmarks(np.random.default_rng(5), 3)
    from talkinghead.avatar import Avatar

    avatar = Avatar(identity=np.zeros(0, np.float32), landmarks=drive[0], model=py.name, embedding_dim=nat.embedding_dim)
    want = py.render(avatar, drive)
    got = nat.render(None, drive)
    assert int(np.abs(got.astype(int) - want.astype(int)).max()) <= 1
    with pytest.raises(InputError, match="personalised"):
        nat.create_avatar([np.zeros((8, 8, 3), np.uint8)], drive[:1])


def test_graphs_match_onnxruntime_python(models, shots):
    py, nat = models
    r = nat.resolution
    rng = np.random.default_rng(0)
    lm = fixtures.driving_landmarks(rng, 2)
    ident = rng.normal(size=(2, nat.embedding_dim)).astype(np.float32)
    np.testing.assert_allclose(nat.generate(lm, ident), py.engine.generate(lm, ident), atol=1e-5)
    img = rng.uniform(-1, 1, size=(2, 3, r, r)).astype(np.float32)
    np.testing.assert_allclose(nat.embed(img, lm), py.engine.embed(img, lm), atol=1e-5)


# ---- geometry -----------------------------------------------------------------------------

def _crop_cases():
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(12):
        h, w = rng.integers(20, 700, size=2)
        size = float(rng.uniform(5, 1400))
        cases.append((int(h), int(w), float(rng.uniform(-50, w + 50)), float(rng.uniform(-50, h + 50)), size,
                      int(rng.choice([16, 48, 64, 256]))))
    return cases


@pytest.mark.parametrize("h,w,cx,cy,size,res", _crop_cases())
def test_warp_to_crop_matches_python(h, w, cx, cy, size, res):
    img = np.random.default_rng(h * w).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    crop = np.array([cx, cy, size])
    want = pycrop.warp_to_crop(img, crop, res)
    got = native.warp_to_crop(img, crop, res)
    assert int(np.abs(got.astype(int) - want.astype(int)).max()) <= 1


def test_strided_images_are_read_in_place_or_copied():
    img = np.random.default_rng(1).integers(0, 256, size=(90, 120, 4), dtype=np.uint8)
    rgb = img[:, :, :3]  # a view with 4-byte pixels: the module copies it
    crop = (60.0, 45.0, 70.0)
    want = pycrop.warp_to_crop(np.ascontiguousarray(rgb), np.array(crop), 32)
    assert np.array_equal(native.warp_to_crop(rgb, crop, 32), want)
    rows = np.ascontiguousarray(img[:, :, :3])[::2]  # row stride != 3 * width: read in place
    assert np.array_equal(native.warp_to_crop(rows, crop, 32), pycrop.warp_to_crop(rows, np.array(crop), 32))


def test_crop_rule_and_coordinates_match_python(shots):
    for _, lm in shots:
        c = pycrop.crop_from_landmarks(lm)
        got = native.crop_from_landmarks(lm)
        assert got == pytest.approx((c.cx, c.cy, c.size), rel=1e-12)
        n = native.to_normalised(lm, got)
        assert np.abs(n - pycrop.to_normalised(lm, c)).max() <= 1e-5
        assert np.abs(native.to_pixels(n, c) - pycrop.to_pixels(n, c)).max() <= 1e-4


# ---- threads, errors ----------------------------------------------------------------------

def test_threads_that_do_not_spin_render_the_same_frames(packages, shots):
    drive = fixtures.driving_landmarks(np.random.default_rng(3), 4)
    frames = []
    for spinning in (True, False):
        nat = native.Model(str(packages["meta"]), provider="cpu", intra_op_threads=2, allow_spinning=spinning)
        avatar = nat.create_avatar([shots[1][0]], shots[1][1][None])
        frames.append(np.stack([nat.render(avatar, d) for d in drive]))
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).max() <= 1


def test_render_in_threads_equals_one_thread(packages, shots):
    nat = native.Model(str(packages["meta"]), provider="cpu", intra_op_threads=1)
    avatar = nat.create_avatar([shots[1][0]], shots[1][1][None])
    drive = fixtures.driving_landmarks(np.random.default_rng(9), 8)
    want = [nat.render(avatar, d) for d in drive]
    seen = set()

    def work(i):
        seen.add(threading.get_ident())
        return i % len(drive), nat.render(avatar, drive[i % len(drive)])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4 * len(drive))))
    assert all(np.array_equal(frame, want[i]) for i, frame in results)
    assert len(seen) > 1


def test_errors_are_typed(packages, models, shots):
    _, nat = models
    avatar = nat.create_avatar([shots[0][0]], shots[0][1][None])
    bad = fixtures.driving_landmarks(np.random.default_rng(1), 1)
    bad[0, 3, 1] = math.nan
    with pytest.raises(InputError, match="NaN"):
        nat.render(avatar, bad)
    with pytest.raises(InputError, match=r"\[68, 2\]"):
        nat.render(avatar, np.zeros((5, 2), np.float32))
    with pytest.raises(InputError, match="1 to 32"):
        nat.create_avatar([shots[0][0]] * 33, np.repeat(shots[0][1][None], 33, axis=0))
    with pytest.raises(InputError, match="images but"):
        nat.create_avatar([shots[0][0]] * 2, shots[0][1][None])
    with pytest.raises(InputError, match="coords"):
        nat.render(avatar, bad[:, :1].repeat(68, 1) * 0, coords="inches")
    with pytest.raises(ModelPackageError, match="not found"):
        native.Model("/nonexistent/package")
    with pytest.raises(ProviderError, match="CUDA"):
        native.Model(str(packages["meta"]), provider="cuda")
    auto = native.Model(str(packages["meta"]), provider="auto")
    assert auto.provider == "cpu" and "CUDA" in auto.warning
    path, version = native.ort_library()
    assert "onnxruntime" in path and version


def test_sdk_backend_native_gives_the_same_frames(packages, shared_data) -> None:
    """talkinghead.load_model(..., backend="native") runs the C++ core under the same Python API."""
    import talkinghead

    py = talkinghead.load_model(packages["meta"], providers="cpu")
    nat = talkinghead.load_model(packages["meta"], providers="cpu", backend="native")
    photo = shared_data / "faces" / "aaai22_AdamSchiff.jpg"
    a_py, a_nat = py.create_avatar(photo), nat.create_avatar(photo)
    np.testing.assert_allclose(a_nat.identity, a_py.identity, atol=1e-5)
    lms = np.stack([a_py.landmarks, a_py.landmarks * 0.95, a_py.landmarks + 0.02])
    diff = np.abs(nat.render(a_nat, lms).astype(int) - py.render(a_py, lms).astype(int))
    assert diff.max() <= 1
    for option, value in (("graph_optimization", "basic"), ("enable_mem_arena", False)):
        with pytest.raises(talkinghead.InputError, match=option):  # honoured or refused by name, never ignored
            talkinghead.load_model(packages["meta"], providers="cpu", backend="native", **{option: value})


def test_warp_family_matches_python(packages) -> None:
    """A 'warp' package: the C++ core keeps the shots the SDK keeps (more shots than the cap) and
    renders the SDK's frames, through its own avatars and under backend="native"."""
    import talkinghead

    py = talkinghead.load_model(packages["warp"], providers="cpu")
    nat = talkinghead.load_model(packages["warp"], providers="cpu", backend="native")
    cap = py.package.references.cap
    rng = np.random.default_rng(11)
    shots = [fixtures.make_shot(rng, 160, 140, float(rng.uniform(50, 80))) for _ in range(cap + 3)]
    images, lms = [s[0] for s in shots], [s[1] for s in shots]
    a_py, a_nat = py.create_avatar(images, lms), nat.create_avatar(images, lms)
    drive = fixtures.driving_landmarks(np.random.default_rng(12), 3)
    want = py.render(a_py, drive)
    assert int(np.abs(nat.render(a_nat, drive).astype(int) - want.astype(int)).max()) <= 1

    core = native.Model(str(packages["warp"]), provider="cpu")
    assert core.family == "warp"
    a_core = core.create_avatar(images, np.stack(lms))
    ref_images, ref_lm = a_py.reference_inputs()
    np.testing.assert_allclose(a_core.ref_landmarks, ref_lm, atol=1e-6)
    np.testing.assert_allclose(a_core.ref_images, ref_images, atol=1e-6)
    assert int(np.abs(core.render(a_core, drive).astype(int) - want.astype(int)).max()) <= 1
    with pytest.raises(talkinghead.InputError, match="reference shots"):
        core.avatar_from_identity(a_py.identity)


def test_bundled_int8_variant_matches_python():
    """The C++ core picks the package's int8 file by name and renders what the Python path does."""
    from talkinghead.model import TalkingHeadModel
    from talkinghead.package import ModelPackage
    from talkinghead.performance import generate_performance
    from talkinghead.sessions import SessionConfig

    package = ModelPackage.load(Path(__file__).resolve().parents[2] / "sdk" / "talkinghead" / "models" / "default")
    py = TalkingHeadModel(package, SessionConfig(providers="cpu", variant="int8"), watermark=False)
    nat = native.Model(str(package.folder), provider="cpu", variant="int8")
    assert (py.variant, nat.variant) == ("int8", "int8")
    avatar = py.default_avatar()
    drive = generate_performance(avatar.landmarks, seconds=0.5, fps=6)
    want = py.render(avatar, drive)
    if avatar.has_references:  # a warp package's default avatar: its reference shots, fed to the graph
        from talkinghead.model import from_model_output

        ids = np.repeat(avatar.identity[None], len(drive), 0)
        got = from_model_output(nat.generate(drive, ids, *avatar.reference_inputs()))
    else:
        got = nat.render(nat.avatar_from_identity(avatar.identity, avatar.landmarks), drive)
    assert int(np.abs(got.astype(int) - want.astype(int)).max()) <= 1


def test_c_stream_equals_the_python_stream(shared_data: Path) -> None:
    """th_stream (through the pybind11 module) and model.stream(avatar) give the same frames, within
    one level per pixel, for the same landmark pushes: smoothing on the timestamps, the motion
    reference, the controls changing mid-stream, pixels and normalised coordinates, and a reset."""
    import talkinghead
    from talkinghead import Controls
    from talkinghead.landmarks import detect_landmarks
    from talkinghead.images import read_image

    py = talkinghead.load_model(providers="cpu")  # both mark their frames (watermark.cpp = watermark.py)
    core = native.Model(str(py.package.folder), provider="cpu")
    photo = read_image(shared_data / "faces" / "aaai22_AdamSchiff.jpg")
    points = detect_landmarks(photo).points
    a_py, a_core = py.create_avatar(photo, points), core.create_avatar([photo], points[None])
    rng = np.random.default_rng(5)
    drive = [points + np.array([3.0 * np.sin(i / 3), 2.0 * np.cos(i / 4)], np.float32)
             + rng.normal(0, 0.8, points.shape).astype(np.float32) for i in range(10)]
    plan = {3: Controls(mouth_open=0.12, smile=0.4), 5: Controls(yaw=15.0, eye_open=0.5),
            7: Controls(expression_only=True, roll=-10.0)}
    for coords in ("pixels", "normalised"):
        s_py, s_core, plain = py.stream(a_py), native.Stream(core, a_core), py.stream(a_py)
        worst, edited = 0, 0
        for i, lm in enumerate(drive):
            if coords == "normalised":
                lm = (lm - points.mean(0)) / 150.0
            if i in plan:
                s_py.controls = plan[i]
                s_core.set_controls(**{k: getattr(plan[i], k) for k in plan[i].__dataclass_fields__})
            if i == 8:
                s_py.reset()
                s_core.reset()
            want = s_py.push(lm, timestamp=0.04 * i + 1.0, coords=coords)
            got = s_core.push(lm, 0.04 * i + 1.0, coords)
            worst = max(worst, int(np.abs(got.astype(int) - want.astype(int)).max()))
            edited += int(np.abs(plain.push(lm, timestamp=0.04 * i + 1.0, coords=coords).astype(int)
                                 - want.astype(int)).max() > 10)
        assert worst <= 1, (coords, worst)
        assert edited >= 5  # the controls really changed the frames they applied to
        assert s_core.stats == (10, 10, 0)
    with pytest.raises(InputError, match="increase"):
        s_core.push(drive[0], 0.5)
    with pytest.raises(InputError, match="mouth_open"):
        s_core.set_controls(mouth_open=3.0)
    assert s_core.stats == (11, 10, 1)


def test_the_c_cores_marked_frames_are_found_by_verify(tmp_path: Path) -> None:
    """Frames rendered by the C++ core (th_render: marked by default) written to a video are found by
    Python's `talkinghead verify` with the package's model id; with the mark off they are not."""
    import talkinghead
    from talkinghead.performance import generate_performance
    from talkinghead.provenance import verify
    from talkinghead.video import VideoWriter
    from talkinghead.watermark import model_id

    py = talkinghead.load_model(providers="cpu")
    avatar = py.default_avatar()
    drive = generate_performance(avatar.landmarks, seconds=3.0, fps=25)
    for mark in (True, False):
        core = native.Model(str(py.package.folder), provider="cpu", watermark=mark)
        a_core = core.create_avatar([avatar.image], np.stack([pycrop.to_pixels(avatar.landmarks, avatar.crop)]))
        out = tmp_path / f"core_{mark}.mp4"
        with VideoWriter(out, fps=25) as w:
            for frame in core.render(a_core, drive):
                w.write(frame)
        v = verify(out)
        assert v.found == mark, v
        if mark:
            assert v.model_id == model_id(py.package.name, py.package.version)


def test_both_languages_hold_the_same_input_limits() -> None:
    """Each bound lives once per language (talkinghead/limits.py, bindings/src/input_limits.h):
    the same numbers on both sides, so one input is refused or accepted alike (issue 18)."""
    from talkinghead import limits

    assert native.LIMITS == {name: getattr(limits, name) for name in native.LIMITS}
    assert set(native.LIMITS) >= {"MAX_PIXEL_COORD", "MAX_NORMALISED", "MIN_FACE_SIZE", "MAX_RENDER_FRAMES"}


@pytest.mark.parametrize("case", ["far", "degenerate", "huge"])
def test_both_languages_refuse_the_same_landmarks(packages, models, shots, case) -> None:
    """The same bad landmarks are refused with the same error type by the Python SDK and through the
    C++ core (TH_ERROR_INVALID_ARGUMENT -> InputError)."""
    py, nat = models
    a_py = py.create_avatar([shots[0][0]], [shots[0][1]])
    a_nat = nat.create_avatar([shots[0][0]], shots[0][1][None])
    good = a_py.landmarks
    bad = {"far": good + 100.0, "degenerate": np.zeros_like(good), "huge": good * 1e30}[case]
    with pytest.raises(InputError) as py_error:
        py.render(a_py, bad)
    with pytest.raises(InputError) as native_error:
        nat.render(a_nat, bad[None])
    word = {"far": "off the picture", "degenerate": "degenerate", "huge": "beyond"}[case]
    assert word in str(py_error.value) and word in str(native_error.value)
