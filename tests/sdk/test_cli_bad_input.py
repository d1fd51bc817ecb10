"""The command refuses, before any work, an output that is one of its inputs and numeric options out
of range (issue 18): exit code 2, one ``error:`` line naming the problem, nothing written, every
input byte-identical afterwards."""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from talkinghead.cli import EXIT_USER, check_numbers, main


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden temporary files too) -> the sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def inputs(tmp_path: Path, short_clip: Path, face_photo: Path) -> Path:
    """Copies of real inputs in a folder of their own: a clip, two photos, an avatar file."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copyfile(short_clip, work / "clip.mpg")
    shutil.copyfile(face_photo, work / "me.jpg")
    shutil.copyfile(face_photo, work / "me2.jpg")
    (work / "me.npz").write_bytes(b"an avatar file")
    (work / "sub").mkdir()
    return work


def _refused(capsys, argv: list[str], expect: str, *folders: Path) -> None:
    before = [_snapshot(f) for f in folders]
    code = main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == EXIT_USER, text
    errors = [ln for ln in captured.err.strip().splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and expect in errors[0], text
    assert "Traceback" not in text
    assert [_snapshot(f) for f in folders] == before  # no output, no temporary file, inputs untouched


# name: (command line with {w} for the inputs' folder and {pkg} for the model package, how -o is made)
SAME_FILE = {
    "animate onto its driving clip": ("animate --source {w}/me.jpg --driving {w}/clip.mpg -o {w}/clip.mpg", None),
    "... with --overwrite": ("animate --source {w}/me.jpg --driving {w}/clip.mpg -o {w}/clip.mpg --overwrite", None),
    "... by another path": ("animate --source {w}/me.jpg --driving {w}/clip.mpg -o {w}/sub/../clip.mpg "
                            "--overwrite", None),
    "... through a symlink": ("animate --source {w}/me.jpg --driving {w}/clip.mpg -o {w}/link.mpg --overwrite",
                              "symlink"),
    "... through a hard link": ("animate --source {w}/me.jpg --driving {w}/clip.mpg -o {w}/hard.mpg --overwrite",
                                "hardlink"),
    "animate onto its second source photo": (
        "animate --source {w}/me.jpg {w}/me2.jpg --driving {w}/clip.mpg -o {w}/me2.jpg --overwrite", None),
    "animate onto its avatar file": ("animate --avatar {w}/me.npz --driving {w}/clip.mpg -o {w}/me.npz --overwrite",
                                     None),
    "embed onto its source photo": ("embed --source {w}/me.jpg -o {w}/me.jpg --overwrite", None),
    "demo onto a file of the model package": ("demo -o {pkg}/manifest.json --overwrite", None),
}


@pytest.mark.parametrize("case", list(SAME_FILE))
def test_an_output_that_is_an_input_is_refused(case: str, inputs: Path, tiny_package: Path, capsys) -> None:
    line, link = SAME_FILE[case]
    if link == "symlink":
        os.symlink(inputs / "clip.mpg", inputs / "link.mpg")
    elif link == "hardlink":
        os.link(inputs / "clip.mpg", inputs / "hard.mpg")
    argv = line.format(w=inputs, pkg=tiny_package).split() + ["--model", str(tiny_package), "--provider", "cpu"]
    _refused(capsys, argv, "is the input", inputs, tiny_package)


# name: (command line after -o OUT, the error's text)
ANIMATE = "animate --source {w}/me.jpg --driving {w}/clip.mpg"
FPS = "--fps must be a finite number in (0, 240], got"
SECONDS = "--seconds must be a finite number in (0, 600], got"
BATCH = "--batch must be an integer in 1..64, got"
BAD_NUMBERS = {
    "animate --fps 0": (f"{ANIMATE} --fps 0", f"{FPS} 0"),
    "animate --fps -5": (f"{ANIMATE} --fps -5", f"{FPS} -5"),
    "animate --fps nan": (f"{ANIMATE} --fps nan", f"{FPS} nan"),
    "animate --fps inf": (f"{ANIMATE} --fps inf", f"{FPS} inf"),
    "animate --fps 240.5": (f"{ANIMATE} --fps 240.5", f"{FPS} 240.5"),
    "animate --batch 0": (f"{ANIMATE} --batch 0", f"{BATCH} 0"),
    "animate --batch 65": (f"{ANIMATE} --batch 65", f"{BATCH} 65"),
    "animate --threads -1": (f"{ANIMATE} --threads -1", "--threads must be >= 0"),
    "demo --fps 1000": ("demo --fps 1000", f"{FPS} 1000"),
    "demo --fps=-inf": ("demo --fps=-inf", f"{FPS} -inf"),
    "demo --seconds 0": ("demo --seconds 0", f"{SECONDS} 0"),
    "demo --seconds -1": ("demo --seconds -1", f"{SECONDS} -1"),
    "demo --seconds nan": ("demo --seconds nan", f"{SECONDS} nan"),
    "demo --seconds inf": ("demo --seconds inf", f"{SECONDS} inf"),
    "demo --seconds 601": ("demo --seconds 601", f"{SECONDS} 601"),
    "demo --batch -3": ("demo --batch -3", f"{BATCH} -3"),
    "embed --batch 100": ("embed --source {w}/me.jpg --batch 100", f"{BATCH} 100"),
}


@pytest.mark.parametrize("case", list(BAD_NUMBERS))
def test_numeric_options_out_of_range_are_refused(case: str, inputs: Path, tiny_package: Path, capsys) -> None:
    line, expect = BAD_NUMBERS[case]
    out = inputs / ("out.npz" if line.startswith("embed") else "out.mp4")
    argv = line.format(w=inputs).split() + ["-o", str(out), "--model", str(tiny_package), "--provider", "cpu"]
    _refused(capsys, argv, expect, inputs, tiny_package)
    assert not out.exists()


@pytest.mark.parametrize("fps,seconds,batch", [(240, 600, 64), (0.5, 0.1, 1), (29.97, 8, 4)])
def test_the_edges_of_the_ranges_are_accepted(fps, seconds, batch) -> None:
    args = argparse.Namespace(fps=fps, seconds=seconds, batch=batch, threads=0)
    check_numbers(args)
    assert (args.fps, args.seconds, args.batch, args.threads) == (fps, seconds, batch, 0)


def test_threads_above_the_cpu_count_are_lowered_with_a_warning(capsys) -> None:
    cores = os.cpu_count()
    args = argparse.Namespace(fps=None, threads=cores + 7)
    check_numbers(args)
    assert args.threads == cores
    assert f"warning: --threads {cores + 7} is more than this machine's {cores} CPU core(s); using {cores}" \
        in capsys.readouterr().err
    args = argparse.Namespace(threads=cores)
    check_numbers(args)
    assert args.threads == cores and capsys.readouterr().err == ""


def test_a_clamped_thread_count_still_runs_the_command(inputs: Path, tiny_package: Path, capsys) -> None:
    """``embed`` with far too many threads: a warning, then the avatar as usual (needs dlib)."""
    pytest.importorskip("dlib")
    out = inputs / "avatar.npz"
    before = _snapshot(inputs)
    code = main(["embed", "--source", str(inputs / "me.jpg"), "-o", str(out), "--model", str(tiny_package),
                 "--threads", str(os.cpu_count() + 100), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning: --threads" in err and out.is_file()
    after = _snapshot(inputs)
    assert {k: v for k, v in after.items() if k != "avatar.npz"} == before
