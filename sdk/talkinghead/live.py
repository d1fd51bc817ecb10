"""`talkinghead live`: a webcam or a clip paced in real time drives an avatar, frame by frame.

Data flow: a *source* yields ``(frame, timestamp)`` on the caller's thread (the camera through
PyAV's platform input: v4l2 on Linux, avfoundation on macOS, dshow on Windows; or a clip, slept to
its own frame times with ``realtime``); each frame is submitted to a :class:`~talkinghead.stream.
LiveStream`, whose three workers track, render and compose the newest one as a pipeline (older
ones are dropped and counted); rendered frames go to the *sinks* (a recording, a virtual camera, a
preview window) from the compose thread, so a slow sink never holds the generator; a status line
(FPS, latency, dropped frames) is printed once a second.

Optional parts, each with a clear error when missing: ``pyvirtualcam`` for ``--virtual-camera``
(Windows: OBS's virtual camera; macOS: OBS 30+; Linux: the v4l2loopback kernel module), ``pygame``
and a display for ``--window`` (``pip install talkinghead[live]``).
"""
from __future__ import annotations

import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import InputError, MissingDependencyError, VideoError

Frame = tuple[np.ndarray, float]  # RGB uint8 [H, W, 3], seconds since the source started


def camera_frames(device: str, fps: float = 30.0) -> Iterator[Frame]:
    """Open a webcam through PyAV (errors now, not at the first frame) and return its frames.
    ``device``: an index ("0": /dev/video0 on Linux, the first AVFoundation device on macOS) or a
    platform device name (Windows: the dshow name, e.g. "Integrated Camera")."""
    import av

    system = platform.system()
    if system == "Linux":
        url, fmt = (f"/dev/video{device}" if device.isdigit() else device), "v4l2"
        if not Path(url).exists():
            raise InputError(f"no camera {url} (is a webcam connected? `ls /dev/video*` lists them)")
    elif system == "Darwin":
        url, fmt = f"{device}:none", "avfoundation"
    elif system == "Windows":
        url, fmt = f"video={device}", "dshow"
    else:
        raise InputError(f"no camera input for {system}: drive with --driving CLIP --realtime")
    try:
        container = av.open(url, format=fmt, options={"framerate": f"{fps:g}"})
    except av.error.OSError as exc:  # busy, permission, unknown device
        reason = "busy (another program is using it)" if getattr(exc, "errno", None) == 16 else str(exc)
        raise InputError(f"cannot open camera {url}: {reason}") from None
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot open camera {url}: {exc}") from None

    def frames() -> Iterator[Frame]:
        start = time.monotonic()
        try:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24"), time.monotonic() - start
        finally:
            container.close()

    return frames()


def clip_frames(path: str | os.PathLike, realtime: bool) -> Iterator[Frame]:
    """A clip's frames with their times; ``realtime`` sleeps until each frame's time comes. The
    clock starts at the first decoded frame, as a camera's does: opening the file and starting the
    decoder (tens of ms for HD) would otherwise send the first frames in a burst."""
    from .video import iter_frames, probe

    fps = probe(path).fps or 25.0
    start: float | None = None
    for i, frame in enumerate(iter_frames(path)):
        t = i / fps
        if realtime:
            if start is None:
                start = time.monotonic() - t
            wait = start + t - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        yield frame, t


class Recording:
    """An mp4 of the rendered frames in source time: a frame dropped by the live stream repeats the
    previous one, so the recording keeps the source's timing (at ``fps``)."""

    def __init__(self, path: Path, fps: float, overwrite: bool, metadata: dict[str, str] | None = None,
                 c2pa=None) -> None:
        from .video import VideoWriter

        self.fps = fps
        self.writer = VideoWriter(path, fps=fps, overwrite=overwrite, metadata=metadata, c2pa=c2pa)
        self.slots = 0
        self.last: np.ndarray | None = None

    def add(self, frame: np.ndarray, t: float) -> None:
        slot = int(round(t * self.fps))  # the frame of the recording this input's time falls in
        if slot < self.slots:  # that frame is written already (the source is faster than ``fps``)
            return
        while self.last is not None and self.slots < slot:  # fill what was dropped
            self.writer.write(self.last)
            self.slots += 1
        self.writer.write(frame)
        self.slots = slot + 1
        self.last = frame

    def close(self, ok: bool) -> None:
        self.writer.close() if ok else self.writer.abort()


def require_pyvirtualcam():
    """The pyvirtualcam module, or MissingDependencyError saying how to get it."""
    try:
        import pyvirtualcam
    except ImportError:
        raise MissingDependencyError("--virtual-camera needs pyvirtualcam: pip install 'talkinghead[live]' "
                                     "(and a virtual camera driver: OBS on Windows/macOS, v4l2loopback on Linux)") from None
    return pyvirtualcam


def virtual_camera(width: int, height: int, fps: float):
    """A pyvirtualcam camera (optional extra) for meeting apps."""
    pyvirtualcam = require_pyvirtualcam()
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps)
    except RuntimeError as exc:
        raise InputError(f"no virtual camera device: {exc}") from None


class Window:
    """A preview window (pygame, optional extra) where a display exists."""

    def __init__(self, title: str = "talkinghead live") -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise InputError("--window needs a display, and this session has none (no DISPLAY or WAYLAND_DISPLAY)")
        try:
            import pygame
        except ImportError:
            raise MissingDependencyError("--window needs pygame: pip install 'talkinghead[live]'") from None
        self.pygame = pygame
        pygame.display.init()
        pygame.display.set_caption(title)
        self.surface = None
        self.closed = False

    def show(self, frame: np.ndarray) -> None:
        pg = self.pygame
        h, w = frame.shape[:2]
        if self.surface is None:
            self.surface = pg.display.set_mode((w, h))
        pg.surfarray.blit_array(self.surface, frame.swapaxes(0, 1))
        pg.display.flip()
        for event in pg.event.get():
            if event.type == pg.QUIT:
                self.closed = True

    def close(self) -> None:
        self.pygame.display.quit()


@dataclass
class LiveReport:
    """What a live run did (printed at the end, returned for tests)."""

    pushed: int
    rendered: int
    dropped: int
    failed: int
    seconds: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None

    @property
    def fps(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0


def run_live(stream, frames: Iterator[Frame], sinks: list[Callable[[np.ndarray, float], None]],
             status: Callable[[str], None] | None = None, max_seconds: float | None = None,
             stop: threading.Event | None = None, pipelined: bool = True) -> LiveReport:
    """Drive ``stream`` (a talkinghead Stream) with ``frames`` through a LiveStream (``pipelined``:
    see ``Stream.live``); each rendered frame goes to every sink (compose thread); ``status`` gets a
    line once a second."""
    lock = threading.Lock()

    def deliver(frame: np.ndarray, t: float, latency_ms: float) -> None:
        with lock:
            for sink in sinks:
                sink(frame, t)

    stream.warm_up(frames=True)  # the detector loads now, not while the first frames arrive
    start = time.monotonic()
    last_status = start
    with stream.live(on_frame=deliver, pipelined=pipelined) as live:
        for frame, t in frames:
            live.submit(frame, timestamp=t)
            now = time.monotonic()
            if status is not None and now - last_status >= 1.0:
                status(_status_line(live.stats, now - start))
                last_status = now
            if (max_seconds is not None and now - start >= max_seconds) or (stop is not None and stop.is_set()):
                break
        live.wait_idle(timeout=30)
    s = live.stats
    return LiveReport(s.pushed, s.rendered, s.dropped, s.failed, time.monotonic() - start,
                      s.latency_percentile(50), s.latency_percentile(95))


def _status_line(s, elapsed: float) -> str:
    p50, p95 = s.latency_percentile(50), s.latency_percentile(95)
    lat = f"latency p50 {p50:.0f} ms, p95 {p95:.0f} ms" if p50 is not None else "latency -"
    return (f"live: {s.rendered / max(elapsed, 1e-9):.1f} fps, {lat}, dropped {s.dropped} of {s.pushed}"
            + (f", failed {s.failed}" if s.failed else ""))


def check_source(camera: str | None, driving: str | None) -> None:
    if (camera is None) == (driving is None):
        raise InputError("give exactly one of --camera N and --driving CLIP")
    if driving is not None and not Path(driving).is_file():
        raise VideoError(f"{driving}: no such file")
