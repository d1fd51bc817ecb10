"""Landmark detection, tracking and smoothing (talkinghead.landmarks) on real media, and the
InsightFace backend's pre/post-processing on small ONNX models built here."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from talkinghead.crop import flip_landmarks
from talkinghead.errors import (
    InputError,
    MissingDependencyError,
    ModelPackageError,
    NoFaceError,
)
from talkinghead.images import read_image
from talkinghead.landmarks import (
    Face,
    FaceTracker,
    OneEuroConfig,
    OneEuroFilter,
    TrackerConfig,
    box_iou,
    detect_landmarks,
    get_detector,
    shape_change,
)
from talkinghead.video import iter_frames


def _nme(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=1).mean() / np.linalg.norm(b[45] - b[36]))


# -- dlib on real media ---------------------------------------------------------------------------


def test_landmarks_of_a_real_photo_are_plausible(face_photo: Path, dlib_detector):
    img = read_image(face_photo)
    face = detect_landmarks(img, detector=dlib_detector)
    assert isinstance(face, Face) and face.points.shape == (68, 2)
    assert face.points.dtype == np.float32
    x0, y0, x1, y1 = face.box
    margin = 0.25 * (x1 - x0)
    p = face.points
    assert (p[:, 0] > x0 - margin).all() and (p[:, 0] < x1 + margin).all()
    assert (p[:, 1] > y0 - margin).all() and (p[:, 1] < y1 + margin).all()
    eyes_y = p[36:48, 1].mean()
    nose_y = p[30, 1]
    mouth_y = p[48:68, 1].mean()
    chin_y = p[8, 1]
    brows_y = p[17:27, 1].mean()
    assert brows_y < eyes_y < nose_y < mouth_y < chin_y
    # image-left eye (36-41) is left of image-right eye (42-47); mouth corners ordered too
    assert p[36:42, 0].mean() < p[42:48, 0].mean()
    assert p[48, 0] < p[54, 0]
    assert p[0, 0] < p[30, 0] < p[16, 0]


def test_flipped_landmarks_match_detection_on_the_mirrored_photo(face_photo: Path,
                                                                 dlib_detector):
    img = read_image(face_photo)
    face = detect_landmarks(img, detector=dlib_detector)
    mirrored = detect_landmarks(np.ascontiguousarray(img[:, ::-1]), detector=dlib_detector)
    flipped = flip_landmarks(face.points, img.shape[1])
    assert _nme(flipped, mirrored.points) < 0.08


def test_no_face_errors_name_the_image(tmp_path: Path, dlib_detector, face_photo: Path):
    blank = np.full((200, 200, 3), 127, np.uint8)
    with pytest.raises(NoFaceError, match="image"):
        detect_landmarks(blank, detector=dlib_detector)
    with pytest.raises(NoFaceError, match="frame 7"):
        detect_landmarks(blank, detector=dlib_detector, name="frame 7 of clip.mp4")
    with pytest.raises(NoFaceError, match="face_index 3"):
        detect_landmarks(face_photo, face_index=3, detector=dlib_detector)
    with pytest.raises(NoFaceError, match=str(face_photo.name)):
        detect_landmarks(face_photo, face_index=5, detector=dlib_detector)


def test_bad_image_inputs_are_rejected(dlib_detector):
    with pytest.raises(InputError, match="empty"):
        dlib_detector.detect(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(InputError, match="grey"):
        dlib_detector.detect(np.zeros((64, 64), np.uint8))
    with pytest.raises(InputError, match="RGBA"):
        detect_landmarks(np.zeros((64, 64, 4), np.uint8), detector=dlib_detector)


def test_tracking_a_real_clip_keeps_every_frame(short_clip: Path, dlib_detector):
    tracker = FaceTracker(dlib_detector, fps=25.0)
    results = [tracker.update(f) for f in iter_frames(short_clip, limit=40)]
    assert len(results) == 40
    assert all(r.ok for r in results)
    assert results[0].status == "detected"
    assert tracker.counts["lost"] == 0 and tracker.counts["tracked"] >= 30
    for r in results:
        assert r.points.shape == (68, 2) and r.smoothed.shape == (68, 2)
        assert _nme(r.smoothed, r.points) < 0.1   # smoothing follows the face
    assert [r.index for r in results] == list(range(40))
    # smoothing reduces frame-to-frame motion
    raw = np.stack([r.points for r in results])
    smooth = np.stack([r.smoothed for r in results])
    assert np.abs(np.diff(smooth, axis=0)).mean() < np.abs(np.diff(raw, axis=0)).mean()


def test_tracker_counts_lost_frames_and_recovers(short_clip: Path, dlib_detector):
    frames = list(iter_frames(short_clip, limit=6))
    blank = np.full_like(frames[0], 90)
    tracker = FaceTracker(dlib_detector, TrackerConfig(verify_every=1, smoothing=False))
    seq = frames[:3] + [blank] * 3 + frames[3:6]
    results = [tracker.update(f) for f in seq]
    assert [r.status for r in results[:3]] == ["detected", "tracked", "tracked"]
    lost = results[3:6]
    assert [r.status for r in lost] == ["lost"] * 3
    assert [r.lost_count for r in lost] == [1, 2, 3]
    np.testing.assert_array_equal(lost[-1].points, results[2].points)   # last good kept
    with pytest.raises(NoFaceError, match="frame 4 of clip.mp4"):
        lost[1].require("clip.mp4")
    assert results[6].status == "detected" and results[7].ok
    assert tracker.counts == {"detected": 2, "tracked": 4, "lost": 3}


def test_tracker_without_any_face(dlib_detector):
    tracker = FaceTracker(dlib_detector)
    r = tracker.update(np.zeros((120, 160, 3), np.uint8))
    assert r.status == "lost" and r.points is None and r.smoothed is None
    with pytest.raises(NoFaceError, match="frame 0"):
        r.require()


def test_tracker_config_validation(dlib_detector):
    for bad in (TrackerConfig(face_index=-1), TrackerConfig(min_iou=2.0),
                TrackerConfig(verify_every=-1), TrackerConfig(max_shape_change=0.0),
                TrackerConfig(one_euro=OneEuroConfig(min_cutoff=0.0))):
        with pytest.raises(InputError):
            FaceTracker(dlib_detector, bad)


# -- measures and smoothing -----------------------------------------------------------------------


def test_shape_change_ignores_similarity_transforms():
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 100, (68, 2))
    pts[36], pts[45] = (30, 40), (70, 40)
    a = np.deg2rad(12)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = pts @ rot.T * 1.3 + (15, -7)
    assert shape_change(pts, moved) < 1e-6
    jittered = pts + rng.normal(0, 4, pts.shape)   # 0.1 of the 40-px inter-ocular distance
    assert 0.05 < shape_change(pts, jittered) < 0.2


def test_box_iou():
    assert box_iou(np.array([0, 0, 10, 10]), np.array([0, 0, 10, 10])) == 1.0
    assert box_iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10])) == pytest.approx(1 / 3)
    assert box_iou(np.array([0, 0, 1, 1]), np.array([2, 2, 3, 3])) == 0.0


def test_one_euro_filter():
    f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.0))
    x = np.ones((68, 2))
    for i in range(5):
        np.testing.assert_allclose(f(x, t=i / 25), x)   # constant stays constant
    rng = np.random.default_rng(0)
    f.reset()
    noisy = [rng.normal(0, 1, (68, 2)) for _ in range(100)]
    out = np.stack([f(n, t=i / 25) for i, n in enumerate(noisy)])
    assert out[20:].std() < 0.5 * np.stack(noisy)[20:].std()   # jitter reduced
    # with beta > 0 a fast step is followed sooner than with beta = 0
    slow, fast = OneEuroFilter(OneEuroConfig(beta=0.0)), OneEuroFilter(OneEuroConfig(beta=5.0))
    for flt in (slow, fast):
        flt(np.zeros(3), t=0.0)
    ys = [(slow(np.full(3, 1.0), t=k / 25)[0], fast(np.full(3, 1.0), t=k / 25)[0])
          for k in range(1, 4)]
    assert all(b > a for a, b in ys)
    with pytest.raises(InputError):
        fast(np.zeros(3), t=0.0)   # time must increase
    with pytest.raises(InputError):
        OneEuroFilter(OneEuroConfig(beta=-1.0))


# -- backends and errors --------------------------------------------------------------------------


def test_get_detector_rejects_unknown_backend():
    with pytest.raises(InputError, match="dlib, insightface"):
        get_detector("mediapipe")


def test_missing_dlib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)   # import dlib -> ImportError
    with pytest.raises(MissingDependencyError, match=r"talkinghead\[landmarks\]"):
        get_detector("dlib")


def test_insightface_missing_files_says_where_to_put_them(tmp_path: Path):
    (tmp_path / "det_10g.onnx").write_bytes(b"")
    with pytest.raises(MissingDependencyError) as info:
        get_detector("insightface", model_dir=tmp_path)
    msg = str(info.value)
    assert "1k3d68.onnx" in msg and str(tmp_path) in msg and "buffalo_l" in msg
    assert "missing: 1k3d68.onnx" in msg


# -- InsightFace pre/post-processing on small ONNX models with the real graphs' interfaces --------

TEMPLATE = np.stack([np.linspace(-0.5, 0.5, 68), np.linspace(-0.4, 0.6, 68)], axis=1)


def _save_model(path: Path, inputs, outputs, nodes, inits) -> None:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _constant_outputs(input_name: str, consts: dict[str, np.ndarray]):
    """Nodes making each output = constant + 0 * mean(input) (so the input is used)."""
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", [input_name], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "zero"], ["z"])]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    for name, value in consts.items():
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_c"))
        nodes.append(helper.make_node("Add", [f"{name}_c", "z"], [name]))
    return nodes, inits


@pytest.fixture(scope="module")
def fake_buffalo(tmp_path_factory) -> Path:
    """det_10g.onnx / 1k3d68.onnx stand-ins: SCRFD's 9 outputs for a 640 input, holding one
    face (plus a duplicate for NMS and a weak one under the threshold), and a landmark model
    returning TEMPLATE as its last 68 points."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    d = tmp_path_factory.mktemp("buffalo_l")
    outs = {}
    for i, stride in enumerate((8, 16, 32)):
        n = (640 // stride) ** 2 * 2
        outs[f"score_{stride}"] = np.zeros((n, 1))
        outs[f"bbox_{stride}"] = np.zeros((n, 4))
        outs[f"kps_{stride}"] = np.zeros((n, 10))
    # stride 16, cell row 10, col 12 -> anchor centre (192, 160); box distances in strides
    a = (10 * 40 + 12) * 2
    outs["score_16"][a] = 0.9
    outs["bbox_16"][a] = (4, 5, 4, 5)
    outs["kps_16"][a] = (-1, -1, 1, -1, 0, 0, -1, 1, 1, 1)
    outs["score_16"][a + 1] = 0.8                 # same box, lower score: removed by NMS
    outs["bbox_16"][a + 1] = (4, 5, 4, 5)
    outs["score_8"][100] = 0.3                    # under the 0.5 threshold
    order = [f"{k}_{s}" for k in ("score", "bbox", "kps") for s in (8, 16, 32)]
    nodes, inits = _constant_outputs("input.1", {k: outs[k] for k in order})
    _save_model(
        d / "det_10g.onnx",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(outs[k].shape)) for k in order],
        nodes, inits)
    fc1 = np.zeros((1103, 3))
    fc1[-68:, :2] = TEMPLATE
    fc1[:-68] = 5.0                               # the dense part must be ignored
    nodes, inits = _constant_outputs("data", {"fc1": fc1.reshape(1, 3309)})
    _save_model(
        d / "1k3d68.onnx",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 192, 192])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 3309])],
        nodes, inits)
    return d


def test_insightface_decodes_detections_and_landmarks(fake_buffalo: Path):
    det = get_detector("insightface", model_dir=fake_buffalo)
    img = np.zeros((240, 320, 3), np.uint8)       # letterboxed into 640: scale 2
    boxes, scores = det.detect_boxes(img)
    assert boxes.shape == (1, 4) and scores.tolist() == pytest.approx([0.9])
    # det space (128, 80, 256, 240) / 2
    np.testing.assert_allclose(boxes[0], [64, 40, 128, 120], atol=1e-4)
    faces = det.detect(img)
    assert len(faces) == 1
    face = faces[0]
    assert face.confidence == pytest.approx(0.9)
    np.testing.assert_allclose(face.extra["kps5"][0], [(192 - 16) / 2, (160 - 16) / 2])
    # landmark crop: centre of the box, side 1.5 * 80; points = centre + template * side / 2
    np.testing.assert_allclose(face.points, np.array([96, 80]) + TEMPLATE * 60, atol=1e-3)
    # fit from any box follows the same geometry
    fit = det.fit(img, np.array([10, 20, 50, 40]))
    np.testing.assert_allclose(fit.points, np.array([30, 30]) + TEMPLATE * 30, atol=1e-3)


def test_insightface_landmark_input_is_rgb_0_255_centred_on_the_box(fake_buffalo: Path):
    det = get_detector("insightface", model_dir=fake_buffalo)
    img = np.zeros((300, 300, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 200, 100, 10
    img[148:152, 98:102] = 255                     # a white mark at (100, 150)
    blob = det.preprocess_landmarks(img, np.array([60, 110, 140, 190]))   # centre (100, 150)
    assert blob.shape == (1, 3, 192, 192) and blob.dtype == np.float32
    assert blob[0, 0, 0, 0] == pytest.approx(200) and blob[0, 2, 0, 0] == pytest.approx(10)
    ys, xs = np.nonzero(blob[0, 2] > 128)
    assert abs(ys.mean() - 96) < 2 and abs(xs.mean() - 96) < 2


def test_insightface_rejects_graphs_of_the_wrong_kind(tmp_path: Path, fake_buffalo: Path):
    from onnx import TensorProto, helper

    (tmp_path / "1k3d68.onnx").write_bytes((fake_buffalo / "1k3d68.onnx").read_bytes())
    nodes, inits = _constant_outputs("input.1", {"only": np.zeros((10, 1))})
    _save_model(tmp_path / "det_10g.onnx",
                [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])],
                [helper.make_tensor_value_info("only", TensorProto.FLOAT, [10, 1])],
                nodes, inits)
    with pytest.raises(ModelPackageError, match="9 outputs"):
        get_detector("insightface", model_dir=tmp_path)


def test_the_shared_detector_serves_several_threads_at_once(face_photo: Path) -> None:
    """dlib's objects are not thread-safe; the backend serialises its calls (a web server rendering
    jobs in parallel through the shared default detector crashed before)."""
    from concurrent.futures import ThreadPoolExecutor

    from talkinghead.images import read_image
    from talkinghead.landmarks import default_detector

    image = read_image(face_photo)
    detector = default_detector()
    want = detector.detect(image)[0].points
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: detector.detect(image)[0].points, range(12)))
    assert all(np.array_equal(g, want) for g in got)


class _CountingDetector:
    """The real dlib detector, counting what the tracker asks of it."""

    def __init__(self, inner) -> None:
        self.inner, self.box_calls, self.full_calls = inner, [], 0

    def detect_boxes(self, image):
        self.box_calls.append(image.shape[:2])
        return self.inner.detect_boxes(image)

    def detect(self, image):
        self.full_calls += 1
        return self.inner.detect(image)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _on_hd_canvas(photo: np.ndarray, side: int) -> np.ndarray:
    from talkinghead.crop import resize_image

    canvas = np.full((720, 1280, 3), 110, np.uint8)
    canvas[100:100 + side, 500:500 + side] = resize_image(photo, side, side)
    return canvas


def test_tracker_detects_an_hd_frame_at_coarse_scale_and_falls_back_for_small_faces(face_photo: Path,
                                                                                  dlib_detector):
    """A whole-frame detection first looks at the frame scaled to coarse_side (640: a quarter
    of the pixels of 1280x720) and fits the landmarks at full size; a face too small to be found
    there is found at full size."""
    photo = read_image(face_photo)   # its face is ~150 px of 256
    large = _on_hd_canvas(photo, 512)   # face ~300 px: ~150 px at the coarse scale
    spy = _CountingDetector(dlib_detector)
    r = FaceTracker(spy, TrackerConfig(smoothing=False)).update(large)
    assert r.status == "detected" and spy.full_calls == 0 and spy.box_calls == [(360, 640)]
    full = dlib_detector.detect(large)[0].points   # the full-size detection's landmarks
    assert _nme(r.points, full) < 0.05

    small = _on_hd_canvas(photo, 150)   # face ~88 px: found at full size, not at half of it
    spy = _CountingDetector(dlib_detector)
    r = FaceTracker(spy, TrackerConfig(smoothing=False)).update(small)
    assert r.status == "detected" and spy.full_calls == 1 and spy.box_calls == [(360, 640)]

    spy = _CountingDetector(dlib_detector)   # coarse_side=None: the full frame only, as before
    r = FaceTracker(spy, TrackerConfig(smoothing=False, coarse_side=None)).update(large)
    assert r.status == "detected" and spy.full_calls == 1 and spy.box_calls == []
    with pytest.raises(InputError, match="coarse_side"):
        TrackerConfig(coarse_side=40).validate()
