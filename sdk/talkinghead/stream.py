"""Live rendering: one frame (or one set of landmarks) in, one rendered frame out.

``stream = model.stream(avatar)`` holds what a live source needs between calls: the face tracker
(detection, tracking, One Euro smoothing on the frames' own timestamps), the motion reference (the
first driving face), the controls (talkinghead.controls) and the counters.

- :meth:`Stream.push` renders synchronously: the caller's thread tracks, transfers, renders and
  pastes. Use it from an engine loop, or when the source waits for the renderer (a file).
- :class:`LiveStream` (``stream.live()``) decouples a live source from the renderer with bounded
  latency: ``submit`` never blocks and keeps only the newest pending input. Three workers form a
  pipeline: *track* (tracking, transfer, controls: the stateful stage), *render* (the generator)
  and *compose* (paste-back, the mark, ``on_frame``), so tracking frame n + 1 overlaps rendering
  frame n; an item replaced before the next stage took it is dropped and counted. Nothing queues
  without limit: at most one item waits per stage, and one result is held. Threads: the caller's
  (capture, ``submit``), the three workers (dlib releases the GIL; the renderer runs ONNX
  Runtime's intra-op threads), overlapping on two cores. It warms the stream up first
  (:meth:`Stream.warm_up`), so the first inputs do not pay for the generator's first run.

Every pushed input is accounted for: ``pushed == rendered + dropped + failed``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from .avatar import Avatar
from .controls import Controls
from .errors import InputError, NoFaceError
from .crop import Crop
from .landmarks.one_euro import OneEuroConfig, OneEuroFilter
from .motion import MotionTransfer, check_landmarks, face_size
from .pasteback import paste_back

if TYPE_CHECKING:
    from .model import TalkingHeadModel

Output = Literal["crop", "paste", "driver"]


@dataclass
class StreamStats:
    """Counters of a stream. ``failed``: inputs that raised (no face yet, bad input)."""

    pushed: int = 0
    rendered: int = 0
    dropped: int = 0
    failed: int = 0
    lost: int = 0  # rendered with the last good landmarks because the tracker lost the face
    latencies_ms: list[float] = field(default_factory=list)  # the last ``LATENCY_WINDOW`` renders

    def latency_percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else None


LATENCY_WINDOW = 512


NORMALISED = Crop(0.0, 0.0, 2.0)  # the crop under which crop-normalised points are their own pixels


@dataclass(frozen=True)
class Driven:
    """What the first stage hands the second: the landmarks to render (crop-normalised, controls
    applied), and for ``output='driver'`` the driving frame and the driver's landmarks in it."""

    landmarks: np.ndarray
    frame: np.ndarray | None
    driver_px: np.ndarray


class LandmarkSmoother:
    """One Euro smoothing of pushed landmarks [68, 2] in face sizes: the points are divided by the
    first sample's face size (talkinghead.motion.face_size), filtered in float64 on their
    timestamps (talkinghead.landmarks.one_euro, default parameters) and scaled back. The C stream
    (bindings/src/stream.cpp) implements the same rule."""

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self._filter = OneEuroFilter(config)
        self._ref: float | None = None

    def __call__(self, points: np.ndarray, t: float) -> np.ndarray:
        if self._ref is None:
            self._ref = max(face_size(points), 1e-6)
        return (self._filter(points.astype(np.float64) / self._ref, t) * self._ref).astype(np.float32)


class Stream:
    """Per-source live state; create with :meth:`TalkingHeadModel.stream`.

    Args:
        model: the model that renders.
        avatar: who is rendered.
        mode: motion transfer, "relative" (default) or "absolute".
        output: "crop" (the model's crop), "paste" (into the avatar's source image) or "driver"
            (into the driving frame, at the driver's face; frames only).
        controls: expression and pose edits (changeable between frames: :attr:`controls`).
        smoothing: One Euro smoothing of the driving landmarks on their timestamps: by the tracker
            for frames, by :class:`LandmarkSmoother` for pushed landmarks (the C stream's rule).
        fps: the nominal rate used when a push has no timestamp.
    """

    def __init__(self, model: "TalkingHeadModel", avatar: Avatar, *, mode: str = "relative",
                 output: Output = "crop", controls: Controls | None = None, smoothing: bool = True,
                 fps: float = 25.0) -> None:
        model._check_avatar(avatar)
        if output not in ("crop", "paste", "driver"):
            raise InputError(f"output must be 'crop', 'paste' or 'driver', got {output!r}")
        if output == "paste" and not avatar.can_paste:
            raise InputError("this avatar has no source image to paste into; use output='crop'")
        if not (np.isfinite(fps) and 0 < fps <= 1000):
            raise InputError(f"fps must be in (0, 1000], got {fps}")
        self.model, self.avatar, self.output, self.smoothing, self.fps = model, avatar, output, smoothing, float(fps)
        self._transfer = MotionTransfer(avatar.landmarks, mode, model.package.crop_config)  # validates mode
        self._controls = (controls or Controls()).validate()
        self._tracker = None
        self._smoother = LandmarkSmoother() if smoothing else None
        self._last_landmarks: np.ndarray | None = None
        self._last_time: float | None = None
        self._lock = threading.Lock()  # the first stage's state: one input at a time
        self._count_lock = threading.Lock()  # the counters, written by both stages and the caller
        self.stats = StreamStats()
        self._warm = False  # warm_up() has rendered once

    # -- state ------------------------------------------------------------------------------------

    @property
    def controls(self) -> Controls:
        return self._controls

    @controls.setter
    def controls(self, value: Controls) -> None:
        if not isinstance(value, Controls):
            raise InputError(f"controls must be a talkinghead.Controls, got {type(value).__name__}")
        self._controls = value.validate()  # an immutable value: the next frame sees all of it or none

    def reset(self) -> None:
        """Forget the motion reference and the track: the next face becomes the new reference."""
        with self._lock:
            self._transfer = MotionTransfer(self.avatar.landmarks, self._transfer.mode, self.model.package.crop_config)
            self._tracker = None
            self._smoother = LandmarkSmoother() if self.smoothing else None
            self._last_landmarks = None
            self._last_time = None

    def warm_up(self, frames: bool = False) -> None:
        """Pay what a cold first frame would, now and uncounted: one render of the avatar's own
        landmarks (the generator session's first run) and its compose (paste-back's cached mask);
        with ``frames``, also the face tracker (the detector loads, ~1 s on first use). Nothing
        observable changes: the counters, the motion reference and the track stay as they were.
        Live sources call it before their first frame (``LiveStream`` does; a cold first frame took
        ~90 ms and dropped the next one)."""
        with self._lock:
            if frames and self._tracker is None:
                self._tracker = self._new_tracker()
        if self._warm:
            return
        driven = Driven(self.avatar.landmarks, None, None)
        crop_image = self._render_crop(driven)
        if self.output != "driver":  # the driver's frame (and so its paste geometry) comes per input
            self._compose(driven, crop_image)
        self._warm = True

    # -- one frame --------------------------------------------------------------------------------

    def push(self, item: np.ndarray, timestamp: float | None = None,
             coords: Literal["pixels", "normalised"] = "pixels") -> np.ndarray:
        """Render one input: an RGB frame ``uint8 [H, W, 3]`` (tracked here) or driver landmarks
        ``[68, 2]`` from your own tracker, in pixels of the driving frame or already crop-normalised
        (``coords``). ``timestamp`` in seconds, increasing; by default the count of pushes over
        ``fps``. Returns the rendered RGB frame (see ``output``)."""
        t0 = time.perf_counter()
        self.count(pushed=1)
        return self._finish_counted(self._drive_counted(item, timestamp, coords), t0)[0]

    def count(self, **increments: int) -> None:
        """Add to the counters (``pushed``, ``dropped``, ...) under their own lock (any thread)."""
        with self._count_lock:
            for name, n in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _drive_counted(self, item: np.ndarray, timestamp: float | None, coords: str) -> "Driven":
        """The first stage (tracking, transfer, controls) under the stream's lock; a failure is counted
        and re-raised."""
        with self._lock:
            try:
                return self._drive(item, timestamp, coords)
            except Exception:
                self.count(failed=1)
                raise

    def _finish_counted(self, driven: "Driven", t_in: float,
                        crop_image: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """The last stage (render unless ``crop_image`` is given, then paste-back) and its count:
        rendered with its latency since ``t_in`` in ms, or failed and re-raised. Reads no state the
        first stage writes."""
        try:
            if crop_image is None:
                crop_image = self._render_crop(driven)
            frame = self._compose(driven, crop_image)
        except Exception:
            self.count(failed=1)
            raise
        latency = (time.perf_counter() - t_in) * 1000.0
        with self._count_lock:
            self.stats.rendered += 1
            lat = self.stats.latencies_ms
            lat.append(latency)
            if len(lat) > LATENCY_WINDOW:
                del lat[: len(lat) - LATENCY_WINDOW]
        return frame, latency

    def _render_counted(self, driven: "Driven") -> np.ndarray:
        """The generator alone (the live pipeline's middle stage); a failure is counted and re-raised."""
        try:
            return self._render_crop(driven)
        except Exception:
            self.count(failed=1)
            raise

    def _time(self, timestamp: float | None) -> float:
        if timestamp is None:
            t = (self._last_time + 1.0 / self.fps) if self._last_time is not None else 0.0
        else:
            if not np.isfinite(timestamp):
                raise InputError(f"timestamp must be finite, got {timestamp}")
            t = float(timestamp)
            if self._last_time is not None and t <= self._last_time:
                raise InputError(f"timestamps must increase: {t} after {self._last_time}")
        return t

    def _drive(self, item: np.ndarray, timestamp: float | None, coords: str = "pixels") -> "Driven":
        """Stage 1, stateful (the track, the motion reference, the smoother): the input -> the
        landmarks to render, crop-normalised, with the controls applied."""
        if coords not in ("pixels", "normalised"):
            raise InputError(f"coords must be 'pixels' or 'normalised', got {coords!r}")
        arr = np.asarray(item)
        t = self._time(timestamp)
        frame = None
        if arr.shape == (68, 2):
            driver_px = check_landmarks(arr, "driver landmarks", batched=False)
            if self.output == "driver":
                raise InputError("output='driver' pastes into the driving frame: push frames, not landmarks")
            if self._smoother is not None:
                driver_px = self._smoother(driver_px, t)
            if self._transfer.reference is None and coords == "normalised":
                self._transfer.set_reference(driver_px, NORMALISED)
        else:
            if coords != "pixels":
                raise InputError("a frame's landmarks are found in its pixels: coords must be 'pixels'")
            frame = self._check_frame(arr)
            driver_px = self._track(frame, t)
        self._last_time = t
        norm = self._controls.apply(self._transfer(driver_px), self.avatar.landmarks)
        return Driven(norm, frame, driver_px)

    def _render_crop(self, driven: "Driven") -> np.ndarray:
        """Stage 2, stateless: the generator's crop for the driven landmarks."""
        return self.model._render_crops(self.avatar, driven.landmarks[None])[0]

    def _compose(self, driven: "Driven", crop_image: np.ndarray) -> np.ndarray:
        """Stage 3, stateless: the crop as ``output`` says (pasted back where asked), marked."""
        if self.output == "crop":
            return self.model._mark(crop_image)
        if self.output == "paste":
            return self.model._mark(paste_back(self.avatar.image, crop_image, self.avatar.crop))
        from .crop import crop_from_landmarks

        return self.model._mark(paste_back(driven.frame, crop_image,
                                           crop_from_landmarks(driven.driver_px, self.model.package.crop_config)))

    @staticmethod
    def _check_frame(arr: np.ndarray) -> np.ndarray:
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(f"a frame must be RGB uint8 [H, W, 3] (or push landmarks [68, 2]), "
                             f"got {arr.dtype} {list(arr.shape)}")
        if arr.shape[0] < 16 or arr.shape[1] < 16 or arr.shape[0] * arr.shape[1] > 8192 * 8192:
            raise InputError(f"a frame must be 16x16 to 8192x8192 pixels, got {arr.shape[1]}x{arr.shape[0]}")
        return arr

    def _new_tracker(self):
        from .landmarks.tracker import FaceTracker, TrackerConfig

        return FaceTracker(config=TrackerConfig(smoothing=self.smoothing), fps=self.fps)

    def _track(self, frame: np.ndarray, t: float) -> np.ndarray:
        if self._tracker is None:
            self._tracker = self._new_tracker()
        result = self._tracker.update(frame, timestamp=t)
        if result.ok:
            self._last_landmarks = result.smoothed
            return result.smoothed
        if self._last_landmarks is None:
            raise NoFaceError("no face in the driving frame yet")
        self.count(lost=1)
        return self._last_landmarks

    def live(self, on_frame=None, pipelined: bool = True) -> "LiveStream":
        """A bounded-latency wrapper of this stream with its own workers (see the module doc);
        ``pipelined=False``: one worker tracks, renders and composes each input in turn."""
        return LiveStream(self, on_frame, pipelined)


class LiveStream:
    """A three-stage pipeline with bounded latency: the caller's thread captures and submits, and
    three workers follow one another: *track* (tracking, motion transfer, controls: the stream's
    state), *render* (the generator) and *compose* (paste-back, the mark, then ``on_frame``), so
    while the generator renders frame n the other core tracks frame n + 1 and pastes and delivers
    frame n - 1. The generator's thread does nothing else: a slow sink (an encoder, a window)
    delays only the compose stage.

    Each hand-off holds one item, the newest: an item the next stage has not taken when a newer one
    arrives is dropped (the tracker still sees every input it can keep up with, which keeps the
    track continuous). Everything is counted: ``pushed == rendered + dropped + failed`` once idle.

    ``submit(item, timestamp)`` returns at once (it keeps a reference: do not modify a submitted
    array afterwards); ``latest()`` gives the newest rendered frame with its input timestamp;
    ``on_frame(frame, timestamp, latency_ms)``, if given, is called on the compose thread for each
    rendered frame (an exception it raises is kept in ``error``; the stream goes on). ``close()`` (or
    leaving a ``with`` block) stops the workers after the items in progress; what is still waiting
    then is counted as dropped. ``pipelined=False``: one worker runs the three stages of each input.
    """

    STAGES = ("track", "render", "compose")

    def __init__(self, stream: Stream, on_frame=None, pipelined: bool = True) -> None:
        self.stream = stream
        self.on_frame = on_frame
        self.pipelined = pipelined
        self._cond = threading.Condition()
        # _inbox[i]: the item waiting for stage i (input -> track -> render -> compose), the newest only;
        # _working[i]: whether stage i holds an item.
        self._inbox: list[tuple | None] = [None] * len(self.STAGES)
        self._working = [False] * len(self.STAGES)
        self._latest: tuple[np.ndarray, float | None] | None = None
        self._closed = False
        self.error: Exception | None = None  # the last failed input's error (the stream goes on)
        stream.warm_up()  # the generator's first run and the paste mask, before the first input
        stages = range(len(self.STAGES)) if pipelined else (0,)
        self._workers = [threading.Thread(target=self._loop, args=(i,), name=f"talkinghead-{self.STAGES[i]}",
                                          daemon=True) for i in stages]
        for w in self._workers:
            w.start()

    @property
    def stats(self) -> StreamStats:
        return self.stream.stats

    def submit(self, item: np.ndarray, timestamp: float | None = None, coords: str = "pixels") -> None:
        """Hand one input to the tracker without waiting; replaces (drops) an input not yet taken."""
        with self._cond:
            if self._closed:
                raise InputError("this live stream is closed")
            self._count_drop(self._inbox[0])
            self.stream.count(pushed=1)
            self._inbox[0] = (item, timestamp, coords, time.perf_counter())
            self._cond.notify_all()

    def latest(self) -> tuple[np.ndarray, float | None] | None:
        """The newest rendered frame and its input's timestamp, or None before the first."""
        with self._cond:
            return self._latest

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is waiting or in progress (tests, the end of a file source)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(x is not None for x in self._inbox) or any(self._working):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _count_drop(self, item) -> None:
        if item is not None:
            self.stream.count(dropped=1)

    def _take(self, stage: int):
        """Wait until stage ``stage``'s inbox holds an item and take it; None once closed."""
        with self._cond:
            while self._inbox[stage] is None and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            item, self._inbox[stage] = self._inbox[stage], None
            self._working[stage] = True
            return item

    def _loop(self, stage: int) -> None:
        """One worker: take stage ``stage``'s items and run it (not pipelined: it and every stage after
        it), then hand the result to the next worker's inbox."""
        end = stage + 1 if self.pipelined else len(self.STAGES)  # the stage whose inbox gets the result
        while (item := self._take(stage)) is not None:
            try:
                for s in range(stage, end):
                    item = self._run(s, item)
            except Exception as exc:  # noqa: BLE001 - a failed input must not stop the worker; kept for the caller
                self.error = exc
                item = None
            with self._cond:
                self._working[stage] = False
                if item is not None:  # only stages before the last return an item
                    self._count_drop(item if self._closed else self._inbox[end])
                    if not self._closed:
                        self._inbox[end] = item
                self._cond.notify_all()

    def _run(self, stage: int, item: tuple):
        """Stage ``stage`` of one item: what the next stage takes (None after the last)."""
        if stage == 0:
            raw, timestamp, coords, t_in = item
            return self.stream._drive_counted(raw, timestamp, coords), timestamp, t_in
        if stage == 1:
            driven, timestamp, t_in = item
            return driven, self.stream._render_counted(driven), timestamp, t_in
        driven, crop_image, timestamp, t_in = item
        frame, latency = self.stream._finish_counted(driven, t_in, crop_image)
        with self._cond:
            self._latest = (frame, timestamp)
        if self.on_frame is not None:
            try:
                self.on_frame(frame, timestamp, latency)
            except Exception as exc:  # noqa: BLE001 - a failing sink must not stop the stream; kept for the caller
                self.error = exc
        return None

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            for waiting in self._inbox:
                self._count_drop(waiting)
            self._inbox = [None] * len(self.STAGES)
            self._cond.notify_all()
        for w in self._workers:
            if w is not threading.current_thread():  # close() from on_frame: the worker ends after it
                w.join(timeout=30)

    def __enter__(self) -> "LiveStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
