"""bench/tracker_detection.py on a real clip: both ways track every frame, the coarse way near the
full-size way's landmarks."""
from __future__ import annotations

from pathlib import Path

from bench.tracker_detection import measure, table


def test_coarse_and_full_detection_track_the_clip_alike(short_clip: Path, dlib_detector) -> None:
    r = measure(short_clip, frames=8, coarse_side=200)   # the clip's 360 px frames look at 200 px first
    assert r.frames == 8 and r.detections_full >= 1 and r.detections_coarse >= 1
    assert r.first_full_ms > 0 and r.first_coarse_ms > 0
    assert r.nme_mean < 0.05 and r.nme_max < 0.1
    assert short_clip.name in table([r], "CPU: test", 200)
