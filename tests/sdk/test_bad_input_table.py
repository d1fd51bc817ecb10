"""The Python API's and the command line's half of the bad-input table (issue 18; the C ABI's half
is tests/bindings/test_bad_input.cpp, the CLI's output and number cases tests/sdk/test_cli_bad_input.py).

Each case is one call with one wrong thing, the error type (or exit code) it must raise, a word
its message must hold, and the on-disk state afterwards: the folder of inputs is byte-identical
(nothing written, nothing removed, no temporary file left).
"""
from __future__ import annotations

import dataclasses
import io
import json
import shutil
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import talkinghead
import talkinghead.media
from talkinghead.avatar import Avatar, AvatarFileError
from talkinghead.cli import EXIT_USER, main
from talkinghead.controls import Controls
from talkinghead.errors import (ImageReadError, InputError, ModelPackageError, OutputExistsError, TalkingHeadError,
                                VideoError)
from talkinghead.images import as_rgb_array, read_image
from talkinghead.video import VideoWriter, iter_frames, probe

from .test_cli_bad_input import _snapshot  # every file under a folder -> its sha256


def _png(width: int, height: int, with_end: bool = True) -> bytes:
    """A PNG whose header claims width x height over one tiny compressed row (decoding would need
    width * height * 3 bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + body + (chunk(b"IEND", b"") if with_end else b"")


def _avatar_npz(path: Path, arrays: dict[str, np.ndarray], meta: dict | bytes) -> Path:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    np.savez(path, meta=np.frombuffer(raw, np.uint8), **arrays)
    return path


def _npy_claiming(shape: tuple[int, ...]) -> bytes:
    """An .npy member whose header declares ``shape`` float32 but holds 16 bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\x00" * 16


@pytest.fixture(scope="module")
def work(tmp_path_factory, short_clip: Path, face_photo: Path, tiny_model) -> Path:
    """A folder of inputs, good and bad, made once (the cases must leave it byte-identical)."""
    w = tmp_path_factory.mktemp("bad_inputs")
    shutil.copyfile(short_clip, w / "clip.mpg")
    shutil.copyfile(face_photo, w / "me.jpg")
    jpeg = (w / "me.jpg").read_bytes()
    (w / "cut.jpg").write_bytes(jpeg[: int(len(jpeg) * 0.7)])
    (w / "empty.jpg").write_bytes(b"")
    (w / "notes.txt").write_bytes(b"just some text, not a picture\n" * 10)
    (w / "text.jpg").write_bytes(b"just some text, not a picture\n" * 10)
    shutil.copyfile(short_clip, w / "clip_named.jpg")
    shutil.copyfile(face_photo, w / "photo_named.mp4")
    (w / "huge.png").write_bytes(_png(10000, 10000))
    (w / "no_end.png").write_bytes(_png(64, 64, with_end=False))
    (w / "ok.png").write_bytes(_png(8, 8))
    (w / "cut.bmp").write_bytes(b"BM" + struct.pack("<I", 100000) + b"\x00" * 4 + struct.pack("<I", 54) + b"\x00" * 40)
    (w / "cut.webp").write_bytes(b"RIFF" + struct.pack("<I", 5000) + b"WEBPVP8 " + b"\x00" * 20)
    (w / "cut.gif").write_bytes(b"GIF89a" + b"\x01\x00\x01\x00\x00\x00\x00" + b"\x2c" + b"\x00" * 8)
    (w / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\xde\xad\xbe\xef" * 200)
    (w / "empty.mp4").write_bytes(b"")
    mp4 = (short_clip.parent / "styletalk_surprisegirl_clip2.mp4").read_bytes()
    (w / "cut.mp4").write_bytes(mp4[: int(len(mp4) * 0.6)])
    (w / "sub").mkdir()
    avatar = tiny_model.create_avatar(w / "me.jpg")
    avatar.save(w / "good.npz")
    d = tiny_model.package.embedding_dim
    base = {"identity": avatar.identity, "landmarks": avatar.landmarks}
    meta = {"format": "talkinghead-avatar/2", "model": tiny_model.name, "embedding_dim": d, "shots": 1}
    _avatar_npz(w / "nan_identity.npz", {**base, "identity": np.full(d, np.nan, np.float32)}, meta)
    _avatar_npz(w / "overflow_identity.npz", {**base, "identity": np.full(d, 1e300)}, meta)
    _avatar_npz(w / "far_landmarks.npz", {**base, "landmarks": avatar.landmarks + 50}, meta)
    _avatar_npz(w / "other_model.npz", base, {**meta, "model": "someone-elses-model"})
    _avatar_npz(w / "future.npz", base, {**meta, "format": "talkinghead-avatar/99"})
    _avatar_npz(w / "bad_meta.npz", base, b"{not json")
    _avatar_npz(w / "deep_meta.npz", base, b"[" * 100_000)
    _avatar_npz(w / "no_identity.npz", {"landmarks": avatar.landmarks}, meta)
    _avatar_npz(w / "wrong_crop.npz", {**base, "crop": np.zeros(7)}, meta)
    _avatar_npz(w / "extra_member.npz", {**base, "payload": np.zeros(3)}, meta)
    with zipfile.ZipFile(w / "claims_40gb.npz", "w") as z:
        z.writestr("meta.npy", _npy_bytes(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
        z.writestr("identity.npy", _npy_claiming((10_000_000_000,)))
        z.writestr("landmarks.npy", _npy_bytes(avatar.landmarks))
    with zipfile.ZipFile(w / "expands_1gb.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("identity.npy", "w", force_zip64=True) as member:  # 1.06 GB of zeros in ~1 MB
            member.write(b"\x00" * (1 << 20))
            for _ in range(1060):
                member.write(bytes(1 << 20))
    (w / "zip_of_text.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    return w


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


@pytest.fixture(scope="module")
def avatar(tiny_model, work: Path) -> Avatar:
    return Avatar.load(work / "good.npz")


# ---- the Python API -----------------------------------------------------------------------------
# name: (call(model, avatar, work), error type, a word of the message)
Call = Callable[..., object]


def _on_file(reader: Callable[[Path], object], name: str) -> Call:
    """A case that gives ``reader`` the file ``name`` of the inputs' folder."""
    return lambda m, a, w: reader(w / name)


API: dict[str, tuple[Call, type[Exception], str]] = {
    # image files
    "read a JPEG cut to 70%": (_on_file(read_image, "cut.jpg"), ImageReadError, "truncated"),
    "read an empty file": (_on_file(read_image, "empty.jpg"), ImageReadError, "not an image"),
    "read a text file": (_on_file(read_image, "notes.txt"), ImageReadError, "not an image"),
    "read text named .jpg": (_on_file(read_image, "text.jpg"), ImageReadError, "not an image"),
    "read a clip as a photo": (_on_file(read_image, "clip.mpg"), ImageReadError, "video"),
    "read a clip named .jpg": (_on_file(read_image, "clip_named.jpg"), ImageReadError, "a video"),
    "read a 100 MP PNG header": (_on_file(read_image, "huge.png"), ImageReadError, "more pixels"),
    "read a PNG without IEND": (_on_file(read_image, "no_end.png"), ImageReadError, "IEND"),
    "read a cut BMP": (_on_file(read_image, "cut.bmp"), ImageReadError, "truncated"),
    "read a cut WebP": (_on_file(read_image, "cut.webp"), ImageReadError, "truncated"),
    "read a cut GIF": (_on_file(read_image, "cut.gif"), ImageReadError, "truncated"),
    "read a missing file": (_on_file(read_image, "missing.jpg"), ImageReadError, "no such file"),
    "read a folder": (_on_file(read_image, "sub"), ImageReadError, "not a file"),
    # image arrays
    "array of floats": (lambda m, a, w: as_rgb_array(np.zeros((8, 8, 3), np.float32)), InputError, "uint8"),
    "array RGBA": (lambda m, a, w: as_rgb_array(np.zeros((8, 8, 4), np.uint8)), InputError, "4 channels"),
    "array grey": (lambda m, a, w: as_rgb_array(np.zeros((8, 8), np.uint8)), InputError, "grey"),
    "array empty": (lambda m, a, w: as_rgb_array(np.zeros((0, 8, 3), np.uint8)), InputError, "empty"),
    "a list, not an array": (lambda m, a, w: as_rgb_array([[1, 2, 3]]), InputError, "numpy array"),
    # avatars made from shots
    "33 shots": (lambda m, a, w: m.create_avatar([w / "me.jpg"] * 33), InputError, "at most 32"),
    "no shots": (lambda m, a, w: m.create_avatar([]), InputError, "1 to 32"),
    "shots and landmark counts differ": (lambda m, a, w: m.create_avatar([w / "me.jpg"] * 2, [np.zeros((68, 2))]),
                                         InputError, "landmark arrays"),
    "shot landmarks NaN": (lambda m, a, w: m.create_avatar(w / "me.jpg", [np.full((68, 2), np.nan)]), InputError, "NaN"),
    "shot landmarks 1e30": (lambda m, a, w: m.create_avatar(w / "me.jpg", [np.full((68, 2), 1e30)]), InputError,
                            "beyond"),
    "shot landmarks all equal": (lambda m, a, w: m.create_avatar(w / "me.jpg", [np.full((68, 2), 50.0)]),
                                 InputError, "degenerate"),
    "a truncated shot": (lambda m, a, w: m.create_avatar(w / "cut.jpg"), ImageReadError, "truncated"),
    # rendering
    "landmarks 1e300 (float64)": (lambda m, a, w: m.render(a, a.landmarks.astype(np.float64) * 1e300), InputError,
                                  "beyond"),
    "landmarks 1e30": (lambda m, a, w: m.render(a, a.landmarks * 1e30), InputError, "beyond"),
    "a face 100 crops away": (lambda m, a, w: m.render(a, a.landmarks + 100), InputError, "off the picture"),
    "pixel landmarks given as normalised": (lambda m, a, w: m.render(a, a.landmarks * 200 + 300), InputError,
                                            "off the picture"),
    "a degenerate face": (lambda m, a, w: m.render(a, np.zeros((68, 2), np.float32)), InputError, "degenerate"),
    "degenerate pixel landmarks": (lambda m, a, w: m.render(a, np.full((68, 2), 7.0), coords="pixels"), InputError,
                                   "degenerate"),
    "0 frames": (lambda m, a, w: m.render(a, np.zeros((0, 68, 2), np.float32)), InputError, "1 to 4096"),
    "4097 frames": (lambda m, a, w: m.render(a, np.repeat(a.landmarks[None], 4097, 0)), InputError, "1 to 4096"),
    "landmarks [5, 2]": (lambda m, a, w: m.render(a, np.zeros((5, 2))), InputError, "[68, 2]"),
    "landmarks as text": (lambda m, a, w: m.render(a, "eyes"), InputError, "numeric"),
    "coords 'inches'": (lambda m, a, w: m.render(a, a.landmarks, coords="inches"), InputError, "coords"),
    "a NaN identity built by hand": (lambda m, a, w: m.render(dataclasses.replace(a, identity=a.identity * np.nan),
                                                              a.landmarks), InputError, "identity"),
    "an identity of 1e300 (float64)": (lambda m, a, w: m.render(dataclasses.replace(
        a, identity=np.full(a.identity.shape, 1e300)), a.landmarks), InputError, "finite in float32"),
    "avatar landmarks NaN": (lambda m, a, w: m.render(dataclasses.replace(a, landmarks=a.landmarks * np.nan),
                                                      a.landmarks), InputError, "avatar landmarks"),
    "another model's avatar": (lambda m, a, w: m.render(dataclasses.replace(a, model="other"), a.landmarks),
                               InputError, "made by model 'other'"),
    "not an avatar": (lambda m, a, w: m.render({"identity": 1}, a.landmarks), InputError, "expected an Avatar"),
    # animate (errors at the call, before any frame)
    "animate batch 0": (lambda m, a, w: m.animate(a, [a.landmarks], batch_size=0), InputError, "batch_size"),
    "animate batch 65": (lambda m, a, w: m.animate(a, [a.landmarks], batch_size=65), InputError, "batch_size"),
    "animate batch 2.5": (lambda m, a, w: m.animate(a, [a.landmarks], batch_size=2.5), InputError, "batch_size"),
    "animate fps 0": (lambda m, a, w: m.animate(a, [a.landmarks], fps=0), InputError, "fps"),
    "animate fps nan": (lambda m, a, w: m.animate(a, [a.landmarks], fps=float("nan")), InputError, "fps"),
    "animate output 'gif'": (lambda m, a, w: m.animate(a, [a.landmarks], output="gif"), InputError, "output"),
    "animate mode 'sideways'": (lambda m, a, w: list(m.animate(a, [a.landmarks * 100 + 200], mode="sideways",
                                                               output="crop")), InputError, "mode"),
    "animate an empty sequence": (lambda m, a, w: list(m.animate(a, [], output="crop")), InputError, "empty"),
    "animate landmarks NaN in frame 2": (lambda m, a, w: list(m.animate(
        a, [a.landmarks * 100 + 200] * 2 + [np.full((68, 2), np.nan)], output="crop")), InputError, "frame 2"),
    "animate a still image as the driver": (lambda m, a, w: list(m.animate(a, w / "me.jpg", output="crop")),
                                            VideoError, "not a video"),
    # streams and controls
    "control eye_open 5": (lambda m, a, w: Controls(eye_open=5).validate(), InputError, "eye_open"),
    "control yaw NaN": (lambda m, a, w: Controls(yaw=float("nan")).validate(), InputError, "yaw"),
    "stream timestamp NaN": (lambda m, a, w: m.stream(a).push(a.landmarks, float("nan"), coords="normalised"),
                             InputError, "timestamp"),
    # loading models
    "threads -1": (lambda m, a, w: talkinghead.load_model(m.package.folder, intra_op_threads=-1), InputError,
                   "intra_op_threads"),
    "threads 'four'": (lambda m, a, w: talkinghead.load_model(m.package.folder, intra_op_threads="four"), InputError,
                       "integer"),
    "variant 'int3'": (lambda m, a, w: talkinghead.load_model(m.package.folder, variant="int3"), InputError, "variant"),
    "graph_optimization 'max'": (lambda m, a, w: talkinghead.load_model(m.package.folder, graph_optimization="max"),
                                 InputError, "graph_optimization"),
    "a package folder that does not exist": (lambda m, a, w: talkinghead.load_model(w / "nope"), ModelPackageError,
                                             "nope"),
    "a package that is a photo": (lambda m, a, w: talkinghead.load_model(w / "me.jpg"), ModelPackageError, "me.jpg"),
    # avatar files
    "avatar: a NaN identity": (_on_file(Avatar.load, "nan_identity.npz"), AvatarFileError, "identity"),
    "avatar: an identity of 1e300": (_on_file(Avatar.load, "overflow_identity.npz"), AvatarFileError, "float32"),
    "avatar: landmarks off the crop": (_on_file(Avatar.load, "far_landmarks.npz"), AvatarFileError, "landmarks"),
    "avatar: a future format": (_on_file(Avatar.load, "future.npz"), AvatarFileError, "unknown avatar format"),
    "avatar: meta not JSON": (_on_file(Avatar.load, "bad_meta.npz"), AvatarFileError, "not a talkinghead"),
    "avatar: meta nested 100,000 deep": (_on_file(Avatar.load, "deep_meta.npz"), AvatarFileError, "nests"),
    "avatar: no identity": (_on_file(Avatar.load, "no_identity.npz"), AvatarFileError, "identity"),
    "avatar: a crop of 7 numbers": (_on_file(Avatar.load, "wrong_crop.npz"), AvatarFileError, "crop"),
    "avatar: an unknown member": (_on_file(Avatar.load, "extra_member.npz"), AvatarFileError, "unknown members"),
    "avatar: a member claiming 40 GB": (_on_file(Avatar.load, "claims_40gb.npz"), AvatarFileError, "declares"),
    "avatar: a member expanding to 1 GB": (_on_file(Avatar.load, "expands_1gb.npz"), AvatarFileError, "expand"),
    "avatar: a broken zip": (_on_file(Avatar.load, "zip_of_text.npz"), AvatarFileError, "not a talkinghead"),
    "avatar: a photo": (_on_file(Avatar.load, "me.jpg"), AvatarFileError, "not a talkinghead"),
    "avatar: missing": (_on_file(Avatar.load, "gone.npz"), AvatarFileError, "not found"),
    # videos
    "probe a photo": (_on_file(probe, "me.jpg"), VideoError, "not a video"),
    "probe a photo named .mp4": (_on_file(probe, "photo_named.mp4"), VideoError, "still image"),
    "probe garbage named .mp4": (_on_file(probe, "garbage.mp4"), VideoError, "garbage.mp4"),
    "probe an empty file": (_on_file(probe, "empty.mp4"), VideoError, "empty.mp4"),
    "decode an mp4 cut to 60%": (lambda m, a, w: list(iter_frames(w / "cut.mp4")), VideoError, "cut.mp4"),
    "probe a folder": (_on_file(probe, "sub"), VideoError, "not a file"),
    # writing must not replace what exists
    "save an avatar over a file": (lambda m, a, w: a.save(w / "me.jpg"), OutputExistsError, "exists"),
    "a video writer over a file": (lambda m, a, w: VideoWriter(w / "clip.mpg", fps=25), OutputExistsError, "exists"),
    "a video writer at 0 fps": (lambda m, a, w: VideoWriter(w / "new.mp4", fps=0), InputError, "fps"),
}


@pytest.mark.parametrize("case", list(API))
def test_the_python_api_refuses(case: str, tiny_model, avatar: Avatar, work: Path) -> None:
    call, error, word = API[case]
    before = _snapshot(work)
    with pytest.raises(error) as info:
        call(tiny_model, avatar, work)
    assert isinstance(info.value, TalkingHeadError)
    assert word in str(info.value), str(info.value)
    assert _snapshot(work) == before


# ---- the command line ---------------------------------------------------------------------------
# name: (arguments with {w} for the inputs' folder, a word of the one error line)
CLI: dict[str, tuple[str, str]] = {
    "animate a truncated photo": ("animate --source {w}/cut.jpg --driving {w}/clip.mpg -o {w}/sub/o.mp4", "truncated"),
    "animate a clip as the photo": ("animate --source {w}/clip.mpg --driving {w}/clip.mpg -o {w}/sub/o.mp4", "video"),
    "animate a text file as the photo": ("animate --source {w}/notes.txt --driving {w}/clip.mpg -o {w}/sub/o.mp4",
                                         "not an image"),
    "animate an empty photo": ("animate --source {w}/empty.jpg --driving {w}/clip.mpg -o {w}/sub/o.mp4", "not an image"),
    "animate a missing photo": ("animate --source {w}/gone.jpg --driving {w}/clip.mpg -o {w}/sub/o.mp4", "no such file"),
    "animate 33 photos": ("animate --source " + " ".join(["{w}/me.jpg"] * 33) + " --driving {w}/clip.mpg -o {w}/sub/o.mp4",
                          "at most 32"),
    "animate with a photo as the driver": ("animate --source {w}/me.jpg --driving {w}/me.jpg -o {w}/sub/o.mp4",
                                           "not a video"),
    "animate with a photo named .mp4 as the driver": (
        "animate --source {w}/me.jpg --driving {w}/photo_named.mp4 -o {w}/sub/o.mp4", "still image"),
    "animate with garbage as the driver": ("animate --source {w}/me.jpg --driving {w}/garbage.mp4 -o {w}/sub/o.mp4",
                                           "garbage.mp4"),
    "animate with an empty driver": ("animate --source {w}/me.jpg --driving {w}/empty.mp4 -o {w}/sub/o.mp4",
                                     "empty.mp4"),
    "animate with a missing driver": ("animate --source {w}/me.jpg --driving {w}/gone.mp4 -o {w}/sub/o.mp4",
                                      "no such file"),
    "animate an avatar with a NaN identity": (
        "animate --avatar {w}/nan_identity.npz --driving {w}/clip.mpg -o {w}/sub/o.mp4", "identity"),
    "animate an avatar of another model": (
        "animate --avatar {w}/other_model.npz --driving {w}/clip.mpg -o {w}/sub/o.mp4", "someone-elses-model"),
    "animate an avatar claiming 40 GB": (
        "animate --avatar {w}/claims_40gb.npz --driving {w}/clip.mpg -o {w}/sub/o.mp4", "declares"),
    "animate an avatar of a future format": (
        "animate --avatar {w}/future.npz --driving {w}/clip.mpg -o {w}/sub/o.mp4", "unknown avatar format"),
    "animate a photo as the avatar": ("animate --avatar {w}/me.jpg --driving {w}/clip.mpg -o {w}/sub/o.mp4",
                                      "not a talkinghead"),
    "animate into a missing folder": ("animate --source {w}/me.jpg --driving {w}/clip.mpg -o {w}/nowhere/o.mp4",
                                      "does not exist"),
    "animate into a folder": ("animate --source {w}/me.jpg --driving {w}/clip.mpg -o {w}/sub", "is a folder"),
    "animate over an existing file": ("animate --source {w}/me.jpg --driving {w}/clip.mpg -o {w}/notes.txt",
                                      "--overwrite"),
    "embed a truncated photo": ("embed --source {w}/cut.jpg -o {w}/sub/a.npz", "truncated"),
    "embed a 100 MP PNG": ("embed --source {w}/huge.png -o {w}/sub/a.npz", "more pixels"),
    "embed over an existing avatar": ("embed --source {w}/me.jpg -o {w}/good.npz", "--overwrite"),
    "demo with a missing model": ("demo --model {w}/nope -o {w}/sub/d.mp4", "nope"),
    "demo with a photo as the model": ("demo --model {w}/me.jpg -o {w}/sub/d.mp4", "me.jpg"),
    "info of a missing model": ("info --model {w}/nope", "nope"),
    "verify a missing file": ("verify {w}/gone.mp4", "gone.mp4"),
}


@pytest.mark.parametrize("case", list(CLI))
def test_the_command_refuses(case: str, work: Path, tiny_package: Path, capsys) -> None:
    line, word = CLI[case]
    argv = line.format(w=work).split()
    if argv[0] in ("animate", "embed") or (argv[0] == "demo" and "--model" not in argv):
        argv += ["--model", str(tiny_package), "--provider", "cpu"]
    before = _snapshot(work)
    code = main(argv)
    captured = capsys.readouterr()
    text = captured.err + captured.out  # `verify` reports each file's error on stdout
    errors = [ln for ln in text.splitlines() if ln.startswith("error:") or ": error:" in ln]
    assert code == EXIT_USER, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert errors and word in errors[0], captured.err + captured.out
    assert _snapshot(work) == before


def test_a_png_named_jpg_is_read_with_a_warning(tmp_path: Path, caplog) -> None:
    """Files are decoded by their content: an image type other than the name says is read (four
    of the shared photos are PNGs named .jpg), with a warning naming both."""
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(talkinghead.media.encode_image(np.full((8, 8, 3), 90, np.uint8), "png"))
    with caplog.at_level("WARNING", logger="talkinghead"):
        image = read_image(path)
    assert image.shape == (8, 8, 3) and int(image[0, 0, 0]) == 90
    assert "its name says JPEG (.jpg) but its content is PNG" in caplog.text


def test_exif_orientation_is_applied(tmp_path: Path, face_photo: Path) -> None:
    """A JPEG whose EXIF says "rotate 90 degrees clockwise to view" (orientation 6), as phones
    write portrait photos, is returned upright: the stored pixels turned clockwise."""
    from talkinghead.filetypes import exif_orientation

    data = face_photo.read_bytes()
    assert exif_orientation(data) == 1
    stored = read_image(face_photo)
    for orientation, upright in ((6, np.rot90(stored, -1)), (8, np.rot90(stored, 1)), (3, stored[::-1, ::-1]),
                                 (2, stored[:, ::-1])):
        tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + \
            struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
        app1 = b"Exif\x00\x00" + tiff
        tagged = data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]
        path = tmp_path / f"o{orientation}.jpg"
        path.write_bytes(tagged)
        assert exif_orientation(tagged) == orientation
        np.testing.assert_array_equal(read_image(path), upright)


def test_sigterm_during_a_render_leaves_no_file(tmp_path: Path) -> None:
    """SIGTERM in the middle of `talkinghead demo` (the bundled model): exit 143, no output and no
    hidden partial file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "demo.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "talkinghead", "demo", "--seconds", "600", "--fps", "25",
                             "-o", str(out), "--provider", "cpu", "--no-watermark", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.startswith(".") for p in tmp_path.iterdir()):
        time.sleep(0.1)  # the writer's hidden temporary file: rendering has started
    assert any(p.name.startswith(".") for p in tmp_path.iterdir()), "the render never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err
    assert list(tmp_path.iterdir()) == [], os.listdir(tmp_path)
