"""Outputs marked synthetic (issue 22): the invisible watermark, the container tags and `talkinghead verify`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkinghead.cli import EXIT_NOT_FOUND, main
from talkinghead.video import VideoWriter, iter_frames
from talkinghead.watermark import Marker, detect, model_id


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wm") / "demo.mp4"
    assert main(["demo", "-o", str(out), "-q"]) == 0  # the default 8 s: what a user gets
    return out


def _verify(capsys, *files: Path) -> tuple[int, list[dict]]:
    rc = main(["verify", "--json", *map(str, files)])
    return rc, json.loads(capsys.readouterr().out)


def test_a_fresh_demo_is_found_with_its_payload_and_tags(demo: Path, capsys) -> None:
    import talkinghead

    rc, [v] = _verify(capsys, demo)
    model = talkinghead.load_model(providers="cpu")
    assert rc == 0 and v["found"] and v["confidence"] >= 5.5
    assert v["model_id"] == model_id(model.package.name, model.package.version)
    assert v["synthetic_tag"] and v["metadata"]["talkinghead_model"] == model.package.name
    assert v["metadata"]["talkinghead_model_sha256"] == model.package.manifest.graphs["generator"].sha256


def test_found_after_a_re_encode_with_pyav(demo: Path, tmp_path: Path, capsys) -> None:
    again = tmp_path / "reencoded.mp4"
    with VideoWriter(again, fps=25, crf=23) as w:  # no tags carried over: only the pixels are left
        for frame in iter_frames(demo):
            w.write(frame)
    rc, [v] = _verify(capsys, again)
    assert rc == 0 and v["found"] and not v["synthetic_tag"]


def test_a_real_clip_and_photo_are_not_marked(shared_data: Path, capsys) -> None:
    rc, vs = _verify(capsys, shared_data / "driving" / "lp_d18.mp4", shared_data / "faces" / "aaai22_AdamSchiff.jpg")
    assert rc == EXIT_NOT_FOUND and not any(v["found"] for v in vs) and all(v["error"] is None for v in vs)


def test_truncated_and_non_media_files_are_errors(demo: Path, tmp_path: Path, capsys) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(demo.read_bytes()[:2000])
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    rc, vs = _verify(capsys, cut, text, tmp_path / "missing.mp4")
    assert rc == 2 and all(v["error"] for v in vs)


def test_no_watermark_really_leaves_frames_unmarked(tmp_path: Path, capsys) -> None:
    out = tmp_path / "plain.mp4"
    assert main(["demo", "-o", str(out), "--seconds", "3", "-q", "--no-watermark"]) == 0
    rc, [v] = _verify(capsys, out)
    assert rc == EXIT_NOT_FOUND and not v["found"] and v["metadata"]["talkinghead_watermark"] == "off"


def test_the_mark_costs_little_and_survives_what_a_file_goes_through(shared_data: Path) -> None:
    """PSNR >= 40 dB against the unmarked frame, at any size; found after scaling to 50%, a 10% crop
    and brightness +-10% on a real clip's frames; absent from the unmarked ones."""
    from talkinghead.watermark import _resize

    frames = list(iter_frames(shared_data / "driving" / "grid_swiz3n.mpg", limit=25))
    marker = Marker(model_id("talkinghead-test", "1"))
    marked = [marker.mark(f) for f in frames]
    for f, m in zip(frames[:3], marked):
        mse = np.mean((m.astype(float) - f) ** 2)
        assert 10 * np.log10(255 ** 2 / mse) >= 40.0
    h, w = frames[0].shape[:2]

    def half(x):
        return np.stack([_resize(x[..., c].astype(np.float32), h // 2, w // 2) for c in range(3)], -1).astype(np.uint8)

    for name, change in {"as is": lambda x: x, "50%": half,
                         "crop 10%": lambda x: x[int(h * .05):int(h * .95), int(w * .05):int(w * .95)],
                         "+10%": lambda x: np.clip(x * 1.1, 0, 255).astype(np.uint8),
                         "-10%": lambda x: (x * 0.9).astype(np.uint8)}.items():
        d = detect([change(m) for m in marked])
        assert d.found and d.model_id in (None, model_id("talkinghead-test", "1")), (name, d)
        assert not detect([change(f) for f in frames]).found, name
