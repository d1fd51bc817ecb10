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
import os
import sys
import tempfile
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repo root: tests.fuzz.replay

with atheris.instrument_imports():
    from tests.fuzz import replay

_AVATAR_FILE = Path(tempfile.gettempdir()) / f"fuzz_avatar_{os.getpid()}.npz"

TARGETS = {"manifest": replay.manifest, "onnx": replay.onnx_header,
           "avatar": lambda data: replay.avatar(data, _AVATAR_FILE)}


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
