"""The crop rule, coordinate conversions, warps and the iBUG flip (talkinghead.crop)."""
from __future__ import annotations

import numpy as np
import pytest

from talkinghead.crop import (
    IBUG_FLIP_PERMUTATION,
    Crop,
    CropConfig,
    crop_from_landmarks,
    crops_from_landmarks,
    flip_landmarks,
    paste_box,
    resize_image,
    sample_from_crop,
    to_normalised,
    to_pixels,
    warp_to_crop,
)
from talkinghead.errors import InputError


def _random_faces(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centre = rng.uniform(100, 400, (n, 1, 2))
    return (centre + rng.uniform(-60, 60, (n, 68, 2))).astype(np.float32)


def test_config_defaults_and_validation():
    cfg = CropConfig()
    assert (cfg.scale, cfg.offset_y) == (1.7, -0.1)
    assert cfg.validate() is cfg
    assert cfg.to_dict() == {"scale": 1.7, "offset_y": -0.1}
    for bad in (CropConfig(scale=0), CropConfig(scale=float("nan")), CropConfig(offset_y=2.0)):
        with pytest.raises(InputError):
            bad.validate()


def test_crop_rule_matches_architecture_doc():
    pts = np.zeros((68, 2), np.float32)
    pts[:, 0] = np.linspace(10, 110, 68)   # width 100
    pts[:, 1] = np.linspace(20, 80, 68)    # height 60
    c = crop_from_landmarks(pts)
    assert c.size == pytest.approx(1.7 * 100)
    assert c.cx == pytest.approx(60)
    assert c.cy == pytest.approx(50 - 0.1 * 170)
    c2 = crop_from_landmarks(pts, CropConfig(scale=2.0, offset_y=0.0))
    assert (c2.cx, c2.cy, c2.size) == pytest.approx((60, 50, 200))


def test_batched_crops_equal_single():
    faces = _random_faces(5)
    batch = crops_from_landmarks(faces)
    assert batch.shape == (5, 3) and batch.dtype == np.float32
    for f, b in zip(faces, batch):
        np.testing.assert_allclose(crop_from_landmarks(f).as_array(), b, rtol=1e-6)


def test_crop_then_inverse_returns_original_coordinates():
    faces = _random_faces(8)
    crops = crops_from_landmarks(faces)
    norm = to_normalised(faces, crops)
    assert norm.shape == faces.shape and norm.dtype == np.float32
    np.testing.assert_allclose(to_pixels(norm, crops), faces, atol=1e-4)
    # one Crop object for one face, and broadcasting of one crop over a batch
    one = crop_from_landmarks(faces[0])
    np.testing.assert_allclose(to_pixels(to_normalised(faces[0], one), one), faces[0], atol=1e-4)
    both = to_normalised(faces[:2], one.as_array())
    np.testing.assert_allclose(both[0], to_normalised(faces[0], one), atol=1e-6)
    # the landmarks' extent lies inside the crop: |u|, |v| <= 1 / scale * ... < 1
    assert np.abs(norm).max() < 1.0


def test_normalised_coordinates_convention():
    crop = Crop(cx=100.0, cy=50.0, size=40.0)
    pts = np.zeros((68, 2), np.float32)
    pts[0] = (80, 30)      # top-left corner of the crop
    pts[1] = (120, 70)     # bottom-right
    pts[2] = (100, 50)     # centre
    n = to_normalised(pts, crop)
    np.testing.assert_allclose(n[:3], [[-1, -1], [1, 1], [0, 0]], atol=1e-6)


def test_conversion_rejects_bad_shapes_and_nan():
    with pytest.raises(InputError, match=r"\[\.\.\., 68, 2\]"):
        to_normalised(np.zeros((5, 2)), Crop(0, 0, 1))
    with pytest.raises(InputError, match="NaN"):
        to_normalised(np.full((68, 2), np.nan), Crop(0, 0, 1))
    with pytest.raises(InputError, match="size > 0"):
        to_pixels(np.zeros((68, 2)), np.array([0.0, 0.0, 0.0]))
    with pytest.raises(InputError, match="degenerate"):
        crop_from_landmarks(np.ones((68, 2)))


def test_warp_identity_and_grid_convention():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    # A crop covering exactly the image, sampled at its own resolution, is the image itself.
    out = warp_to_crop(img, Crop(15.5, 15.5, 32.0), 32)
    np.testing.assert_array_equal(out, img)
    # Half resolution on the pixel-centre grid: output pixel j averages source pixels 2j, 2j+1.
    half = warp_to_crop(img, Crop(15.5, 15.5, 32.0), 16)
    expected = img.astype(np.float32).reshape(16, 2, 16, 2, 3).mean(axis=(1, 3))
    assert np.abs(half.astype(np.float32) - expected).max() <= 0.5 + 1e-3


def test_warp_edge_padding_and_prefilter():
    img = np.zeros((40, 40, 3), np.uint8)
    img[:, :20] = 200  # left half bright
    mostly_left = warp_to_crop(img, Crop(-20.0, 20.0, 50.0), 8)
    assert (mostly_left == 200).all()   # edge padding: repeats the left column
    with pytest.raises(InputError, match="outside"):  # wholly off the image: not this image's face
        warp_to_crop(img, Crop(-500.0, 20.0, 50.0), 8)
    with pytest.raises(InputError, match="8x"):  # far larger than the image (found by fuzzing)
        warp_to_crop(img, Crop(20.0, 20.0, 590_000.0), 8)
    # A fine checkerboard seen at 1/8 scale: the box prefilter gives a flat grey, not aliasing.
    board = (np.indices((256, 256)).sum(0) % 2 * 255).astype(np.uint8)
    board = np.repeat(board[..., None], 3, axis=2)
    small = warp_to_crop(board, Crop(127.5, 127.5, 256.0), 32)
    assert small.shape == (32, 32, 3) and small.dtype == np.uint8
    assert np.abs(small.astype(int) - 128).max() <= 1


def test_warp_then_inverse_sampling_restores_the_frame():
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    frame = np.stack([xx * 1.5, yy * 2.0, (xx + yy) * 0.8], axis=-1).clip(0, 255).astype(np.uint8)
    crop = Crop(80.3, 60.7, 64.0)
    cim = warp_to_crop(frame, crop, 128)          # upsampled crop image
    patch, (x0, y0, x1, y1) = sample_from_crop(cim, crop, 120, 160)
    assert (x0, y0, x1, y1) == paste_box(crop, 120, 160)
    assert patch.shape == (y1 - y0, x1 - x0, 3) and patch.dtype == np.float32
    assert x1 - x0 == 64 and y1 - y0 == 64
    diff = np.abs(patch - frame[y0:y1, x0:x1].astype(np.float32))
    assert diff.max() <= 2.0
    # a crop sticking out of the frame is clipped
    assert paste_box(Crop(5.0, 5.0, 40.0), 120, 160) == (0, 0, 25, 25)
    patch, box = sample_from_crop(cim, Crop(-100.0, -100.0, 10.0), 120, 160)
    assert patch.size == 0


def test_resize_image():
    img = np.full((30, 50, 3), 77, np.uint8)
    out = resize_image(img, 10, 20)
    assert out.shape == (10, 20, 3) and (out == 77).all()


def test_warp_rejects_bad_inputs():
    with pytest.raises(InputError):
        warp_to_crop(np.zeros((0, 5, 3), np.uint8), Crop(0, 0, 4), 8)
    with pytest.raises(InputError):
        warp_to_crop(np.zeros((5, 5, 3), np.uint8), Crop(0, 0, 4), 0)
    with pytest.raises(InputError):
        warp_to_crop(np.zeros((5, 5, 3), np.uint8), Crop(0, 0, -1), 8)


def test_flip_permutation_is_an_involution():
    p = IBUG_FLIP_PERMUTATION
    assert sorted(p.tolist()) == list(range(68))
    np.testing.assert_array_equal(p[p], np.arange(68))
    # eye corners, mouth corners and jaw ends swap; nose tip and chin stay
    assert (p[36], p[45], p[48], p[54], p[0], p[16]) == (45, 36, 54, 48, 16, 0)
    assert (p[30], p[8], p[51], p[57]) == (30, 8, 51, 57)


def test_flip_twice_is_identity():
    faces = _random_faces(3)
    np.testing.assert_allclose(flip_landmarks(flip_landmarks(faces, 640), 640), faces, atol=1e-4)
    norm = to_normalised(faces, crops_from_landmarks(faces))
    np.testing.assert_allclose(flip_landmarks(flip_landmarks(norm)), norm, atol=1e-6)


def test_flip_matches_mirrored_image_coordinates():
    faces = _random_faces(1)[0]
    width = 500
    flipped = flip_landmarks(faces, width)
    # point i of the flipped face is the mirror of point P[i] of the original
    np.testing.assert_allclose(flipped[:, 0], width - 1 - faces[IBUG_FLIP_PERMUTATION, 0])
    np.testing.assert_allclose(flipped[:, 1], faces[IBUG_FLIP_PERMUTATION, 1])
    # in crop-normalised space, flipping commutes with a mirrored crop
    crop = crop_from_landmarks(faces)
    mirrored_crop = Crop(width - 1 - crop.cx, crop.cy, crop.size)
    np.testing.assert_allclose(flip_landmarks(to_normalised(faces, crop)),
                               to_normalised(flipped, mirrored_crop), atol=1e-4)
