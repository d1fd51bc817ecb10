"""Fixtures shared by every test folder: the real media in ../shared/data.

The media are public files that are not ours: tests read them in place and never copy them into
the repository (see ../shared/data/README.md).
"""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: A short real clip (GRID: 3 s, 360x288, 75 frames, mp2 audio in MPEG-PS).
SHORT_CLIP = "driving/grid_bbaf2n.mpg"
#: A short real clip with AAC audio in mp4 (VoxCeleb2, 224x224).
AAC_CLIP = "driving/pcavs_vox_00015.mp4"
#: A frontal face photo (one person).
FACE_PHOTO = "faces/aaai22_AdamSchiff.jpg"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder ../shared/data beside the checkout (fails loudly when it is not there)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the tests need ../shared/data beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def short_clip(shared_data: Path) -> Path:
    """A real 3-second talking-head clip."""
    return shared_data / SHORT_CLIP


@pytest.fixture(scope="session")
def aac_clip(shared_data: Path) -> Path:
    """A real short clip with AAC audio."""
    return shared_data / AAC_CLIP


@pytest.fixture(scope="session")
def face_photo(shared_data: Path) -> Path:
    """A real photo of one face."""
    return shared_data / FACE_PHOTO


@pytest.fixture(scope="session")
def dlib_detector():
    """One dlib landmark detector for the whole session (loading the model takes ~1 s)."""
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    from talkinghead.landmarks import get_detector

    return get_detector("dlib")
