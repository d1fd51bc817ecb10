"""`talkinghead live` (issue 20): a clip paced in real time stands in for the camera."""
from __future__ import annotations

import importlib.util
import platform
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


@pytest.mark.skipif(platform.system() != "Linux", reason="the v4l2 input")
def test_a_device_that_is_not_a_camera_is_named(face_photo: Path, capsys) -> None:
    """A real v4l2 open of a device that is no camera (/dev/null): FFmpeg's own error, named."""
    rc = main(["live", "--source", str(face_photo), "--camera", "/dev/null"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cannot open camera /dev/null" in err and "Inappropriate ioctl" in err


@pytest.mark.skipif(platform.system() != "Linux", reason="the v4l2 input")
def test_a_busy_camera_says_so(face_photo: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """No camera is attached on these machines, so the busy device is PyAV's own error for it
    (av.error.OSError with errno EBUSY, what FFmpeg's v4l2 input raises when another program holds
    the camera), raised by av.open."""
    import errno

    import av

    device = tmp_path / "video9"
    device.touch()

    def busy(url, *args, **kwargs):
        raise av.error.OSError(errno.EBUSY, "Device or resource busy", url)

    monkeypatch.setattr(av, "open", busy)
    rc = main(["live", "--source", str(face_photo), "--camera", str(device)])
    assert rc == 2
    assert f"cannot open camera {device}: busy (another program is using it)" in capsys.readouterr().err
