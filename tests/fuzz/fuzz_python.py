"""Coverage-guided fuzzing of the SDK's file readers with atheris (issue 18): the manifest parser,
the ONNX header reader and the avatar loader. Not part of the test suite (it runs for a budget);
tests/fuzz/run.sh runs it, and every crash it finds becomes a file in tests/fuzz/crashes/ that
tests/sdk/test_fuzz_regressions.py replays.

    python tests/fuzz/fuzz_python.py manifest --seconds 300 [--corpus DIR]

A "crash" is any exception other than the reader's own error type (ModelPackageError,
AvatarFileError), or a hang past atheris's timeout.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from talkinghead.avatar import Avatar, AvatarFileError
    from talkinghead.errors import ModelPackageError
    from talkinghead.manifest import validate_manifest
    from talkinghead.package import parse_manifest_json, read_onnx_header_from

HERE = Path(__file__).resolve().parent
_AVATAR_FILE = Path(tempfile.gettempdir()) / f"fuzz_avatar_{os.getpid()}.npz"


def manifest(data: bytes) -> None:
    try:
        validate_manifest(parse_manifest_json(data))
    except ModelPackageError:
        pass


def onnx_header(data: bytes) -> None:
    try:
        read_onnx_header_from(io.BytesIO(data), len(data), "fuzz.onnx")
    except ModelPackageError:
        pass


def avatar(data: bytes) -> None:
    _AVATAR_FILE.write_bytes(data)
    try:
        Avatar.load(_AVATAR_FILE).check()
    except AvatarFileError:
        pass


TARGETS = {"manifest": manifest, "onnx": onnx_header, "avatar": avatar}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", choices=sorted(TARGETS))
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--corpus", type=Path, help="working corpus (default: a copy of tests/fuzz/corpus/<target>)")
    p.add_argument("--crashes", type=Path, default=HERE / "crashes", help="where crashing inputs are written")
    args = p.parse_args()
    corpus = args.corpus or Path(tempfile.mkdtemp(prefix=f"fuzz_{args.target}_"))
    seeds = HERE / "corpus" / args.target
    args.crashes.mkdir(parents=True, exist_ok=True)
    libfuzzer_args = [sys.argv[0], str(corpus), str(seeds), f"-max_total_time={args.seconds}", "-timeout=10",
                      "-rss_limit_mb=4096", f"-artifact_prefix={args.crashes}/py_{args.target}_", "-print_final_stats=1"]
    atheris.Setup(libfuzzer_args, TARGETS[args.target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
