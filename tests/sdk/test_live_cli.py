"""`talkinghead live` (issue 20): a clip paced in real time stands in for the camera."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from talkinghead.cli import main
from talkinghead.video import probe


def test_live_from_a_clip_in_real_time_records_in_source_time(tiny_package: Path, face_photo: Path, shared_data: Path,
                                                              tmp_path: Path, capsys) -> None:
    clip = shared_data / "driving" / "lp_d18.mp4"
    out = tmp_path / "live.mp4"
    rc = main(["live", "--model", str(tiny_package), "--source", str(face_photo), "--driving", str(clip),
               "--realtime", "--seconds", "2", "--fps", "10", "-o", str(out), "--mouth-open", "0.1", "--threads", "1"])
    assert rc == 0
    err, summary = capsys.readouterr()
    assert "live:" in summary and "dropped" in summary and "latency p50" in summary
    info = probe(out)
    # rendered or repeated for dropped inputs: the recording spans the ~2 s the source ran
    assert 15 <= info.frame_count <= 25, info.frame_count


@pytest.mark.parametrize("argv,message", [
    (["--camera", "7"], "no camera /dev/video7"),
    (["--camera", "0", "--driving", "x.mp4"], "exactly one of --camera"),
    ([], "exactly one of --camera"),
    (["--driving", "missing.mp4"], "no such file"),
    (["--driving", "CLIP", "--yaw", "90"], "controls.yaw"),
    (["--driving", "CLIP", "--seconds", "0"], "--seconds"),
    (["--driving", "CLIP", "--window"], "needs a display"),
    (["--driving", "CLIP", "--virtual-camera"], "pyvirtualcam"),
])
def test_live_bad_inputs_get_clear_errors(argv, message: str, face_photo: Path, shared_data: Path, monkeypatch,
                                          capsys) -> None:
    if "--virtual-camera" in argv and importlib.util.find_spec("pyvirtualcam") is not None:
        pytest.skip("pyvirtualcam is installed here")  # the missing-extra message cannot be shown
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    argv = [str(shared_data / "driving" / "lp_d18.mp4") if a == "CLIP" else a for a in argv]
    rc = main(["live", "--source", str(face_photo), *argv])
    assert rc == 2
    assert message in capsys.readouterr().err
