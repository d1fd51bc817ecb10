"""The streaming API (issue 20): model.stream(avatar).push(...), LiveStream, and the controls."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import talkinghead
from talkinghead import Controls, InputError, NoFaceError
from talkinghead.video import iter_frames


@pytest.fixture(scope="module")
def clip_frames(shared_data: Path) -> list[np.ndarray]:
    return list(iter_frames(shared_data / "driving" / "lp_d18.mp4", limit=12))


@pytest.fixture(scope="module")
def avatar(tiny_model, face_photo: Path):
    return tiny_model.create_avatar(face_photo)


def test_push_renders_frames_and_landmarks_and_counts_them(tiny_model, avatar, clip_frames) -> None:
    stream = tiny_model.stream(avatar, output="paste")
    for i, frame in enumerate(clip_frames[:4]):
        out = stream.push(frame, timestamp=i / 30)
        assert out.shape == avatar.image.shape and out.dtype == np.uint8
    crop_stream = tiny_model.stream(avatar)
    lms = avatar.landmarks * 60 + 100
    assert crop_stream.push(lms).shape == (tiny_model.resolution,) * 2 + (3,)
    driver = tiny_model.stream(avatar, output="driver").push(clip_frames[0])
    assert driver.shape == clip_frames[0].shape and not np.array_equal(driver, clip_frames[0])
    assert (stream.stats.pushed, stream.stats.rendered, stream.stats.dropped) == (4, 4, 0)
    assert stream.stats.latency_percentile(50) > 0


def test_the_stream_matches_animate_on_the_same_frames(tiny_model, avatar, clip_frames) -> None:
    """Tracking, motion reference and smoothing are the animate path's, one frame at a time."""
    want = list(tiny_model.animate(avatar, clip_frames[:6], output="crop", fps=30.0))
    stream = tiny_model.stream(avatar, fps=30.0)
    got = [stream.push(f) for f in clip_frames[:6]]
    assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_bad_inputs_are_named(tiny_model, avatar, clip_frames) -> None:
    stream = tiny_model.stream(avatar)
    with pytest.raises(InputError, match="RGB uint8"):
        stream.push(clip_frames[0].astype(np.float32))
    with pytest.raises(NoFaceError):
        stream.push(np.zeros((64, 64, 3), np.uint8))
    stream.push(clip_frames[0], timestamp=1.0)
    with pytest.raises(InputError, match="increase"):
        stream.push(clip_frames[1], timestamp=1.0)
    with pytest.raises(InputError, match="driving frame"):
        tiny_model.stream(avatar, output="driver").push(avatar.landmarks * 50 + 80)
    with pytest.raises(InputError, match="output"):
        tiny_model.stream(avatar, output="screen")
    with pytest.raises(InputError, match="mouth_open"):
        stream.controls = Controls(mouth_open=5.0)
    with pytest.raises(InputError, match="yaw"):
        Controls(yaw=float("nan")).validate()
    assert stream.stats.failed == 3 and stream.stats.pushed == 4


@pytest.mark.parametrize("pipelined", [True, False])
def test_live_accounts_for_every_input_and_drops_none_when_the_source_is_slower(tiny_model, avatar, clip_frames,
                                                                                  pipelined: bool) -> None:
    """A clip stands in for the camera. Paced slower than the renderer (each frame submitted once the
    worker is idle), nothing is dropped; submitted as fast as possible, frames are dropped, never
    queued, and rendered + dropped + failed == pushed."""
    with tiny_model.stream(avatar).live(pipelined=pipelined) as live:
        for i, frame in enumerate(clip_frames):
            live.submit(frame, timestamp=i / 30)
            assert live.wait_idle()
    assert (live.stats.pushed, live.stats.rendered, live.stats.dropped, live.stats.failed) == (12, 12, 0, 0)
    seen = []
    with tiny_model.stream(avatar).live(on_frame=lambda f, t, ms: seen.append(t), pipelined=pipelined) as live:
        for i in range(40):
            live.submit(clip_frames[i % len(clip_frames)], timestamp=i / 30)
        live.wait_idle()
        newest = live.latest()
    s = live.stats
    assert s.pushed == 40 and s.rendered + s.dropped + s.failed == 40
    assert s.dropped > 0 and s.rendered == len(seen) and seen == sorted(seen)
    assert newest is not None and newest[1] == seen[-1]
    with pytest.raises(InputError, match="closed"):
        live.submit(clip_frames[0])


def test_warm_up_changes_nothing_a_frame_shows_or_counts(tiny_model, avatar, clip_frames) -> None:
    """warm_up renders once, uncounted, and loads the tracker: the frames that follow and the
    counters are those of a stream without it (the motion reference is still the first input's)."""
    cold = tiny_model.stream(avatar, output="paste", fps=30.0)
    warm = tiny_model.stream(avatar, output="paste", fps=30.0)
    warm.warm_up(frames=True)
    assert warm._tracker is not None and cold._tracker is None
    assert (warm.stats.pushed, warm.stats.rendered) == (0, 0) and warm._transfer.reference is None
    for frame in clip_frames[:3]:
        assert np.array_equal(warm.push(frame), cold.push(frame))
    assert (warm.stats.pushed, warm.stats.rendered) == (3, 3)


def test_live_tracks_the_next_input_while_the_renderer_works_and_keeps_the_newest(tiny_model, avatar) -> None:
    """The stages overlap: with the generator held inside frame 0, the tracker still takes and
    tracks the next inputs; of the tracked frames waiting, only the newest is rendered, and the one
    it replaced is counted as dropped. Rendered frames keep their order."""
    import threading

    stream = tiny_model.stream(avatar)
    stream.warm_up()  # before the generator is held: LiveStream's own warm-up then returns at once
    release, inside = threading.Event(), threading.Event()
    render = stream._render_crop

    def held_render(driven):
        inside.set()
        assert release.wait(10)
        return render(driven)

    stream._render_crop = held_render
    base = avatar.landmarks * 60 + 100
    seen = []
    with stream.live(on_frame=lambda f, t, ms: seen.append(t)) as live:
        live.submit(base, timestamp=0.0)
        assert inside.wait(10)  # the generator is inside frame 0
        for i in (1, 2):
            live.submit(base + i, timestamp=i / 30)
            for _ in range(1000):  # the tracker takes it although the generator is busy
                if live._inbox[0] is None and not live._working[0]:
                    break
                threading.Event().wait(0.005)
            assert live._inbox[0] is None and live._inbox[1] is not None and live._inbox[1][1] == i / 30
        release.set()
        assert live.wait_idle()
    assert seen == [0.0, 2 / 30]
    assert (live.stats.pushed, live.stats.rendered, live.stats.dropped, live.stats.failed) == (3, 2, 1, 0)


def test_a_slow_sink_does_not_hold_the_generator(tiny_model, avatar) -> None:
    """on_frame runs on the compose stage: while a sink is held inside frame 0, the generator still
    renders the next frame; of the rendered frames waiting for the sink, only the newest is kept."""
    import threading

    stream = tiny_model.stream(avatar)
    stream.warm_up()  # before the renders are counted
    release, inside = threading.Event(), threading.Event()
    rendered = []
    render = stream._render_crop

    def counted_render(driven):
        out = render(driven)
        rendered.append(1)
        return out

    stream._render_crop = counted_render
    seen = []

    def sink(frame, t, ms):
        seen.append(t)
        inside.set()
        assert release.wait(10)

    base = avatar.landmarks * 60 + 100
    with stream.live(on_frame=sink) as live:
        live.submit(base, timestamp=0.0)
        assert inside.wait(10)  # the sink holds frame 0
        for i in (1, 2):
            live.submit(base + i, timestamp=i / 30)
            for _ in range(1000):
                if len(rendered) == i + 1 and not live._working[1]:
                    break
                threading.Event().wait(0.005)
            assert len(rendered) == i + 1 and live._inbox[2] is not None and live._inbox[2][2] == i / 30
        release.set()
        assert live.wait_idle()
    assert seen == [0.0, 2 / 30]
    assert (live.stats.pushed, live.stats.rendered, live.stats.dropped, live.stats.failed) == (3, 2, 1, 0)


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_raising_on_frame_is_kept_and_the_stream_goes_on(tiny_model, avatar, pipelined: bool) -> None:
    """A sink that raises (a full disk, a closed window) must not stop the workers: its error is kept
    in ``error``, later inputs still render, and the stream goes idle."""
    calls = []

    def sink(frame, t, ms):
        calls.append(t)
        if len(calls) == 1:
            raise OSError("sink failed")

    base = avatar.landmarks * 60 + 100
    with tiny_model.stream(avatar).live(on_frame=sink, pipelined=pipelined) as live:
        for i in range(3):
            live.submit(base + i, timestamp=i / 30)
            assert live.wait_idle()
    assert isinstance(live.error, OSError) and calls == [0.0, 1 / 30, 2 / 30]
    assert (live.stats.pushed, live.stats.rendered, live.stats.dropped) == (3, 3, 0)


def test_a_long_live_run_keeps_memory_and_queues_flat(tiny_model, avatar) -> None:
    """10,000 landmark pushes: at most one item waits per stage, the latency window is bounded, and memory
    allocated by the run stays flat between its first and last thousand pushes."""
    base = avatar.landmarks * 60 + 100
    stream = tiny_model.stream(avatar)
    tracemalloc.start()
    try:
        with stream.live() as live:
            sizes = []
            for i in range(10_000):
                live.submit(base + 0.5 * np.sin(i / 7.0), timestamp=i / 30)
                held = sum(x is not None for x in live._inbox) + sum(live._working)
                assert held <= 2 * len(live.STAGES)  # one waiting and one in progress per stage, at most
                if i in (1_000, 9_999):
                    live.wait_idle()
                    sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    s = live.stats
    assert s.pushed == 10_000 and s.rendered + s.dropped + s.failed == 10_000 and s.failed == 0
    assert len(s.latencies_ms) <= 512
    assert sizes[1] - sizes[0] < 2 * 2**20, sizes  # under 2 MB of growth over 9,000 pushes


def _openness(points: np.ndarray) -> dict[str, float]:
    size = np.ptp(points[:, 0])
    eye = np.mean([points[41, 1] - points[37, 1], points[40, 1] - points[38, 1],
                   points[47, 1] - points[43, 1], points[46, 1] - points[44, 1]]) / size
    mouth = (points[66, 1] - points[62, 1]) / size
    left, right = points[30, 0] - points[2, 0], points[14, 0] - points[30, 0]  # nose tip vs the cheeks
    return {"eye": eye, "mouth": mouth, "yaw": (left - right) / size}  # > 0: the nose towards the image's right


@pytest.mark.parametrize("control,levels,measure", [
    ("eye_open", (0.3, 1.0, 1.6), "eye"),
    ("mouth_open", (0.0, 0.08, 0.16), "mouth"),
    ("yaw", (-20.0, 0.0, 20.0), "yaw"),
])
def test_each_control_moves_the_rendered_face(dlib_detector, control: str, levels, measure: str) -> None:
    """The landmark detector on frames rendered by the bundled model shows eye and mouth openness and
    yaw moving monotonically with their controls."""
    from PIL import Image

    model = talkinghead.load_model(providers="cpu")
    avatar = model.default_avatar()
    values = []
    for level in levels:
        stream = model.stream(avatar, controls=Controls(**{control: level}))
        crop = stream.push(avatar.landmarks * 200 + 256)  # the avatar's own pose, in pixels of a frame
        big = np.asarray(Image.fromarray(crop).resize((512, 512), Image.BICUBIC))
        faces = dlib_detector.detect(big)
        assert faces, f"{control}={level}: no face on the rendered frame"
        values.append(_openness(faces[0].points)[measure])
    assert values[0] < values[1] < values[2], (control, values)


def test_expression_only_keeps_the_source_head_still(tiny_model, avatar) -> None:
    from talkinghead.controls import STABLE

    base = avatar.landmarks * 60 + 100
    moved = base.copy()
    moved[:, 0] += 12.0  # the driver's head moves right and tilts
    c, s = np.cos(0.2), np.sin(0.2)
    moved = (moved - moved.mean(0)) @ np.array([[c, -s], [s, c]]).T + moved.mean(0)
    moved[[62, 63, 64, 65, 66, 67], 1] += 4.0  # and opens the mouth
    transfer = talkinghead.motion.MotionTransfer(avatar.landmarks, "relative", tiny_model.package.crop_config)
    transfer.set_reference(base)
    plain = transfer(moved)
    kept = Controls(expression_only=True).apply(plain, avatar.landmarks)
    stable_err = lambda p: np.abs(p[STABLE] - avatar.landmarks[STABLE]).mean()  # noqa: E731
    assert stable_err(kept) < 0.2 * stable_err(plain)
    mouth = lambda p: p[66, 1] - p[62, 1]  # noqa: E731
    assert mouth(kept) - mouth(avatar.landmarks) > 0.5 * (mouth(plain) - mouth(avatar.landmarks))
    assert np.array_equal(Controls().apply(plain, avatar.landmarks), plain)
