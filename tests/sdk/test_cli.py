"""The `talkinghead` command end to end on real media, and its answers to bad input."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from talkinghead.cli import EXIT_USER, main
from talkinghead.video import iter_frames, probe


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_animate_real_portrait_with_real_clip(tiny_package: Path, shared_data: Path, short_clip: Path,
                                              tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.mp4"
    portrait = shared_data / "source" / "photo_lia_macron.png"
    code, text = _run(capsys, "animate", "--source", str(portrait), "--driving", str(short_clip),
                      "-o", str(out), "--model", str(tiny_package), "--provider", "cpu", "--quiet")
    assert code == 0, text
    got, want = probe(out), probe(short_clip)
    assert got.frame_count == sum(1 for _ in iter_frames(short_clip))  # every driving frame, no more
    assert abs(got.fps - want.fps) < 1e-3
    assert got.has_audio == want.has_audio
    assert (got.width, got.height) == (256, 256)  # pasted into the 256x256 portrait


def test_demo_writes_a_video_with_the_bundled_model(tmp_path: Path) -> None:
    out = tmp_path / "demo.mp4"
    proc = subprocess.run(["talkinghead", "demo", "-o", str(out), "--seconds", "1", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = probe(out)
    assert info.frame_count == 25 and info.width > 0


def test_info_and_help(tiny_package: Path, capsys) -> None:
    code, text = _run(capsys, "info", "--model", str(tiny_package))
    assert code == 0 and "CPUExecutionProvider" in text and "tiny" in text
    for cmd in ("animate", "demo", "embed", "info"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0


def test_embed_then_animate_from_avatar_file(tiny_package: Path, face_photo: Path, short_clip: Path,
                                             tmp_path: Path, capsys) -> None:
    avatar = tmp_path / "me.npz"
    code, text = _run(capsys, "embed", "--source", str(face_photo), "-o", str(avatar), "--model", str(tiny_package))
    assert code == 0 and avatar.is_file(), text
    out = tmp_path / "crop.mp4"
    code, text = _run(capsys, "animate", "--avatar", str(avatar), "--driving", str(short_clip), "-o", str(out),
                      "--model", str(tiny_package), "--crop-only", "--fps", "10", "--quiet")
    assert code == 0, text
    info = probe(out)
    assert (info.width, info.height) == (64, 64) and abs(info.fps - 10) < 1e-3


@pytest.mark.parametrize("case", ["missing_source", "no_face", "corrupt_video", "bad_provider", "too_many_shots",
                                  "corrupt_package", "unwritable"])
def test_bad_input_gets_one_line_error_and_no_output(case: str, tiny_package: Path, face_photo: Path,
                                                     short_clip: Path, shared_data: Path, tmp_path: Path,
                                                     capsys) -> None:
    out = tmp_path / "out.mp4"
    source, driving, model, provider = [str(face_photo)], str(short_clip), str(tiny_package), "cpu"
    expect = ""
    if case == "missing_source":
        source, expect = [str(tmp_path / "nope.jpg")], "nope.jpg"
    elif case == "no_face":
        blank = tmp_path / "blank.png"
        import numpy as np
        from PIL import Image

        Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(blank)
        source, expect = [str(blank)], "no face"
    elif case == "corrupt_video":
        bad = tmp_path / "bad.mp4"
        bad.write_bytes(short_clip.read_bytes()[:3000])
        driving, expect = str(bad), "bad.mp4"
    elif case == "bad_provider":
        provider, expect = "tensorrt", "not available"
    elif case == "too_many_shots":
        source, expect = [str(face_photo)] * 33, "at most 32"
    elif case == "corrupt_package":
        model, expect = str(tmp_path), "manifest"
    elif case == "unwritable":
        out, expect = tmp_path / "no" / "such" / "out.mp4", "does not exist"
    code, text = _run(capsys, "animate", "--source", *source, "--driving", driving, "-o", str(out),
                      "--model", model, "--provider", provider, "--quiet")
    assert code == EXIT_USER, text
    lines = [ln for ln in text.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and expect.lower() in lines[0].lower(), text
    assert "Traceback" not in text
    assert not out.exists()
    assert not [p for p in out.parent.glob("*.part*")] if out.parent.is_dir() else True


def test_existing_output_is_not_overwritten(tiny_package: Path, face_photo: Path, short_clip: Path,
                                            tmp_path: Path, capsys) -> None:
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"precious")
    code, text = _run(capsys, "animate", "--source", str(face_photo), "--driving", str(short_clip),
                      "-o", str(out), "--model", str(tiny_package))
    assert code == EXIT_USER and "--overwrite" in text
    assert out.read_bytes() == b"precious"


def test_entry_point_is_installed() -> None:
    proc = subprocess.run([sys.executable, "-m", "talkinghead.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "talkinghead" in proc.stdout
