"""Fixtures for the training tests: small prepared datasets, made from real clips or synthetic."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
REAL_CLIPS = ("grid_bbaf2n.mpg", "grid_lbax4n.mpg")


@pytest.fixture(scope="session")
def real_prepared(tmp_path_factory) -> Path:
    """Two GRID clips from ../shared/data/driving prepared at 64x64 by training.prepare (40 frames each)."""
    from training.prepare import main as prepare

    clips = tmp_path_factory.mktemp("clips")
    for name in REAL_CLIPS:
        src = SHARED_DATA / "driving" / name
        if not src.is_file():
            pytest.fail(f"{src} is missing: the tests need ../shared/data beside the checkout")
        (clips / name).symlink_to(src)
    out = tmp_path_factory.mktemp("prepared")
    rc = prepare([str(clips), str(out), "--resolution", "64", "--workers", "1", "--limit-frames", "40"])
    assert rc in (0, None)
    return out


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    """Three synthetic prepared videos of 12 frames at 64x64 (fast, for the loop's mechanics)."""
    from .synthetic import make_prepared_dataset

    return make_prepared_dataset(tmp_path_factory.mktemp("synthetic"), videos=3, frames=12, resolution=64)
