"""Image reading/validation (talkinghead.images) and video decode/encode (talkinghead.video)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkinghead.errors import ImageReadError, InputError, OutputExistsError, VideoError
from talkinghead.images import as_rgb_array, read_image
from talkinghead.video import VideoWriter, iter_frames, probe

# -- images ---------------------------------------------------------------------------------------


def test_read_real_jpeg_and_png(face_photo: Path, shared_data: Path):
    img = read_image(face_photo)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.flags.c_contiguous and img.std() > 10
    pngs = sorted((shared_data / "faces").glob("*.png"))
    if pngs:
        assert read_image(pngs[0]).shape[2] == 3


def _write_png(path: Path, array: np.ndarray, fmt: str) -> None:
    import av

    with av.open(str(path), "w", format="image2") as c:
        s = c.add_stream("png")
        s.width, s.height = array.shape[1], array.shape[0]
        s.pix_fmt = fmt
        frame = av.VideoFrame.from_ndarray(array, format=fmt)
        for pkt in s.encode(frame):
            c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)


def test_grey_and_rgba_files_become_rgb(tmp_path: Path):
    grey = np.tile(np.arange(0, 200, 10, dtype=np.uint8), (10, 1))
    _write_png(tmp_path / "grey.png", grey, "gray")
    g = read_image(tmp_path / "grey.png")
    assert g.shape == (10, 20, 3)
    np.testing.assert_array_equal(g[..., 0], grey)
    np.testing.assert_array_equal(g[..., 0], g[..., 2])
    rgba = np.zeros((8, 6, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 250, 128
    _write_png(tmp_path / "rgba.png", rgba, "rgba")
    c = read_image(tmp_path / "rgba.png")
    assert c.shape == (8, 6, 3) and c.dtype == np.uint8


def test_missing_and_non_image_files_name_the_path(tmp_path: Path):
    with pytest.raises(ImageReadError, match="nope.jpg"):
        read_image(tmp_path / "nope.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("this is no image\n" * 20)
    with pytest.raises(ImageReadError, match="notes.jpg"):
        read_image(text)
    with pytest.raises(ImageReadError, match="not a file"):
        read_image(tmp_path)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((10, 10), np.uint8), "grey"),
    (np.zeros((10, 10, 1), np.uint8), "grey"),
    (np.zeros((10, 10, 4), np.uint8), r"RGBA.*\[\.\.\., :3\]"),
    (np.zeros((10, 10, 3), np.float32), "uint8.*255"),
    (np.zeros((10, 10, 3), np.int64), "uint8"),
    (np.zeros((2, 10, 10, 3), np.uint8), r"\[H, W, 3\]"),
    ([[1, 2, 3]], "numpy array"),
])
def test_as_rgb_array_rejects_with_clear_messages(bad, message):
    with pytest.raises(InputError, match=message):
        as_rgb_array(bad)


def test_as_rgb_array_makes_contiguous():
    a = np.zeros((10, 20, 3), np.uint8)[:, ::2]
    out = as_rgb_array(a)
    assert out.flags.c_contiguous and out.shape == (10, 10, 3)
    b = np.zeros((4, 4, 3), np.uint8)
    assert as_rgb_array(b) is b


# -- video ----------------------------------------------------------------------------------------


def test_probe_and_iter_frames_on_real_clip(short_clip: Path):
    info = probe(short_clip)
    assert (info.width, info.height, info.fps) == (360, 288, 25.0)
    assert 70 <= info.frame_count <= 80 and info.has_audio
    frames = list(iter_frames(short_clip, limit=5))
    assert len(frames) == 5
    assert frames[0].shape == (288, 360, 3) and frames[0].dtype == np.uint8


def _write_clip(path: Path, n: int = 10, size=(48, 64), **kw) -> None:
    with VideoWriter(path, 25, **kw) as w:
        for i in range(n):
            w.write(np.full((*size, 3), (i * 20) % 256, np.uint8))


def test_writer_round_trip_odd_size_and_overwrite(tmp_path: Path):
    out = tmp_path / "out.mp4"
    _write_clip(out, n=8, size=(33, 45))
    info = probe(out)
    assert (info.width, info.height, info.frame_count, info.codec) == (46, 34, 8, "h264")
    assert not info.has_audio
    frames = list(iter_frames(out))
    assert len(frames) == 8 and abs(int(frames[5].mean()) - 100) <= 3
    with pytest.raises(OutputExistsError, match="out.mp4"):
        VideoWriter(out, 25)
    _write_clip(out, n=3, overwrite=True)
    assert probe(out).frame_count == 3
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp files left


def test_writer_removes_temp_on_error(tmp_path: Path):
    out = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 25) as w:
            w.write(np.zeros((16, 16, 3), np.uint8))
            raise RuntimeError("boom")
    with pytest.raises(InputError, match="frame 1"):
        with VideoWriter(out, 25) as w:
            w.write(np.zeros((16, 16, 3), np.uint8))
            w.write(np.zeros((18, 16, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", ["aac_clip", "short_clip"])
def test_writer_carries_audio(tmp_path: Path, source: str, request):
    clip = request.getfixturevalue(source)   # AAC is copied, mp2 (GRID) re-encoded
    out = tmp_path / "with_audio.mp4"
    frames = list(iter_frames(clip, limit=25))
    with VideoWriter(out, probe(clip).fps, audio_from=clip) as w:
        for f in frames:
            w.write(f)
    info = probe(out)
    assert info.has_audio and info.audio_codec == "aac"
    import av

    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        seconds = sum(p.duration or 0 for p in c.demux(a)) * float(a.time_base)
    assert 0.9 <= seconds <= 1.2   # cut at the video's end (25 frames at 25 fps)


def test_broken_videos_raise_video_error_naming_the_file(tmp_path: Path, aac_clip: Path):
    with pytest.raises(VideoError, match="missing.mp4"):
        next(iter_frames(tmp_path / "missing.mp4"))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 500)
    with pytest.raises(VideoError, match="garbage.mp4"):
        probe(garbage)
    with pytest.raises(VideoError, match="garbage.mp4"):
        list(iter_frames(garbage))
    # truncated (index at the front, data cut): names the frame where decoding stopped
    good = tmp_path / "good.mp4"
    with VideoWriter(good, 25) as w:
        for f in iter_frames(aac_clip, limit=40):
            w.write(f)
    data = good.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"cut.mp4: truncated.*frame \d+"):
        list(iter_frames(cut))
    # corrupt bytes in the middle
    bad = bytearray(data)
    mid = len(bad) // 2
    bad[mid:mid + 4000] = b"\x55" * 4000
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(bad))
    try:
        n = sum(1 for _ in iter_frames(corrupt))
    except VideoError as exc:
        assert "corrupt.mp4" in str(exc) and "frame" in str(exc)
    else:  # FFmpeg concealed the damage: every frame still decoded
        assert n == 40


def test_image_file_without_frames_is_a_video_error(tmp_path: Path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4"):
        list(iter_frames(empty))
