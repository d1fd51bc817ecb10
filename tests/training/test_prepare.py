"""Dataset preparation (training.prepare) on real media: folder format, coordinates, resume,
frames without faces, broken files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkinghead.crop import to_pixels
from talkinghead.images import read_image
from talkinghead.video import iter_frames

CLIP = "driving/grid_bbaf2n.mpg"
PHOTO = "faces/aaai22_AdamSchiff.jpg"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, Path, int, str]:
    """A GRID clip (12 frames, every 2nd kept), a photo, a photo without a face and a broken
    video, prepared at 64 px."""
    pytest.importorskip("dlib")
    pytest.importorskip("PIL")
    from training.prepare import main

    src = tmp_path_factory.mktemp("sources")
    (src / "clip.mpg").symlink_to(SHARED / CLIP)
    (src / "person.jpg").symlink_to(SHARED / PHOTO)
    from PIL import Image

    Image.fromarray(np.full((120, 160, 3), 140, np.uint8)).save(src / "wall.png")
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    out = tmp_path_factory.mktemp("prepared")
    rc = main([str(src), str(out), "--resolution", "64", "--limit-frames", "12", "--every", "2",
               "--workers", "1", "--no-progress"])
    return src, out, rc, ""


def test_folder_format(prepared):
    src, out, rc, _ = prepared
    assert rc == 1   # the broken video failed; the rest was prepared
    clip = out / "clip"
    meta = json.loads((clip / "meta.json").read_text())
    assert meta["kept"] == 6 and meta["dropped"] == 0 and meta["frame_count"] == 12
    assert meta["fps"] == 25.0 and meta["resolution"] == 64 and meta["kind"] == "video"
    assert meta["crop"] == {"scale": 1.7, "offset_y": -0.1}
    assert meta["detector"]["name"] == "dlib" and meta["source"].endswith("clip.mpg")
    lm = np.load(clip / "landmarks.npy")
    crops = np.load(clip / "crops.npy")
    idx = np.load(clip / "source_index.npy")
    assert lm.shape == (6, 68, 2) and lm.dtype == np.float32
    assert crops.shape == (6, 3) and crops.dtype == np.float32
    assert idx.tolist() == [0, 2, 4, 6, 8, 10]
    frames = sorted((clip / "frames").glob("*.jpg"))
    assert [f.name for f in frames] == [f"{i:06d}.jpg" for i in range(6)]
    assert read_image(frames[0]).shape == (64, 64, 3)
    # crop-normalised: the face fills the middle of its crop
    assert np.abs(lm).max() < 1.0 and np.abs(lm).max() > 0.3
    photo = json.loads((out / "person" / "meta.json").read_text())
    assert photo["kind"] == "image" and photo["kept"] == 1 and photo["frame_count"] == 1


def test_landmarks_map_back_onto_the_source_face(prepared, dlib_detector):
    _, out, _, _ = prepared
    lm = np.load(out / "clip" / "landmarks.npy")
    crops = np.load(out / "clip" / "crops.npy")
    idx = np.load(out / "clip" / "source_index.npy")
    frames = list(iter_frames(SHARED / CLIP, limit=12))
    for k in (0, 5):
        pixels = to_pixels(lm[k], crops[k])
        face = dlib_detector.detect(frames[idx[k]])[0]
        iod = np.linalg.norm(face.points[45] - face.points[36])
        assert np.linalg.norm(pixels - face.points, axis=1).mean() / iod < 0.1


def test_no_face_and_broken_items_are_counted(prepared):
    _, out, _, _ = prepared
    wall = json.loads((out / "wall" / "meta.json").read_text())
    assert wall["kept"] == 0 and wall["dropped"] == 1
    index = json.loads((out / "index.json").read_text())
    assert sorted(i["name"] for i in index["items"]) == ["clip", "person"]
    assert [i["name"] for i in index["empty"]] == ["wall"]
    assert len(index["failed"]) == 1 and "broken.mp4" in index["failed"][0]["error"]
    assert index["totals"]["frames"] == 7 and index["totals"]["dropped"] == 1
    assert not (out / "broken").exists() and not list(out.glob("*.partial"))


def test_resume_skips_finished_items(prepared, capsys):
    from training.prepare import main

    src, out, _, _ = prepared
    before = (out / "clip" / "meta.json").stat().st_mtime_ns
    (out / "person" / "meta.json").unlink()          # an unfinished item is redone
    rc = main([str(src), str(out), "--resolution", "64", "--limit-frames", "12", "--every", "2",
               "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 1 and "3 already done" not in text and "2 already done" in text
    assert (out / "clip" / "meta.json").stat().st_mtime_ns == before
    assert json.loads((out / "person" / "meta.json").read_text())["kept"] == 1


def test_bad_arguments(tmp_path: Path):
    from training.prepare import main

    with pytest.raises(SystemExit):
        main([str(tmp_path), str(tmp_path / "o"), "--every", "0"])
    assert main([str(tmp_path / "nope"), str(tmp_path / "o"), "--no-progress"]) == 2
