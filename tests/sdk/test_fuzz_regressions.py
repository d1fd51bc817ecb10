"""Every input the fuzzers found (tests/fuzz/crashes/, written by tests/fuzz/run.sh) replayed: each
reader now answers it with its own error type (or reads it), within seconds, never anything else.

- ``py_onnx_*``: a metadata field of the wrong wire type raised AttributeError.
- ``py_avatar_*``: corrupt deflate data (zlib.error), an unsupported zip method
  (NotImplementedError) and a file that is a zip by its end but an .npy by its start (numpy's
  header tokenizer raised TokenError) escaped Avatar.load.
- ``native_onnx_*``: a field length near 2^63 overflowed the C++ header reader's position (UBSan).
- ``native_shot_*``: landmarks spanning 590,000 px made a crop whose box prefilter took minutes
  (a timeout) in the C++ core; both languages now refuse a crop over 8x the image's side.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fuzz import replay

CRASHES = Path(__file__).resolve().parents[1] / "fuzz" / "crashes"
FOUND = sorted(p for p in CRASHES.iterdir() if p.is_file()) if CRASHES.is_dir() else []


def _replay(path: Path, tmp_path: Path) -> None:
    data = path.read_bytes()
    kind = path.name.split("_")[1]
    if kind == "manifest":
        replay.manifest(data)
    elif kind == "onnx":
        replay.onnx_header(data)
    elif kind == "avatar":
        replay.avatar(data, tmp_path / "avatar.npz")
    elif kind == "shot":
        replay.shot(data)
    else:
        pytest.fail(f"unknown fuzz target in {path.name}")


def test_the_fuzzers_found_something_to_replay() -> None:
    assert {p.name.split("_")[1] for p in FOUND} >= {"onnx", "avatar", "shot"}


@pytest.mark.parametrize("path", FOUND, ids=[p.name[:40] for p in FOUND])
def test_a_found_input_gets_the_readers_own_error(path: Path, tmp_path: Path) -> None:
    start = time.perf_counter()
    _replay(path, tmp_path)
    assert time.perf_counter() - start < 10  # the fuzzers' timeout
