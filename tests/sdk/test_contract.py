"""The conformance corpus (contract/), read by Python here and by the C++ core in ctest (no Python
there), so the two languages agree through the same files:

- manifests (contract/make_manifests.py): the Python validator accepts every valid case and refuses
  every invalid one with its recorded key (by code, not by message text);
- packages and vectors (contract/make_vectors.py): the SDK still gives the crops, coordinates,
  motion, identities and frames stored there, so a change to Python that the corpus does not follow
  fails here, and one to C++ fails in ctest.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from talkinghead.errors import ModelPackageError
from talkinghead.manifest import validate_manifest
from talkinghead.package import parse_manifest_json

CONTRACT = Path(__file__).resolve().parents[2] / "contract"
CORPUS = CONTRACT / "manifests"
CASES = json.loads((CORPUS / "cases.json").read_text())


def test_the_corpus_has_both_kinds() -> None:
    assert sum(c["valid"] for c in CASES.values()) >= 3 and sum(not c["valid"] for c in CASES.values()) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_python_validator_follows_the_corpus(name: str) -> None:
    case = CASES[name]
    data = (CORPUS / case["file"]).read_bytes()
    if case["valid"]:
        validate_manifest(parse_manifest_json(data))
    else:
        with pytest.raises(ModelPackageError) as info:
            validate_manifest(parse_manifest_json(data))
        assert info.value.key == case["key"], str(info.value)


# ---- packages and vectors -------------------------------------------------------------------

INDEX = json.loads((CONTRACT / "vectors" / "index.json").read_text())


def vector(name: str) -> np.ndarray:
    """A raw little-endian vector of contract/vectors by its index entry."""
    e = INDEX[name]
    return np.fromfile(CONTRACT / "vectors" / e["file"], np.dtype(e["dtype"]).newbyteorder("<")).reshape(e["shape"])


def max_level_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.fixture(scope="module")
def load():
    from talkinghead.model import TalkingHeadModel
    from talkinghead.package import ModelPackage
    from talkinghead.sessions import SessionConfig

    return lambda name: TalkingHeadModel(ModelPackage.load(CONTRACT / "packages" / name), SessionConfig(providers="cpu"))


def test_geometry_vectors() -> None:
    from talkinghead.crop import crop_from_landmarks, to_normalised, to_pixels, warp_to_crop

    for i in INDEX["shots"]:
        lm = vector(f"shot{i}_landmarks")
        crop = crop_from_landmarks(lm)
        np.testing.assert_allclose([crop.cx, crop.cy, crop.size], vector(f"shot{i}_crop"), rtol=1e-12)
        np.testing.assert_allclose(to_normalised(lm, crop), vector(f"shot{i}_normalised"), atol=1e-6)
        assert max_level_diff(warp_to_crop(vector(f"shot{i}_image"), crop, INDEX["resolution"]),
                              vector(f"shot{i}_crop_image")) <= 1
    for w in INDEX["warps"]:
        got = warp_to_crop(vector("shot2_image"), vector(w["name"] + "_crop"), w["resolution"])
        assert max_level_diff(got, vector(w["name"] + "_image")) <= 1
    lm = vector("to_pixels_in")
    crop = crop_from_landmarks(lm)
    np.testing.assert_allclose(to_pixels(to_normalised(lm, crop), crop), vector("to_pixels_out"), atol=1e-4)


def test_paste_back_vectors() -> None:
    from talkinghead.errors import InputError
    from talkinghead.pasteback import paste_back

    frame = vector("paste_frame")
    changed = 0
    for case in INDEX["pastes"]:
        n = case["name"]
        got = paste_back(frame, vector(n + "_crop_image"), vector(n + "_crop"), case["feather"])
        assert max_level_diff(got, vector(n + "_out")) <= 1, n
        changed += int((got != frame).any())
    assert changed == len(INDEX["pastes"]) - 1  # one crop lies wholly off the frame
    for bad in (-0.1, 0.6, float("nan")):
        with pytest.raises(InputError, match="feather"):
            paste_back(frame, vector("paste0_crop_image"), vector("paste0_crop"), bad)


def test_motion_vectors() -> None:
    from talkinghead.motion import MotionTransfer

    got = MotionTransfer(vector("source_landmarks"), "relative")(vector("drive_pixels"))
    np.testing.assert_allclose(got, vector("motion_relative"), atol=1e-6)


def test_frame_vectors(load) -> None:
    model = load("model")
    avatar = model.create_avatar([vector(f"shot{i}_image") for i in INDEX["shots"]],
                                 [vector(f"shot{i}_landmarks") for i in INDEX["shots"]])
    np.testing.assert_allclose(avatar.identity, vector("identity"), atol=1e-5)
    np.testing.assert_allclose(avatar.landmarks, vector("source_landmarks"), atol=1e-6)
    assert max_level_diff(model.render(avatar, vector("drive_normalised")), vector("frames")) <= 1
    assert max_level_diff(model.render(avatar, vector("drive_pixels"), coords="pixels"), vector("frames_pixels")) <= 1
    assert max_level_diff(model.render(avatar, vector("motion_relative")), vector("frames_relative")) <= 1


def test_warp_family_vectors(load) -> None:
    model = load("warp")
    n = INDEX["warp"]["shots"]
    assert n > model.package.references.cap == INDEX["warp"]["cap"]
    avatar = model.create_avatar([vector(f"warp_shot{i}_image") for i in range(n)],
                                 [vector(f"warp_shot{i}_landmarks") for i in range(n)])
    images, landmarks = avatar.reference_inputs()
    np.testing.assert_allclose(images, vector("warp_ref_images"), atol=1e-6)
    np.testing.assert_allclose(landmarks, vector("warp_ref_landmarks"), atol=1e-6)
    assert max_level_diff(model.render(avatar, vector("warp_drive_normalised")), vector("warp_frames")) <= 1


def test_an_avatar_with_smaller_shots_still_renders(load, tmp_path: Path, caplog) -> None:
    """An avatar saved when the model kept its shots at the output side (the bundled model before
    session 13) renders with a model that keeps them at twice that: resampled, with one warning,
    close to the avatar made again."""
    import dataclasses
    import logging

    from talkinghead.avatar import Avatar
    from talkinghead.crop import resize_image

    model = load("warp")
    n = INDEX["warp"]["shots"]
    avatar = model.create_avatar([vector(f"warp_shot{i}_image") for i in range(n)],
                                 [vector(f"warp_shot{i}_landmarks") for i in range(n)])
    side = model.package.references.resolution
    assert side == 2 * model.resolution
    small = np.stack([resize_image(c, side // 2, side // 2) for c in avatar.ref_images])
    old = Avatar.load(dataclasses.replace(avatar, ref_images=small, _reference_inputs=None).save(tmp_path / "old.npz"))
    drive = vector("warp_drive_normalised")
    with caplog.at_level(logging.WARNING, logger="talkinghead"):
        got = model.render(old, drive)
        model.render(old, drive)
    assert [r.getMessage() for r in caplog.records].count(next(r.getMessage() for r in caplog.records
                                                                 if "resampled" in r.getMessage())) == 1
    want = model.render(avatar, drive)
    assert got.shape == want.shape
    assert float(np.abs(got.astype(np.float32) - want.astype(np.float32)).mean()) < 3.0  # 1.1 when written


def test_the_c_example_frames(load) -> None:
    """contract/example/expected: what `th_example ... --pixels --relative` must write (ctest holds the
    C example to it); the SDK gives the same from the same files."""
    from talkinghead.motion import MotionTransfer

    ex = CONTRACT / "example"

    def points(name: str) -> np.ndarray:
        vals = [float(v) for line in open(ex / name) if not line.startswith("#") for v in line.split()]
        return np.array(vals, np.float32).reshape(-1, 68, 2)

    model = load("model")
    shots = [np.asarray(Image.open(ex / f"shot{i}.ppm").convert("RGB")) for i in range(2)]
    avatar = model.create_avatar(shots, [points(f"shot{i}.txt")[0] for i in range(2)])
    frames = model.render(avatar, MotionTransfer(avatar.landmarks, "relative")(points("drive.txt")))
    expected = sorted((ex / "expected").glob("frame_*.ppm"))
    assert len(expected) == len(frames) > 0
    for want, got in zip(expected, frames):
        assert max_level_diff(got, np.asarray(Image.open(want).convert("RGB"))) <= 1
