"""Face tracking over video: detect once, then fit each frame from the previous frame's points.

Per frame (:meth:`FaceTracker.update`):

1. With a track, fit the landmarks in ``detector.box_from_points(previous points)``.
2. Judge the fit. It has *degraded* when either
   - ``iou(input box, box_from_points(new points)) < min_iou`` (the shape slid off or shrank), or
   - the shape change, RMS distance between the new points and the previous ones after
     similarity (Procrustes) alignment, divided by the previous inter-ocular distance (outer eye
     corners 36, 45), exceeds ``max_shape_change`` (an implausible jump: a cut, a lost face).
   On the project's clips a good track stays above IoU 0.86 and below a shape change of 0.06
   per frame; shot cuts score 0.56 and 0.34-0.41.
3. Every ``verify_every`` frames a good fit is *verified*: the detector looks for a face in a
   window around the track (scaled so the face is ~120 px: a few ms), then in the whole frame.
   A face there that overlaps the track (IoU >= ``match_iou``) confirms it and the fit is kept.
4. A degraded fit, a failed verification, or no track yet: the frame is detected, first on a
   copy scaled so its longer side is ``coarse_side`` (about 30 against 70 ms at 1280x720, with
   the fit), then, when that finds too few faces (a face under ~80 px there), at full size. The
   face overlapping the track is kept; otherwise (start, a cut) the ``face_index``-th largest face,
   and the smoother restarts.
5. No face: the frame is *lost*; the last good landmarks are reported and counted, and the next
   frame detects again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..crop import resize_image
from ..errors import InputError, NoFaceError
from .base import Face, LandmarkDetector, box_iou
from .one_euro import OneEuroConfig, OneEuroFilter

__all__ = ["TrackerConfig", "TrackedFrame", "FaceTracker", "shape_change"]

Status = Literal["detected", "tracked", "lost"]

#: Face size (pixels) the local re-detection window is scaled to (dlib's HOG finds >= ~80 px).
LOCAL_FACE_PX = 120


@dataclass(frozen=True)
class TrackerConfig:
    """How :class:`FaceTracker` follows a face.

    Attributes:
        face_index: which face to follow when (re)starting: 0 = the largest, 1 = the second
            largest, ...
        smoothing: run the One Euro filter over the landmarks (``TrackedFrame.smoothed``).
        one_euro: filter parameters; speeds are in face sizes per second (points are divided by
            the face's box side before filtering), so they hold at any resolution.
        min_iou: a fit whose box overlaps the box it started from less than this has degraded.
        max_shape_change: a fit whose aligned shape moved more than this many inter-ocular
            distances (RMS over points) since the previous frame has degraded.
        verify_every: verify a good track every N frames by detecting near it (1: every frame,
            the most robust; 0: never, only degraded fits trigger detection). A verification
            that finds no face marks the frame lost.
        match_iou: on detection, a face overlapping the track by at least this is the same face.
        coarse_side: a whole-frame detection first looks at the frame scaled so its longer side
            is at most this many pixels (landmarks are still fitted at full size), and at full
            size only when that finds fewer than ``face_index + 1`` faces (None: full size only).
    """

    face_index: int = 0
    smoothing: bool = True
    one_euro: OneEuroConfig = field(default_factory=OneEuroConfig)
    min_iou: float = 0.6
    max_shape_change: float = 0.15
    verify_every: int = 10
    match_iou: float = 0.3
    coarse_side: int | None = 640

    def validate(self) -> "TrackerConfig":
        """Raise :class:`InputError` on out-of-range values; return self."""
        if self.face_index < 0:
            raise InputError(f"face_index must be >= 0, got {self.face_index}")
        for name in ("min_iou", "match_iou"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise InputError(f"TrackerConfig.{name} must be in [0, 1], got {v}")
        if not self.max_shape_change > 0:
            raise InputError(f"max_shape_change must be > 0, got {self.max_shape_change}")
        if self.verify_every < 0:
            raise InputError(f"verify_every must be >= 0, got {self.verify_every}")
        if self.coarse_side is not None and self.coarse_side < 80:
            raise InputError(f"coarse_side must be >= 80 (the detector's smallest face) or None, "
                             f"got {self.coarse_side}")
        self.one_euro.validate()
        return self


@dataclass
class TrackedFrame:
    """The tracker's result for one frame.

    Attributes:
        index: frame index (0-based, in the order frames were given).
        status: "detected" (a detection started or restarted the track), "tracked" (fitted from
            the previous frame), or "lost" (no face: ``face``/``points`` repeat the last good
            ones, or are None when there has been none).
        face: the face record of this frame (or the last good one when lost).
        points: raw landmarks ``float32 [68, 2]`` in pixels (None: never found a face).
        smoothed: smoothed landmarks (equal to ``points`` when smoothing is off or lost).
        lost_count: frames lost so far in this tracker's life, this one included.
        iou, shape_change: the fit-quality measures of this frame's tracking fit (None when no
            fit was tried).
    """

    index: int
    status: Status
    face: Face | None
    points: np.ndarray | None
    smoothed: np.ndarray | None
    lost_count: int = 0
    iou: float | None = None
    shape_change: float | None = None

    @property
    def ok(self) -> bool:
        """True when this frame has its own landmarks (detected or tracked)."""
        return self.status != "lost"

    def require(self, source: str | None = None) -> np.ndarray:
        """Smoothed landmarks of this frame, or :class:`NoFaceError` naming the frame."""
        if self.status == "lost" or self.smoothed is None:
            where = f" of {source}" if source else ""
            raise NoFaceError(f"no face found in frame {self.index}{where}")
        return self.smoothed


def _interocular(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[45] - points[36]))


def shape_change(prev: np.ndarray, new: np.ndarray) -> float:
    """RMS distance between ``new`` and ``prev`` landmarks after aligning ``new`` to ``prev`` by
    a similarity transform, in units of ``prev``'s inter-ocular distance."""
    a = np.asarray(prev, np.float64)
    b = np.asarray(new, np.float64)
    a0, b0 = a - a.mean(0), b - b.mean(0)
    # Orthogonal Procrustes with scale (Umeyama without reflection).
    u, s, vt = np.linalg.svd(b0.T @ a0)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    s[-1] *= d
    u[:, -1] *= d
    rot = u @ vt
    denom = float((b0 ** 2).sum())
    scale = float(s.sum()) / denom if denom > 0 else 1.0
    resid = b0 @ rot * scale - a0
    iod = _interocular(a)
    if iod <= 0:
        return float("inf")
    return float(np.sqrt((resid ** 2).sum(1).mean())) / iod


class FaceTracker:
    """Follow one face through a sequence of frames.

    Args:
        detector: a :class:`LandmarkDetector` (default: the shared dlib detector).
        config: tracking settings.
        fps: frame rate, for the smoother's time steps.

    Example::

        tracker = FaceTracker(fps=info.fps)      # the default dlib detector
        for i, frame in enumerate(iter_frames(path)):
            r = tracker.update(frame)
            pts = r.require(path)   # NoFaceError naming the frame if there is no face yet
    """

    def __init__(self, detector: LandmarkDetector | None = None,
                 config: TrackerConfig | None = None, fps: float = 25.0) -> None:
        if not fps > 0:
            raise InputError(f"fps must be > 0, got {fps}")
        self.config = (config or TrackerConfig()).validate()
        if detector is None:
            from . import default_detector

            detector = default_detector()
        self.detector = detector
        self.fps = float(fps)
        self._filter = OneEuroFilter(self.config.one_euro)
        self.reset()

    def reset(self) -> None:
        """Drop the track, the smoother state and the counters."""
        self._index = 0
        self._track: Face | None = None          # face of the previous frame, if tracking
        self._last_good: Face | None = None
        self._last_smoothed: np.ndarray | None = None
        self._since_check = 0
        self._ref = 1.0
        self._timestamp: float | None = None
        self._filter.reset()
        self.counts = {"detected": 0, "tracked": 0, "lost": 0}

    # -- helpers ------------------------------------------------------------------------------

    def _pick(self, faces: list[Face], ref_points: np.ndarray | None = None
              ) -> tuple[Face | None, bool]:
        """The face to follow among detections, and whether it continues the current track
        (overlaps ``ref_points``, by default the track's or last good landmarks)."""
        if ref_points is None:
            ref = self._track or self._last_good
            ref_points = None if ref is None else ref.points
        if ref_points is not None and faces:
            ref_box = self.detector.box_from_points(ref_points)
            ious = [box_iou(ref_box, self.detector.box_from_points(f.points)) for f in faces]
            best = int(np.argmax(ious))
            if ious[best] >= self.config.match_iou:
                return faces[best], True
        i = self.config.face_index
        return (faces[i] if i < len(faces) else None), False

    def _smooth(self, points: np.ndarray, restart: bool) -> np.ndarray:
        if not self.config.smoothing:
            return points
        if restart:
            self._filter.reset()
            side = self.detector.box_from_points(points)
            self._ref = max(float(side[2] - side[0]), 1.0)
        t = self._timestamp if self._timestamp is not None else self._index / self.fps
        out = self._filter(points / self._ref, t=t) * self._ref
        return out.astype(np.float32)

    def _result(self, status: Status, face: Face | None, smoothed: np.ndarray | None,
                iou: float | None, change: float | None) -> TrackedFrame:
        self.counts[status] += 1
        r = TrackedFrame(index=self._index, status=status, face=face,
                         points=None if face is None else face.points, smoothed=smoothed,
                         lost_count=self.counts["lost"], iou=iou, shape_change=change)
        self._index += 1
        return r

    # -- the step -----------------------------------------------------------------------------

    def update(self, frame: np.ndarray, timestamp: float | None = None) -> TrackedFrame:
        """Process the next frame (RGB ``uint8 [H, W, 3]``) and return its result.

        ``timestamp``: the frame's time in seconds (live sources, whose frames are not evenly
        spaced); by default the frame index over ``fps``.
        """
        if timestamp is not None and not np.isfinite(timestamp):
            raise InputError(f"timestamp must be finite, got {timestamp}")
        self._timestamp = None if timestamp is None else float(timestamp)
        cfg = self.config
        iou = change = None
        faces: list[Face] | None = None
        if self._track is not None:
            box = self.detector.box_from_points(self._track.points)
            fitted = self.detector.fit(frame, box)
            iou = box_iou(box, self.detector.box_from_points(fitted.points))
            change = shape_change(self._track.points, fitted.points)
            fitted.confidence = self._track.confidence
            degraded = iou < cfg.min_iou or change > cfg.max_shape_change
            self._since_check += 1
            due = cfg.verify_every > 0 and self._since_check >= cfg.verify_every
            if not degraded and not due:
                return self._accept(fitted, "tracked", False, iou, change)
            faces = self._detect_near(frame, box)
            if not degraded and faces:
                chosen, same = self._pick(faces, fitted.points)
                if same:  # verified: keep the tracked fit
                    self._since_check = 0
                    return self._accept(fitted, "tracked", False, iou, change)
        if not faces:
            faces = self._detect_whole(frame)
        chosen, same = self._pick(faces)
        if chosen is not None:
            return self._accept(chosen, "detected", not same, iou, change)
        self._track = None
        return self._result("lost", self._last_good, self._last_smoothed, iou, change)

    def _detect_whole(self, frame: np.ndarray) -> list[Face]:
        """Detect in the whole frame: scaled to ``coarse_side`` first, at full size when that
        finds fewer faces than ``face_index + 1``."""
        h, w = frame.shape[:2]
        side = self.config.coarse_side
        if side is not None and max(h, w) > side:
            faces = self._detect_in(frame, (0, 0, w, h), max(h, w) / side)
            if len(faces) > self.config.face_index:
                return faces
        return self.detector.detect(frame)

    def _detect_near(self, frame: np.ndarray, box: np.ndarray) -> list[Face]:
        """Detect in a window twice the track's box, scaled so the face is about
        ``LOCAL_FACE_PX`` pixels; landmarks are then fitted at full resolution."""
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in box)
        side = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        window = (max(int(cx - side), 0), max(int(cy - side), 0),
                  min(int(cx + side) + 1, w), min(int(cy + side) + 1, h))
        if window[2] - window[0] < 16 or window[3] - window[1] < 16:
            return []
        return self._detect_in(frame, window, side / LOCAL_FACE_PX)

    def _detect_in(self, frame: np.ndarray, window: tuple[int, int, int, int], shrink: float) -> list[Face]:
        """Faces whose boxes the detector finds in ``frame[y0:y1, x0:x1]`` scaled down by
        ``shrink`` (not up), each fitted at full resolution; largest first."""
        rx0, ry0, rx1, ry1 = window
        region = frame[ry0:ry1, rx0:rx1]
        f = max(shrink, 1.0)
        if f > 1.0:
            region = resize_image(region, max(int(round(region.shape[0] / f)), 1),
                                  max(int(round(region.shape[1] / f)), 1))
        fy = (ry1 - ry0) / region.shape[0]
        fx = (rx1 - rx0) / region.shape[1]
        boxes, scores = self.detector.detect_boxes(np.ascontiguousarray(region))
        faces = []
        for b, score in zip(boxes.astype(np.float64), scores):
            full = np.array([(b[0] + 0.5) * fx - 0.5 + rx0, (b[1] + 0.5) * fy - 0.5 + ry0,
                             (b[2] + 0.5) * fx - 0.5 + rx0, (b[3] + 0.5) * fy - 0.5 + ry0])
            face = self.detector.fit(frame, full)
            face.confidence = float(score)
            faces.append(face)
        faces.sort(key=lambda fc: fc.area, reverse=True)
        return faces

    def _accept(self, face: Face, status: Status, restart: bool, iou: float | None,
                change: float | None) -> TrackedFrame:
        if status == "detected":
            self._since_check = 0
        restart = restart or self._last_smoothed is None
        smoothed = self._smooth(face.points, restart)
        self._track = self._last_good = face
        self._last_smoothed = smoothed
        return self._result(status, face, smoothed, iou, change)
